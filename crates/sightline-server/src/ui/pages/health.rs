//! Health: each probed service and its dependencies (the checks of its
//! readiness answer) with state, since when, uptime bars over 24 h and 7 d,
//! and transitions.

use super::{range_at, window_end};
use crate::ui::{get_api, layout::*, Ctx};
use crate::AppState;
use axum::{extract::State, response::Response, Extension};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::HashMap;

/// Worst state per bucket and series key, from a range query.
fn buckets(ans: &crate::ui::ApiAnswer, key: &[&str]) -> HashMap<String, Vec<(i64, f64)>> {
    let mut out = HashMap::new();
    for r in arr(&ans.body["data"], "result") {
        let k = key
            .iter()
            .map(|k| text(&r["metric"][*k]))
            .collect::<Vec<_>>()
            .join("\u{0}");
        let pts = arr(r, "values")
            .iter()
            .filter_map(|p| Some((p[0].as_f64()? as i64, p[1].as_str()?.parse().ok()?)))
            .collect();
        out.insert(k, pts);
    }
    out
}

/// Uptime bars: `n` cells of `step` seconds after `start`, each colored by
/// the worst state seen in it. The query's point at `start + (k+1)·step`
/// looked back one step, so it is cell `k`.
fn bars(
    points: Option<&Vec<(i64, f64)>>,
    start: i64,
    step: i64,
    n: usize,
    state_of: fn(f64) -> &'static str,
    label: &str,
) -> Markup {
    let mut cells: Vec<Option<f64>> = vec![None; n];
    if let Some(pts) = points {
        for (t, v) in pts {
            let k = (t - start).div_euclid(step) - 1;
            if let Some(cell) = usize::try_from(k).ok().and_then(|k| cells.get_mut(k)) {
                *cell = Some(*v);
            }
        }
    }
    html! {
        div.uptime role="img" aria-label=(label) {
            @for (i, c) in cells.iter().enumerate() {
                @let from = start + i as i64 * step;
                span class=[c.map(state_of)] title={ (fmt_ms(from * 1000)) " UTC, " (step / 3600) " h: " (c.map(state_of).map(|s| match s { "ok" => "ok", "warn" => "degraded", _ => "down" }).unwrap_or("no data")) } {}
            }
        }
    }
}

/// `sightline_target_state`: 0 ok, 1 degraded, 2 down.
fn service_state(v: f64) -> &'static str {
    if v >= 2.0 {
        "bad"
    } else if v >= 1.0 {
        "warn"
    } else {
        "ok"
    }
}

/// `sightline_target_ready{check}`: 1 ok, 0 failing (min over the bucket).
fn check_state(v: f64) -> &'static str {
    if v >= 1.0 {
        "ok"
    } else {
        "bad"
    }
}

pub async fn page(State(app): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    // 24 one-hour and 28 six-hour cells ending now.
    let end = window_end();
    let (d_start, w_start) = (end - 24 * 3600, end - 28 * 6 * 3600);
    let (health, s24, s7, c24, c7) = tokio::join!(
        get_api(&app, "/api/v1/health"),
        range_at(
            &app,
            "max by (service) (max_over_time(sightline_target_state[1h]))",
            d_start,
            end,
            3600
        ),
        range_at(
            &app,
            "max by (service) (max_over_time(sightline_target_state[6h]))",
            w_start,
            end,
            6 * 3600
        ),
        range_at(
            &app,
            "min by (service, check) (min_over_time(sightline_target_ready[1h]))",
            d_start,
            end,
            3600
        ),
        range_at(
            &app,
            "min by (service, check) (min_over_time(sightline_target_ready[6h]))",
            w_start,
            end,
            6 * 3600
        ),
    );
    let (s24, s7) = (buckets(&s24, &["service"]), buckets(&s7, &["service"]));
    let (c24, c7) = (
        buckets(&c24, &["service", "check"]),
        buckets(&c7, &["service", "check"]),
    );
    let services = arr(&health.body, "services");
    let body = html! {
        h1 { "Health" }
        @if !health.ok() { (error_box(&health.error())) }
        @if services.is_empty() {
            section.card { (empty("No service is probed. Add a scrape target (Settings) and Sightline probes its /health and /health/ready.")) }
        }
        @for sv in services {
            @let name = s(sv, "service");
            section.card id={ "svc-" (enc(name)) } {
                h1 { (name) (pill(s(sv, "state"))) small.muted { "since " (when(&sv["since"])) } }
                p.muted { code { (s(sv, "url")) } " · checked " (when(&sv["checked_at"])) }
                (probe_line("health", &sv["health"]))
                (probe_line("ready", &sv["ready"]))
                table {
                    thead { tr { th { "" } th { "State" } th { "24 h (1 h bars)" } th.num { "" } th { "7 d (6 h bars)" } th.num { "" } } }
                    tbody {
                        tr {
                            td { b { "service" } }
                            td { (pill(s(sv, "state"))) }
                            td style="width:35%" { (bars(s24.get(name), d_start, 3600, 24, service_state, "uptime 24 h")) }
                            td.num { (sv["uptime_24h"].as_f64().map(|u| format!("{u:.2}%")).unwrap_or_else(|| "—".into())) }
                            td style="width:35%" { (bars(s7.get(name), w_start, 6 * 3600, 28, service_state, "uptime 7 d")) }
                            td.num { (sv["uptime_7d"].as_f64().map(|u| format!("{u:.2}%")).unwrap_or_else(|| "—".into())) }
                        }
                        @if let Some(checks) = sv["checks"].as_object() {
                            @for (check, c) in checks {
                                @let key = format!("{name}\u{0}{check}");
                                tr {
                                    td.mono { (check) }
                                    td { (pill(s(c, "state"))) @if !s(c, "value").is_empty() { " " span.muted { (s(c, "value")) } } }
                                    td { (bars(c24.get(&key), d_start, 3600, 24, check_state, "dependency 24 h")) }
                                    td {}
                                    td { (bars(c7.get(&key), w_start, 6 * 3600, 28, check_state, "dependency 7 d")) }
                                    td {}
                                }
                            }
                        }
                    }
                }
                @let tr = arr(sv, "transitions");
                @if !tr.is_empty() {
                    h3 { "Transitions" }
                    table {
                        tbody {
                            @for t in tr {
                                tr { td.ts { (at(&t["at"])) } td { (pill(s(t, "from"))) " → " (pill(s(t, "to"))) } td { (when(&t["at"])) } }
                            }
                        }
                    }
                }
            }
        }
    };
    render_live(&ctx, "Health", body, 30)
}

fn probe_line(name: &str, p: &Value) -> Markup {
    if p.is_null() {
        return html! {};
    }
    html! {
        p.mono {
            (name) ": "
            @if let Some(c) = p["status_code"].as_i64() { "HTTP " (c) " " }
            @if let Some(st) = p["status"].as_str() { "status=" (st) " " }
            (dur_ms(n(p, "latency_ms")))
            @if let Some(e) = p["error"].as_str() { " " span.lvl-error { (e) } }
        }
    }
}
