//! Overview: every service with its health, request rate, error rate and p99
//! latency, then open and new issues and failing flows.

use super::{instant, vector};
use crate::ui::{get_api, layout::*, Ctx};
use crate::AppState;
use axum::{extract::State, response::Response, Extension};
use maud::html;
use serde_json::Value;
use std::collections::BTreeMap;

/// Request metrics of one service.
#[derive(Default)]
struct Row {
    health: Option<Value>,
    rate: Option<f64>,
    errors: Option<f64>,
    p99: Option<f64>,
    /// Where the numbers came from: `http` metrics or span `spans`.
    source: &'static str,
}

/// The PromQL of a service's request rate, error rate and p99: from
/// prometheus_client style `http_requests_total` and
/// `http_request_duration_seconds` when a service exports them, else from the
/// span RED series of its server spans.
pub const HTTP_RATE: &str = "sum by (service) (rate(http_requests_total[5m]))";
pub const HTTP_ERRORS: &str =
    "sum by (service) (rate(http_requests_total{status=~\"5..|5xx\"}[5m]))";
pub const HTTP_P99: &str = "histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))";
pub const SPAN_RATE: &str = "sum by (service) (rate(sightline_span_calls_total[5m]))";
pub const SPAN_ERRORS: &str =
    "sum by (service) (rate(sightline_span_calls_total{status=\"error\"}[5m]))";
pub const SPAN_P99: &str = "histogram_quantile(0.99, sum by (service, le) (rate(sightline_span_duration_seconds_bucket[5m])))";

pub async fn page(State(app): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    // Failing flows of the last hour: a day of a busy service holds more
    // flows than one request may assemble.
    let flows_uri = format!(
        "/api/v1/flows/stats{}",
        qs(&[("start", &rfc3339(now_ms() - 3_600_000))])
    );
    let (health, hr, he, hp, sr, se, sp, issues, new_issues, flows) = tokio::join!(
        get_api(&app, "/api/v1/health"),
        instant(&app, HTTP_RATE),
        instant(&app, HTTP_ERRORS),
        instant(&app, HTTP_P99),
        instant(&app, SPAN_RATE),
        instant(&app, SPAN_ERRORS),
        instant(&app, SPAN_P99),
        get_api(
            &app,
            "/api/v1/issues?status=unresolved&limit=8&stats_period=24h&stats_buckets=24"
        ),
        get_api(
            &app,
            "/api/v1/issues?status=unresolved&limit=1&first_seen_after=24h"
        ),
        get_api(&app, &flows_uri),
    );
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for h in arr(&health.body, "services") {
        rows.entry(s(h, "service").to_string()).or_default().health = Some(h.clone());
    }
    let by_service =
        |ans, src: &'static str, rows: &mut BTreeMap<String, Row>, set: fn(&mut Row, f64)| {
            for (m, v) in vector(ans) {
                let svc = m.get("service").map(text).unwrap_or_default();
                if svc.is_empty() {
                    continue;
                }
                let r = rows.entry(svc).or_default();
                if r.source.is_empty() || r.source == src {
                    r.source = src;
                    set(r, v);
                }
            }
        };
    by_service(&hr, "http", &mut rows, |r, v| r.rate = Some(v));
    by_service(&he, "http", &mut rows, |r, v| r.errors = Some(v));
    by_service(&hp, "http", &mut rows, |r, v| r.p99 = Some(v));
    by_service(&sr, "spans", &mut rows, |r, v| r.rate = Some(v));
    by_service(&se, "spans", &mut rows, |r, v| r.errors = Some(v));
    by_service(&sp, "spans", &mut rows, |r, v| r.p99 = Some(v));

    let open = arr(&issues.body, "issues");
    let (open_total, new_total) = (n(&issues.body, "total"), n(&new_issues.body, "total"));
    // Failed and stalled flows by name: (failed, stalled, total).
    let mut failing: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (name, st) in flows.body["by_name"].as_object().into_iter().flatten() {
        let c = |k: &str| st[k].as_u64().unwrap_or(0);
        let total = st
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        if c("failed") + c("stalled") > 0 {
            failing.insert(name.clone(), (c("failed"), c("stalled"), total));
        }
    }

    let body = html! {
        h1 { "Overview" }
        section.card {
            h2 { "Services" }
            @if !health.ok() { (error_box(&health.error())) }
            @if rows.is_empty() {
                (empty("No service has sent metrics, spans or health probes yet. Settings shows how to connect one."))
            } @else {
                table {
                    thead { tr {
                        th { "Service" } th { "Health" } th.num { "Requests/s" } th.num { "Errors/s" } th.num { "Error rate" } th.num { "p99" } th { "From" }
                    } }
                    tbody {
                        @for (svc, r) in &rows {
                            tr {
                                td { a href={ "/ui/metrics" (qs(&[("service", svc)])) } { b { (svc) } } }
                                td {
                                    @if let Some(h) = &r.health {
                                        a href={ "/ui/health#svc-" (enc(svc)) } { (pill(s(h, "state"))) }
                                        " " span.muted { "since " (when(&h["since"])) }
                                    } @else { span.muted { "not probed" } }
                                }
                                td.num { (r.rate.map(num).unwrap_or_else(|| "—".into())) }
                                td.num { (r.errors.map(num).unwrap_or_else(|| "—".into())) }
                                td.num {
                                    @match (r.rate, r.errors) {
                                        (Some(t), Some(e)) if t > 0.0 => {
                                            @let ratio = e / t;
                                            span class=[(ratio >= 0.05).then_some("lvl-error")] { (format!("{:.2}%", ratio * 100.0)) }
                                        }
                                        _ => { "—" }
                                    }
                                }
                                td.num { (r.p99.filter(|v| v.is_finite()).map(|v| dur_ms(v * 1000.0)).unwrap_or_else(|| "—".into())) }
                                td.muted { (match r.source { "http" => "http metrics", "spans" => "spans", _ => "" }) }
                            }
                        }
                    }
                }
            }
        }
        div.grid {
            section.card {
                h2 { "Issues" }
                @for a in [&issues, &new_issues] { @if !a.ok() { (error_box(&a.error())) } }
                div.stats {
                    a.stat href="/ui/issues?status=unresolved" { b { (num(open_total)) } span { "open" } }
                    a.stat href="/ui/issues?status=unresolved&sort=first_seen&first_seen_after=24h" { b { (num(new_total)) } span { "new in 24 h" } }
                }
                @if open.is_empty() { (empty("No open issues.")) } @else {
                    table {
                        tbody {
                            @for i in open {
                                tr {
                                    td { (issue_link(&i["id"], s(i, "title"))) br; span.muted { (s(i, "culprit")) } }
                                    td { (sparkline(&counts(i))) }
                                    td.num { (num(n(i, "count"))) }
                                    td { (when(&i["last_seen"])) }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Failing flows (last hour)" }
                @if !flows.ok() { (error_box(&flows.error())) }
                @else if failing.is_empty() { (empty("No failed or stalled flows in the last hour.")) } @else {
                    table {
                        thead { tr { th { "Flow" } th.num { "Failed" } th.num { "Stalled" } th.num { "Total" } } }
                        tbody {
                            @for (name, (failed, stalled, total)) in &failing {
                                tr {
                                    td { a href={ "/ui/flows" (qs(&[("name", name)])) } { b { (if name.is_empty() { "(unnamed)" } else { name }) } } }
                                    td.num { a href={ "/ui/flows" (qs(&[("name", name), ("status", "failed")])) } { (failed) } }
                                    td.num { a href={ "/ui/flows" (qs(&[("name", name), ("status", "stalled")])) } { (stalled) } }
                                    td.num { (total) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render_live(&ctx, "Overview", body, 30)
}

/// An issue's `stats` as numbers.
pub fn counts(issue: &Value) -> Vec<f64> {
    arr(issue, "stats")
        .iter()
        .filter_map(Value::as_f64)
        .collect()
}
