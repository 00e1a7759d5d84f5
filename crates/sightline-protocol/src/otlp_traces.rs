//! OTLP/HTTP traces: `ExportTraceServiceRequest` in protobuf or JSON, flattened
//! into one [`OtlpSpan`] per span with its resource beside it. Strings are moved
//! out of the decoded message, not copied.

use crate::otlp::{attributes_to_map, OtlpEncoding, OtlpError};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One span event (an exception, a log line on the span).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSpanEvent {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Map<String, Value>,
}

/// One OTLP span, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSpan {
    /// Lowercase hex of the bytes as sent (validity is checked downstream).
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// `SpanKind` number (0 unspecified … 5 consumer).
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// `Status.code`: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
    pub attributes: Map<String, Value>,
    pub dropped_attributes: u32,
    pub events: Vec<OtlpSpanEvent>,
    /// Shared by the spans of one `ResourceSpans`.
    pub resource: Arc<Map<String, Value>>,
    pub scope_name: String,
}

/// Lowercase hex of an id (`hex::encode` goes through `char`s: this runs
/// three times per span).
fn id_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Decodes an OTLP traces export body.
pub fn decode_traces(body: &[u8], encoding: OtlpEncoding) -> Result<Vec<OtlpSpan>, OtlpError> {
    let request = match encoding {
        OtlpEncoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string()))?,
        OtlpEncoding::Json => {
            serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string()))?
        }
    };
    let mut out = Vec::new();
    for rs in request.resource_spans {
        let resource = Arc::new(
            rs.resource
                .map(|r| attributes_to_map(&r.attributes))
                .unwrap_or_default(),
        );
        for ss in rs.scope_spans {
            let scope_name = ss.scope.map(|s| s.name).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.unwrap_or_default();
                out.push(OtlpSpan {
                    trace_id: id_hex(&s.trace_id),
                    span_id: id_hex(&s.span_id),
                    parent_span_id: if s.parent_span_id.iter().all(|b| *b == 0) {
                        String::new()
                    } else {
                        id_hex(&s.parent_span_id)
                    },
                    name: s.name,
                    kind: s.kind,
                    start_time_unix_nano: s.start_time_unix_nano,
                    end_time_unix_nano: s.end_time_unix_nano,
                    status_code: status.code,
                    status_message: status.message,
                    attributes: attributes_to_map(&s.attributes),
                    dropped_attributes: s.dropped_attributes_count,
                    events: s
                        .events
                        .into_iter()
                        .map(|e| OtlpSpanEvent {
                            name: e.name,
                            time_unix_nano: e.time_unix_nano,
                            attributes: attributes_to_map(&e.attributes),
                        })
                        .collect(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// An `ExportTraceServiceResponse` in `encoding`: empty (`{}` in JSON) when
/// every span was stored, a partial success naming the refused ones otherwise.
pub fn export_response(encoding: OtlpEncoding, rejected: u64, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty()).then(|| ExportTracePartialSuccess {
        rejected_spans: rejected.min(i64::MAX as u64) as i64,
        error_message: message.to_string(),
    });
    match (encoding, partial) {
        (OtlpEncoding::Protobuf, partial) => ExportTraceServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        (OtlpEncoding::Json, None) => b"{}".to_vec(),
        (OtlpEncoding::Json, Some(p)) => serde_json::json!({"partialSuccess": {
            "rejectedSpans": p.rejected_spans,
            "errorMessage": p.error_message,
        }})
        .to_string()
        .into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_traces(b"\xff\xff\xff\xff", OtlpEncoding::Protobuf).is_err());
        assert!(decode_traces(b"{\"resourceSpans\": 5}", OtlpEncoding::Json).is_err());
        assert!(decode_traces(b"", OtlpEncoding::Protobuf)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn json_encoding_decodes_hex_ids_kind_and_status() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
          "scopeSpans":[{"scope":{"name":"app"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
          "parentSpanId":"","name":"GET /x","kind":2,"startTimeUnixNano":"1764088986616854000","endTimeUnixNano":"1764088986716854000",
          "status":{"code":2,"message":"boom"},"events":[{"name":"exception","timeUnixNano":"1764088986716854000",
          "attributes":[{"key":"exception.type","value":{"stringValue":"ValueError"}}]}],
          "attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;
        let spans = decode_traces(body, OtlpEncoding::Json).unwrap();
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.span_id, "eee19b7ec3c1b174");
        assert_eq!((s.kind, s.status_code), (2, 2));
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 100_000_000);
        assert_eq!(s.events[0].attributes["exception.type"], "ValueError");
        assert_eq!(s.resource["service.name"], "api");
        assert_eq!(s.attributes["n"], 42);
    }
}
