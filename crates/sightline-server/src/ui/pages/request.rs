//! The one-request view: spans, logs and errors of a request id on one
//! timeline, with its route's rate, errors and latency.

use super::{event_table, log_table, one, timeline};
use crate::ui::{layout::*, Ctx};
use crate::AppState;
use axum::{
    extract::{Path, State},
    response::Response,
    Extension,
};
use maud::html;

pub async fn page(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let uri = format!("/api/v1/requests/{}", enc(&id));
    let r = match one(&app, &ctx, "Request", &id, &uri).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let r = &r;
    let logs = arr(r, "logs");
    let errors = arr(r, "errors");
    let spans = arr(r, "spans");
    let flows = distinct(logs, "flow_id");
    let users = distinct(logs, "user_id");
    let route = &r["route"];
    let body = html! {
        h1 { "Request " code { (id) } @if !errors.is_empty() { (pill("error")) } }
        section.card {
            div.stats {
                div.stat { b { (r["services"].as_array().map(|a| a.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) } span { "services" } }
                div.stat { b { (at(&r["first_seen"])) } span { "started (UTC)" } }
                div.stat { b { (r["duration_ms"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into())) } span { "duration" } }
                div.stat { b { (logs.len()) } span { "log lines" } }
                div.stat { b { (errors.len()) } span { "errors" } }
                div.stat { b { (arr(r, "traces").len()) } span { "traces" } }
            }
            div.row {
                @for t in arr(r, "traces") { span { "trace " (trace_link(s(t, "trace_id"))) } }
                @for f in &flows { span { "flow " (flow_link(f)) } }
                @for u in &users { span { "user " (user_link(u)) } }
            }
            @if route.is_object() {
                p {
                    "Route " code { (s(route, "service")) " " (s(route, "operation")) } " over " (s(route, "window")) " around it: "
                    b { (route["rate_per_s"].as_f64().map(num).unwrap_or_else(|| "—".into())) } " req/s, "
                    b { (route["error_ratio"].as_f64().map(|e| format!("{:.1}%", e * 100.0)).unwrap_or_else(|| "—".into())) } " errors, p50 "
                    b { (route["p50_ms"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into())) } ", p95 "
                    b { (route["p95_ms"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into())) } ", p99 "
                    b { (route["p99_ms"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into())) }
                }
            }
        }
        section.card {
            h2 { "Timeline" }
            (timeline(spans, logs, errors))
        }
        @if !errors.is_empty() {
            section.card { h2 { "Errors" } (event_table(errors)) }
        }
        section.card {
            h2 { "Logs" @if r["truncated"].as_bool() == Some(true) { " (the newest 10,000)" } }
            @if logs.is_empty() { (empty("No log lines.")) } @else { (log_table(logs, None)) }
        }
    };
    render(&ctx, &format!("Request {id}"), body)
}

/// The distinct values of one id field over log rows, sorted.
fn distinct(logs: &[serde_json::Value], key: &str) -> Vec<String> {
    let mut v: Vec<String> = logs
        .iter()
        .filter_map(|l| l[key].as_str().map(str::to_string))
        .collect();
    v.sort();
    v.dedup();
    v
}
