//! Error tracking over HTTP: `GET /api/v1/issues`, `GET/PUT /api/v1/issues/{id}`,
//! `GET /api/v1/issues/{id}/events`, `GET /api/v1/events/{event_id}`,
//! `GET /api/v1/monitors` (cron status, missed and timed-out runs judged here)
//! and `GET /api/v1/releases` (crash-free rates).

use super::{blocking, now_ns};
use crate::cron::Schedule;
use crate::endpoints::urlencode;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_store::events::{self, IssueFilter};

#[derive(Debug, Deserialize)]
pub struct IssueParams {
    project: Option<String>,
    status: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    limit: Option<usize>,
    environment: Option<String>,
    release: Option<String>,
    /// `24h`, `14d`, …: adds `stats`, event counts per bucket over that period.
    stats_period: Option<String>,
    /// Buckets of `stats` (default 24, at most 1000).
    stats_buckets: Option<usize>,
    /// Only issues first seen at or after this time (`24h` ago, RFC 3339, …).
    first_seen_after: Option<String>,
}

const STATUSES: &[&str] = &["unresolved", "resolved", "ignored"];

fn project_id(app: &crate::App, p: &str) -> Result<i64, ApiError> {
    if let Ok(id) = p.parse::<i64>() {
        return Ok(id);
    }
    app.projects
        .lock()
        .by_name(p)?
        .map(|p| p.id)
        .ok_or_else(|| ApiError::NotFound(format!("no project {p:?}")))
}

fn issue_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest(format!("issue id {id:?} is not a number")))
}

pub async fn list(State(app): State<AppState>, Query(p): Query<IssueParams>) -> Response {
    async fn run(app: AppState, p: IssueParams) -> Result<Response, ApiError> {
        let project_id = match p.project.as_deref().filter(|s| !s.is_empty()) {
            Some(name) => Some(project_id(&app, name)?),
            None => None,
        };
        let status = p.status.filter(|s| !s.is_empty() && s != "all");
        if let Some(s) = &status {
            if !STATUSES.contains(&s.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "status must be one of unresolved, resolved, ignored, all (got {s:?})"
                )));
            }
        }
        let sort = p.sort.unwrap_or_else(|| "last_seen".into());
        if !["last_seen", "first_seen", "count"].contains(&sort.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "sort must be last_seen, first_seen or count (got {sort:?})"
            )));
        }
        let stats = match p.stats_period.as_deref().filter(|s| !s.is_empty()) {
            Some(period) => {
                let ns = sightline_query::time::parse_duration(period)
                    .map_err(|e| ApiError::BadRequest(format!("stats_period {period:?}: {e}")))?;
                let end_ns = sightline_pipeline::timefmt::now_ns();
                Some(events::StatsWindow {
                    start_ns: end_ns.saturating_sub(ns),
                    end_ns,
                    buckets: p.stats_buckets.unwrap_or(24).clamp(1, 1000),
                })
            }
            None => None,
        };
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let first_seen_after = match nonempty(p.first_seen_after) {
            Some(t) => Some(
                sightline_query::time::parse_time(&t, sightline_pipeline::timefmt::now_ns())
                    .map_err(|e| ApiError::BadRequest(format!("first_seen_after {t:?}: {e}")))?,
            ),
            None => None,
        };
        let f = IssueFilter {
            project_id,
            status,
            q: nonempty(p.q),
            sort,
            limit: p.limit.unwrap_or(100).clamp(1, 1000),
            environment: nonempty(p.environment),
            release: nonempty(p.release),
            stats,
            first_seen_after,
        };
        let a = app.clone();
        let (issues, total) = blocking(move || {
            a.events
                .read(|c| Ok((events::list_issues(c, &f)?, events::count_issues(c, &f)?)))
        })
        .await??;
        Ok(Json(json!({ "issues": issues, "total": total })).into_response())
    }
    run(app, p).await.unwrap_or_else(|e| e.into_response())
}

/// Links from an event to the logs of its request and trace.
fn links(ev: &Value) -> Value {
    let rid = ev.get("request_id").and_then(Value::as_str).or_else(|| {
        ev.get("tags")
            .and_then(|t| t.get("request_id"))
            .and_then(Value::as_str)
    });
    let tid = ev
        .get("contexts")
        .and_then(|c| c.get("trace"))
        .and_then(|t| t.get("trace_id"))
        .and_then(Value::as_str);
    json!({
        "request": rid.map(|r| format!("/api/v1/requests/{}", urlencode(r))),
        "request_logs": rid.map(|r| format!("/api/v1/logs?q={}", urlencode(&format!("request_id:\"{r}\"")))),
        "trace_logs": tid.map(|t| format!("/api/v1/logs?q={}", urlencode(&format!("trace_id:\"{t}\"")))),
    })
}

pub async fn get(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    async fn run(app: AppState, id: String) -> Result<Response, ApiError> {
        let id = issue_id(&id)?;
        let a = app.clone();
        match blocking(move || a.events.read(|c| events::issue(c, id))).await?? {
            Some(mut v) => {
                let l = links(&v["latest_event"]);
                if let Value::Object(m) = &mut v["latest_event"] {
                    m.insert("links".into(), l);
                }
                Ok(Json(v).into_response())
            }
            None => Err(ApiError::NotFound(format!("no issue {id}"))),
        }
    }
    run(app, id).await.unwrap_or_else(|e| e.into_response())
}

#[derive(Debug, Deserialize)]
pub struct StatusChange {
    status: String,
}

pub async fn put(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    async fn run(app: AppState, id: String, body: axum::body::Bytes) -> Result<Response, ApiError> {
        let id = issue_id(&id)?;
        let change: StatusChange = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("body must be {{\"status\": …}}: {e}")))?;
        if !STATUSES.contains(&change.status.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "status must be one of unresolved, resolved, ignored (got {:?})",
                change.status
            )));
        }
        let a = app.clone();
        let now = now_ns();
        let found = blocking(move || {
            a.events
                .write(|c| events::set_issue_status(c, id, &change.status, now))
        })
        .await??;
        if !found {
            return Err(ApiError::NotFound(format!("no issue {id}")));
        }
        let a = app.clone();
        let v = blocking(move || a.events.read(|c| events::issue(c, id))).await??;
        let mut v = v.unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("latest_event");
            m.remove("tags");
        }
        Ok(Json(v).into_response())
    }
    run(app, id, body)
        .await
        .unwrap_or_else(|e| e.into_response())
}

#[derive(Debug, Deserialize)]
pub struct EventsParams {
    limit: Option<usize>,
}

pub async fn issue_events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<EventsParams>,
) -> Response {
    async fn run(app: AppState, id: String, p: EventsParams) -> Result<Response, ApiError> {
        let id = issue_id(&id)?;
        let limit = p.limit.unwrap_or(100).clamp(1, 1000);
        let a = app.clone();
        let (exists, evs) = blocking(move || {
            a.events.read(|c| {
                let exists = events::issue(c, id)?.is_some();
                Ok((exists, events::issue_events(c, id, limit)?))
            })
        })
        .await??;
        if !exists {
            return Err(ApiError::NotFound(format!("no issue {id}")));
        }
        Ok(Json(json!({ "events": evs })).into_response())
    }
    run(app, id, p).await.unwrap_or_else(|e| e.into_response())
}

pub async fn event(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    async fn run(app: AppState, id: String) -> Result<Response, ApiError> {
        let clean = sightline_pipeline::sentry::event::clean_event_id(&id)
            .ok_or_else(|| ApiError::BadRequest(format!("event id {id:?} is not 32 hex digits")))?;
        let a = app.clone();
        match blocking(move || a.events.read(|c| events::event(c, &clean))).await?? {
            Some(mut v) => {
                let l = links(&v);
                v["links"] = l;
                Ok(Json(v).into_response())
            }
            None => Err(ApiError::NotFound(format!("no event {id}"))),
        }
    }
    run(app, id).await.unwrap_or_else(|e| e.into_response())
}

/// A monitor's state now: `timeout` when its newest run is `in_progress` past
/// `max_runtime`, `missed` when a scheduled run is overdue past
/// `checkin_margin`, else its last status.
pub fn monitor_state(m: &events::MonitorRow, now_s: i64) -> (String, Option<i64>) {
    let cfg = m.config.clone().unwrap_or(Value::Null);
    let minutes = |k: &str, d: i64| cfg.get(k).and_then(Value::as_i64).unwrap_or(d).max(0) * 60;
    let margin = minutes("checkin_margin", 1);
    let max_runtime = minutes("max_runtime", 30);
    let last_s = m.last_check_in_ns / 1_000_000_000;
    let next = Schedule::from_config(&cfg).and_then(|s| s.next_after(last_s));
    if let Some((started, status)) = &m.newest {
        if status == "in_progress" && now_s - started / 1_000_000_000 > max_runtime {
            return ("timeout".into(), next);
        }
    }
    match next {
        Some(n) if now_s > n + margin => ("missed".into(), Some(n)),
        _ => (m.last_status.clone(), next),
    }
}

pub async fn monitors(State(app): State<AppState>) -> Response {
    async fn run(app: AppState) -> Result<Response, ApiError> {
        let a = app.clone();
        let rows = blocking(move || a.events.read(|c| events::monitors(c, 50))).await??;
        let now_s = now_ns() / 1_000_000_000;
        let out: Vec<Value> = rows
            .iter()
            .map(|m| {
                let (status, next) = monitor_state(m, now_s);
                json!({
                    "project_id": m.project_id,
                    "slug": m.slug,
                    "status": status,
                    "last_status": m.last_status,
                    "last_check_in": sightline_pipeline::timefmt::format_rfc3339_nanos(m.last_check_in_ns),
                    "next_expected": next.map(|n| sightline_pipeline::timefmt::format_rfc3339_nanos(n * 1_000_000_000)),
                    "environment": m.environment,
                    "config": m.config,
                    "history": m.history,
                })
            })
            .collect();
        Ok(Json(json!({ "monitors": out })).into_response())
    }
    run(app).await.unwrap_or_else(|e| e.into_response())
}

pub async fn releases(State(app): State<AppState>) -> Response {
    async fn run(app: AppState) -> Result<Response, ApiError> {
        let a = app.clone();
        let (mut rel, counts) = blocking(move || {
            a.events
                .read(|c| Ok((events::releases(c)?, events::release_event_counts(c)?)))
        })
        .await??;
        for r in &mut rel {
            let n = counts
                .iter()
                .find(|(p, name, _)| {
                    Some(*p) == r["project_id"].as_i64()
                        && Some(name.as_str()) == r["release"].as_str()
                })
                .map_or(0, |c| c.2);
            r["events"] = json!(n);
        }
        Ok(Json(json!({ "releases": rel })).into_response())
    }
    run(app).await.unwrap_or_else(|e| e.into_response())
}
