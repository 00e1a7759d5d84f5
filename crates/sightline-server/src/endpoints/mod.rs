//! One module per HTTP surface, plus the helpers every ingest endpoint shares.

pub mod health;
pub mod issues;
pub mod logs_ingest;
pub mod logs_query;
pub mod otlp_logs;
pub mod otlp_metrics;
pub mod projects;
pub mod prom_api;
pub mod sentry_ingest;
pub mod traces;
pub mod views;

use crate::error::ApiError;
use crate::{auth, body, App, AppState};
use axum::body::Body;
use axum::http::HeaderMap;
use serde::Serialize;
use sightline_pipeline::normalize::Normalized;
use sightline_pipeline::LogRecord;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::SemaphorePermit;

/// Percent-encodes a URL path segment or query value (everything but
/// unreserved characters), for the links the API and UI build and the CLI's
/// requests.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?key=` of the OTLP endpoints (the ingest key, for senders that cannot
/// set a header).
#[derive(Debug, serde::Deserialize)]
pub struct OtlpParams {
    pub key: Option<String>,
}

/// OTLP/HTTP's two encodings, from the Content-Type (415 otherwise).
pub fn otlp_encoding(headers: &HeaderMap) -> Result<sightline_protocol::OtlpEncoding, ApiError> {
    use sightline_protocol::OtlpEncoding;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(OtlpEncoding::Protobuf),
        "application/json" => Ok(OtlpEncoding::Json),
        other => Err(ApiError::UnsupportedMedia(format!(
            "Content-Type {other:?} is not OTLP (send application/x-protobuf or application/json)"
        ))),
    }
}

/// One rejected line of a batch.
#[derive(Debug, Serialize)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// The answer of every log ingest endpoint.
#[derive(Debug, Serialize, Default)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: usize,
    pub errors: Vec<LineError>,
}

/// Checks the ingest key when one is required.
pub fn check_ingest_key(
    app: &App,
    headers: &HeaderMap,
    query_key: Option<&str>,
) -> Result<(), ApiError> {
    let Some(want) = &app.ingest_key else {
        return Ok(());
    };
    let given = auth::bearer(headers.get("authorization").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("x-sightline-key").and_then(|v| v.to_str().ok()))
        .or(query_key);
    match given {
        Some(k) if auth::secret_eq(k, want) || auth::secret_eq(k, &app.api_token) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("invalid ingest key")),
        None => Err(ApiError::Unauthorized(
            "ingest needs a key when Sightline listens beyond loopback",
        )),
    }
}

/// Hands a batch to the store and waits until it is durable.
pub async fn store_batch(app: &App, records: Vec<LogRecord>) -> Result<(), ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.store.append(
        records,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )?;
    rx.await
        .map_err(|_| ApiError::Overloaded("shutting down; retry later".into()))??;
    Ok(())
}

/// Runs CPU-heavy work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))
}

pub use sightline_pipeline::timefmt::now_ns;

/// Records decoded from one request, with what the pipeline did to them.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<LogRecord>,
    pub scrubbed: usize,
    pub truncated: u64,
}

impl Batch {
    pub fn push(&mut self, (record, scrubbed): Normalized) {
        self.scrubbed += scrubbed;
        self.truncated += record.truncated as u64;
        self.records.push(record);
    }
}

/// What every ingest endpoint does: run the endpoint's own `checks` (auth,
/// content type), check the encoding and its store's `capacity`, take an ingest
/// slot (held until the answer), read the body within limits, and run `parse`
/// on the decompressed bytes on a blocking thread. A request refused before
/// its body is read still has its body drained, so the client sees the answer.
pub async fn receive<'a, T, F>(
    app: &'a AppState,
    endpoint: &'static str,
    capacity: fn(&App) -> Result<(), sightline_store::StoreError>,
    headers: &HeaderMap,
    body: Body,
    checks: impl FnOnce() -> Result<(), ApiError>,
    parse: F,
) -> Result<(T, SemaphorePermit<'a>), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&App, &[u8]) -> Result<T, ApiError> + Send + 'static,
{
    let early = checks()
        .and_then(|_| body::encoding(headers))
        // Refuse before parsing the body when the store is full.
        .and_then(|enc| capacity(app).map(|_| enc).map_err(ApiError::from))
        .and_then(|enc| {
            let slot = app.ingest_slots.try_acquire().map_err(|_| {
                ApiError::Overloaded("too many concurrent ingest requests; retry later".into())
            })?;
            Ok((enc, slot))
        });
    let (enc, slot) = match early {
        Ok(v) => v,
        Err(e) => {
            body::drain(body, app.config.limits.max_body_bytes).await;
            return Err(e);
        }
    };
    let raw = body::read_limited(headers, body, app.config.limits.max_body_bytes).await?;
    let max = app.config.limits.max_decompressed_bytes;
    let a = app.clone();
    let out = blocking(move || {
        let data = body::decode(enc, raw, max)?;
        a.metrics
            .ingested_bytes
            .inc_by(&[endpoint], data.len() as u64);
        parse(&a, &data)
    })
    .await??;
    Ok((out, slot))
}

/// The answer of an ingest endpoint; a refused request is counted by reason.
pub fn respond(
    app: &App,
    endpoint: &'static str,
    result: Result<axum::response::Response, ApiError>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    result.unwrap_or_else(|e| {
        app.metrics.rejected.inc_by(&[endpoint, e.code()], 1);
        e.into_response()
    })
}

/// Stores a batch (waiting until it is durable) and counts it.
pub async fn commit(app: &App, endpoint: &'static str, batch: Batch) -> Result<usize, ApiError> {
    let n = batch.records.len();
    if n == 0 {
        return Ok(0);
    }
    store_batch(app, batch.records).await?;
    app.metrics.ingested_records.inc_by(&[endpoint], n as u64);
    if batch.scrubbed > 0 {
        app.metrics
            .scrubbed
            .inc_by(&[endpoint], batch.scrubbed as u64);
    }
    app.metrics.truncated.fetch_add(batch.truncated, Relaxed);
    Ok(n)
}
