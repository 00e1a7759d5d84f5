//! Flows: counts by name and status, where failed and stalled flows stopped,
//! recent flows; a flow as a timeline of its steps, spans and errors.

use super::{event_table, one, timeline};
use crate::ui::{get_api, layout::*, Ctx};
use crate::AppState;
use axum::{
    extract::{Path, Query, State},
    response::Response,
    Extension,
};
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
pub struct Params {
    #[serde(default)]
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    range: String,
}

const STATUSES: [&str; 4] = ["completed", "failed", "stalled", "running"];

pub async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<Params>,
) -> Response {
    // An hour by default: a day of a busy service holds more flows than one
    // request may assemble (`query.max_flows`).
    let (range, start) = window(&p.range, "1h");
    let list_uri = format!(
        "/api/v1/flows{}",
        qs(&[
            ("start", &start),
            ("name", &p.name),
            ("status", &p.status),
            ("limit", "100")
        ])
    );
    let all_uri = format!("/api/v1/flows/stats{}", qs(&[("start", &start)]));
    let named_uri = format!(
        "/api/v1/flows/stats{}",
        qs(&[("start", &start), ("name", &p.name)])
    );
    let (all, listed, named) =
        tokio::join!(get_api(&app, &all_uri), get_api(&app, &list_uri), async {
            if p.name.is_empty() {
                None
            } else {
                Some(get_api(&app, &named_uri).await)
            }
        });
    // Stats of the chosen flow name, else of all.
    let stats = named.as_ref().unwrap_or(&all);
    let by_name: BTreeMap<String, BTreeMap<String, u64>> = all.body["by_name"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, st)| {
                    let counts = st
                        .as_object()
                        .map(|c| {
                            c.iter()
                                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                                .collect()
                        })
                        .unwrap_or_default();
                    (name.clone(), counts)
                })
                .collect()
        })
        .unwrap_or_default();
    let stopped: Vec<(String, f64)> = {
        let mut v: Vec<(String, f64)> = stats.body["stopped_at_step"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    };
    let max_stop = stopped.iter().map(|x| x.1).fold(0.0, f64::max).max(1.0);
    let d = &stats.body["duration_ms"];
    let body = html! {
        h1 { "Flows" }
        form.card.row method="get" action="/ui/flows" {
            select name="name" aria-label="flow name" {
                option value="" { "all flows" }
                @for name in by_name.keys() { option value=(name) selected[*name == p.name] { (name) } }
            }
            select name="status" aria-label="status" {
                option value="" { "any status" }
                @for st in STATUSES { option value=(st) selected[st == p.status] { (st) } }
            }
            (range_select(&range))
            button type="submit" { "Show" }
        }
        @for a in [&all, &listed, stats] { @if !a.ok() { (error_box(&a.error())) } }
        div.grid {
            section.card {
                h2 { "By name" }
                @if by_name.is_empty() { (empty("No flows in this time range.")) } @else {
                    table {
                        thead { tr { th { "Flow" } @for st in STATUSES { th.num { (st) } } th.num { "total" } } }
                        tbody {
                            @for (name, counts) in &by_name {
                                tr {
                                    td { a href={ "/ui/flows" (qs(&[("name", name), ("range", &range)])) } { b { (if name.is_empty() { "(unnamed)" } else { name }) } } }
                                    @for st in STATUSES {
                                        td.num {
                                            @let c = counts.get(st).copied().unwrap_or(0);
                                            @if c > 0 { a href={ "/ui/flows" (qs(&[("name", name), ("status", st), ("range", &range)])) } class=[(st == "failed" || st == "stalled").then_some("lvl-error")] { (c) } } @else { span.muted { "0" } }
                                        }
                                    }
                                    td.num { (counts.values().sum::<u64>()) }
                                }
                            }
                        }
                    }
                }
            }
            section.card id="stopped" {
                h2 { "Where failed and stalled flows stopped" @if !p.name.is_empty() { " · " (p.name) } }
                @if stopped.is_empty() { (empty("No failed or stalled flows.")) } @else {
                    table {
                        tbody {
                            @for (step, c) in &stopped {
                                tr {
                                    td.mono { (step) }
                                    td style="width:60%" { div.bar-bg { div.bar-fg.bad style={ "width:" (format!("{:.1}", c / max_stop * 100.0)) "%" } {} } }
                                    td.num { (num(*c)) }
                                }
                            }
                        }
                    }
                }
                p.muted {
                    "Duration of finished flows: p50 " (d["p50"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into()))
                    ", p90 " (d["p90"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into()))
                    ", p99 " (d["p99"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into()))
                }
            }
        }
        section.card {
            h2 { "Recent flows" " (" (num(n(&listed.body, "total"))) ")" }
            (flow_table(arr(&listed.body, "flows")))
        }
    };
    render(&ctx, "Flows", body)
}

fn flow_table(flows: &[Value]) -> maud::Markup {
    html! {
        table {
            thead { tr { th { "Flow" } th { "Name" } th { "Service" } th { "Status" } th { "Last step" } th { "Error" } th { "Started" } th.num { "Duration" } th { "Requests" } } }
            tbody {
                @for f in flows {
                    tr {
                        td { (flow_link(s(f, "flow_id"))) }
                        td { (s(f, "name")) }
                        td { (s(f, "service")) }
                        td { (pill(s(f, "status"))) }
                        td.mono { (or_else(s(f, "failed_at_step"), s(f, "last_step"))) }
                        td { (s(f, "error")) }
                        td { (when(&f["started_at"])) }
                        td.num { (f["duration_ms"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into())) }
                        td { @for r in arr(f, "request_ids").iter().take(3) { (request_link(&text(r))) " " } }
                    }
                }
            }
        }
    }
}

pub async fn detail(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let uri = format!("/api/v1/flows/{}", enc(&id));
    let f = match one(&app, &ctx, "Flow", &id, &uri).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let f = &f;
    let steps = arr(f, "steps");
    let failed_at = s(f, "failed_at_step");
    let t0 = to_ms(&f["started_at"]).unwrap_or(0);
    let body = html! {
        h1 { "Flow " code { (id) } (pill(s(f, "status"))) }
        section.card {
            div.stats {
                div.stat { b { (s(f, "name")) } span { "name" } }
                div.stat { b { (s(f, "service")) } span { "service" } }
                div.stat { b { (at(&f["started_at"])) } span { "started (UTC)" } }
                div.stat { b { (f["duration_ms"].as_f64().map(dur_ms).unwrap_or_else(|| "—".into())) } span { "duration" } }
                div.stat { b { (num(n(f, "events"))) } span { "events" } }
            }
            @if let Some(e) = f["error"].as_str() { (error_box(&format!("failed at {}: {e}", if failed_at.is_empty() { "?" } else { failed_at }))) }
            div.row { "Requests: " @for r in arr(f, "request_ids") { (request_link(&text(r))) } }
        }
        section.card {
            h2 { "Steps" }
            table id="steps" {
                thead { tr { th { "+" } th { "Step" } th { "Level" } th { "Time (UTC)" } th { "Fields" } } }
                tbody {
                    @for st in steps {
                        @let step = s(st, "step");
                        tr class=[(step == failed_at && !failed_at.is_empty()).then_some("lvl-error")] {
                            td.num { (to_ms(&st["at"]).map(|t| dur_ms((t - t0) as f64)).unwrap_or_default()) }
                            td.mono { b { (step) } @if step == failed_at && !failed_at.is_empty() { " ✗" } }
                            td class={ "lvl-" (s(st, "level")) } { (s(st, "level")) }
                            td.ts { (at(&st["at"])) }
                            td {
                                @if let Some(m) = st["fields"].as_object() {
                                    dl.kv { @for (k, v) in m { dt { (k) } dd { (value_link(k, &text(v))) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @let spans = arr(f, "spans");
        @let errors = arr(f, "errors");
        @if !spans.is_empty() || !errors.is_empty() {
            section.card { h2 { "Spans and errors" } (timeline(spans, &[], errors)) }
        }
        @if !errors.is_empty() { section.card { h2 { "Errors" } (event_table(errors)) } }
    };
    render(&ctx, &format!("Flow {id}"), body)
}
