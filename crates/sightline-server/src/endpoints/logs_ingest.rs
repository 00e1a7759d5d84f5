//! `POST /api/v1/logs/ingest?service=NAME`: NDJSON bodies (structlog or stdlib
//! JSON lines, or plain text lines), gzip/deflate/zstd or identity.
//!
//! A line that starts with `{` but is not valid JSON, or is not UTF-8, is
//! rejected alone (counted and listed with its line number); every other line
//! is stored. If no line survives, the answer is 400 with the same body.

use super::{check_ingest_key, commit, now_ns, receive, respond, Batch, IngestAnswer, LineError};
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sightline_pipeline::normalize::Context;

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
    let result = run(&app, p, &headers, body).await;
    respond(&app, ENDPOINT, result)
}

async fn run(
    app: &AppState,
    p: Params,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let service = p.service.filter(|s| !s.is_empty() && s.len() <= 256);
    let ((batch, answer), _slot) = receive(
        app,
        ENDPOINT,
        |a| a.store.check_capacity(),
        headers,
        body,
        || {
            check_ingest_key(app, headers, p.key.as_deref())?;
            content_type_ok(headers)
        },
        move |a, data| {
            let ctx = Context {
                service: service.as_deref(),
                received_ns: now_ns(),
            };
            let max_lines = a.config.limits.max_lines_per_request;
            let n_lines = data.iter().filter(|b| **b == b'\n').count();
            if n_lines > max_lines {
                return Err(ApiError::TooLarge(format!(
                    "body has {n_lines} lines; the limit is {max_lines} per request"
                )));
            }
            let mut batch = Batch::default();
            let mut answer = IngestAnswer::default();
            for line in sightline_protocol::lines(data) {
                match a.normalizer.line(line.bytes, ctx) {
                    Ok(normalized) => batch.push(normalized),
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
            answer.accepted = batch.records.len();
            Ok((batch, answer))
        },
    )
    .await?;
    if batch.records.is_empty() && answer.rejected > 0 {
        return Ok((StatusCode::BAD_REQUEST, Json(answer)).into_response());
    }
    commit(app, ENDPOINT, batch).await?;
    Ok((StatusCode::OK, Json(answer)).into_response())
}
