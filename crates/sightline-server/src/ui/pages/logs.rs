//! Logs: a query box with syntax help and inline errors, a time range, a
//! histogram of matches (drag to zoom), results with expandable rows, field
//! facets that add to the query, and live tail.

use super::log_table;
use crate::ui::{get_api, layout::*, stream_api, Ctx};
use crate::AppState;
use axum::{
    extract::{Query, State},
    response::Response,
    Extension,
};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default)]
pub struct Params {
    #[serde(default)]
    q: String,
    #[serde(default)]
    range: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    cursor: String,
}

/// A bucket width giving about 60 bars over `secs`.
fn bucket(secs: i64) -> (i64, &'static str) {
    const STEPS: &[(i64, &str)] = &[
        (1, "1s"),
        (5, "5s"),
        (10, "10s"),
        (30, "30s"),
        (60, "1m"),
        (300, "5m"),
        (600, "10m"),
        (1800, "30m"),
        (3600, "1h"),
        (3 * 3600, "3h"),
        (6 * 3600, "6h"),
        (12 * 3600, "12h"),
        (86400, "1d"),
    ];
    let want = secs / 60;
    *STEPS
        .iter()
        .find(|(s, _)| *s >= want)
        .unwrap_or(&(86400, "1d"))
}

pub async fn page(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<Params>,
) -> Response {
    let q = p.q.trim().to_string();
    // A zoomed window (start/end) holds until a preset range is picked.
    let custom =
        !p.start.is_empty() && !p.end.is_empty() && matches!(p.range.as_str(), "" | "custom");
    let range = if custom {
        "custom".to_string()
    } else if p.range.is_empty() {
        "1h".into()
    } else {
        p.range.clone()
    };
    let now = now_ms();
    let (start_ms, end_ms) = if custom {
        (
            to_ms(&json!(p.start)).unwrap_or(now - 3_600_000),
            to_ms(&json!(p.end)).unwrap_or(now),
        )
    } else {
        (now - range_secs(&range) * 1000, now)
    };
    let (start, end) = (rfc3339(start_ms), rfc3339(end_ms));
    let (width, label) = bucket((end_ms.saturating_sub(start_ms) / 1000).max(1));
    let (filter_part, pipes) = split_pipes(&q);
    let has_pipe = pipes.is_some();
    let filter_only = filter_part.trim().to_string();
    // The time window as it goes into links on this page.
    let time: Vec<(&str, &str)> = if custom {
        vec![("start", p.start.as_str()), ("end", p.end.as_str())]
    } else {
        vec![("range", range.as_str())]
    };
    let hist_q = format!(
        "{} | count by (_time:{label})",
        if filter_only.is_empty() {
            "*"
        } else {
            &filter_only
        }
    );
    let rows_uri = format!(
        "/api/v1/logs{}",
        qs(&[
            ("q", &q),
            ("start", &start),
            ("end", &end),
            ("limit", "200"),
            ("cursor", &p.cursor)
        ])
    );
    let hist_uri = format!(
        "/api/v1/logs{}",
        qs(&[("q", &hist_q), ("start", &start), ("end", &end)])
    );
    let facets_uri = format!(
        "/api/v1/logs/fields{}",
        qs(&[
            ("q", &filter_only),
            ("start", &start),
            ("end", &end),
            ("top", "8")
        ])
    );
    let (rows, hist, facets) = tokio::join!(
        get_api(&app, &rows_uri),
        get_api(&app, &hist_uri),
        get_api(&app, &facets_uri)
    );

    // Histogram: dense buckets from the sparse series.
    let first = start_ms / 1000 / width * width;
    let nb = ((end_ms / 1000).saturating_sub(first) / width + 1).clamp(1, 2000) as usize;
    let mut counts = vec![0.0f64; nb];
    for sr in arr(&hist.body, "series") {
        for pt in arr(sr, "points") {
            if let (Some(t), Some(c)) = (to_ms(&pt[0]), pt[1].as_f64()) {
                let i = (t / 1000 - first) / width;
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
                    *slot += c;
                }
            }
        }
    }
    let total: f64 = counts.iter().sum();
    let xs: Vec<i64> = (0..nb as i64).map(|i| first + i * width).collect();
    let zoom = format!("/ui/logs{}", qs(&[("q", &q)]))
        + if q.is_empty() { "?" } else { "&" }
        + "start=__START__&end=__END__";
    let spec = json!({
        "kind": "bars", "x": xs, "series": [{"name": "matches", "values": counts}],
        "zoom": zoom, "legend": false, "xrange": [first, first + nb as i64 * width],
    });

    let body = html! {
        h1 { "Logs" }
        form.card method="get" action="/ui/logs" {
            div.row {
                input.q id="q" type="search" name="q" value=(q) placeholder="service:api level:>=warning \"timed out\" | count by (service)" aria-label="log query" autofocus;
                (range_select(&range))
                @if custom {
                    input type="hidden" name="start" value=(p.start);
                    input type="hidden" name="end" value=(p.end);
                }
                button type="submit" { "Run" }
                button.secondary type="button" data-tail="1" data-q=(filter_only) { "Live tail" }
            }
            details.help style="margin-top:6px" {
                summary { "Query syntax" }
                (syntax_help())
            }
            @if !rows.ok() { (error_box(&rows.error())) }
        }
        @if custom {
            p.muted { "Zoomed to " (fmt_ms(start_ms)) " – " (fmt_ms(end_ms)) " UTC. " a href={ "/ui/logs" (qs(&[("q", &q)])) } { "Back to the last hour" } }
        }
        @if rows.ok() {
            @if has_pipe && rows.body.get("series").is_some() {
                section.card { h2 { "Result" } (series_table(arr(&rows.body, "series"))) }
            } @else {
                div.split {
                    div {
                        section.card {
                            h2 { (num(total)) " matches · " (fmt_ms(start_ms)) " – " (fmt_ms(end_ms)) " UTC, per " (label) }
                            (chart("histogram", &spec, 120))
                        }
                        section.card {
                            @let logs = arr(&rows.body, "logs");
                            @if logs.is_empty() { (empty("No log lines match in this time range.")) }
                            (log_table(logs, Some("log-rows")))
                            @if !logs.is_empty() {
                                @if let Some(c) = rows.body["next_cursor"].as_str() {
                                    p { a href={ "/ui/logs" (qs(&[("q", &q), ("range", if custom { "" } else { &range }), ("start", if custom { &p.start } else { "" }), ("end", if custom { &p.end } else { "" }), ("cursor", c)])) } { "Older →" } }
                                }
                            }
                            p.muted { "took " (format!("{:.1}", n(&rows.body, "took_ms"))) " ms" }
                        }
                    }
                    aside.card {
                        h2 { "Fields" }
                        @if !facets.ok() { (error_box(&facets.error())) }
                        @for f in arr(&facets.body, "fields").iter().take(24) {
                            (facet(&q, &time, f))
                        }
                    }
                }
            }
        }
    };
    render(&ctx, "Logs", body)
}

/// The query before its first `|` outside quotes, and the pipes after it.
fn split_pipes(q: &str) -> (&str, Option<&str>) {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in q.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '|' if !quoted => return (&q[..i], Some(&q[i + 1..])),
            _ => {}
        }
    }
    (q, None)
}

fn facet(q: &str, time: &[(&str, &str)], f: &Value) -> Markup {
    let name = s(f, "name");
    // The facet API calls the message column `event`.
    let field = if name == "event" { "message" } else { name };
    html! {
        div.facet {
            h3 { (name) }
            @for v in arr(f, "values") {
                @let val = text(&v["value"]);
                @let add = format!("{}{}:{}", if q.is_empty() { String::new() } else { format!("{q} ") }, field, quote(&val));
                a href={ "/ui/logs" (qs(&[&[("q", add.as_str())], time].concat())) } title={ "add " (field) ":" (quote(&val)) } {
                    span { (if val.is_empty() { "(empty)".to_string() } else { val.clone() }) }
                    span.muted { (num(n(v, "count"))) }
                }
            }
        }
    }
}

fn series_table(series: &[Value]) -> Markup {
    html! {
        table {
            thead { tr { th { "Group" } th.num { "Count" } } }
            tbody {
                @for sr in series {
                    tr {
                        td.mono { (sr["labels"].to_string()) }
                        td.num { @if let Some(v) = sr["value"].as_f64() { (num(v)) } @else { (arr(sr, "points").len()) " buckets" } }
                    }
                }
            }
        }
    }
}

fn syntax_help() -> Markup {
    html! {
        ul.help {
            li { code { "timeout" } ", " code { "\"connection reset\"" } " — words or phrases in the message or exception" }
            li { code { "service:api" } ", " code { "user_id:\"u 1\"" } ", " code { "path:/api*" } ", " code { "request_id:*" } " — field equals, prefix, exists" }
            li { code { "level:>=warning" } ", " code { "status:>=500" } ", " code { "dur_ms:<250" } " — comparisons" }
            li { code { "a OR b" } ", " code { "NOT x" } ", " code { "-x" } ", " code { "( … )" } " — terms are ANDed unless OR" }
            li { code { "| count by (service, level)" } ", " code { "| top 5 by (user_id)" } ", " code { "| fields a, b" } " — pipes" }
            li { "Fields: service, environment, level, message, logger, request_id, flow_id, trace_id, span_id, user_id, exception, host, and any key the app logged (" code { "a.b" } " reaches nested keys)." }
        }
    }
}

/// Live tail for the page's query: the log API's server-sent events.
pub async fn tail(State(app): State<AppState>, Query(p): Query<Params>) -> Response {
    stream_api(&app, &format!("/api/v1/logs/tail{}", qs(&[("q", &p.q)]))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_split_outside_quotes_only() {
        assert_eq!(split_pipes("a | count"), ("a ", Some(" count")));
        assert_eq!(split_pipes(r#"msg:"a|b" x"#), (r#"msg:"a|b" x"#, None));
        assert_eq!(
            split_pipes(r#""a\"|b" | top 5 by (x)"#),
            (r#""a\"|b" "#, Some(" top 5 by (x)"))
        );
        assert_eq!(split_pipes(""), ("", None));
    }

    #[test]
    fn buckets_give_about_sixty_bars() {
        assert_eq!(bucket(3600), (60, "1m"));
        assert_eq!(bucket(86400), (1800, "30m"));
        assert_eq!(bucket(1), (1, "1s"));
        assert_eq!(bucket(400 * 86400), (86400, "1d"));
    }
}
