//! Metrics: a PromQL editor with a line chart (series, legend, values on
//! hover) and a table, and ready panels of a service's rate, errors and
//! latency percentiles.

use super::{instant, labels_text, matrix_chart, range, vector};
use crate::ui::{get_api, layout::*, Ctx};
use crate::AppState;
use axum::{
    extract::{Query, State},
    response::Response,
    Extension,
};
use maud::{html, Markup};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Params {
    #[serde(default)]
    q: String,
    #[serde(default)]
    range: String,
    #[serde(default)]
    view: String,
    #[serde(default)]
    service: String,
}

/// `service="NAME"`, escaped for PromQL.
fn service_selector(svc: &str) -> String {
    format!(
        "service=\"{}\"",
        svc.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// The ready panels of one service: (title, PromQL, unit). Request metrics
/// come from `http_requests_total` / `http_request_duration_seconds` when the
/// service exports them, else from the span RED series.
fn panels(svc: &str, http: bool) -> Vec<(String, String, &'static str)> {
    let sel = service_selector(svc);
    let (calls, errors, buckets, what) = if http {
        (
            "http_requests_total",
            "status=~\"5..|5xx\"",
            "http_request_duration_seconds_bucket",
            "Requests",
        )
    } else {
        (
            "sightline_span_calls_total",
            "status=\"error\"",
            "sightline_span_duration_seconds_bucket",
            "Spans",
        )
    };
    let quantiles: Vec<String> = [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]
        .iter()
        .map(|(q, name)| {
            format!(
                "label_replace(histogram_quantile({q}, sum by (le) (rate({buckets}{{{sel}}}[5m]))), \"q\", \"{name}\", \"\", \"\")"
            )
        })
        .collect();
    vec![
        (
            format!("{what} per second by status"),
            format!("sum by (status) (rate({calls}{{{sel}}}[5m]))"),
            "",
        ),
        (
            format!("Error ratio ({})", if http { "5xx" } else { "spans" }),
            format!("sum(rate({calls}{{{sel},{errors}}}[5m])) / sum(rate({calls}{{{sel}}}[5m]))"),
            "%",
        ),
        ("Latency percentiles".into(), quantiles.join(" or "), "s"),
    ]
}

pub async fn page(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<Params>,
) -> Response {
    let (range_key, _) = window(&p.range, "1h");
    let secs = range_secs(&range_key);
    let services_ans = get_api(&app, "/api/v1/label/service/values").await;
    let services: Vec<String> = arr(&services_ans.body, "data").iter().map(text).collect();
    let view = if p.view == "table" { "table" } else { "graph" };
    let mut body_parts: Vec<Markup> = Vec::new();
    if !p.q.trim().is_empty() {
        let q = p.q.trim();
        if view == "table" {
            let ans = instant(&app, q).await;
            body_parts.push(html! {
                section.card {
                    @if !ans.ok() { (error_box(&ans.error())) } @else {
                        @let rows = vector(&ans);
                        @if rows.is_empty() { (empty("Empty result.")) }
                        table id="result" {
                            thead { tr { th { "Series" } th.num { "Value" } } }
                            tbody { @for (m, v) in &rows { tr { td.mono { (labels_text(m)) } td.num { (v) } } } }
                        }
                        @if matches!(s(&ans.body["data"], "resultType"), "scalar" | "string") {
                            p { (s(&ans.body["data"], "resultType")) ": " code { (text(&ans.body["data"]["result"][1])) } }
                        }
                    }
                }
            });
        } else {
            let ans = range(&app, q, secs, 240).await;
            body_parts.push(html! {
                section.card {
                    @if !ans.ok() { (error_box(&ans.error())) } @else {
                        @let spec = matrix_chart(&ans, secs, "", &|m| labels_text(m));
                        @if arr(&ans.body["data"], "result").is_empty() { (empty("Empty result.")) } @else {
                            (chart("graph", &spec, 320))
                            p.muted { (arr(&ans.body["data"], "result").len()) " series" }
                        }
                    }
                }
            });
        }
    } else if !p.service.is_empty() {
        let probe = instant(
            &app,
            &format!(
                "count(http_requests_total{{{}}})",
                service_selector(&p.service)
            ),
        )
        .await;
        let http = !vector(&probe).is_empty();
        let list = panels(&p.service, http);
        let answers =
            futures_util::future::join_all(list.iter().map(|(_, q, _)| range(&app, q, secs, 120)))
                .await;
        body_parts.push(html! {
            div.grid {
                @for (i, ((title, q, unit), ans)) in list.iter().zip(answers.iter()).enumerate() {
                    section.card {
                        h2 { (title) }
                        @if !ans.ok() { (error_box(&ans.error())) } @else {
                            @let spec = matrix_chart(ans, secs, unit, &|m| {
                                let t = m.iter().filter(|(k, _)| *k != "__name__").map(|(_, v)| text(v)).collect::<Vec<_>>().join(" ");
                                if t.is_empty() { "value".into() } else { t }
                            });
                            @if arr(&ans.body["data"], "result").is_empty() { (empty("No data.")) } @else { (chart(&format!("panel-{i}"), &spec, 200)) }
                        }
                        p { a.muted href={ "/ui/metrics" (qs(&[("q", q), ("range", &range_key)])) } { "Edit query →" } }
                    }
                }
            }
        });
    }
    let body = html! {
        h1 { "Metrics" }
        form.card method="get" action="/ui/metrics" {
            textarea name="q" rows="3" placeholder="PromQL, e.g. sum by (service) (rate(http_requests_total[5m]))" aria-label="PromQL" { (p.q) }
            div.row style="margin-top:8px" {
                (range_select(&range_key))
                div.tabs style="margin:0" {
                    @for v in ["graph", "table"] {
                        label { input type="radio" name="view" value=(v) checked[v == view]; " " (v) }
                    }
                }
                button type="submit" { "Run query" }
                span.muted style="margin-left:auto" {
                    "Ready panels: "
                    @for svc in &services {
                        a href={ "/ui/metrics" (qs(&[("service", svc), ("range", &range_key)])) } class=[(*svc == p.service).then_some("on")] { (svc) } " "
                    }
                }
            }
        }
        @if !p.service.is_empty() && p.q.is_empty() { h2 { "Service " (p.service) } }
        @for part in &body_parts { (part) }
        @if p.q.is_empty() && p.service.is_empty() {
            (empty("Write a PromQL query, or pick a service for its ready panels."))
        }
    };
    render(&ctx, "Metrics", body)
}
