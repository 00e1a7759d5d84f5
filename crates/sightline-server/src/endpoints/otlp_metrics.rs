//! `POST /v1/metrics`: OTLP/HTTP metrics in protobuf (`application/x-protobuf`)
//! or JSON (`application/json`), any `Content-Encoding` the logs endpoints
//! take. Sums, gauges, explicit-bucket histograms and summaries become
//! Prometheus series in the metrics store (rules in
//! `sightline_protocol::otlp_metrics`); the answer comes once they are
//! durable.
//!
//! Answers, as the OTLP/HTTP spec has them: 200 with an
//! `ExportMetricsServiceResponse` (protobuf for protobuf requests, empty when
//! everything was stored; JSON for JSON requests, `{}` then). Points that were
//! refused (delta temporality, exponential histograms, malformed points,
//! over-long labels) and samples the store refused (out of order, or a
//! different value for a stored timestamp) are counted in
//! `partialSuccess.rejectedDataPoints` with the reasons in
//! `partialSuccess.errorMessage`; OTLP clients do not retry those. 400 for a
//! body that does not decode, 413 over `metrics.max_write_bytes` (compressed)
//! or `limits.max_decompressed_bytes`, 415 for another content type or
//! encoding, 401/503/507 as every ingest endpoint.

use super::{blocking, check_ingest_key, respond};
use crate::error::ApiError;
use crate::{body, AppState};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sightline_protocol::otlp_metrics::{self, Limits};
use sightline_protocol::OtlpEncoding;
use sightline_store::tsdb::{AppendOutcome, Labels, SeriesSamples};

const ENDPOINT: &str = "otlp_metrics";

/// Reasons listed in `errorMessage` (all are counted).
const MAX_REASONS: usize = 10;

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

/// What one export did.
struct Converted {
    batch: Vec<SeriesSamples>,
    accepted_points: u64,
    rejected_points: u64,
    message: String,
}

async fn run(
    app: &AppState,
    p: Params,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let max_body = app.config.metrics.max_write_bytes;
    let early = check_ingest_key(app, headers, p.key.as_deref())
        .and_then(|_| encoding_of(headers))
        .and_then(|otlp| Ok((otlp, body::encoding(headers)?)))
        .and_then(|(otlp, enc)| {
            let slot = app.ingest_slots.try_acquire().map_err(|_| {
                ApiError::Overloaded("too many concurrent ingest requests; retry later".into())
            })?;
            Ok((otlp, enc, slot))
        });
    // The slot is held until the answer.
    let (otlp, enc, _slot) = match early {
        Ok(v) => v,
        Err(e) => {
            // Drained, so that the client reads the answer.
            body::drain(body, max_body).await;
            return Err(e);
        }
    };
    let raw = body::read_limited(headers, body, max_body).await?;
    let max = app.config.limits.max_decompressed_bytes;
    let a = app.clone();
    let converted = blocking(move || -> Result<Converted, ApiError> {
        let data = body::decode(enc, raw, max)?;
        a.metrics
            .ingested_bytes
            .inc_by(&[ENDPOINT], data.len() as u64);
        let c = otlp_metrics::decode_and_convert(&data, otlp, &Limits::default())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(Converted {
            accepted_points: c.accepted_points,
            rejected_points: c.rejected_points,
            message: c.error_message(MAX_REASONS),
            batch: c
                .series
                .into_iter()
                .map(|s| SeriesSamples {
                    labels: Labels::new(s.labels),
                    samples: s.samples,
                })
                .collect(),
        })
    })
    .await??;
    let outcome = if converted.batch.is_empty() {
        AppendOutcome::default()
    } else {
        crate::scrape::append(&app.tsdb, converted.batch).await?
    };
    let refused_samples = outcome.out_of_order + outcome.duplicate;
    let mut message = converted.message;
    for (n, what) in [
        (
            outcome.out_of_order,
            "out of order (older than the newest sample of their series)",
        ),
        (
            outcome.duplicate,
            "with a different value for a timestamp already stored",
        ),
    ] {
        if n > 0 {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&format!("{n} samples {what} were not stored"));
        }
    }
    let rejected = converted.rejected_points + refused_samples;
    if converted.accepted_points > 0 {
        app.metrics
            .ingested_records
            .inc_by(&[ENDPOINT], converted.accepted_points);
    }
    if rejected > 0 {
        app.metrics
            .rejected
            .inc_by(&[ENDPOINT, "data_point"], rejected);
    }
    Ok(answer(otlp, rejected, message))
}

/// An `ExportMetricsServiceResponse` in the request's encoding; a partial
/// success when something was refused or is worth a warning.
fn answer(otlp: OtlpEncoding, rejected: u64, message: String) -> Response {
    let body = otlp_metrics::export_response(otlp, rejected, &message);
    let ct = match otlp {
        OtlpEncoding::Protobuf => "application/x-protobuf",
        OtlpEncoding::Json => "application/json",
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_stale_marker_is_the_stores() {
        assert_eq!(
            otlp_metrics::STALE_NAN_BITS,
            sightline_store::tsdb::STALE_NAN_BITS
        );
    }

    #[test]
    fn content_types() {
        let h = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            h
        };
        assert_eq!(
            encoding_of(&h("application/x-protobuf")).unwrap(),
            OtlpEncoding::Protobuf
        );
        assert_eq!(
            encoding_of(&h("Application/JSON; charset=utf-8")).unwrap(),
            OtlpEncoding::Json
        );
        let e = encoding_of(&h("text/plain")).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(encoding_of(&HeaderMap::new()).is_err());
    }

    async fn body_of(r: Response) -> (StatusCode, Option<String>, Vec<u8>) {
        let status = r.status();
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, ct, b.to_vec())
    }

    #[tokio::test]
    async fn answers() {
        // Full success: an empty protobuf message, `{}` in JSON.
        let (s, ct, b) = body_of(answer(OtlpEncoding::Protobuf, 0, String::new())).await;
        assert_eq!(
            (s, ct.as_deref(), b.len()),
            (StatusCode::OK, Some("application/x-protobuf"), 0)
        );
        let (_, ct, b) = body_of(answer(OtlpEncoding::Json, 0, String::new())).await;
        assert_eq!(
            (ct.as_deref(), &b[..]),
            (Some("application/json"), &b"{}"[..])
        );
        // Partial success (the protobuf form is checked in the protocol crate
        // and end to end).
        let (s, ct, b) = body_of(answer(OtlpEncoding::Protobuf, 3, "delta".into())).await;
        assert_eq!(
            (s, ct.as_deref()),
            (StatusCode::OK, Some("application/x-protobuf"))
        );
        assert!(!b.is_empty());
        let (_, _, b) = body_of(answer(OtlpEncoding::Json, 3, "delta".into())).await;
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"partialSuccess": {"rejectedDataPoints": 3, "errorMessage": "delta"}})
        );
    }
}
