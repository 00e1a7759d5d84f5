//! Traces over HTTP: `POST /v1/traces` (OTLP/HTTP spans, protobuf or JSON,
//! any `Content-Encoding` the logs endpoints take), `GET /api/v1/traces/{id}`
//! (the span tree with its logs and error events) and `GET /api/v1/traces`
//! (search). Sentry transactions reach the same store from
//! `sentry_ingest.rs` through [`store_spans`].
//!
//! Ingest answers as the OTLP/HTTP spec has it: 200 with an
//! `ExportTraceServiceResponse` in the request's encoding, with spans refused
//! one by one (bad ids) counted in `partialSuccess.rejectedSpans` and named in
//! `errorMessage`; 400 for a body that does not decode (nothing stored), 413
//! over `limits.max_body_bytes` / `max_decompressed_bytes`, 415 for another
//! content type or encoding, 401/503/507 as every ingest endpoint.

use super::logs_query::{range_of, run_query};
use super::{check_ingest_key, otlp_encoding as encoding_of, receive, respond, OtlpParams};
use crate::error::ApiError;
use crate::{App, AppState};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_pipeline::Span;
use sightline_protocol::{otlp_traces, OtlpEncoding};
use sightline_query::traces::{span_tree, summarize, TraceQuery};
use sightline_query::{now_ns, time::parse_duration};

const ENDPOINT: &str = "otlp_traces";
/// Reasons listed in `errorMessage` (all are counted).
const MAX_REASONS: usize = 10;
/// Trace search looks this far back when `start` is not given.
pub const DEFAULT_WINDOW_NS: i64 = 3600 * 1_000_000_000;
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1000;
/// Error events listed per trace or request.
pub const MAX_ERRORS: usize = 1000;
/// Requests of one flow whose spans and errors are joined in.
pub const MAX_FLOW_REQUESTS: usize = 50;

/// Hands spans to the span store and waits until they are durable (the RED
/// counters see them then, from the store's append hook: `red::Red::hook`).
pub async fn store_spans(app: &App, spans: Vec<Span>) -> Result<(), ApiError> {
    if spans.is_empty() {
        return Ok(());
    }
    let n = spans.len() as u64;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.spans.append(
        spans,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )?;
    rx.await
        .map_err(|_| ApiError::Overloaded("shutting down; retry later".into()))??;
    app.metrics.ingested_records.inc_by(&["spans"], n);
    Ok(())
}

#[derive(Debug, Default)]
struct Converted {
    spans: Vec<Span>,
    rejected: u64,
    reasons: Vec<String>,
    scrubbed: usize,
}

pub async fn ingest(
    State(app): State<AppState>,
    Query(p): Query<OtlpParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = run_ingest(&app, p, &headers, body).await;
    respond(&app, ENDPOINT, result)
}

async fn run_ingest(
    app: &AppState,
    p: OtlpParams,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let otlp = encoding_of(headers).unwrap_or(OtlpEncoding::Protobuf);
    let checks = || {
        check_ingest_key(app, headers, p.key.as_deref())?;
        encoding_of(headers).map(|_| ())
    };
    let capacity = |a: &App| a.spans.check_capacity();
    let (c, _slot) = receive(
        app,
        ENDPOINT,
        capacity,
        headers,
        body,
        checks,
        move |a, data| {
            let decoded = otlp_traces::decode_traces(data, otlp)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let mut c = Converted::default();
            c.spans.reserve(decoded.len());
            let mut conv = sightline_pipeline::span::OtlpConverter::new(&a.normalizer.scrubber);
            for s in decoded {
                match conv.convert(s) {
                    Ok((span, n)) => {
                        c.scrubbed += n;
                        c.spans.push(span);
                    }
                    Err(e) => {
                        c.rejected += 1;
                        if c.reasons.len() < MAX_REASONS {
                            c.reasons.push(e.0);
                        }
                    }
                }
            }
            Ok(c)
        },
    )
    .await?;
    store_spans(app, c.spans).await?;
    if c.scrubbed > 0 {
        app.metrics.scrubbed.inc_by(&[ENDPOINT], c.scrubbed as u64);
    }
    if c.rejected > 0 {
        app.metrics.rejected.inc_by(&[ENDPOINT, "span"], c.rejected);
    }
    let body = otlp_traces::export_response(otlp, c.rejected, &c.reasons.join("; "));
    let ct = match otlp {
        OtlpEncoding::Protobuf => "application/x-protobuf",
        OtlpEncoding::Json => "application/json",
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

fn check_trace_id(id: &str) -> Result<String, ApiError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(ApiError::BadRequest(format!(
            "trace id {id:?} is not 32 hex digits"
        )))
    }
}

/// Error events of some traces (by trace id), oldest first, without repeats.
pub async fn errors_of_traces(
    app: &AppState,
    trace_ids: Vec<String>,
    mut errors: Vec<Value>,
) -> Result<Vec<Value>, ApiError> {
    let a = app.clone();
    let more = super::blocking(move || {
        a.events.read(|c| {
            let mut out = Vec::new();
            for t in &trace_ids {
                out.extend(sightline_store::events::events_by(
                    c, "trace_id", t, MAX_ERRORS,
                )?);
            }
            Ok(out)
        })
    })
    .await??;
    for e in more {
        if !errors.iter().any(|x| x["event_id"] == e["event_id"]) {
            errors.push(e);
        }
    }
    errors.sort_by(|a, b| {
        a["timestamp"]
            .as_str()
            .unwrap_or("")
            .cmp(b["timestamp"].as_str().unwrap_or(""))
    });
    errors.truncate(MAX_ERRORS);
    Ok(errors)
}

/// The distinct trace ids of some spans, in first-seen order.
pub fn trace_ids(spans: &[Span]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in spans {
        if !out.contains(&s.trace_id) {
            out.push(s.trace_id.clone());
        }
    }
    out
}

/// `GET /api/v1/traces/{trace_id}`.
pub async fn trace(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    async fn run(app: AppState, id: String) -> Result<Response, ApiError> {
        let id = check_trace_id(&id)?;
        let tid = id.clone();
        let (spans, logs) = run_query(&app, "trace", move |a| {
            Ok((
                a.traces.trace(&a.spans, &tid)?,
                a.engine.trace_logs(&a.store, &tid)?,
            ))
        })
        .await?;
        let errors = errors_of_traces(&app, vec![id.clone()], Vec::new()).await?;
        if spans.is_empty() && logs.logs.is_empty() && errors.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no spans, logs or errors with trace_id {id:?}"
            )));
        }
        let summary = summarize(&id, &spans);
        Ok(Json(json!({
            "trace_id": id,
            "summary": summary,
            "spans": span_tree(&spans),
            "logs": logs.logs,
            "logs_truncated": logs.truncated,
            "errors": errors,
        }))
        .into_response())
    }
    run(app, id).await.unwrap_or_else(|e| e.into_response())
}

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    service: Option<String>,
    name: Option<String>,
    status: Option<String>,
    min_duration: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
}

fn query_of(p: &SearchParams) -> Result<TraceQuery, ApiError> {
    let range = range_of(
        &p.start,
        &p.end,
        Some(now_ns().saturating_sub(DEFAULT_WINDOW_NS)),
    )?;
    let ne = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let error = match ne(&p.status).as_deref() {
        None | Some("any") => false,
        Some("error") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "status {other:?}: use error or any"
            )))
        }
    };
    let min_duration_ns = ne(&p.min_duration)
        .map(|d| parse_duration(&d).map_err(|e| ApiError::BadRequest(format!("min_duration: {e}"))))
        .transpose()?;
    let limit = match ne(&p.limit) {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}"))
            })?,
    };
    Ok(TraceQuery {
        service: ne(&p.service),
        name: ne(&p.name),
        error,
        min_duration_ns,
        start_ns: range.start_ns,
        end_ns: range.end_ns,
        limit,
    })
}

/// `GET /api/v1/traces?service=&name=&status=error&min_duration=&start=&end=&limit=`.
pub async fn search(State(app): State<AppState>, Query(p): Query<SearchParams>) -> Response {
    async fn run(app: AppState, p: SearchParams) -> Result<Response, ApiError> {
        let q = query_of(&p)?;
        let t = std::time::Instant::now();
        let traces = run_query(&app, "traces", move |a| {
            a.traces.search(&a.spans, &q, a.engine.budget())
        })
        .await?;
        Ok(Json(json!({
            "traces": traces,
            "took_ms": t.elapsed().as_secs_f64() * 1000.0,
        }))
        .into_response())
    }
    run(app, p).await.unwrap_or_else(|e| e.into_response())
}

/// The rate, error ratio and latency of one operation in the ten minutes
/// around `at_ns`, from the span RED series (`null`s when it has none).
pub fn route_stats(app: &App, service: &str, operation: &str, at_ns: i64) -> Value {
    use crate::endpoints::prom_api::TsdbStorage;
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let sel = format!(
        "service=\"{}\",operation=\"{}\"",
        esc(service),
        esc(operation)
    );
    let window = "10m";
    let at_ms = (at_ns / 1_000_000 + 5 * 60 * 1000).min(crate::scrape::now_ms());
    let scalar = |q: String| -> Option<f64> {
        match app.promql.instant(&TsdbStorage(&app.tsdb), &q, at_ms) {
            Ok(sightline_promql::Value::Vector(v)) => {
                v.first().map(|s| s.v).filter(|v| v.is_finite())
            }
            Ok(sightline_promql::Value::Scalar(_, v)) => Some(v).filter(|v| v.is_finite()),
            _ => None,
        }
    };
    let calls = crate::red::CALLS;
    let bucket = format!("{}_bucket", crate::red::DURATION);
    let rate = scalar(format!("sum(rate({calls}{{{sel}}}[{window}]))"));
    let errors = scalar(format!(
        "sum(rate({calls}{{{sel},status=\"error\"}}[{window}])) / sum(rate({calls}{{{sel}}}[{window}]))"
    ));
    let q = |p: f64| {
        scalar(format!(
            "histogram_quantile({p}, sum by (le) (rate({bucket}{{{sel}}}[{window}])))"
        ))
        .map(|s| s * 1000.0)
    };
    json!({
        "service": service,
        "operation": operation,
        "window": window,
        "at": sightline_pipeline::timefmt::format_rfc3339_nanos(at_ms * 1_000_000),
        "rate_per_s": rate,
        "error_ratio": errors.or(rate.map(|_| 0.0)),
        "p50_ms": q(0.5),
        "p95_ms": q(0.95),
        "p99_ms": q(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> SearchParams {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap();
        let get = |k: &str| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .unwrap()
                .into_iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v)
        };
        SearchParams {
            service: get("service"),
            name: get("name"),
            status: get("status"),
            min_duration: get("min_duration"),
            start: get("start"),
            end: get("end"),
            limit: get("limit"),
        }
    }

    #[test]
    fn search_parameters() {
        let q = query_of(&params(
            "service=api&status=error&min_duration=250ms&limit=5",
        ))
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("api"));
        assert!(q.error);
        assert_eq!(q.min_duration_ns, Some(250_000_000));
        assert_eq!(q.limit, 5);
        assert!(q.end_ns - q.start_ns >= DEFAULT_WINDOW_NS);
        for bad in [
            "status=broken",
            "min_duration=soon",
            "limit=0",
            "limit=100000",
            "start=yesterday",
        ] {
            let e = query_of(&params(bad)).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(check_trace_id("xyz").is_err());
        assert_eq!(check_trace_id(&"AB".repeat(16)).unwrap(), "ab".repeat(16));
    }
}
