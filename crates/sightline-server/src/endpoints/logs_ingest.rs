//! `POST /api/v1/logs/ingest?service=NAME`: NDJSON bodies (structlog or stdlib
//! JSON lines, or plain text lines), gzip/deflate/zstd or identity.
//!
//! A line that starts with `{` but is not valid JSON, or is not UTF-8, is
//! rejected alone (counted and listed with its line number); every other line
//! is stored. If no line survives, the answer is 400 with the same body.

use super::{blocking, check_ingest_key, now_ns, store_batch, IngestAnswer, LineError};
use crate::body;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sightline_pipeline::normalize::Context;
use std::sync::atomic::Ordering::Relaxed;

const ENDPOINT: &str = "ndjson";

#[derive(Debug, Deserialize)]
pub struct Params {
    service: Option<String>,
    key: Option<String>,
}

/// Content types accepted as NDJSON; anything else is 415.
fn content_type_ok(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        ""
        | "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines"
        | "application/json"
        | "text/plain"
        | "text/x-log"
        | "application/octet-stream"
        | "application/x-www-form-urlencoded" => Ok(()),
        other => Err(ApiError::UnsupportedMedia(format!(
            "Content-Type {other:?} is not NDJSON (send application/x-ndjson or text/plain)"
        ))),
    }
}

pub async fn ingest(
    State(app): State<AppState>,
    Query(p): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match run(&app, p, &headers, body).await {
        Ok(r) => r,
        Err(e) => {
            app.metrics.rejected.inc_by(&[ENDPOINT, e.code()], 1);
            e.into_response()
        }
    }
}

async fn run(
    app: &AppState,
    p: Params,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_ingest_key(app, headers, p.key.as_deref())?;
    content_type_ok(headers)?;
    let enc = body::encoding(headers)?;
    let _slot = app.ingest_slots.try_acquire().map_err(|_| {
        ApiError::Overloaded("too many concurrent ingest requests; retry later".into())
    })?;
    let raw = body::read_limited(headers, body, app.config.limits.max_body_bytes).await?;
    let max = app.config.limits.max_decompressed_bytes;
    let service = p.service.filter(|s| !s.is_empty() && s.len() <= 256);
    let a = app.clone();
    let (records, answer, scrubbed, truncated, bytes) = blocking(move || {
        let data = body::decode(enc, raw, max)?;
        let ctx = Context {
            service: service.as_deref(),
            received_ns: now_ns(),
        };
        let mut records = Vec::new();
        let mut answer = IngestAnswer::default();
        let (mut scrubbed, mut truncated) = (0usize, 0u64);
        for line in sightline_protocol::lines(&data) {
            match a.normalizer.line(line.bytes, ctx) {
                Ok((rec, n)) => {
                    scrubbed += n;
                    truncated += rec.truncated as u64;
                    records.push(rec);
                }
                Err(e) => {
                    answer.rejected += 1;
                    a.metrics.rejected.inc_by(&[ENDPOINT, e.code], 1);
                    if answer.errors.len() < a.config.limits.max_reported_errors {
                        answer.errors.push(LineError {
                            line: line.number,
                            reason: e.reason,
                        });
                    }
                }
            }
        }
        answer.accepted = records.len();
        Ok::<_, ApiError>((records, answer, scrubbed, truncated, data.len()))
    })
    .await??;
    app.metrics.ingested_bytes.inc_by(&[ENDPOINT], bytes as u64);
    if records.is_empty() {
        let status = if answer.rejected > 0 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        return Ok((status, Json(answer)).into_response());
    }
    let n = records.len() as u64;
    store_batch(app, records).await?;
    app.metrics.ingested_records.inc_by(&[ENDPOINT], n);
    if scrubbed > 0 {
        app.metrics.scrubbed.inc_by(&[ENDPOINT], scrubbed as u64);
    }
    app.metrics.truncated.fetch_add(truncated, Relaxed);
    Ok((StatusCode::OK, Json(answer)).into_response())
}
