//! `GET /api/v1/logs?service=&request_id=&flow_id=&trace_id=&user_id=&level=&start=&end=&limit=`:
//! the minimal read path, newest first. `level` is a name (`error`), a
//! comma list (`warning,error`) or a minimum (`>=warning`). `start`/`end` take
//! RFC 3339 or epoch seconds/ms/µs/ns.

use super::blocking;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sightline_pipeline::timefmt::parse_timestamp;
use sightline_pipeline::Level;
use sightline_store::LogQuery;
use std::time::Instant;

pub const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
pub struct Params {
    service: Option<String>,
    request_id: Option<String>,
    flow_id: Option<String>,
    trace_id: Option<String>,
    user_id: Option<String>,
    level: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
}

fn levels(spec: &str) -> Result<Vec<Level>, ApiError> {
    let bad = |s: &str| {
        ApiError::BadRequest(format!(
            "unknown level {s:?} (use debug, info, warning, error, critical)"
        ))
    };
    if let Some(min) = spec.strip_prefix(">=") {
        let min = Level::parse(min).ok_or_else(|| bad(min))?;
        return Ok(Level::ALL.into_iter().filter(|l| *l >= min).collect());
    }
    spec.split(',')
        .map(|s| Level::parse(s).ok_or_else(|| bad(s)))
        .collect()
}

fn time(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_timestamp(s).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name}={s:?} is not an RFC 3339 time or epoch number"
            ))
        }),
    }
}

pub async fn query(State(app): State<AppState>, Query(p): Query<Params>) -> Response {
    match run(&app, p).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(app: &AppState, p: Params) -> Result<Response, ApiError> {
    let limit = match p.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("limit={s:?} is not a number")))?,
    }
    .clamp(1, app.config.limits.max_query_limit);
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let q = LogQuery {
        service: nonempty(p.service),
        request_id: nonempty(p.request_id),
        flow_id: nonempty(p.flow_id),
        trace_id: nonempty(p.trace_id),
        user_id: nonempty(p.user_id),
        levels: p
            .level
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(levels)
            .transpose()?,
        start_ns: time("start", &p.start)?,
        end_ns: time("end", &p.end)?,
        limit,
    };
    let start = Instant::now();
    let store = app.store.clone();
    let rows = blocking(move || store.query(&q)).await??;
    let took = start.elapsed();
    app.metrics.query_duration.observe(&["logs"], took);
    let logs: Vec<_> = rows.iter().map(|r| r.to_json()).collect();
    Ok(
        Json(serde_json::json!({ "logs": logs, "took_ms": took.as_secs_f64() * 1000.0 }))
            .into_response(),
    )
}
