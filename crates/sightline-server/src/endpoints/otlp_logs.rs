//! `POST /v1/logs`: OTLP/HTTP logs in protobuf (`application/x-protobuf`) or
//! JSON (`application/json`). A protobuf request gets a protobuf
//! `ExportLogsServiceResponse`; a JSON request gets our ingest answer plus
//! OTLP's `partialSuccess`.

use super::{check_ingest_key, commit, now_ns, receive, respond, Batch};
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sightline_pipeline::normalize::Context;
use sightline_protocol::OtlpEncoding;

const ENDPOINT: &str = "otlp_logs";

use super::otlp_encoding as encoding_of;
pub use super::OtlpParams as Params;

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
    // Checked again inside `receive` (which drains the body when refusing).
    let otlp = encoding_of(headers).unwrap_or(OtlpEncoding::Protobuf);
    let checks = || {
        check_ingest_key(app, headers, p.key.as_deref())?;
        encoding_of(headers).map(|_| ())
    };
    let (batch, _slot) = receive(
        app,
        ENDPOINT,
        |a| a.store.check_capacity(),
        headers,
        body,
        checks,
        move |a, data| {
            let logs = sightline_protocol::decode_logs(data, otlp)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let ctx = Context {
                service: None,
                received_ns: now_ns(),
            };
            let mut batch = Batch::default();
            for log in logs {
                batch.push(sightline_pipeline::normalize_otlp(&a.normalizer, log, ctx));
            }
            Ok(batch)
        },
    )
    .await?;
    let n = commit(app, ENDPOINT, batch).await?;
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
