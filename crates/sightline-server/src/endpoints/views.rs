//! The debugging views over HTTP: `GET /api/v1/requests/{request_id}` (one
//! request's timeline: its logs and its error events), `GET /api/v1/flows/{flow_id}`, `GET /api/v1/flows`
//! (list) and `GET /api/v1/flows/stats`.

use super::logs_query::{range_of, run_query};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sightline_query::views::FlowStatus;
use sightline_query::{now_ns, FlowFilter, Range};

/// Flow lists and stats look this far back when `start` is not given.
pub const DEFAULT_FLOW_WINDOW_NS: i64 = 24 * 3600 * 1_000_000_000;

fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::BadRequest(format!(
            "{what} must be 1 to 256 characters"
        )));
    }
    Ok(())
}

pub async fn request(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    async fn run(app: AppState, id: String) -> Result<Response, ApiError> {
        check_id("request id", &id)?;
        let rid = id.clone();
        let t = run_query(&app, "request", move |a| a.engine.request(&a.store, &rid)).await?;
        let (a, rid) = (app.clone(), id.clone());
        let errors = super::blocking(move || {
            a.events
                .read(|c| sightline_store::events::events_by(c, "request_id", &rid, 1000))
        })
        .await??;
        if t.logs.is_empty() && errors.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no logs or errors with request_id {id:?}"
            )));
        }
        let mut v = serde_json::to_value(&t).map_err(|e| ApiError::Internal(e.to_string()))?;
        v["errors"] = serde_json::Value::Array(errors);
        Ok(Json(v).into_response())
    }
    run(app, id).await.unwrap_or_else(|e| e.into_response())
}

pub async fn flow(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    async fn run(app: AppState, id: String) -> Result<Response, ApiError> {
        check_id("flow id", &id)?;
        let fid = id.clone();
        match run_query(&app, "flow", move |a| a.engine.flow(&a.store, &fid)).await? {
            Some(f) => Ok(Json(f).into_response()),
            None => Err(ApiError::NotFound(format!("no logs with flow_id {id:?}"))),
        }
    }
    run(app, id).await.unwrap_or_else(|e| e.into_response())
}

#[derive(Debug, Deserialize)]
pub struct FlowParams {
    name: Option<String>,
    service: Option<String>,
    status: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
}

/// The flow filter and time range of a request (default: the last 24 h).
fn filter_of(p: &FlowParams) -> Result<(FlowFilter, Range), ApiError> {
    let range = range_of(
        &p.start,
        &p.end,
        Some(now_ns().saturating_sub(DEFAULT_FLOW_WINDOW_NS)),
    )?;
    let ne = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let status = match ne(&p.status) {
        None => None,
        Some(s) => Some(FlowStatus::parse(&s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status={s:?}: expected completed, failed, running or stalled"
            ))
        })?),
    };
    let filter = FlowFilter {
        name: ne(&p.name),
        service: ne(&p.service),
        status,
    };
    Ok((filter, range))
}

pub async fn flows(State(app): State<AppState>, Query(p): Query<FlowParams>) -> Response {
    async fn run(app: AppState, p: FlowParams) -> Result<Response, ApiError> {
        let (filter, range) = filter_of(&p)?;
        let limit = match p.limit.as_deref() {
            None | Some("") => 100,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| ApiError::BadRequest(format!("limit={s:?}: expected 1 to 10000")))?,
        };
        let mut flows = run_query(&app, "flows", move |a| {
            a.engine.flows(&a.store, &filter, range)
        })
        .await?;
        let total = flows.len();
        flows.truncate(limit);
        for f in &mut flows {
            // The list shows where each flow stands; steps are in the detail.
            f.steps.clear();
        }
        Ok(Json(serde_json::json!({ "flows": flows, "total": total })).into_response())
    }
    run(app, p).await.unwrap_or_else(|e| e.into_response())
}

pub async fn flow_stats(State(app): State<AppState>, Query(p): Query<FlowParams>) -> Response {
    async fn run(app: AppState, p: FlowParams) -> Result<Response, ApiError> {
        let (filter, range) = filter_of(&p)?;
        let s = run_query(&app, "flow_stats", move |a| {
            a.engine.flow_stats(&a.store, &filter, range)
        })
        .await?;
        Ok(Json(s).into_response())
    }
    run(app, p).await.unwrap_or_else(|e| e.into_response())
}
