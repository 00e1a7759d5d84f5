//! `POST /v1/logs`: OTLP/HTTP logs in protobuf (`application/x-protobuf`) or
//! JSON (`application/json`). A protobuf request gets a protobuf
//! `ExportLogsServiceResponse`; a JSON request gets our ingest answer plus
//! OTLP's `partialSuccess`.

use super::{blocking, check_ingest_key, now_ns, store_batch};
use crate::body;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sightline_pipeline::normalize::Context;
use sightline_protocol::OtlpEncoding;
use std::sync::atomic::Ordering::Relaxed;

const ENDPOINT: &str = "otlp_logs";

#[derive(Debug, Deserialize)]
pub struct Params {
    key: Option<String>,
}

fn encoding_of(headers: &HeaderMap) -> Result<OtlpEncoding, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
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
    let otlp = encoding_of(headers)?;
    let enc = body::encoding(headers)?;
    let _slot = app.ingest_slots.try_acquire().map_err(|_| {
        ApiError::Overloaded("too many concurrent ingest requests; retry later".into())
    })?;
    let raw = body::read_limited(headers, body, app.config.limits.max_body_bytes).await?;
    let max = app.config.limits.max_decompressed_bytes;
    let a = app.clone();
    let (records, scrubbed, truncated, bytes) = blocking(move || {
        let data = body::decode(enc, raw, max)?;
        let logs = sightline_protocol::decode_logs(&data, otlp)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let ctx = Context {
            service: None,
            received_ns: now_ns(),
        };
        let mut records = Vec::with_capacity(logs.len());
        let (mut scrubbed, mut truncated) = (0usize, 0u64);
        for log in logs {
            let (rec, n) = sightline_pipeline::normalize_otlp(&a.normalizer, log, ctx);
            scrubbed += n;
            truncated += rec.truncated as u64;
            records.push(rec);
        }
        Ok::<_, ApiError>((records, scrubbed, truncated, data.len()))
    })
    .await??;
    app.metrics.ingested_bytes.inc_by(&[ENDPOINT], bytes as u64);
    let n = records.len();
    store_batch(app, records).await?;
    app.metrics.ingested_records.inc_by(&[ENDPOINT], n as u64);
    if scrubbed > 0 {
        app.metrics.scrubbed.inc_by(&[ENDPOINT], scrubbed as u64);
    }
    app.metrics.truncated.fetch_add(truncated, Relaxed);
    Ok(match otlp {
        // An empty ExportLogsServiceResponse: full success.
        OtlpEncoding::Protobuf => {
            let mut r = (StatusCode::OK, Vec::<u8>::new()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
            r
        }
        OtlpEncoding::Json => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"accepted": n, "rejected": 0, "errors": []})),
        )
            .into_response(),
    })
}
