//! Issues: the list with filters and sparklines, and an issue with its latest
//! (or chosen) event: stack trace, tags, user, breadcrumbs, request, the logs
//! of its request and trace, older events, and resolve / ignore / reopen.

use super::{event_table, log_table, overview::counts};
use crate::ui::{api, get_api, layout::*, Ctx};
use crate::AppState;
use axum::{
    extract::{Path, Query, State},
    http::Method,
    response::{IntoResponse, Redirect, Response},
    Extension, Form,
};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    release: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    first_seen_after: String,
}

pub async fn list(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(p): Query<ListParams>,
) -> Response {
    let status = if p.status.is_empty() {
        "unresolved"
    } else {
        p.status.as_str()
    };
    let period = if p.period.is_empty() {
        "24h"
    } else {
        p.period.as_str()
    };
    let uri = format!(
        "/api/v1/issues{}",
        qs(&[
            ("status", status),
            ("q", &p.q),
            ("environment", &p.environment),
            ("release", &p.release),
            ("project", &p.project),
            ("sort", &p.sort),
            ("limit", "200"),
            ("stats_period", period),
            ("stats_buckets", "24"),
            ("first_seen_after", &p.first_seen_after),
        ])
    );
    let (ans, projects) = tokio::join!(get_api(&app, &uri), get_api(&app, "/api/v1/projects"));
    let issues = arr(&ans.body, "issues");
    let body = html! {
        h1 { "Issues" }
        form.card.row method="get" action="/ui/issues" {
            input.q type="search" name="q" value=(p.q) placeholder="Search title, culprit or type";
            select name="status" aria-label="status" {
                @for st in ["unresolved", "resolved", "ignored", "all"] {
                    option value=(st) selected[st == status] { (st) }
                }
            }
            input type="text" name="environment" value=(p.environment) placeholder="environment" size="12";
            input type="text" name="release" value=(p.release) placeholder="release" size="14";
            select name="project" aria-label="project" {
                option value="" { "all projects" }
                @for pr in arr(&projects.body, "projects") {
                    @let name = s(pr, "name");
                    option value=(name) selected[name == p.project] { (name) }
                }
            }
            select name="sort" aria-label="sort" {
                @for (k, label) in [("last_seen", "Last seen"), ("first_seen", "First seen"), ("count", "Events")] {
                    option value=(k) selected[k == p.sort || (p.sort.is_empty() && k == "last_seen")] { (label) }
                }
            }
            select name="period" aria-label="sparkline period" {
                @for (k, label) in [("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d")] {
                    option value=(k) selected[k == period] { "events over " (label) }
                }
            }
            @if !p.first_seen_after.is_empty() {
                input type="hidden" name="first_seen_after" value=(p.first_seen_after);
            }
            button type="submit" { "Filter" }
        }
        @if !ans.ok() { (error_box(&ans.error())) }
        section.card {
            @if issues.is_empty() { (empty("No issues match.")) } @else {
                table id="issues" {
                    thead { tr {
                        th { "Issue" } th { "Events (" (period) ")" } th.num { "Events" } th.num { "Users" }
                        th { "Last seen" } th { "First seen" } th { "Status" }
                    } }
                    tbody {
                        @for i in issues {
                            tr {
                                td {
                                    (pill(s(i, "level"))) " "
                                    b { (issue_link(&i["id"], s(i, "title"))) }
                                    br;
                                    span.muted { (s(i, "culprit")) }
                                    @for e in arr(i, "environments") { " " span.pill { (text(e)) } }
                                    @if let Some(r) = i["last_release"].as_str() { " " (release_link(r)) }
                                }
                                td { (sparkline(&counts(i))) }
                                td.num { (num(n(i, "count"))) }
                                td.num { (num(n(i, "users"))) }
                                td { (when(&i["last_seen"])) }
                                td { (when(&i["first_seen"])) }
                                td { (pill(s(i, "status"))) @if let Some(sub) = i["substatus"].as_str() { " " (pill(sub)) } }
                            }
                        }
                    }
                }
                p.muted {
                    (num(n(&ans.body, "total"))) " issues match"
                    @if !p.first_seen_after.is_empty() { ", first seen after " (p.first_seen_after) " ago" }
                    @if issues.len() < n(&ans.body, "total") as usize { "; the first " (issues.len()) " are shown, narrow the filters to see others" }
                    "."
                }
            }
        }
    };
    render(&ctx, "Issues", body)
}

#[derive(Deserialize, Default)]
pub struct DetailParams {
    #[serde(default)]
    event: String,
}

pub async fn detail(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(p): Query<DetailParams>,
) -> Response {
    let issue_uri = format!("/api/v1/issues/{}", enc(&id));
    let events_uri = format!("/api/v1/issues/{}/events?limit=50", enc(&id));
    let (issue, events) = tokio::join!(get_api(&app, &issue_uri), get_api(&app, &events_uri));
    if !issue.ok() {
        let code = issue.status;
        let body = html! { h1 { "Issue " (id) } (error_box(&issue.error())) };
        return (code, render(&ctx, "Issue", body)).into_response();
    }
    let i = &issue.body;
    // The chosen event, else the latest.
    let event = if p.event.is_empty() {
        i["latest_event"].clone()
    } else {
        let ans = get_api(&app, &format!("/api/v1/events/{}", enc(&p.event))).await;
        // Only an event of this issue.
        if ans.ok() && text(&ans.body["issue_id"]) == id {
            ans.body
        } else {
            i["latest_event"].clone()
        }
    };
    let rid = event["request_id"].as_str().map(str::to_string);
    let tid = event["contexts"]["trace"]["trace_id"]
        .as_str()
        .map(str::to_string);
    let logs_of = |field: &str, v: &Option<String>| {
        v.as_ref().map(|v| {
            format!(
                "/api/v1/logs{}",
                qs(&[("q", &format!("{field}:{}", quote(v))), ("limit", "200")])
            )
        })
    };
    let (rlogs, tlogs) = tokio::join!(
        async {
            match logs_of("request_id", &rid) {
                Some(u) => Some(get_api(&app, &u).await),
                None => None,
            }
        },
        async {
            match logs_of("trace_id", &tid) {
                Some(u) => Some(get_api(&app, &u).await),
                None => None,
            }
        },
    );
    let status = s(i, "status");
    let title = s(i, "title").to_string();
    let body = html! {
        h1 { (pill(s(i, "level"))) (title) }
        p.muted { (s(i, "culprit")) }
        div.row.card {
            div.stats {
                div.stat { b { (num(n(i, "count"))) } span { "events" } }
                div.stat { b { (num(n(i, "users"))) } span { "users" } }
                div.stat { b { (when(&i["first_seen"])) } span { "first seen" } }
                div.stat { b { (when(&i["last_seen"])) } span { "last seen" } }
                @if let Some(r) = i["first_release"].as_str() { div.stat { b { (release_link(r)) } span { "first release" } } }
                @if let Some(r) = i["last_release"].as_str() { div.stat { b { (release_link(r)) } span { "last release" } } }
            }
            div id="status".row style="margin-left:auto" {
                (pill(status)) @if let Some(sub) = i["substatus"].as_str() { (pill(sub)) }
                @for (to, label) in actions(status) {
                    @let action = format!("/ui/issues/{}/status", enc(&id));
                    form method="post" action=(action) hx-post=(action) hx-select="#page" hx-target="#page" hx-swap="outerHTML" {
                        (csrf_field(&ctx))
                        input type="hidden" name="status" value=(to);
                        button type="submit" class=[(to != "resolved").then_some("secondary")] name="action" value=(to) { (label) }
                    }
                }
            }
        }
        div.split {
            div {
                @if event.is_null() { section.card { (empty("No event stored for this issue.")) } } @else {
                    (event_view(&event))
                }
                section.card {
                    h2 { "Logs of this event's request" @if let Some(r) = &rid { " " (request_link(r)) } }
                    @match &rlogs {
                        None => { (empty("The event has no request id.")) }
                        Some(a) if !a.ok() => { (error_box(&a.error())) }
                        Some(a) => {
                            @let rows = arr(&a.body, "logs");
                            @if rows.is_empty() { (empty("No logs with this request id.")) } @else {
                                (log_table(&rows.iter().rev().cloned().collect::<Vec<_>>(), None))
                                p { a href={ "/ui/logs" (qs(&[("q", &format!("request_id:{}", quote(rid.as_deref().unwrap_or("")))), ("range", "7d")])) } { "Open in Logs →" } }
                            }
                        }
                    }
                }
                section.card {
                    h2 { "Logs of this event's trace" @if let Some(t) = &tid { " " (trace_link(t)) } }
                    @match &tlogs {
                        None => { (empty("The event has no trace id.")) }
                        Some(a) if !a.ok() => { (error_box(&a.error())) }
                        Some(a) => {
                            @let rows = arr(&a.body, "logs");
                            @if rows.is_empty() { (empty("No logs with this trace id.")) } @else {
                                (log_table(&rows.iter().rev().cloned().collect::<Vec<_>>(), None))
                            }
                        }
                    }
                }
                section.card {
                    h2 { "Events" }
                    (event_table(arr(&events.body, "events")))
                }
            }
            aside {
                section.card {
                    h2 { "Tags" }
                    @for t in arr(i, "tags") {
                        div.facet {
                            h3 { (s(t, "key")) span.muted { " · " (num(n(t, "distinct"))) " values" } }
                            @let total = n(t, "total").max(1.0);
                            @for v in arr(t, "values") {
                                @let share = n(v, "count") / total;
                                div title={ (num(n(v, "count"))) " events" } {
                                    div.row style="justify-content:space-between" {
                                        span { (tag_value(s(t, "key"), s(v, "value"))) }
                                        span.muted { (format!("{:.0}%", share * 100.0)) }
                                    }
                                    div.bar-bg { div.bar-fg style={ "width:" (format!("{:.1}", share * 100.0)) "%" } {} }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&ctx, &title, body)
}

/// The status changes offered from a status.
fn actions(status: &str) -> Vec<(&'static str, &'static str)> {
    match status {
        "unresolved" => vec![("resolved", "Resolve"), ("ignored", "Ignore")],
        _ => vec![("unresolved", "Reopen")],
    }
}

/// A tag value, linked when it is an id.
fn tag_value(key: &str, v: &str) -> Markup {
    match key {
        "user" => super::user_key_link(v),
        "request_id" | "flow_id" | "trace_id" | "release" => value_link(key, v),
        _ => html! { (v) },
    }
}

/// The stored event: exceptions with stack traces, user, request,
/// breadcrumbs, contexts.
fn event_view(e: &Value) -> Markup {
    let exceptions = arr(&e["exception"], "values");
    html! {
        section.card id="event" {
            h2 { "Event " code { (s(e, "event_id")) } " · " (at(&e["timestamp"])) }
            div.row {
                @if let Some(r) = e["request_id"].as_str() { span { "request " (request_link(r)) } }
                @if let Some(t) = e["contexts"]["trace"]["trace_id"].as_str() { span { "trace " (trace_link(t)) } }
                @if let Some(r) = e["release"].as_str() { span { "release " (release_link(r)) } }
                @if let Some(env) = e["environment"].as_str() { span { "environment " code { (env) } } }
                @if let Some(sv) = e["server_name"].as_str() { span { "server " code { (sv) } } }
                @if let Some(t) = e["transaction"].as_str() { span { "transaction " code { (t) } } }
            }
            @if exceptions.is_empty() {
                @if let Some(m) = e["logentry"]["formatted"].as_str().or(e["message"].as_str()) {
                    pre.snippet { (m) }
                }
            }
            // The raised exception first, its causes after.
            @for ex in exceptions.iter().rev() {
                h3 { span.lvl-error { (s(ex, "type")) } ": " (text(&ex["value"])) }
                (frames(arr(&ex["stacktrace"], "frames")))
            }
        }
        @if let Some(u) = e["user"].as_object() {
            section.card {
                h2 { "User" }
                dl.kv {
                    @for (k, v) in u {
                        dt { (k) }
                        dd { @if k == "id" { (user_link(&text(v))) } @else { (text(v)) } }
                    }
                }
            }
        }
        @let crumbs = arr(&e["breadcrumbs"], "values");
        @if !crumbs.is_empty() {
            section.card {
                h2 { "Breadcrumbs" }
                table {
                    thead { tr { th { "Time" } th { "Category" } th { "Level" } th { "Message" } } }
                    tbody {
                        @for b in crumbs.iter().rev().take(100) {
                            tr {
                                td.ts { (at(&b["timestamp"])) }
                                td { (s(b, "category")) }
                                td class={ "lvl-" (s(b, "level")) } { (s(b, "level")) }
                                td.msg {
                                    (s(b, "message"))
                                    @if let Some(d) = b["data"].as_object() {
                                        @if !d.is_empty() { " " code.muted { (Value::Object(d.clone()).to_string()) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(r) = e["request"].as_object() {
            section.card {
                h2 { "Request" }
                p { code { (text(&r.get("method").cloned().unwrap_or_default())) " " (text(&r.get("url").cloned().unwrap_or_default())) } }
                dl.kv {
                    @if let Some(q) = r.get("query_string") { @if !text(q).is_empty() { dt { "query" } dd { (text(q)) } } }
                    @for (k, v) in headers(r.get("headers")) {
                        dt { (k) } dd { @if k.eq_ignore_ascii_case("x-request-id") { (request_link(&v)) } @else { (v) } }
                    }
                    @if let Some(d) = r.get("data") { @if !d.is_null() { dt { "data" } dd { (text(d)) } } }
                }
            }
        }
        @if let Some(c) = e["contexts"].as_object() {
            section.card {
                h2 { "Contexts" }
                dl.kv {
                    @for (k, v) in c {
                        dt { (k) }
                        dd { (v.to_string()) }
                    }
                }
            }
        }
    }
}

fn headers(h: Option<&Value>) -> Vec<(String, String)> {
    match h {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), text(p.get(1)?))))
            .collect(),
        _ => Vec::new(),
    }
}

/// Frames, innermost first: in-app frames open with their context lines and
/// variables, runs of library frames folded.
fn frames(frames: &[Value]) -> Markup {
    let any_in_app = frames.iter().any(|f| f["in_app"].as_bool() == Some(true));
    let in_app = |f: &Value| f["in_app"].as_bool().unwrap_or(!any_in_app);
    let list: Vec<&Value> = frames.iter().rev().collect();
    html! {
        div.frames {
            @for (i, f) in list.iter().enumerate() {
                @let app_frame = in_app(f);
                details class={ "frame " (if app_frame { "app" } else { "lib" }) } open[app_frame && i < 12] {
                    summary {
                        (or_else(s(f, "filename"), s(f, "abs_path")))
                        " in " b { (s(f, "function")) }
                        " at line " (text(&f["lineno"]))
                        @if !app_frame { span.muted { " · library" } }
                    }
                    (context(f))
                    @if let Some(vars) = f["vars"].as_object() {
                        @if !vars.is_empty() {
                            dl.kv style="padding:6px 10px" {
                                @for (k, v) in vars { dt { (k) } dd { (text(v)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn context(f: &Value) -> Markup {
    let line = f["lineno"].as_i64().unwrap_or(0);
    let pre = arr(f, "pre_context");
    let post = arr(f, "post_context");
    let Some(cur) = f["context_line"].as_str() else {
        return html! {};
    };
    let first = line - pre.len() as i64;
    html! {
        pre {
            @for (k, l) in pre.iter().enumerate() { (format!("{:>5}  {}", first + k as i64, text(l))) "\n" }
            span.cur { (format!("{line:>5}  {cur}")) }
            @for (k, l) in post.iter().enumerate() { (format!("{:>5}  {}", line + 1 + k as i64, text(l))) "\n" }
        }
    }
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
}

/// Resolve, ignore or reopen, then back to the issue.
pub async fn set_status(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    let ans = api(
        &app,
        Method::PUT,
        &format!("/api/v1/issues/{}", enc(&id)),
        Some(json!({ "status": f.status })),
    )
    .await;
    if !ans.ok() {
        // The reason on a page (htmx swaps it in too).
        let body = html! {
            h1 { "Issue " (id) }
            (error_box(&format!("The status was not changed: {}", ans.error())))
            p { a href={ "/ui/issues/" (enc(&id)) } { "Back to the issue" } }
        };
        return (ans.status, render(&ctx, "Issue", body)).into_response();
    }
    tracing::info!(issue = %id, status = %f.status, "issue status changed in the ui");
    Redirect::to(&format!("/ui/issues/{}", enc(&id))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_app_frames_open_with_context_and_library_frames_folded() {
        let frames_json = json!([
            {"filename": "starlette/routing.py", "function": "handle", "lineno": 74, "in_app": false,
             "context_line": "await self.app(scope)", "pre_context": ["a"], "post_context": ["b"]},
            {"filename": "app.py", "function": "submit", "lineno": 185, "in_app": true,
             "context_line": "raise ValueError(x)", "pre_context": ["try:", "  y()"], "post_context": ["except:"],
             "vars": {"score": "120", "<b>": "<script>"}},
        ]);
        let html = frames(frames_json.as_array().unwrap()).into_string();
        // The crashing (app) frame comes first and is open, the library frame folded.
        let app = html.find("frame app").expect("app frame");
        let lib = html.find("frame lib").expect("library frame");
        assert!(app < lib, "{html}");
        assert!(html[app..lib].contains("open"), "{html}");
        assert!(!html[lib..].contains(" open"), "{html}");
        // Context lines numbered around the current one, which is marked.
        assert!(html.contains("  183  try:"), "{html}");
        assert!(
            html.contains(r#"<span class="cur">  185  raise ValueError(x)</span>"#),
            "{html}"
        );
        assert!(html.contains("  186  except:"), "{html}");
        // Variables are shown, escaped.
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
    }

    #[test]
    fn without_in_app_flags_every_frame_counts_as_the_app() {
        let f = json!([{"filename": "x.py", "function": "f", "lineno": 1}]);
        assert!(frames(f.as_array().unwrap())
            .into_string()
            .contains("frame app"));
    }

    #[test]
    fn status_actions() {
        assert_eq!(actions("unresolved").len(), 2);
        assert_eq!(actions("resolved"), vec![("unresolved", "Reopen")]);
        assert_eq!(actions("ignored"), vec![("unresolved", "Reopen")]);
    }
}
