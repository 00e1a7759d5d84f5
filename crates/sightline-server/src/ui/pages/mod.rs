//! The UI's pages, one module each, and the pieces several share: log tables,
//! event lists and the one timeline of spans, logs and errors.

pub mod flows;
pub mod health;
pub mod issues;
pub mod logs;
pub mod metrics;
pub mod overview;
pub mod request;
pub mod settings;
pub mod traces;

use super::layout::*;
use maud::{html, Markup};
use serde_json::Value;

/// Log rows as a table; each message expands to all of the row's fields.
pub fn log_table(rows: &[Value], id: Option<&str>) -> Markup {
    html! {
        table.logs id=[id] {
            thead { tr { th { "Time (UTC)" } th { "Level" } th { "Service" } th { "Message" } } }
            tbody {
                @for r in rows { (log_row(r)) }
            }
        }
    }
}

fn log_row(r: &Value) -> Markup {
    let level = s(r, "level");
    let msg = s(r, "message");
    let fields = r.get("fields").and_then(Value::as_object);
    html! {
        tr {
            td.ts { (at(&r["timestamp"])) }
            td class={ "lvl-" (level) } { (level) }
            td { (s(r, "service")) }
            td.msg {
                details {
                    summary {
                        (msg)
                        @for k in ["request_id", "flow_id"] {
                            @if let Some(v) = r.get(k).and_then(Value::as_str) {
                                " " span.muted { (k) "=" } (value_link(k, v))
                            }
                        }
                    }
                    dl.kv {
                        @for k in ["environment", "logger", "host", "request_id", "flow_id", "trace_id", "span_id", "user_id"] {
                            @if let Some(v) = r.get(k).and_then(Value::as_str) {
                                dt { (k) } dd { (value_link(k, v)) " " (filter_link(k, v)) }
                            }
                        }
                        @if let Some(f) = fields {
                            @for (k, v) in f {
                                dt { (k) } dd { (value_link(k, &text(v))) " " (filter_link(k, &text(v))) }
                            }
                        }
                        @if let Some(e) = r.get("exception").and_then(Value::as_str) {
                            dt { "exception" } dd { pre { (e) } }
                        }
                    }
                }
            }
        }
    }
}

/// A small link that searches logs for `field:"value"`.
pub fn filter_link(field: &str, v: &str) -> Markup {
    let q = format!("{field}:{}", quote(v));
    html! { a.muted href={ "/ui/logs" (qs(&[("q", &q), ("range", "24h")])) } title="search logs for this value" { "⌕" } }
}

/// Error event summaries (`errors` of the request, trace and flow views).
pub fn event_table(events: &[Value]) -> Markup {
    html! {
        table {
            thead { tr { th { "Time" } th { "Error" } th { "Request" } th { "Trace" } th { "Release" } th { "User" } } }
            tbody {
                @for e in events {
                    tr {
                        td { (when(&e["timestamp"])) }
                        td { (pill(s(e, "level"))) " " a href={ "/ui/issues/" (text(&e["issue_id"])) "?event=" (s(e, "event_id")) } { (s(e, "title")) } }
                        td { @if let Some(r) = e["request_id"].as_str() { (request_link(r)) } }
                        td { @if let Some(t) = e["trace_id"].as_str() { (trace_link(t)) } }
                        td { @if let Some(r) = e["release"].as_str() { (release_link(r)) } }
                        td { @if let Some(u) = e["user"].as_str() { (user_key_link(u)) } }
                    }
                }
            }
        }
    }
}

/// A Sentry user key (`id:42`, `email:…`) as a link to that user's logs.
pub fn user_key_link(key: &str) -> Markup {
    match key.split_once(':') {
        Some(("id", id)) => user_link(id),
        _ => html! { (key) },
    }
}

/// One line of the timeline.
struct Line<'a> {
    at_ns: i64,
    /// Sort order among lines at the same moment (spans first).
    order: usize,
    kind: LineKind<'a>,
}

enum LineKind<'a> {
    Span(&'a Value),
    Log(&'a Value),
    Error(&'a Value),
}

fn flatten<'a>(nodes: &'a [Value], out: &mut Vec<&'a Value>) {
    for n in nodes {
        out.push(n);
        flatten(arr(n, "children"), out);
    }
}

fn ns_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| to_ms(v).map(|ms| ms * 1_000_000))
}

/// Spans as a waterfall with the logs and errors of the same request or trace
/// on the same time axis.
pub fn timeline(trees: &[Value], logs: &[Value], errors: &[Value]) -> Markup {
    let mut spans = Vec::new();
    flatten(trees, &mut spans);
    let mut lines: Vec<Line> = Vec::new();
    // Spans keep tree order: a child sorts just after its parent's start.
    for (i, sp) in spans.iter().enumerate() {
        lines.push(Line {
            at_ns: sp["start_ns"].as_i64().unwrap_or(0),
            order: i,
            kind: LineKind::Span(sp),
        });
    }
    let mut t0 = spans
        .iter()
        .filter_map(|s| s["start_ns"].as_i64())
        .min()
        .unwrap_or(i64::MAX);
    let mut t1 = spans
        .iter()
        .filter_map(|s| s["end_ns"].as_i64())
        .max()
        .unwrap_or(i64::MIN);
    for l in logs {
        if let Some(t) = l["timestamp_ns"]
            .as_i64()
            .or_else(|| ns_of(&l["timestamp"]))
        {
            t0 = t0.min(t);
            t1 = t1.max(t);
            lines.push(Line {
                at_ns: t,
                order: usize::MAX - 1,
                kind: LineKind::Log(l),
            });
        }
    }
    for e in errors {
        if let Some(t) = ns_of(&e["timestamp"]) {
            t0 = t0.min(t);
            t1 = t1.max(t);
            lines.push(Line {
                at_ns: t,
                order: usize::MAX,
                kind: LineKind::Error(e),
            });
        }
    }
    if lines.is_empty() {
        return empty("Nothing recorded.");
    }
    // Spans stay in tree order; logs and errors go after the last span that
    // started at or before them.
    let (mut span_lines, mut others): (Vec<Line>, Vec<Line>) = lines
        .into_iter()
        .partition(|l| matches!(l.kind, LineKind::Span(_)));
    others.sort_by_key(|l| (l.at_ns, l.order));
    let mut merged: Vec<Line> = Vec::new();
    let mut others = others.into_iter().peekable();
    for l in span_lines.drain(..) {
        while others.peek().is_some_and(|o| o.at_ns < l.at_ns) {
            merged.push(others.next().expect("peeked"));
        }
        merged.push(l);
    }
    merged.extend(others);
    let total = ((t1 - t0).max(1)) as f64;
    let pct = |t: i64| ((t - t0) as f64 / total * 100.0).clamp(0.0, 100.0);
    html! {
        div.wf {
            div.line.head {
                div.name.muted { "what" }
                div.track.muted { "0 → " (dur_ms(total / 1e6)) }
                div.dur.muted { "duration" }
            }
            @for l in &merged {
                @match l.kind {
                    LineKind::Span(sp) => {
                        @let start = sp["start_ns"].as_i64().unwrap_or(t0);
                        @let end = sp["end_ns"].as_i64().unwrap_or(start);
                        @let err = s(sp, "status") == "error";
                        @let depth = sp["depth"].as_u64().unwrap_or(0).min(20);
                        div.line.sp {
                            div.name style={ "padding-left:" (depth * 14) "px" } {
                                details {
                                    summary title=(s(sp, "name")) {
                                        @if err { span.lvl-error { "✗ " } }
                                        (s(sp, "name")) " "
                                        span.kind { (s(sp, "service")) " · " (s(sp, "kind")) }
                                    }
                                    (span_details(sp))
                                }
                            }
                            div.track {
                                div class={ "span" @if err { " bad" } }
                                    style={ "left:" (format!("{:.3}", pct(start))) "%;width:" (format!("{:.3}", (pct(end) - pct(start)).max(0.15))) "%" }
                                    title={ (s(sp, "name")) " " (dur_ms(n(sp, "duration_ms"))) @if !s(sp, "status_message").is_empty() { " — " (s(sp, "status_message")) } } {}
                            }
                            div.dur { (dur_ms(n(sp, "duration_ms"))) }
                        }
                        @for ev in arr(sp, "events") {
                            @if s(ev, "name") == "exception" {
                                @let t = ev["time_ns"].as_i64().unwrap_or(start);
                                div.line.err {
                                    div.name style={ "padding-left:" (depth * 14 + 14) "px" } {
                                        "✗ " (text(&ev["attributes"]["exception.type"])) ": " (text(&ev["attributes"]["exception.message"]))
                                    }
                                    div.track { div.mark.m-error style={ "left:" (format!("{:.3}", pct(t))) "%" } {} }
                                    div.dur {}
                                }
                            }
                        }
                    }
                    LineKind::Log(lg) => {
                        @let lvl = s(lg, "level");
                        div.line.log {
                            div.name title=(s(lg, "message")) {
                                span class={ "lvl-" (lvl) } { (lvl) } " " (s(lg, "message")) " " span.kind { (s(lg, "service")) }
                            }
                            div.track { div class={ "mark m-" (lvl) } style={ "left:" (format!("{:.3}", pct(l.at_ns))) "%" } {} }
                            div.dur { "+" (dur_ms((l.at_ns - t0) as f64 / 1e6)) }
                        }
                    }
                    LineKind::Error(e) => {
                        div.line.err {
                            div.name {
                                "✗ " a href={ "/ui/issues/" (text(&e["issue_id"])) "?event=" (s(e, "event_id")) } { (s(e, "title")) }
                            }
                            div.track { div.mark.m-error style={ "left:" (format!("{:.3}", pct(l.at_ns))) "%" } {} }
                            div.dur { "+" (dur_ms((l.at_ns - t0) as f64 / 1e6)) }
                        }
                    }
                }
            }
        }
    }
}

/// The read API's answer about one thing (`GET uri`), or the page saying why
/// there is none, with the API's status.
pub async fn one(
    app: &crate::App,
    ctx: &super::Ctx,
    what: &str,
    id: &str,
    uri: &str,
) -> Result<Value, axum::response::Response> {
    use axum::response::IntoResponse;
    let ans = super::get_api(app, uri).await;
    if ans.ok() {
        return Ok(ans.body);
    }
    let body = html! { h1 { (what) " " code { (id) } } (error_box(&ans.error())) };
    Err((ans.status, render(ctx, what, body)).into_response())
}

/// What a span carries, opened from its waterfall line.
fn span_details(sp: &Value) -> Markup {
    html! {
        dl.kv {
            dt { "span" } dd { (s(sp, "span_id")) " · " (s(sp, "source")) }
            dt { "trace" } dd { (trace_link(s(sp, "trace_id"))) }
            @if let Some(r) = sp["request_id"].as_str() { dt { "request_id" } dd { (request_link(r)) } }
            @if let Some(m) = sp["status_message"].as_str() { dt { "status" } dd.lvl-error { (m) } }
            @if let Some(op) = sp["op"].as_str() { dt { "op" } dd { (op) } }
            @if let Some(attrs) = sp["attributes"].as_object() {
                @for (k, v) in attrs { dt { (k) } dd { (value_link(k, &text(v))) } }
            }
            @if let Some(res) = sp["resource"].as_object() {
                @for (k, v) in res { dt { "resource." (k) } dd { (text(v)) } }
            }
        }
    }
}

/// A PromQL instant query's vector as (labels, value) pairs.
pub fn vector(ans: &super::ApiAnswer) -> Vec<(serde_json::Map<String, Value>, f64)> {
    arr(&ans.body["data"], "result")
        .iter()
        .filter_map(|r| {
            let m = r["metric"].as_object().cloned().unwrap_or_default();
            let v: f64 = r["value"][1].as_str()?.parse().ok()?;
            Some((m, v))
        })
        .collect()
}

/// Runs an instant PromQL query.
pub async fn instant(app: &crate::App, q: &str) -> super::ApiAnswer {
    super::get_api(app, &format!("/api/v1/query{}", qs(&[("query", q)]))).await
}

/// Runs a range PromQL query over the last `secs` seconds in about `points` steps.
pub async fn range(app: &crate::App, q: &str, secs: i64, points: i64) -> super::ApiAnswer {
    let step = (secs / points.max(1)).max(1);
    range_at(app, q, window_end() - secs, window_end(), step).await
}

/// The end of windows that end now: this second, rounded up, so the last
/// step includes what was stored during it.
pub fn window_end() -> i64 {
    (now_ms() + 999) / 1000
}

/// Runs a range PromQL query at `start + k·step` up to `end` (unix seconds).
pub async fn range_at(
    app: &crate::App,
    q: &str,
    start: i64,
    end: i64,
    step: i64,
) -> super::ApiAnswer {
    let uri = format!(
        "/api/v1/query_range{}",
        qs(&[
            ("query", q),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("step", &step.to_string()),
        ])
    );
    super::get_api(app, &uri).await
}

/// A matrix answer as a uPlot spec: one x axis, a series per result.
pub fn matrix_chart(
    ans: &super::ApiAnswer,
    secs: i64,
    unit: &str,
    name_of: &dyn Fn(&serde_json::Map<String, Value>) -> String,
) -> Value {
    let result = arr(&ans.body["data"], "result");
    let mut xs: Vec<i64> = result
        .iter()
        .flat_map(|r| {
            arr(r, "values")
                .iter()
                .filter_map(|p| p[0].as_f64().map(|t| t as i64))
        })
        .collect();
    xs.sort_unstable();
    xs.dedup();
    let series: Vec<Value> = result
        .iter()
        .map(|r| {
            let m = r["metric"].as_object().cloned().unwrap_or_default();
            let mut vals: Vec<Option<f64>> = vec![None; xs.len()];
            for p in arr(r, "values") {
                if let (Some(t), Some(v)) = (
                    p[0].as_f64(),
                    p[1].as_str().and_then(|s| s.parse::<f64>().ok()),
                ) {
                    if let Ok(i) = xs.binary_search(&(t as i64)) {
                        vals[i] = v.is_finite().then_some(v);
                    }
                }
            }
            serde_json::json!({"name": name_of(&m), "values": vals})
        })
        .collect();
    // The x axis spans the whole window asked for, not just where data is.
    let end = now_ms() / 1000;
    serde_json::json!({"kind": "line", "x": xs, "series": series, "unit": unit, "xrange": [end - secs, end]})
}

/// `{a="b", c="d"}` for a label set (without `__name__` unless it is all).
pub fn labels_text(m: &serde_json::Map<String, Value>) -> String {
    let name = m.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", text(v)))
        .collect();
    if rest.is_empty() {
        if name.is_empty() {
            "{}".into()
        } else {
            name.to_string()
        }
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}
