//! Traces: search by service, span name, status and duration; a trace as a
//! waterfall with its logs and errors.

use super::{event_table, log_table, one, timeline};
use crate::ui::{get_api, layout::*, Ctx};
use crate::AppState;
use axum::{
    extract::{Path, Query, State},
    response::Response,
    Extension,
};
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Params {
    #[serde(default)]
    service: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    min_duration: String,
    #[serde(default)]
    range: String,
}

pub async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<Params>,
) -> Response {
    let (range, start) = window(&p.range, "1h");
    let uri = format!(
        "/api/v1/traces{}",
        qs(&[
            ("service", &p.service),
            ("name", &p.name),
            ("status", &p.status),
            ("min_duration", &p.min_duration),
            ("start", &start),
            ("limit", "100")
        ])
    );
    let ans = get_api(&app, &uri).await;
    let traces = arr(&ans.body, "traces");
    let body = html! {
        h1 { "Traces" }
        form.card.row method="get" action="/ui/traces" {
            input type="text" name="service" value=(p.service) placeholder="service";
            input type="text" name="name" value=(p.name) placeholder="span name (exact)";
            select name="status" aria-label="status" {
                option value="" { "any status" }
                option value="error" selected[p.status == "error"] { "with an error" }
            }
            input type="text" name="min_duration" value=(p.min_duration) placeholder="min duration, e.g. 250ms" size="16";
            (range_select(&range))
            button type="submit" { "Search" }
        }
        @if !ans.ok() { (error_box(&ans.error())) }
        section.card {
            @if traces.is_empty() { (empty("No traces match.")) } @else {
                table id="traces" {
                    thead { tr { th { "Trace" } th { "Root" } th { "Service" } th { "Started" } th.num { "Duration" } th.num { "Spans" } th { "Status" } th { "Requests" } } }
                    tbody {
                        @for t in traces {
                            tr {
                                td { (trace_link(s(t, "trace_id"))) }
                                td { b { (s(t, "root")) } }
                                td { (s(t, "service")) @if arr(t, "services").len() > 1 { span.muted { " +" (arr(t, "services").len() - 1) } } }
                                td { (when(&t["start"])) }
                                td.num { (dur_ms(n(t, "duration_ms"))) }
                                td.num { (num(n(t, "spans"))) }
                                td { (pill(s(t, "status"))) @if n(t, "errors") > 0.0 { " " span.lvl-error { (num(n(t, "errors"))) " ✗" } } }
                                td { @for r in arr(t, "request_ids").iter().take(2) { (request_link(&text(r))) " " } }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&ctx, "Traces", body)
}

pub async fn detail(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let uri = format!("/api/v1/traces/{}", enc(&id));
    let t = match one(&app, &ctx, "Trace", &id, &uri).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let t = &t;
    let sum = &t["summary"];
    let logs = arr(t, "logs");
    let errors = arr(t, "errors");
    let body = html! {
        h1 { "Trace " code { (s(t, "trace_id")) } @if s(sum, "status") == "error" { (pill("error")) } }
        section.card {
            div.stats {
                div.stat { b { (s(sum, "root")) } span { "root" } }
                div.stat { b { (arr(sum, "services").iter().map(text).collect::<Vec<_>>().join(", ")) } span { "services" } }
                div.stat { b { (at(&sum["start"])) } span { "started (UTC)" } }
                div.stat { b { (dur_ms(n(sum, "duration_ms"))) } span { "duration" } }
                div.stat { b { (num(n(sum, "spans"))) } span { "spans" } }
                div.stat { b { (errors.len()) } span { "errors" } }
            }
            div.row { @for r in arr(sum, "request_ids") { span { "request " (request_link(&text(r))) } } }
        }
        section.card { h2 { "Waterfall" } (timeline(arr(t, "spans"), logs, errors)) }
        @if !errors.is_empty() { section.card { h2 { "Errors" } (event_table(errors)) } }
        section.card {
            h2 { "Logs" }
            @if logs.is_empty() { (empty("No log lines carry this trace id.")) } @else { (log_table(logs, None)) }
        }
    };
    render(&ctx, "Trace", body)
}
