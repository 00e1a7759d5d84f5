//! The page shell (navigation, assets, CSRF) and the small pieces every page
//! uses: id links, times, durations, status pills, sparklines, charts.

use super::session::Session;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;
use sightline_pipeline::timefmt;

/// What a page knows about the request it answers.
#[derive(Clone)]
pub struct Ctx {
    pub csrf: String,
    pub path: String,
    /// Path and query of the page (what a refresh asks for again).
    pub uri: String,
    pub session: Session,
}

const NAV: &[(&str, &str)] = &[
    ("/ui/", "Overview"),
    ("/ui/issues", "Issues"),
    ("/ui/logs", "Logs"),
    ("/ui/traces", "Traces"),
    ("/ui/flows", "Flows"),
    ("/ui/metrics", "Metrics"),
    ("/ui/health", "Health"),
    ("/ui/settings", "Settings"),
];

pub use crate::endpoints::urlencode as enc;

/// A query string from pairs, leaving out empty values.
pub fn qs(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn head(title: &str) -> Markup {
    let v = super::asset_version();
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Sightline" }
        link rel="icon" href="data:,";
        // htmx swaps error pages in too (they carry the reason), and never evaluates script.
        meta name="htmx-config" content=r#"{"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}]}"#;
        link rel="stylesheet" href={ "/ui/assets/uPlot.min.css?v=" (v) };
        link rel="stylesheet" href={ "/ui/assets/app.css?v=" (v) };
        script defer src={ "/ui/assets/htmx.min.js?v=" (v) } {}
        script defer src={ "/ui/assets/uPlot.iife.min.js?v=" (v) } {}
        script defer src={ "/ui/assets/app.js?v=" (v) } {}
    }
}

/// A whole page: navigation, then `body`.
pub fn render(ctx: &Ctx, title: &str, body: Markup) -> Response {
    shell(ctx, title, html! { div id="page" { (body) } })
}

/// A page that refreshes itself in place every `default_secs` (or the
/// `refresh` query parameter's seconds; 0 turns it off), for dashboards left
/// open all day. Without JavaScript it is a plain page.
pub fn render_live(ctx: &Ctx, title: &str, body: Markup, default_secs: u64) -> Response {
    let q = ctx.uri.split_once('?').map(|x| x.1).unwrap_or("");
    let secs = serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .ok()
        .and_then(|kv| kv.into_iter().find(|(k, _)| k == "refresh"))
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(default_secs);
    if secs == 0 {
        return render(ctx, title, body);
    }
    let trigger = format!("every {}s", secs.clamp(1, 3600));
    shell(
        ctx,
        title,
        html! {
            div id="page" hx-get=(ctx.uri) hx-trigger=(trigger) hx-select="#page" hx-target="this" hx-swap="outerHTML" data-refresh=(secs) {
                (body)
            }
        },
    )
}

fn shell(ctx: &Ctx, title: &str, body: Markup) -> Response {
    let active = |href: &str| {
        if href == "/ui/" {
            ctx.path == "/ui/"
        } else {
            ctx.path.starts_with(href)
                || (href == "/ui/traces" && ctx.path.starts_with("/ui/requests"))
        }
    };
    let hx = format!(r#"{{"X-CSRF-Token": "{}"}}"#, ctx.csrf);
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body hx-headers=(hx) {
                header.top {
                    a.brand href="/ui/" { span.logo { "◉" } " Sightline" }
                    nav {
                        @for (href, name) in NAV {
                            a href=(href) class=[active(href).then_some("on")] { (name) }
                        }
                    }
                    form.jump method="get" action="/ui/logs" {
                        input type="search" name="q" placeholder="Search logs, or paste an id…" aria-label="search logs";
                    }
                    form.logout method="post" action="/ui/logout" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        button.link type="submit" { "Log out" }
                    }
                }
                main { (body) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// The login page.
pub fn login(next: &str, error: Option<&str>) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Log in")) }
            body.login {
                form.card.login method="post" action="/ui/login" {
                    h1 { span.logo { "◉" } " Sightline" }
                    p.muted { "Log in with the API token (" code { "DATA/api-token" } ", or printed by " code { "sightline serve" } ")." }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                    input type="hidden" name="next" value=(next);
                    label { "API token" input type="password" name="token" autocomplete="current-password" autofocus required; }
                    button type="submit" { "Log in" }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A hidden CSRF field for a form.
pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// An error box.
pub fn error_box(msg: &str) -> Markup {
    html! { div.error role="alert" { (msg) } }
}

pub fn empty(msg: &str) -> Markup {
    html! { p.empty { (msg) } }
}

/// Links to the view of an id.
pub fn request_link(id: &str) -> Markup {
    html! { a.id href={ "/ui/requests/" (enc(id)) } title="request" { (id) } }
}
pub fn flow_link(id: &str) -> Markup {
    html! { a.id href={ "/ui/flows/" (enc(id)) } title="flow" { (id) } }
}
pub fn trace_link(id: &str) -> Markup {
    html! { a.id href={ "/ui/traces/" (enc(id)) } title="trace" { (short(id, 16)) } }
}
pub fn user_link(id: &str) -> Markup {
    let q = format!("user_id:{}", quote(id));
    html! { a.id href={ "/ui/logs" (qs(&[("q", &q), ("range", "7d")])) } title="this user's logs" { (id) } }
}
pub fn release_link(r: &str) -> Markup {
    html! { a.id href={ "/ui/issues" (qs(&[("release", r), ("status", "all")])) } title="issues of this release" { (r) } }
}
pub fn issue_link(id: &Value, title: &str) -> Markup {
    html! { a href={ "/ui/issues/" (id_str(id)) } { (title) } }
}

/// The link for a well-known id field, or the plain value.
pub fn value_link(field: &str, v: &str) -> Markup {
    match field {
        "request_id" | "request.id" => request_link(v),
        "flow_id" => flow_link(v),
        "trace_id" => trace_link(v),
        "user_id" | "user.id" => user_link(v),
        "release" => release_link(v),
        _ => html! { (v) },
    }
}

/// A value quoted for the log query language.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn id_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}…")
    }
}

/// Text of a JSON value (strings unquoted).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `a`, or `b` when `a` is empty.
pub fn or_else<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub fn n(v: &Value, k: &str) -> f64 {
    v.get(k)
        .and_then(|x| {
            x.as_f64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0.0)
}

pub fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Milliseconds since the epoch from RFC 3339 text, seconds, ms or ns.
pub fn to_ms(v: &Value) -> Option<i64> {
    let ns = match v {
        Value::Number(n) => match n.as_u64() {
            Some(i) => timefmt::epoch_int_to_ns(i),
            // Fractional seconds: to the nearest ms, not below it.
            None => {
                return timefmt::epoch_to_ns(n.as_f64()?).map(|ns| (ns as f64 / 1e6).round() as i64)
            }
        },
        Value::String(s) => timefmt::parse_timestamp(s),
        _ => None,
    }?;
    Some(ns.div_euclid(1_000_000))
}

pub fn now_ms() -> i64 {
    timefmt::now_ns() / 1_000_000
}

/// `2026-12-07 10:04:05.123` (UTC).
pub fn fmt_ms(ms: i64) -> String {
    rfc3339(ms)[..23].replacen('T', " ", 1)
}

/// `3m ago`.
pub fn ago(ms: i64) -> String {
    let d = (now_ms() - ms).max(0) / 1000;
    match d {
        0..=59 => format!("{d}s ago"),
        60..=3599 => format!("{}m ago", d / 60),
        3600..=86399 => format!("{}h ago", d / 3600),
        _ => format!("{}d ago", d / 86400),
    }
}

/// A time element: absolute in the title, relative in the text.
pub fn when(v: &Value) -> Markup {
    match to_ms(v) {
        // Year 1: Prometheus's "never".
        Some(ms) if ms <= 0 => html! { span.muted { "never" } },
        Some(ms) => {
            html! { time datetime=(fmt_ms(ms)) title={ (fmt_ms(ms)) " UTC" } { (ago(ms)) } }
        }
        None => html! { span.muted { "—" } },
    }
}

/// An absolute time element.
pub fn at(v: &Value) -> Markup {
    match to_ms(v) {
        Some(ms) => html! { time datetime=(fmt_ms(ms)) { (fmt_ms(ms)) } },
        None => html! { span.muted { "—" } },
    }
}

/// `12.3 ms`, `1.20 s`.
pub fn dur_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "—".into()
    } else if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// A compact number: `1.2k`, `3.4M`.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x.abs() >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x.abs() >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// A colored pill for a status or level.
pub fn pill(status: &str) -> Markup {
    let class = match status.to_ascii_lowercase().as_str() {
        "ok" | "up" | "resolved" | "completed" | "info" | "success" => "ok",
        "degraded" | "warning" | "warn" | "stalled" | "ignored" | "running" | "in_progress" => {
            "warn"
        }
        "down" | "error" | "failed" | "failing" | "fatal" | "critical" | "unresolved"
        | "missed" | "timeout" => "bad",
        _ => "neutral",
    };
    html! { span class={ "pill " (class) } { (status) } }
}

/// An inline SVG sparkline of counts (works without JavaScript).
pub fn sparkline(counts: &[f64]) -> Markup {
    let w = 120.0;
    let h = 24.0;
    let max = counts.iter().cloned().fold(0.0, f64::max);
    if counts.is_empty() || max <= 0.0 {
        return html! { svg.spark width="120" height="24" viewBox="0 0 120 24" role="img" aria-label="no events" { line x1="0" y1="23" x2="120" y2="23" {} } };
    }
    let bw = w / counts.len() as f64;
    let bars: String = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0.0)
        .map(|(i, c)| {
            let bh = (c / max * (h - 2.0)).max(1.5);
            format!(
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                i as f64 * bw,
                h - bh,
                (bw - 0.6).max(0.8),
                bh,
                c
            )
        })
        .collect();
    html! {
        svg.spark width="120" height="24" viewBox="0 0 120 24" role="img" aria-label="events over time" {
            (PreEscaped(bars))
        }
    }
}

/// A chart drawn by uPlot from `data` (`{"kind", "x": [...], "series": [{"name", "values"}], ...}`),
/// with the same numbers in a table for readers without JavaScript.
pub fn chart(id: &str, spec: &Value, height: u32) -> Markup {
    html! {
        div.chart id=(id) data-height=(height) {
            script type="application/json" { (PreEscaped(json_for_script(spec))) }
            noscript { "Charts need JavaScript; the table below has the same numbers." }
        }
    }
}

/// JSON safe to put inside a `<script>` element.
pub fn json_for_script(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The time ranges of the pickers.
pub const RANGES: &[(&str, &str)] = &[
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
];

/// A picked range (or `default` when none) and the RFC 3339 start of that
/// window ending now.
pub fn window(range: &str, default: &str) -> (String, String) {
    let r = if range.is_empty() { default } else { range };
    (r.to_string(), rfc3339(now_ms() - range_secs(r) * 1000))
}

/// Seconds of a range key (a duration such as `24h`); an hour when it is none.
pub fn range_secs(r: &str) -> i64 {
    sightline_query::time::parse_duration(r)
        .ok()
        .map(|ns| ns / 1_000_000_000)
        .filter(|s| *s > 0)
        .unwrap_or(3600)
}

/// A `<select>` of time ranges.
pub fn range_select(current: &str) -> Markup {
    html! {
        select name="range" aria-label="time range" {
            @for (k, label) in RANGES {
                option value=(k) selected[*k == current] { (label) }
            }
            @if current == "custom" { option value="custom" selected { "Custom (zoomed)" } }
        }
    }
}

/// RFC 3339 text for a ms timestamp (API parameters).
pub fn rfc3339(ms: i64) -> String {
    let full = timefmt::format_rfc3339_nanos(ms.saturating_mul(1_000_000));
    format!("{}Z", &full[..23])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_strings_encode_and_skip_empty_values() {
        assert_eq!(
            qs(&[("q", "a b&c=\"d\""), ("x", "")]),
            "?q=a%20b%26c%3D%22d%22"
        );
        assert_eq!(qs(&[("x", "")]), "");
        assert_eq!(enc("ü/"), "%C3%BC%2F");
    }

    #[test]
    fn times_in_any_unit() {
        let ms = 1_795_000_000_123i64;
        for v in [
            json!(1_795_000_000.123),
            json!(ms),
            json!(ms * 1_000_000),
            json!("2026-11-18T11:06:40.123Z"),
        ] {
            assert_eq!(to_ms(&v), Some(ms), "{v}");
        }
        assert_eq!(to_ms(&json!("garbage")), None);
        assert_eq!(fmt_ms(ms), "2026-11-18 11:06:40.123");
        assert_eq!(rfc3339(ms), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn script_json_cannot_close_the_script() {
        let v = json!({"a": "</script><script>alert(1)</script>&"});
        let s = json_for_script(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }

    #[test]
    fn ids_link_to_their_views_escaped() {
        assert_eq!(
            value_link("request_id", "r\"1<").into_string(),
            r#"<a class="id" href="/ui/requests/r%221%3C" title="request">r&quot;1&lt;</a>"#
        );
        assert!(value_link("flow_id", "f")
            .into_string()
            .contains("/ui/flows/f"));
        assert!(value_link("user_id", "u")
            .into_string()
            .contains("user_id%3A%22u%22"));
        assert!(value_link("release", "a@1")
            .into_string()
            .contains("release=a%401"));
        assert_eq!(value_link("other", "<x>").into_string(), "&lt;x&gt;");
    }

    #[test]
    fn sparkline_scales_to_the_largest_bucket() {
        let s = sparkline(&[0.0, 2.0, 4.0]).into_string();
        assert_eq!(s.matches("<rect").count(), 2, "{s}");
        assert!(s.contains(r#"height="22.0""#), "{s}");
        assert!(sparkline(&[]).into_string().contains("no events"));
    }
}
