//! The span model: one shape for OTLP spans and for Sentry transactions and
//! their child spans, with the request id found where apps put it, and the
//! bounds every stored span keeps.

use crate::sentry::event::timestamp_ns;
use crate::sentry::TransactionRow;
use crate::Scrubber;
use serde::Serialize;
use serde_json::{Map, Value};
use sightline_protocol::otlp_traces::OtlpSpan;
use std::sync::Arc;

/// Most attributes kept per span (and per span event); the rest are dropped
/// and counted in `sightline.dropped_attributes`.
pub const MAX_ATTRIBUTES: usize = 128;
/// Most events kept per span (exceptions first).
pub const MAX_EVENTS: usize = 128;
/// A string attribute value is cut to this many bytes.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Names, ids and other typed fields are cut to this many bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// One span, whichever SDK sent it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// Sentry's `op` (`http.server`, `db` …); OTLP spans have none.
    pub op: Option<String>,
    pub service: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` or `unspecified`.
    pub kind: String,
    pub start_ns: i64,
    pub end_ns: i64,
    /// `ok`, `error` or `unset`.
    pub status: String,
    pub status_message: Option<String>,
    pub request_id: Option<String>,
    pub environment: Option<String>,
    /// A JSON object.
    pub attributes: String,
    /// A JSON array of `{"name","time_ns","attributes"}`.
    pub events: String,
    /// A JSON object (OTLP resource attributes; Sentry's release/sdk/…).
    pub resource: String,
    /// `otlp` or `sentry`.
    pub source: String,
}

impl Span {
    pub fn duration_ns(&self) -> i64 {
        (self.end_ns - self.start_ns).max(0)
    }

    pub fn is_error(&self) -> bool {
        self.status == "error"
    }

    /// Rough heap size, for memory budgets.
    pub fn approx_bytes(&self) -> usize {
        160 + self.trace_id.len()
            + self.span_id.len()
            + self.parent_span_id.as_ref().map_or(0, String::len)
            + self.name.len()
            + self.op.as_ref().map_or(0, String::len)
            + self.service.len()
            + self.kind.len()
            + self.status.len()
            + self.status_message.as_ref().map_or(0, String::len)
            + self.request_id.as_ref().map_or(0, String::len)
            + self.environment.as_ref().map_or(0, String::len)
            + self.attributes.len()
            + self.events.len()
            + self.resource.len()
            + self.source.len()
    }
}

/// Why a span was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanError(pub String);

impl std::fmt::Display for SpanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Cuts long strings at any depth and keeps at most [`MAX_ATTRIBUTES`] keys;
/// returns how many keys were dropped.
fn bound_object(map: &mut Map<String, Value>) -> usize {
    fn bound_value(v: &mut Value, depth: usize) {
        match v {
            Value::String(s) if s.len() > MAX_VALUE_BYTES => {
                let t = cut(std::mem::take(s), MAX_VALUE_BYTES);
                *s = t + "…[truncated]";
            }
            Value::Array(a) if depth < 8 => a.iter_mut().for_each(|v| bound_value(v, depth + 1)),
            Value::Object(o) if depth < 8 => o.values_mut().for_each(|v| bound_value(v, depth + 1)),
            Value::Array(_) | Value::Object(_) => *v = Value::String("[too deep]".into()),
            _ => {}
        }
    }
    let mut dropped = 0;
    if map.len() > MAX_ATTRIBUTES {
        dropped = map.len() - MAX_ATTRIBUTES;
        let keep: Vec<String> = map.keys().take(MAX_ATTRIBUTES).cloned().collect();
        map.retain(|k, _| keep.contains(k));
    }
    for v in map.values_mut() {
        bound_value(v, 0);
    }
    dropped
}

fn to_json(map: Map<String, Value>) -> String {
    serde_json::to_string(&Value::Object(map)).unwrap_or_else(|_| "{}".into())
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        // Header attributes are lists of values (`http.request.header.*`).
        Value::Array(a) => a.first().and_then(text),
        _ => None,
    }
}

/// Attribute keys that carry the request id, most specific first.
const REQUEST_ID_KEYS: &[&str] = &[
    "request_id",
    "request.id",
    "http.request_id",
    "http.request.header.x-request-id",
    "http.request.header.x_request_id",
    "http.request.header.request-id",
];

/// The request id an app put on a span: a `request_id` attribute, or the
/// captured `X-Request-ID` header.
pub fn request_id_of(attrs: &Map<String, Value>) -> Option<String> {
    REQUEST_ID_KEYS
        .iter()
        .find_map(|k| attrs.get(*k).and_then(text))
        .map(|s| cut(s, MAX_NAME_BYTES))
}

fn valid_id(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// Scrubs secrets out of an attribute map (keys and values, as log records
/// are scrubbed); returns how many were masked.
fn scrub_map(map: &mut Map<String, Value>, scrubber: &Scrubber) -> usize {
    let mut v = Value::Object(std::mem::take(map));
    let n = scrubber.scrub_value(&mut v);
    if let Value::Object(m) = v {
        *map = m;
    }
    n
}

/// What a span takes from its resource, computed once per resource.
#[derive(Debug, Clone)]
struct ResourceParts {
    json: String,
    service: String,
    environment: Option<String>,
}

fn resource_parts(resource: &Map<String, Value>) -> ResourceParts {
    let mut resource = resource.clone();
    bound_object(&mut resource);
    let service = resource
        .get("service.name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown_service")
        .to_string();
    let environment = resource
        .get("deployment.environment.name")
        .or_else(|| resource.get("deployment.environment"))
        .and_then(Value::as_str)
        .map(String::from);
    ResourceParts {
        json: to_json(resource),
        service: cut(service, MAX_NAME_BYTES),
        environment,
    }
}

/// Converts the spans of one export: the resource of consecutive spans that
/// share it is bounded and serialized once.
pub struct OtlpConverter<'a> {
    scrubber: &'a Scrubber,
    last: Option<(Arc<Map<String, Value>>, ResourceParts)>,
}

impl<'a> OtlpConverter<'a> {
    pub fn new(scrubber: &'a Scrubber) -> OtlpConverter<'a> {
        OtlpConverter {
            scrubber,
            last: None,
        }
    }

    /// An OTLP span as stored, scrubbed and bounded, with how many values the
    /// scrubber masked. Errors name what is wrong with it (bad ids).
    pub fn convert(&mut self, s: OtlpSpan) -> Result<(Span, usize), SpanError> {
        let parts = match &self.last {
            Some((r, p)) if Arc::ptr_eq(r, &s.resource) => p.clone(),
            _ => {
                let p = resource_parts(&s.resource);
                self.last = Some((s.resource.clone(), p.clone()));
                p
            }
        };
        convert(s, parts, self.scrubber)
    }
}

/// One OTLP span as stored (see [`OtlpConverter`], which this uses).
pub fn from_otlp(s: OtlpSpan, scrubber: &Scrubber) -> Result<(Span, usize), SpanError> {
    OtlpConverter::new(scrubber).convert(s)
}

fn convert(
    s: OtlpSpan,
    resource: ResourceParts,
    scrubber: &Scrubber,
) -> Result<(Span, usize), SpanError> {
    if !valid_id(&s.trace_id, 32) {
        return Err(SpanError(format!(
            "span {:?}: trace_id must be 16 bytes, not all zero",
            s.name
        )));
    }
    if !valid_id(&s.span_id, 16) {
        return Err(SpanError(format!(
            "span {:?}: span_id must be 8 bytes, not all zero",
            s.name
        )));
    }
    let mut attributes = s.attributes;
    let request_id = request_id_of(&attributes);
    let mut scrubbed = scrub_map(&mut attributes, scrubber);
    let mut dropped = bound_object(&mut attributes) as u64 + s.dropped_attributes as u64;
    let mut events = s.events;
    if events.len() > MAX_EVENTS {
        dropped += (events.len() - MAX_EVENTS) as u64;
        // Exceptions are what a reader looks for: keep them first.
        events.sort_by_key(|e| e.name != "exception");
        events.truncate(MAX_EVENTS);
        events.sort_by_key(|e| e.time_unix_nano);
    }
    let events: Vec<Value> = events
        .into_iter()
        .map(|mut e| {
            scrubbed += scrub_map(&mut e.attributes, scrubber);
            bound_object(&mut e.attributes);
            serde_json::json!({
                "name": cut(e.name, MAX_NAME_BYTES),
                "time_ns": e.time_unix_nano,
                "attributes": Value::Object(e.attributes),
            })
        })
        .collect();
    if dropped > 0 {
        attributes.insert("sightline.dropped".into(), Value::from(dropped));
    }
    let start = i64::try_from(s.start_time_unix_nano).unwrap_or(i64::MAX);
    let end = i64::try_from(s.end_time_unix_nano)
        .unwrap_or(i64::MAX)
        .max(start);
    let span = Span {
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_span_id: Some(s.parent_span_id).filter(|p| valid_id(p, 16)),
        name: cut(s.name, MAX_NAME_BYTES),
        op: None,
        service: resource.service,
        kind: match s.kind {
            1 => "internal",
            2 => "server",
            3 => "client",
            4 => "producer",
            5 => "consumer",
            _ => "unspecified",
        }
        .into(),
        start_ns: start,
        end_ns: end,
        status: match s.status_code {
            1 => "ok",
            2 => "error",
            _ => "unset",
        }
        .into(),
        status_message: Some(s.status_message)
            .filter(|m| !m.is_empty())
            .map(|m| cut(m, MAX_VALUE_BYTES)),
        request_id,
        environment: resource.environment,
        attributes: to_json(attributes),
        events: serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
        resource: resource.json,
        source: "otlp".into(),
    };
    Ok((span, scrubbed))
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Sentry span statuses: `ok` is ok, anything else is an error.
fn sentry_status(v: Option<&str>) -> (String, Option<String>) {
    match v {
        None => ("unset".into(), None),
        Some("ok") => ("ok".into(), None),
        Some(other) => ("error".into(), Some(cut(other.to_string(), MAX_NAME_BYTES))),
    }
}

fn sentry_kind(op: Option<&str>) -> &'static str {
    match op {
        Some(op) if op == "http.server" || op.starts_with("http.server.") => "server",
        Some(op) if op.starts_with("http.client") || op.starts_with("db") => "client",
        Some(op) if op.starts_with("queue.publish") => "producer",
        Some(op) if op.starts_with("queue.process") || op.starts_with("queue.task") => "consumer",
        _ => "internal",
    }
}

fn object_of(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

/// A normalized Sentry transaction (`body`: the JSON `normalize_transaction`
/// kept) as spans: the transaction itself from `contexts.trace`, then each of
/// its `spans`. `service` names the sender when the transaction does not
/// (`tags.service`, else `contexts.trace.data["service.name"]`).
pub fn from_sentry(row: &TransactionRow, body: &[u8], service: &str) -> Vec<Span> {
    let Ok(ev) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(trace_id) = row.trace_id.clone().filter(|t| valid_id(t, 32)) else {
        return Vec::new();
    };
    let trace = ev.get("contexts").and_then(|c| c.get("trace"));
    let tags = object_of(ev.get("tags"));
    let service = tags
        .get("service")
        .and_then(Value::as_str)
        .or_else(|| {
            trace
                .and_then(|t| t.get("data"))
                .and_then(|d| str_of(d, "service.name"))
        })
        .unwrap_or(service)
        .to_string();
    let mut resource = Map::new();
    for k in ["release", "environment", "server_name", "platform"] {
        if let Some(v) = ev.get(k).filter(|v| !v.is_null()) {
            resource.insert(k.into(), v.clone());
        }
    }
    if let Some(sdk) = ev.get("sdk").and_then(|s| s.get("name")) {
        resource.insert("sdk.name".into(), sdk.clone());
    }
    resource.insert("sentry.event_id".into(), Value::from(row.event_id.clone()));
    let resource = to_json(resource);
    let mut out = Vec::new();
    let root_id = row
        .span_id
        .clone()
        .filter(|s| valid_id(s, 16))
        .unwrap_or_else(|| row.event_id.get(..16).unwrap_or("0000000000000001").into());
    let mut root_attrs = object_of(trace.and_then(|t| t.get("data")));
    for (k, v) in &tags {
        root_attrs.insert(format!("tag.{k}"), v.clone());
    }
    if let Some(req) = ev.get("request") {
        for k in ["method", "url"] {
            if let Some(v) = req.get(k) {
                root_attrs.insert(format!("http.request.{k}"), v.clone());
            }
        }
    }
    bound_object(&mut root_attrs);
    let (status, status_message) = sentry_status(trace.and_then(|t| str_of(t, "status")));
    let op = row.op.clone();
    out.push(Span {
        trace_id: trace_id.clone(),
        span_id: root_id,
        parent_span_id: trace
            .and_then(|t| str_of(t, "parent_span_id"))
            .map(str::to_ascii_lowercase)
            .filter(|p| valid_id(p, 16)),
        name: cut(row.name.clone(), MAX_NAME_BYTES),
        kind: sentry_kind(op.as_deref()).into(),
        op,
        service: cut(service.clone(), MAX_NAME_BYTES),
        start_ns: row.start_ns,
        end_ns: row.end_ns.max(row.start_ns),
        status,
        status_message,
        request_id: row.request_id.clone(),
        environment: row.environment.clone(),
        attributes: to_json(root_attrs),
        events: "[]".into(),
        resource: resource.clone(),
        source: "sentry".into(),
    });
    let spans = ev.get("spans").and_then(Value::as_array);
    for s in spans.into_iter().flatten() {
        let Some(span_id) = str_of(s, "span_id")
            .map(str::to_ascii_lowercase)
            .filter(|i| valid_id(i, 16))
        else {
            continue;
        };
        let start = timestamp_ns(s.get("start_timestamp")).unwrap_or(row.start_ns);
        let end = timestamp_ns(s.get("timestamp")).unwrap_or(start).max(start);
        let op = str_of(s, "op").map(String::from);
        let name = str_of(s, "description")
            .or(op.as_deref())
            .unwrap_or("<unnamed span>")
            .to_string();
        let mut attrs = object_of(s.get("data"));
        for (k, v) in object_of(s.get("tags")) {
            attrs.insert(format!("tag.{k}"), v);
        }
        bound_object(&mut attrs);
        let (status, status_message) = sentry_status(str_of(s, "status"));
        out.push(Span {
            trace_id: trace_id.clone(),
            span_id,
            parent_span_id: str_of(s, "parent_span_id")
                .map(str::to_ascii_lowercase)
                .filter(|p| valid_id(p, 16)),
            name: cut(name, MAX_NAME_BYTES),
            kind: sentry_kind(op.as_deref()).into(),
            op,
            service: cut(service.clone(), MAX_NAME_BYTES),
            start_ns: start,
            end_ns: end,
            status,
            status_message,
            request_id: request_id_of(&attrs).or_else(|| row.request_id.clone()),
            environment: row.environment.clone(),
            attributes: to_json(attrs),
            events: "[]".into(),
            resource: resource.clone(),
            source: "sentry".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_protocol::otlp_traces::OtlpSpanEvent;

    fn scrubber() -> Scrubber {
        Scrubber::new(&crate::ScrubConfig::default())
    }

    #[test]
    fn secrets_in_attributes_are_masked() {
        let mut o = otlp("x");
        o.attributes.insert(
            "http.request.header.authorization".into(),
            Value::from("Bearer abc"),
        );
        o.attributes
            .insert("password".into(), Value::from("hunter2"));
        let (s, n) = from_otlp(o, &scrubber()).unwrap();
        assert!(n >= 2, "{n}");
        assert!(
            !s.attributes.contains("hunter2") && !s.attributes.contains("abc"),
            "{}",
            s.attributes
        );
    }

    fn otlp(name: &str) -> OtlpSpan {
        OtlpSpan {
            trace_id: "5b8efff798038103d269b633813fc60c".into(),
            span_id: "eee19b7ec3c1b174".into(),
            parent_span_id: String::new(),
            name: name.into(),
            kind: 2,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 5_000,
            status_code: 2,
            status_message: "boom".into(),
            attributes: serde_json::from_str(r#"{"http.request.header.x-request-id":["req-1"]}"#)
                .unwrap(),
            dropped_attributes: 0,
            events: vec![],
            resource: Arc::new(serde_json::from_str(r#"{"service.name":"api"}"#).unwrap()),
            scope_name: String::new(),
        }
    }

    #[test]
    fn otlp_span_takes_request_id_from_the_captured_header() {
        let s = from_otlp(otlp("GET /x"), &scrubber()).unwrap().0;
        assert_eq!(s.request_id.as_deref(), Some("req-1"));
        assert_eq!(s.service, "api");
        assert_eq!((s.kind.as_str(), s.status.as_str()), ("server", "error"));
        assert_eq!(s.duration_ns(), 4_000);
        assert_eq!(s.parent_span_id, None);
    }

    #[test]
    fn bad_ids_are_refused_with_a_reason() {
        let mut o = otlp("x");
        o.trace_id = "00000000000000000000000000000000".into();
        assert!(from_otlp(o, &scrubber())
            .unwrap_err()
            .0
            .contains("trace_id"));
        let mut o = otlp("x");
        o.span_id = "abc".into();
        assert!(from_otlp(o, &scrubber()).unwrap_err().0.contains("span_id"));
    }

    #[test]
    fn oversized_spans_are_bounded() {
        let mut o = otlp("x");
        for i in 0..1000 {
            o.attributes
                .insert(format!("k{i}"), Value::String("v".repeat(100_000)));
        }
        o.events = (0..10_000)
            .map(|i| OtlpSpanEvent {
                name: if i == 9_999 { "exception" } else { "log" }.into(),
                time_unix_nano: i,
                attributes: Map::new(),
            })
            .collect();
        let s = from_otlp(o, &scrubber()).unwrap().0;
        assert!(s.approx_bytes() < 4 * 1024 * 1024, "{}", s.approx_bytes());
        let events: Vec<Value> = serde_json::from_str(&s.events).unwrap();
        assert_eq!(events.len(), MAX_EVENTS);
        assert!(events.iter().any(|e| e["name"] == "exception"));
        let attrs: Map<String, Value> = serde_json::from_str(&s.attributes).unwrap();
        assert!(attrs["sightline.dropped"].as_u64().unwrap() > 0);
    }
}
