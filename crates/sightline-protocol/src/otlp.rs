//! OTLP/HTTP logs: `ExportLogsServiceRequest` in protobuf or JSON, flattened into
//! one [`OtlpLog`] per log record with its resource and scope attributes beside it.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as AnyValueKind, AnyValue, KeyValue,
};
use prost::Message;
use serde_json::{Map, Value};

/// The two encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(String),
    #[error("invalid OTLP JSON: {0}")]
    Json(String),
}

/// One OTLP log record, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpLog {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: Value,
    pub event_name: String,
    pub attributes: Map<String, Value>,
    pub resource: Map<String, Value>,
    pub scope_name: String,
    /// Lowercase hex, empty when absent or all zero.
    pub trace_id: String,
    pub span_id: String,
}

/// Decodes an OTLP logs export body.
pub fn decode_logs(body: &[u8], encoding: OtlpEncoding) -> Result<Vec<OtlpLog>, OtlpError> {
    let request = match encoding {
        OtlpEncoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string()))?,
        OtlpEncoding::Json => {
            serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string()))?
        }
    };
    let mut out = Vec::new();
    for rl in request.resource_logs {
        let resource = rl
            .resource
            .map(|r| attributes_to_map(&r.attributes))
            .unwrap_or_default();
        for sl in rl.scope_logs {
            let scope_name = sl
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for lr in sl.log_records {
                out.push(OtlpLog {
                    time_unix_nano: lr.time_unix_nano,
                    observed_time_unix_nano: lr.observed_time_unix_nano,
                    severity_number: lr.severity_number,
                    severity_text: lr.severity_text,
                    body: lr
                        .body
                        .as_ref()
                        .map(any_value_to_json)
                        .unwrap_or(Value::Null),
                    event_name: lr.event_name,
                    attributes: attributes_to_map(&lr.attributes),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    trace_id: id_hex(&lr.trace_id),
                    span_id: id_hex(&lr.span_id),
                });
            }
        }
    }
    Ok(out)
}

fn id_hex(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| *b == 0) {
        String::new()
    } else {
        hex::encode(bytes)
    }
}

/// OTLP attributes as a JSON object (later duplicates win, as in the SDKs).
pub fn attributes_to_map(attrs: &[KeyValue]) -> Map<String, Value> {
    let mut map = Map::new();
    for kv in attrs {
        let v = kv
            .value
            .as_ref()
            .map(any_value_to_json)
            .unwrap_or(Value::Null);
        map.insert(kv.key.clone(), v);
    }
    map
}

/// An OTLP `AnyValue` as JSON; bytes become lowercase hex.
pub fn any_value_to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(AnyValueKind::StringValue(s)) => Value::String(s.clone()),
        Some(AnyValueKind::BoolValue(b)) => Value::Bool(*b),
        Some(AnyValueKind::IntValue(i)) => Value::from(*i),
        Some(AnyValueKind::DoubleValue(f)) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Some(AnyValueKind::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value_to_json).collect())
        }
        Some(AnyValueKind::KvlistValue(kv)) => Value::Object(attributes_to_map(&kv.values)),
        Some(AnyValueKind::BytesValue(b)) => Value::String(hex::encode(b)),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_logs(b"\xff\xff\xff\xff", OtlpEncoding::Protobuf).is_err());
        assert!(decode_logs(b"{\"resourceLogs\": 5}", OtlpEncoding::Json).is_err());
        assert!(decode_logs(b"", OtlpEncoding::Protobuf).unwrap().is_empty());
    }

    #[test]
    fn json_encoding_decodes_hex_ids_and_string_ints() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
          "scopeLogs":[{"scope":{"name":"app"},"logRecords":[{"timeUnixNano":"1764088986616854000","severityNumber":17,
          "severityText":"ERROR","body":{"stringValue":"boom"},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
          "attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;
        let logs = decode_logs(body, OtlpEncoding::Json).unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].time_unix_nano, 1764088986616854000);
        assert_eq!(logs[0].trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(logs[0].attributes["n"], Value::from(42));
        assert_eq!(logs[0].resource["service.name"], Value::from("api"));
    }
}
