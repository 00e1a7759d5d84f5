//! Settings: projects with their DSNs and setup snippets for each library,
//! scrape targets, and the tokens.

use crate::ui::{api_as, get_api, layout::*, Ctx};
use crate::AppState;
use axum::{
    extract::State,
    http::{HeaderMap, Method},
    response::Response,
    Extension,
};
use maud::{html, Markup};

fn copyable(text: &str, label: &str) -> Markup {
    html! {
        div.copyable {
            code { (text) }
            button.secondary type="button" data-copy=(text) aria-label={ "copy " (label) } { "Copy" }
        }
    }
}

fn snippet(text: &str) -> Markup {
    html! {
        div style="position:relative" {
            pre.snippet { (text) }
            button.secondary type="button" data-copy=(text) style="position:absolute;top:6px;right:6px" { "Copy" }
        }
    }
}

/// The first few characters of a secret (never more than a quarter of it).
fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    let keep = (n / 4).min(6);
    let head: String = secret.chars().take(keep).collect();
    format!("{head}{}", "•".repeat((n - keep).clamp(8, 24)))
}

pub async fn page(
    State(app): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:4318")
        .to_string();
    // DSNs name the host the browser used.
    let (projects, targets) = tokio::join!(
        api_as(&app, Method::GET, "/api/v1/projects", None, Some(&host)),
        get_api(&app, "/api/v1/targets")
    );
    let base = format!("http://{host}");
    let first_dsn = arr(&projects.body, "projects")
        .iter()
        .flat_map(|p| arr(p, "keys"))
        .map(|k| s(k, "dsn").to_string())
        .next()
        .unwrap_or_else(|| format!("http://KEY@{host}/1"));
    let sentry = format!(
        "import sentry_sdk\n\nsentry_sdk.init(\n    dsn=\"{first_dsn}\",\n    traces_sample_rate=1.0,\n    environment=\"production\",\n    release=\"myapp@1.0.0\",\n)\n"
    );
    let structlog = "import structlog\n\nstructlog.configure(processors=[\n    structlog.contextvars.merge_contextvars,\n    structlog.processors.add_log_level,\n    structlog.processors.TimeStamper(fmt=\"iso\"),\n    structlog.processors.format_exc_info,\n    structlog.processors.JSONRenderer(),\n])\n# bind request_id / flow_id per request:\n# structlog.contextvars.bind_contextvars(request_id=rid)\n".to_string();
    let run = format!("SIGHTLINE_URL={base} sightline run --service myapp -- uvicorn app:app\n");
    let otlp = format!(
        "export OTEL_EXPORTER_OTLP_ENDPOINT={base}\nexport OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\nexport OTEL_SERVICE_NAME=myapp\n"
    );
    let scrape = format!(
        "# sightline.toml\n[[targets]]\nservice = \"myapp\"\nurl = \"http://127.0.0.1:8000\"  # /metrics, /health and /health/ready below it\n\n# or at run time:\nsightline targets add myapp http://127.0.0.1:8000\n# or: curl -H \"Authorization: Bearer $TOKEN\" -d '{{\"service\":\"myapp\",\"url\":\"http://127.0.0.1:8000\"}}' {base}/api/v1/targets\n"
    );
    let tlist = arr(&targets.body["data"], "activeTargets");
    let body = html! {
        h1 { "Settings" }
        section.card {
            h2 { "Projects and DSNs" }
            @if !projects.ok() { (error_box(&projects.error())) }
            table id="projects" {
                thead { tr { th { "Project" } th { "DSN" } } }
                tbody {
                    @for p in arr(&projects.body, "projects") {
                        @for k in arr(p, "keys") {
                            tr { td { b { (s(p, "name")) } span.muted { " #" (text(&p["id"])) } } td { (copyable(s(k, "dsn"), "DSN")) } }
                        }
                    }
                }
            }
            p.muted { "New projects and keys: " code { "POST /api/v1/projects" } " and " code { "POST /api/v1/projects/NAME/keys" } "." }
        }
        div.grid.wide {
            section.card { h2 { "Errors and transactions: sentry_sdk" } (snippet(&sentry)) }
            section.card { h2 { "Logs: structlog + sightline run" } (snippet(&structlog)) (snippet(&run)) }
            section.card { h2 { "Traces, logs and metrics: OTLP" } (snippet(&otlp)) }
            section.card { h2 { "Metrics: scrape targets" } (snippet(&scrape)) }
        }
        section.card {
            h2 { "Scrape targets" }
            @if !targets.ok() { (error_box(&targets.error())) }
            @if tlist.is_empty() { (empty("No scrape targets.")) } @else {
                table id="targets" {
                    thead { tr { th { "Service" } th { "URL" } th { "Health" } th { "Last scrape" } th.num { "Samples" } th { "Error" } th { "From" } } }
                    tbody {
                        @for t in tlist {
                            tr {
                                td { b { (s(&t["labels"], "service")) } }
                                td.mono { (s(t, "scrapeUrl")) }
                                td { (pill(s(t, "health"))) }
                                td { (when(&t["lastScrape"])) }
                                td.num { (num(n(t, "samples"))) }
                                td.lvl-error { (s(t, "lastError")) }
                                td.muted { (s(t, "source")) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Tokens" }
            dl.kv {
                dt { "API token (read APIs, this UI)" }
                dd { code { (mask(&app.api_token)) } }
                dt { "Ingest key (ingest from beyond loopback)" }
                dd { @if let Some(k) = &app.ingest_key { code { (mask(k)) } } @else { span.muted { "not needed: listening on loopback only" } } }
            }
            p.muted { "Shown masked. Both live in the data directory (" code { "api-token" } ", " code { "ingest-key" } ") or in " code { "sightline.toml" } ". Changing the API token ends every UI session." }
        }
        p.muted { "Logged in until " (fmt_ms(ctx.session.expires * 1000)) " UTC." }
    };
    render(&ctx, "Settings", body)
}
