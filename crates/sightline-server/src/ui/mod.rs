//! The web UI: server-rendered pages over the read API, behind a login with
//! the API token, with assets compiled into the binary.
//!
//! Every page reads its data through the same read API that `/api/v1/*`
//! serves (called in-process, without HTTP), so the UI shows exactly what the
//! API answers. State changes are form posts carrying the session's CSRF token.

mod layout;
mod pages;
pub mod session;

use crate::{App, AppState};
use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use serde_json::Value;
use std::sync::OnceLock;
use tower::ServiceExt;

pub use layout::Ctx;

/// UI state kept in [`App`].
pub struct Ui {
    pub sessions: session::Sessions,
    api: OnceLock<Router>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ui")
    }
}

impl Ui {
    /// `revoked`: the file logged-out sessions are kept in, so a logout
    /// holds across restarts.
    pub fn new(api_token: &str, revoked: Option<std::path::PathBuf>) -> Self {
        Ui {
            sessions: session::Sessions::new(api_token, revoked),
            api: OnceLock::new(),
        }
    }

    /// Gives the UI the read API it renders from (routes without the bearer
    /// check: callers are already logged in).
    pub fn set_api(&self, api: Router) {
        let _ = self.api.set(api);
    }
}

/// The UI's routes: the login page and assets are open, every page needs a
/// session.
pub fn routes(app: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui/", get(pages::overview::page))
        .route("/ui/issues", get(pages::issues::list))
        .route("/ui/issues/{id}", get(pages::issues::detail))
        .route("/ui/issues/{id}/status", post(pages::issues::set_status))
        .route("/ui/logs", get(pages::logs::page))
        .route("/ui/logs/tail", get(pages::logs::tail))
        .route("/ui/requests/{id}", get(pages::request::page))
        .route("/ui/flows", get(pages::flows::list))
        .route("/ui/flows/{id}", get(pages::flows::detail))
        .route("/ui/traces", get(pages::traces::list))
        .route("/ui/traces/{id}", get(pages::traces::detail))
        .route("/ui/metrics", get(pages::metrics::page))
        .route("/ui/health", get(pages::health::page))
        .route("/ui/settings", get(pages::settings::page))
        .route("/ui/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(app, require_session))
        // Pages compress well (tables of repeated markup); the live tail's
        // event stream is left alone by the layer's default predicate.
        .layer(tower_http::compression::CompressionLayer::new());
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(login_page).post(login))
        .route(
            "/ui/assets/{file}",
            get(asset).layer(tower_http::compression::CompressionLayer::new()),
        )
        .merge(pages)
}

/// Answers with an API response as JSON, or the error the API gave.
pub struct ApiAnswer {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiAnswer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The API's error message, for showing inline.
    pub fn error(&self) -> String {
        let b = &self.body;
        b.get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{} {}", self.status, b))
    }
}

fn refused(status: StatusCode, msg: &str) -> ApiAnswer {
    ApiAnswer {
        status,
        body: serde_json::json!({ "error": msg }),
    }
}

/// Calls the read API in-process.
pub async fn api(app: &App, method: Method, uri: &str, body: Option<Value>) -> ApiAnswer {
    api_as(app, method, uri, body, None).await
}

/// Calls the read API in-process, as asked for `host` (what DSNs are built on).
pub async fn api_as(
    app: &App,
    method: Method,
    uri: &str,
    body: Option<Value>,
    host: Option<&str>,
) -> ApiAnswer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(h) = host {
        req = req.header(header::HOST, h);
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    // A URI over the http crate's limits (a huge query) is the user's error.
    let Ok(req) = req.body(body) else {
        return refused(StatusCode::URI_TOO_LONG, "the query is too long");
    };
    let resp = call(app, req).await;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 256 << 20)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| serde_json::json!({"error": String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])}),
    );
    ApiAnswer { status, body }
}

/// `GET` on the read API.
pub async fn get_api(app: &App, uri: &str) -> ApiAnswer {
    api(app, Method::GET, uri, None).await
}

/// Streams an API response as it is (live tail).
pub async fn stream_api(app: &App, uri: &str) -> Response {
    let Ok(req) = Request::builder().uri(uri).body(Body::empty()) else {
        return (StatusCode::URI_TOO_LONG, "the query is too long\n").into_response();
    };
    call(app, req).await
}

/// One request through the read API's router.
async fn call(app: &App, req: Request) -> Response {
    let Some(router) = app.ui.api.get() else {
        let body = axum::Json(serde_json::json!({"error": "api not ready"}));
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    };
    match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    }
}

fn session_of(app: &App, headers: &HeaderMap) -> Option<session::Session> {
    let h = headers.get(header::COOKIE)?.to_str().ok()?;
    app.ui.sessions.check(session::cookie(h, session::COOKIE)?)
}

/// A cross-site request: an `Origin` that is neither this host nor the host
/// a reverse proxy says it forwarded (`X-Forwarded-Host`).
fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let o = origin.split_once("://").map(|x| x.1).unwrap_or(origin);
    let hosts = [header::HOST.as_str(), "x-forwarded-host"];
    !hosts.iter().any(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|x| x.trim() == o))
    })
}

/// Headers every page carries: no framing, no sniffing, scripts only from
/// this origin (the pages' JSON blocks are data, not script).
fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, axum::http::HeaderValue::from_static(v));
    };
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
}

/// Lets a request through with a valid session; state changes also need the
/// session's CSRF token (form field `csrf` or header `X-CSRF-Token`).
async fn require_session(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(sess) = session_of(&app, req.headers()) else {
        if req.method() == Method::GET {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/ui/");
            let to = format!("/ui/login?next={}", layout::enc(pq));
            // A page refreshing itself (htmx) sends the whole window to the login.
            if req.headers().contains_key("hx-request") {
                return (
                    StatusCode::UNAUTHORIZED,
                    [("hx-redirect", to)],
                    "log in first\n",
                )
                    .into_response();
            }
            return Redirect::to(&to).into_response();
        }
        return (StatusCode::UNAUTHORIZED, "log in first\n").into_response();
    };
    let csrf = app.ui.sessions.csrf(&sess);
    let mut req = req;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        if foreign_origin(req.headers()) {
            return (StatusCode::FORBIDDEN, "cross-site request refused\n").into_response();
        }
        let header_token = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, 64 << 10).await {
            Ok(b) => b,
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response(),
        };
        let form_token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|kv| kv.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
        let given = header_token.or(form_token).unwrap_or_default();
        if !app.ui.sessions.csrf_ok(&sess, &given) {
            return (
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the page and try again\n",
            )
                .into_response();
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let path = req.uri().path().to_string();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    req.extensions_mut().insert(Ctx {
        csrf,
        path,
        uri,
        session: sess,
    });
    let mut resp = next.run(req).await;
    harden(&mut resp);
    resp
}

#[derive(serde::Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// Where to go after login: only a page of the UI.
fn safe_next(next: &str) -> &str {
    if next.starts_with("/ui/") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/ui/"
    }
}

async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(f): axum::extract::Query<LoginForm>,
) -> Response {
    if session_of(&app, &headers).is_some() {
        return Redirect::to(safe_next(&f.next)).into_response();
    }
    let mut resp = layout::login(&f.next, None).into_response();
    harden(&mut resp);
    resp
}

async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    if !crate::auth::secret_eq(f.token.trim(), &app.api_token) {
        tracing::warn!("ui login refused: wrong token");
        let page = layout::login(&f.next, Some("That is not the API token."));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    // Behind a TLS-terminating proxy the cookie is sent over HTTPS only.
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session::COOKIE,
        app.ui.sessions.issue(),
        session::TTL_SECS,
        if https { "; Secure" } else { "" }
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, safe_next(&f.next).to_string()),
        ],
    )
        .into_response()
}

async fn logout(State(app): State<AppState>, ctx: axum::Extension<Ctx>) -> Response {
    app.ui.sessions.revoke(&ctx.session);
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        session::COOKIE
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ui/login".to_string()),
        ],
    )
        .into_response()
}

const APP_CSS: &str = include_str!("../../assets/app.css");
const APP_JS: &str = include_str!("../../assets/app.js");
const HTMX: &str = include_str!("../../assets/vendor/htmx-2.0.10.min.js");
const UPLOT_JS: &str = include_str!("../../assets/vendor/uPlot-1.6.32.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uPlot-1.6.32.min.css");

/// A short content hash, so asset URLs change when their bytes do.
pub fn asset_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let d = ring::digest::digest(
            &ring::digest::SHA256,
            [APP_CSS, APP_JS, HTMX, UPLOT_JS, UPLOT_CSS]
                .concat()
                .as_bytes(),
        );
        hex::encode(&d.as_ref()[..6])
    })
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (ctype, body) = match file.as_str() {
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "htmx.min.js" => ("text/javascript; charset=utf-8", HTMX),
        "uPlot.iife.min.js" => ("text/javascript; charset=utf-8", UPLOT_JS),
        "uPlot.min.css" => ("text/css; charset=utf-8", UPLOT_CSS),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
