//! The Sentry-compatible ingest endpoints: `POST /api/{project_id}/envelope/`
//! and `/api/{project_id}/store/` (also under a path prefix), with CORS
//! preflight, Sentry auth (`X-Sentry-Auth`, `Authorization: Sentry …`,
//! `?sentry_key=`, the envelope header's `dsn`), per-project rate limits and
//! Sentry's answers: `200 {"id"}`, `400/401/403/413/429 {"detail"}`.

use crate::endpoints::{blocking, now_ns};
use crate::error::ApiError;
use crate::{body, App, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sightline_pipeline::sentry::{event, items, ItemContext, SentryItem};
use sightline_pipeline::LogRecord;
use sightline_protocol::envelope;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Which endpoint a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Envelope,
    Store,
}

/// `…/api/{project_id}/envelope/` or `…/store/` (trailing slash optional, any
/// prefix) → the project id text and the endpoint.
pub fn match_path(path: &str) -> Option<(&str, Kind)> {
    let p = path.strip_suffix('/').unwrap_or(path);
    let (rest, kind) = if let Some(r) = p.strip_suffix("/envelope") {
        (r, Kind::Envelope)
    } else if let Some(r) = p.strip_suffix("/store") {
        (r, Kind::Store)
    } else {
        return None;
    };
    let (api, id) = rest.rsplit_once('/')?;
    (api == "/api" || api.ends_with("/api")).then_some((id, kind))
}

/// Public keys → project, cached from the metadata database; per-project
/// rate-limit windows.
#[derive(Debug, Default)]
pub struct SentryState {
    keys: Mutex<HashMap<String, (i64, String)>>,
    /// Project names by id: the service of transactions that name none.
    names: Mutex<HashMap<i64, String>>,
    windows: Mutex<HashMap<i64, (u64, u64)>>,
}

impl SentryState {
    fn project_name(&self, app: &App, project_id: i64) -> String {
        if let Some(n) = self.names.lock().get(&project_id) {
            return n.clone();
        }
        let name = app
            .projects
            .lock()
            .list()
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.id == project_id)
            .map(|p| p.name)
            .unwrap_or_else(|| format!("project-{project_id}"));
        let mut names = self.names.lock();
        if names.len() > 10_000 {
            names.clear();
        }
        names.insert(project_id, name.clone());
        name
    }

    fn project_of_key(&self, app: &App, key: &str) -> Result<Option<(i64, String)>, ApiError> {
        if let Some(p) = self.keys.lock().get(key) {
            return Ok(Some(p.clone()));
        }
        let projects = app.projects.lock();
        let Some(id) = projects.project_of_key(key)? else {
            return Ok(None);
        };
        let name = projects
            .list()?
            .into_iter()
            .find(|p| p.id == id)
            .map(|p| p.name)
            .unwrap_or_default();
        let mut keys = self.keys.lock();
        if keys.len() > 10_000 {
            keys.clear();
        }
        keys.insert(key.to_string(), (id, name.clone()));
        Ok(Some((id, name)))
    }

    /// Counts one envelope against the project's per-minute limit; the
    /// seconds until the window ends when it is exhausted.
    fn over_limit(&self, project_id: i64, limit: u64) -> Option<u64> {
        if limit == 0 {
            return None;
        }
        let now = (now_ns() / 1_000_000_000).max(0) as u64;
        let minute = now / 60;
        let mut w = self.windows.lock();
        let e = w.entry(project_id).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= limit {
            return Some((minute + 1) * 60 - now);
        }
        e.1 += 1;
        None
    }
}

/// `sentry_key` out of `Sentry sentry_key=…, sentry_version=7, …`.
fn key_from_auth(v: &str) -> Option<&str> {
    let v = v.trim();
    let v = v
        .strip_prefix("Sentry ")
        .or_else(|| v.strip_prefix("sentry "))
        .unwrap_or(v);
    v.split(',').find_map(|kv| {
        let (k, val) = kv.trim().split_once('=')?;
        (k.trim() == "sentry_key")
            .then(|| val.trim())
            .filter(|s| !s.is_empty())
    })
}

fn key_from_query(q: Option<&str>) -> Option<String> {
    q?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "sentry_key" && !v.is_empty()).then(|| v.to_string())
    })
}

/// The public key of a DSN `scheme://KEY[:secret]@host/…`.
fn key_from_dsn(dsn: &str) -> Option<&str> {
    let rest = dsn.split_once("://")?.1;
    let user = rest.split_once('@')?.0;
    Some(user.split(':').next().unwrap_or(user)).filter(|s| !s.is_empty())
}

fn request_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    h("x-sentry-auth")
        .and_then(key_from_auth)
        .or_else(|| {
            h("authorization")
                .filter(|a| a.trim_start().to_ascii_lowercase().starts_with("sentry "))
                .and_then(key_from_auth)
        })
        .map(String::from)
        .or_else(|| key_from_query(query))
}

const ALLOW_HEADERS: &str = "x-sentry-auth, x-requested-with, origin, accept, content-type, \
    content-encoding, authentication, authorization, sentry-trace, baggage";

fn cors(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-sentry-error, x-sentry-rate-limits, retry-after"),
    );
}

fn detail(status: StatusCode, msg: impl Into<String>) -> Response {
    let msg = msg.into();
    let mut r = (status, axum::Json(json!({ "detail": msg }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&msg.chars().take(200).collect::<String>()) {
        r.headers_mut().insert("x-sentry-error", v);
    }
    r
}

fn api_error(e: ApiError) -> Response {
    let status = e.status();
    let mut r = detail(status, e.to_string());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// What one request stored, and what it could not.
#[derive(Debug, Default)]
struct Outcome {
    items: Vec<SentryItem>,
    /// Transactions and their child spans, for the span store.
    spans: Vec<sightline_pipeline::Span>,
    logs: Vec<LogRecord>,
    dropped: Vec<Value>,
    skipped: Vec<String>,
    event_id: Option<String>,
    scrubbed: usize,
}

/// The handler behind every envelope/store route (and the prefixed fallback).
pub async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let Some((id_text, kind)) = match_path(req.uri().path()) else {
        return detail(StatusCode::NOT_FOUND, "no such endpoint");
    };
    let id_text = id_text.to_string();
    let mut resp = if req.method() == Method::OPTIONS {
        preflight(req.headers())
    } else if req.method() != Method::POST {
        detail(StatusCode::METHOD_NOT_ALLOWED, "use POST")
    } else {
        let endpoint = match kind {
            Kind::Envelope => "sentry_envelope",
            Kind::Store => "sentry_store",
        };
        match ingest(&app, &id_text, kind, req).await {
            Ok(r) => r,
            Err(r) => {
                app.metrics
                    .rejected
                    .inc_by(&[endpoint, r.status().as_str()], 1);
                r
            }
        }
    };
    cors(&mut resp);
    resp
}

fn preflight(headers: &HeaderMap) -> Response {
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    let allow = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(ALLOW_HEADERS));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    r
}

async fn ingest(
    app: &AppState,
    id_text: &str,
    kind: Kind,
    req: Request,
) -> Result<Response, Response> {
    let limits = app.config.sentry.clone();
    let Ok(project_id) = id_text.parse::<i64>() else {
        body::drain(req.into_body(), limits.max_envelope_bytes).await;
        return Err(detail(
            StatusCode::BAD_REQUEST,
            format!("project id {id_text:?} is not a number"),
        ));
    };
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let (parts, body_stream) = req.into_parts();
    let headers = parts.headers;
    let key = request_key(&headers, parts.uri.query());
    let rate = app
        .config
        .projects
        .iter()
        .find(|p| p.id == Some(project_id))
        .and_then(|p| p.rate_limit_per_minute)
        .unwrap_or(limits.rate_limit_per_minute);
    let early = body::encoding(&headers).map_err(api_error).and_then(|enc| {
        if let Some(k) = &key {
            check_key(app, k, project_id)?;
        }
        if let Some(secs) = app.sentry.over_limit(project_id, rate) {
            let mut r = detail(
                StatusCode::TOO_MANY_REQUESTS,
                format!("project {project_id} is over its limit of {rate} envelopes per minute"),
            );
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&format!("{secs}::project:project_quota")) {
                h.insert("x-sentry-rate-limits", v);
            }
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Err(r);
        }
        let slot = app.ingest_slots.try_acquire().map_err(|_| {
            api_error(ApiError::Overloaded(
                "too many concurrent ingest requests; retry later".into(),
            ))
        })?;
        Ok((enc, slot))
    });
    let (enc, _slot) = match early {
        Ok(v) => v,
        Err(r) => {
            body::drain(body_stream, limits.max_envelope_bytes).await;
            return Err(r);
        }
    };
    let raw = body::read_limited(&headers, body_stream, limits.max_envelope_bytes)
        .await
        .map_err(api_error)?;
    let a = app.clone();
    let received_ns = now_ns();
    let outcome = blocking(move || -> Result<Outcome, Response> {
        let data =
            body::decode(enc, raw, limits.max_envelope_decompressed_bytes).map_err(api_error)?;
        a.metrics
            .ingested_bytes
            .inc_by(&["sentry"], data.len() as u64);
        let mut o = parse(
            &a,
            &data,
            kind,
            project_id,
            key,
            client_ip.as_deref(),
            received_ns,
        )?;
        if o.items
            .iter()
            .any(|it| matches!(it, SentryItem::Transaction(_)))
        {
            let service = a.sentry.project_name(&a, project_id);
            for it in &o.items {
                if let SentryItem::Transaction(r) = it {
                    o.spans
                        .extend(sightline_pipeline::span::from_sentry(r, &r.body, &service));
                }
            }
        }
        Ok(o)
    })
    .await
    .map_err(api_error)??;
    if outcome.items.is_empty() && outcome.logs.is_empty() && !outcome.dropped.is_empty() {
        let first = &outcome.dropped[0];
        return Err(detail(
            StatusCode::BAD_REQUEST,
            format!(
                "item {} ({}): {}",
                first["item"],
                first["type"].as_str().unwrap_or("?"),
                first["reason"].as_str().unwrap_or("")
            ),
        ));
    }
    for it in &outcome.items {
        app.metrics.sentry_items.inc_by(&[it.kind(), "accepted"], 1);
    }
    for d in &outcome.dropped {
        let t = d["type"].as_str().unwrap_or("unknown");
        let t = if KNOWN_TYPES.contains(&t) { t } else { "other" };
        app.metrics.sentry_items.inc_by(&[t, "invalid"], 1);
    }
    for t in &outcome.skipped {
        let t = if KNOWN_TYPES.contains(&t.as_str()) {
            t.as_str()
        } else {
            "other"
        };
        app.metrics.sentry_items.inc_by(&[t, "skipped"], 1);
    }
    if outcome.scrubbed > 0 {
        app.metrics
            .scrubbed
            .inc_by(&["sentry"], outcome.scrubbed as u64);
    }
    let n_logs = outcome.logs.len();
    let logs_done = async {
        if outcome.logs.is_empty() {
            return Ok(());
        }
        crate::endpoints::store_batch(app, outcome.logs).await
    };
    let events_done = async {
        if outcome.items.is_empty() {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        app.events.append(
            outcome.items,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await
            .map_err(|_| ApiError::Overloaded("shutting down; retry later".into()))??;
        Ok::<(), ApiError>(())
    };
    let spans_done = crate::endpoints::traces::store_spans(app, outcome.spans);
    let (l, e, s) = tokio::join!(logs_done, events_done, spans_done);
    l.map_err(api_error)?;
    e.map_err(api_error)?;
    s.map_err(api_error)?;
    if n_logs > 0 {
        app.metrics
            .ingested_records
            .inc_by(&["sentry_log"], n_logs as u64);
    }
    let mut answer = json!({ "id": outcome.event_id });
    if !outcome.dropped.is_empty() {
        answer["dropped"] = Value::Array(outcome.dropped);
    }
    Ok((StatusCode::OK, axum::Json(answer)).into_response())
}

/// Item types with their own metric label; others are counted as `other`.
const KNOWN_TYPES: &[&str] = &[
    "event",
    "transaction",
    "check_in",
    "session",
    "sessions",
    "client_report",
    "log",
    "attachment",
    "user_report",
    "profile",
    "replay_event",
    "replay_recording",
    "statsd",
    "span",
    "feedback",
    "otel_log",
];

fn check_key(app: &App, key: &str, project_id: i64) -> Result<(), Response> {
    match app.sentry.project_of_key(app, key) {
        Ok(Some((id, _))) if id == project_id => Ok(()),
        Ok(Some((id, _))) => Err(detail(
            StatusCode::FORBIDDEN,
            format!("the public key belongs to project {id}, not {project_id}"),
        )),
        Ok(None) => Err(detail(StatusCode::UNAUTHORIZED, "unknown public key")),
        Err(e) => Err(api_error(e)),
    }
}

fn parse(
    app: &App,
    data: &[u8],
    kind: Kind,
    project_id: i64,
    key: Option<String>,
    client_ip: Option<&str>,
    received_ns: i64,
) -> Result<Outcome, Response> {
    let fallback = hex::encode(rand::random::<[u8; 16]>());
    let keep_ip = app
        .config
        .projects
        .iter()
        .any(|p| p.id == Some(project_id) && p.keep_ip_address);
    let max_item = app.config.sentry.max_event_bytes;
    match kind {
        Kind::Store => {
            let key = key.ok_or_else(|| {
                detail(
                    StatusCode::UNAUTHORIZED,
                    "missing authentication: no sentry_key given",
                )
            })?;
            check_key(app, &key, project_id)?;
            if data.len() > max_item {
                return Err(detail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "event of {} bytes is over the limit of {max_item} bytes",
                        data.len()
                    ),
                ));
            }
            let first = data.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'{') {
                return Err(detail(
                    StatusCode::BAD_REQUEST,
                    "store body must be a JSON event object (base64/zlib legacy payloads are not supported)",
                ));
            }
            let is_tx = serde_json::from_slice::<Value>(data)
                .ok()
                .and_then(|v| {
                    v.get("type")
                        .and_then(Value::as_str)
                        .map(|t| t == "transaction")
                })
                .unwrap_or(false);
            let ctx = ItemContext {
                project_id,
                received_ns,
                envelope_event_id: None,
                fallback_event_id: &fallback,
                client_ip,
                keep_ip,
                max_item_bytes: max_item,
            };
            let scrubber = &app.normalizer.scrubber;
            let mut o = Outcome::default();
            let r = if is_tx {
                event::normalize_transaction(data, &ctx, scrubber).map(|(r, n)| {
                    o.event_id = Some(r.event_id.clone());
                    o.scrubbed += n;
                    SentryItem::Transaction(r)
                })
            } else {
                event::normalize_event(data, &ctx, scrubber).map(|(r, n)| {
                    o.event_id = Some(r.event_id.clone());
                    o.scrubbed += n;
                    SentryItem::Event(r)
                })
            };
            match r {
                Ok(item) => o.items.push(item),
                Err(e) => return Err(detail(StatusCode::BAD_REQUEST, e.0)),
            }
            Ok(o)
        }
        Kind::Envelope => {
            let env = envelope::parse(data)
                .map_err(|e| detail(StatusCode::BAD_REQUEST, format!("invalid envelope: {e}")))?;
            let key = key.or_else(|| env.dsn().and_then(key_from_dsn).map(String::from));
            let key = key.ok_or_else(|| {
                detail(
                    StatusCode::UNAUTHORIZED,
                    "missing authentication: no sentry_key given",
                )
            })?;
            check_key(app, &key, project_id)?;
            let project_name = app
                .sentry
                .project_of_key(app, &key)
                .ok()
                .flatten()
                .map(|p| p.1)
                .unwrap_or_else(|| "sentry".into());
            // Sentry refuses the whole envelope when one item is over its size.
            for (i, it) in env.items.iter().enumerate() {
                if matches!(it.kind.as_str(), "event" | "transaction")
                    && it.payload.len() > max_item
                {
                    return Err(detail(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "item {} ({}) is {} bytes, over the limit of {max_item} bytes",
                            i + 1,
                            it.kind,
                            it.payload.len()
                        ),
                    ));
                }
            }
            let header_id = env.event_id().map(String::from);
            let ctx = ItemContext {
                project_id,
                received_ns,
                envelope_event_id: header_id.as_deref(),
                fallback_event_id: &fallback,
                client_ip,
                keep_ip,
                max_item_bytes: max_item,
            };
            let mut o = Outcome {
                event_id: header_id.as_deref().and_then(event::clean_event_id),
                ..Outcome::default()
            };
            let scrubber = &app.normalizer.scrubber;
            for (i, it) in env.items.iter().enumerate() {
                let r: Result<(), event::ItemError> = match it.kind.as_str() {
                    "event" => event::normalize_event(it.payload, &ctx, scrubber).map(|(r, n)| {
                        o.event_id.get_or_insert_with(|| r.event_id.clone());
                        o.scrubbed += n;
                        o.items.push(SentryItem::Event(r));
                    }),
                    "transaction" => {
                        event::normalize_transaction(it.payload, &ctx, scrubber).map(|(r, n)| {
                            o.event_id.get_or_insert_with(|| r.event_id.clone());
                            o.scrubbed += n;
                            o.items.push(SentryItem::Transaction(r));
                        })
                    }
                    "check_in" => items::check_in(it.payload, &ctx)
                        .map(|r| o.items.push(SentryItem::CheckIn(r))),
                    "session" => items::session(it.payload, &ctx)
                        .map(|r| o.items.push(SentryItem::Session(r))),
                    "sessions" => items::sessions(it.payload, &ctx)
                        .map(|r| o.items.push(SentryItem::Session(r))),
                    "client_report" => items::client_report(it.payload, &ctx)
                        .map(|rs| o.items.extend(rs.into_iter().map(SentryItem::ClientReport))),
                    "log" => {
                        items::logs(it.payload, &ctx, &project_name, &app.normalizer).map(|rs| {
                            for (r, n) in rs {
                                o.scrubbed += n;
                                o.logs.push(r);
                            }
                        })
                    }
                    other => {
                        o.skipped.push(other.to_string());
                        Ok(())
                    }
                };
                if let Err(e) = r {
                    tracing::warn!(item = i + 1, r#type = %it.kind, reason = %e, "sentry item dropped");
                    o.dropped
                        .push(json!({"item": i + 1, "type": it.kind, "reason": e.0}));
                }
            }
            Ok(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_and_without_prefix() {
        assert_eq!(
            match_path("/api/42/envelope/"),
            Some(("42", Kind::Envelope))
        );
        assert_eq!(match_path("/api/42/store"), Some(("42", Kind::Store)));
        assert_eq!(
            match_path("/sentry/api/7/envelope/"),
            Some(("7", Kind::Envelope))
        );
        assert_eq!(match_path("/api/v1/logs"), None);
        assert_eq!(match_path("/notapi/1/envelope/"), None);
    }

    #[test]
    fn keys_from_headers_query_and_dsn() {
        assert_eq!(
            key_from_auth("Sentry sentry_key=abc, sentry_version=7, sentry_client=x/1"),
            Some("abc")
        );
        assert_eq!(
            key_from_auth("Sentry sentry_version=7,sentry_key=k2"),
            Some("k2")
        );
        assert_eq!(
            key_from_query(Some("sentry_version=7&sentry_key=q")),
            Some("q".into())
        );
        assert_eq!(key_from_dsn("https://pub:secret@host/1"), Some("pub"));
        assert_eq!(key_from_dsn("http://k@127.0.0.1:4318/42"), Some("k"));
        assert_eq!(key_from_dsn("nonsense"), None);
    }
}
