//! The debugging views over HTTP: `GET /api/v1/requests/{request_id}` (one
//! request's answer: its logs, error events, span tree and its route's rate
//! and latency), `GET /api/v1/flows/{flow_id}` (with its requests' spans and
//! errors), `GET /api/v1/flows` (list) and `GET /api/v1/flows/stats`.

use super::logs_query::{range_of, run_query};
use super::traces;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use sightline_pipeline::Span;
use sightline_query::traces::span_tree;
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

/// The span a request's rate and latency are read for: its server span
/// (an OTLP one first), else its earliest root.
fn request_span<'a>(spans: &'a [Span], request_id: &str) -> Option<&'a Span> {
    let tagged = || {
        spans
            .iter()
            .filter(move |s| s.request_id.as_deref() == Some(request_id))
    };
    // OpenTelemetry's server span names the route as the service's metrics
    // do; a Sentry transaction names it without the method.
    tagged()
        .filter(|s| s.kind == "server")
        .min_by_key(|s| (s.source != "otlp", s.start_ns))
        .or_else(|| tagged().min_by_key(|s| (s.parent_span_id.is_some(), s.start_ns)))
}

/// `GET /api/v1/requests/{id}`: the logs, error events, spans and route
/// statistics of one request.
pub async fn request(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    async fn run(app: AppState, id: String) -> Result<Response, ApiError> {
        check_id("request id", &id)?;
        let rid = id.clone();
        let (t, spans, route) = run_query(&app, "request", move |a| {
            let t = a.engine.request(&a.store, &rid)?;
            let spans = a.traces.request(&a.spans, &rid)?;
            let route = request_span(&spans, &rid)
                .map(|s| traces::route_stats(a, &s.service, &s.name, s.start_ns));
            Ok((t, spans, route))
        })
        .await?;
        let (a, rid) = (app.clone(), id.clone());
        let errors = super::blocking(move || {
            a.events.read(|c| {
                sightline_store::events::events_by(c, "request_id", &rid, traces::MAX_ERRORS)
            })
        })
        .await??;
        let errors = traces::errors_of_traces(&app, traces::trace_ids(&spans), errors).await?;
        if t.logs.is_empty() && errors.is_empty() && spans.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no logs, errors or spans with request_id {id:?}"
            )));
        }
        let summaries: Vec<_> = traces::trace_ids(&spans)
            .iter()
            .filter_map(|t| {
                let of: Vec<Span> = spans.iter().filter(|s| &s.trace_id == t).cloned().collect();
                sightline_query::traces::summarize(t, &of)
            })
            .collect();
        let mut v = serde_json::to_value(&t).map_err(|e| ApiError::Internal(e.to_string()))?;
        v["errors"] = Value::Array(errors);
        v["spans"] = Value::Array(span_tree(&spans));
        v["traces"] = serde_json::to_value(summaries).unwrap_or_default();
        v["route"] = route.unwrap_or(Value::Null);
        Ok(Json(v).into_response())
    }
    run(app, id).await.unwrap_or_else(|e| e.into_response())
}

/// `GET /api/v1/flows/{id}`: the flow from its events, with the spans and
/// error events of its requests.
pub async fn flow(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    async fn run(app: AppState, id: String) -> Result<Response, ApiError> {
        check_id("flow id", &id)?;
        let fid = id.clone();
        let found = run_query(&app, "flow", move |a| {
            let Some(f) = a.engine.flow(&a.store, &fid)? else {
                return Ok(None);
            };
            let mut spans = Vec::new();
            for r in f.request_ids.iter().take(traces::MAX_FLOW_REQUESTS) {
                for s in a.traces.request(&a.spans, r)? {
                    if !spans
                        .iter()
                        .any(|x: &Span| x.trace_id == s.trace_id && x.span_id == s.span_id)
                    {
                        spans.push(s);
                    }
                }
            }
            Ok(Some((f, spans)))
        })
        .await?;
        let Some((f, spans)) = found else {
            return Err(ApiError::NotFound(format!("no logs with flow_id {id:?}")));
        };
        let (a, rids) = (app.clone(), f.request_ids.clone());
        let errors = super::blocking(move || {
            a.events.read(|c| {
                let mut out = Vec::new();
                for r in rids.iter().take(traces::MAX_FLOW_REQUESTS) {
                    out.extend(sightline_store::events::events_by(
                        c,
                        "request_id",
                        r,
                        traces::MAX_ERRORS,
                    )?);
                }
                Ok(out)
            })
        })
        .await??;
        let errors = traces::errors_of_traces(&app, traces::trace_ids(&spans), errors).await?;
        let mut v = serde_json::to_value(&f).map_err(|e| ApiError::Internal(e.to_string()))?;
        v["spans"] = Value::Array(span_tree(&spans));
        v["errors"] = Value::Array(errors);
        Ok(Json(v).into_response())
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
