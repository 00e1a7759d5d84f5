//! Normalization: structlog JSON, stdlib JSON formatters, OTLP log records and
//! plain-text lines into one [`LogRecord`], scrubbed and size-bounded.
//!
//! Key mapping (first present wins; the others stay in `attributes`):
//! message ← `event` | `message` | `msg`; level ← `level` | `levelname` |
//! `severity` | `loglevel`; timestamp ← `timestamp` | `time` | `ts` | `@timestamp`
//! | `asctime`; logger ← `logger` | `logger_name` | `name` (only beside stdlib's
//! `levelname`); exception ← `exception` | `exc_info` | `exc_text` | `traceback`,
//! with `stack` / `stack_info` appended.

use crate::record::{Level, LogRecord};
use crate::scrub::Scrubber;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sightline_protocol::OtlpLog;
use std::borrow::Cow;

/// Default per-record size limit; larger records are cut down and marked.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 256 * 1024;

/// Why one line of a batch was rejected. The `code` is a bounded metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub code: &'static str,
    pub reason: String,
}

/// Where a batch came from: the service the shipper named and the receive time.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub service: Option<&'a str>,
    pub received_ns: i64,
}

#[derive(Debug)]
pub struct Normalizer {
    pub scrubber: Scrubber,
    pub max_record_bytes: usize,
}

/// A normalized record and the number of values scrubbed from it.
pub type Normalized = (LogRecord, usize);

impl Normalizer {
    pub fn new(scrubber: Scrubber, max_record_bytes: usize) -> Normalizer {
        Normalizer {
            scrubber,
            max_record_bytes: max_record_bytes.max(1024),
        }
    }

    /// One line of an NDJSON body: a JSON object, or plain text.
    pub fn line(&self, bytes: &[u8], ctx: Context<'_>) -> Result<Normalized, LineError> {
        normalize_line(self, bytes, ctx)
    }
}

/// See [`Normalizer::line`].
pub fn normalize_line(
    n: &Normalizer,
    bytes: &[u8],
    ctx: Context<'_>,
) -> Result<Normalized, LineError> {
    let text = std::str::from_utf8(bytes).map_err(|e| LineError {
        code: "invalid_utf8",
        reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
    })?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        normalize_object_text(n, trimmed, ctx)
    } else {
        Ok(normalize_plain(n, text.trim_end(), ctx))
    }
}

/// A string that borrows from the input unless it had escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The top-level members of a JSON object, values left as raw JSON text
/// (keys borrowed unless escaped). Also how queries read `attributes`.
pub struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// Parses a JSON object's top level.
    pub fn parse(text: &'a str) -> Result<Members<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(16);
                while let Some((k, v)) = map.next_entry::<CowStr<'de>, &'de RawValue>()? {
                    // A repeated key: the last value wins, as in every JSON parser we mimic.
                    if let Some(slot) = out.iter_mut().find(|(ek, _)| *ek == k.0) {
                        slot.1 = v;
                    } else {
                        out.push((k.0, v));
                    }
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Typed columns a top-level key can fill, with its rank (lower wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Message,
    Level,
    Timestamp,
    Logger,
    Exception,
    Stack,
    Service,
    Environment,
    RequestId,
    FlowId,
    TraceId,
    SpanId,
    UserId,
    Host,
}
const SLOTS: usize = 14;

fn slot_of(key: &str, stdlib: bool) -> Option<(Slot, u8)> {
    Some(match key {
        "event" => (Slot::Message, 0),
        "message" => (Slot::Message, 1),
        "msg" => (Slot::Message, 2),
        "level" => (Slot::Level, 0),
        "levelname" => (Slot::Level, 1),
        "severity" => (Slot::Level, 2),
        "loglevel" => (Slot::Level, 3),
        "log.level" => (Slot::Level, 4),
        "timestamp" => (Slot::Timestamp, 0),
        "time" => (Slot::Timestamp, 1),
        "ts" => (Slot::Timestamp, 2),
        "@timestamp" => (Slot::Timestamp, 3),
        "asctime" => (Slot::Timestamp, 4),
        "datetime" => (Slot::Timestamp, 5),
        "logger" => (Slot::Logger, 0),
        "logger_name" => (Slot::Logger, 1),
        "name" if stdlib => (Slot::Logger, 2),
        "exception" => (Slot::Exception, 0),
        "exc_info" => (Slot::Exception, 1),
        "exc_text" => (Slot::Exception, 2),
        "traceback" => (Slot::Exception, 3),
        "stack" => (Slot::Stack, 0),
        "stack_info" => (Slot::Stack, 1),
        "service" => (Slot::Service, 0),
        "service_name" => (Slot::Service, 1),
        "service.name" => (Slot::Service, 2),
        "environment" => (Slot::Environment, 0),
        "env" => (Slot::Environment, 1),
        "deployment.environment" => (Slot::Environment, 2),
        "request_id" => (Slot::RequestId, 0),
        "requestId" => (Slot::RequestId, 1),
        "req_id" => (Slot::RequestId, 2),
        "x_request_id" => (Slot::RequestId, 3),
        "flow_id" => (Slot::FlowId, 0),
        "flowId" => (Slot::FlowId, 1),
        "trace_id" => (Slot::TraceId, 0),
        "traceId" => (Slot::TraceId, 1),
        "otelTraceID" => (Slot::TraceId, 2),
        "span_id" => (Slot::SpanId, 0),
        "spanId" => (Slot::SpanId, 1),
        "otelSpanID" => (Slot::SpanId, 2),
        "user_id" => (Slot::UserId, 0),
        "userId" => (Slot::UserId, 1),
        "host" => (Slot::Host, 0),
        "hostname" => (Slot::Host, 1),
        "host.name" => (Slot::Host, 2),
        _ => return None,
    })
}

/// The text of a raw JSON scalar usable as a typed string column: strings
/// (unescaped), numbers and booleans as written. `None` for other values.
fn raw_text<'a>(raw: &'a RawValue) -> Option<Cow<'a, str>> {
    let t = raw.get();
    match t.as_bytes().first()? {
        b'"' => serde_json::from_str::<CowStr<'a>>(t).ok().map(|c| c.0),
        b'-' | b'0'..=b'9' | b't' | b'f' => Some(Cow::Borrowed(t)),
        _ => None,
    }
}

/// One JSON object line, parsed without building a tree: top-level values stay
/// raw JSON text and are copied into `attributes` as they came unless the
/// scrubber's prefilter says they may hold a secret.
fn normalize_object_text(
    n: &Normalizer,
    text: &str,
    ctx: Context<'_>,
) -> Result<Normalized, LineError> {
    let members = serde_json::from_str::<Members<'_>>(text)
        .map_err(|e| LineError {
            code: "invalid_json",
            reason: format!("invalid JSON: {e}"),
        })?
        .0;
    let stdlib =
        members.iter().any(|(k, _)| k == "levelname") && !members.iter().any(|(k, _)| k == "event");
    let scrub = &n.scrubber;
    let mut scrubbed = 0;

    // Pass 1: the best-ranked usable member for each typed column.
    let mut best: [Option<(u8, usize)>; SLOTS] = [None; SLOTS];
    let mut level = None;
    let mut timestamp = None;
    for (i, (k, raw)) in members.iter().enumerate() {
        let Some((slot, rank)) = slot_of(k, stdlib) else {
            continue;
        };
        if scrub.is_sensitive_key(k) {
            continue;
        }
        let usable = match slot {
            Slot::Message => true,
            Slot::Level => raw_text(raw).and_then(|t| Level::parse(&t)).is_some(),
            Slot::Timestamp => parse_raw_timestamp(raw).is_some(),
            _ => raw_text(raw).is_some(),
        };
        if usable && best[slot as usize].is_none_or(|(r, _)| rank < r) {
            best[slot as usize] = Some((rank, i));
        }
    }
    if let Some((_, i)) = best[Slot::Level as usize] {
        level = raw_text(members[i].1).and_then(|t| Level::parse(&t));
    }
    if let Some((_, i)) = best[Slot::Timestamp as usize] {
        timestamp = parse_raw_timestamp(members[i].1);
    }

    // Pass 2: typed columns (scrubbed) and the attributes object.
    let mut typed: [Option<String>; SLOTS] = Default::default();
    let mut attrs = String::with_capacity(text.len());
    attrs.push('{');
    for (i, (k, raw)) in members.iter().enumerate() {
        let slot = slot_of(k, stdlib)
            .map(|(s, _)| s)
            .filter(|s| best[*s as usize].is_some_and(|(_, j)| j == i));
        if let Some(slot) = slot {
            if matches!(slot, Slot::Level | Slot::Timestamp) {
                continue;
            }
            let mut v = match slot {
                Slot::Message => match raw_text(raw) {
                    Some(t) => t.into_owned(),
                    None if raw.get() == "null" => String::new(),
                    None => raw.get().to_string(),
                },
                _ => raw_text(raw).map(Cow::into_owned).unwrap_or_default(),
            };
            scrubbed += scrub.scrub_string_in_place(&mut v);
            typed[slot as usize] = Some(v);
            continue;
        }
        if attrs.len() > 1 {
            attrs.push(',');
        }
        push_json_str(&mut attrs, k);
        attrs.push(':');
        let t = raw.get();
        if scrub.is_sensitive_key(k) {
            if t == "null" {
                attrs.push_str("null");
            } else {
                push_json_str(&mut attrs, crate::scrub::REDACTED);
                scrubbed += 1;
            }
        } else if !scrub.needs_scan(t.as_bytes()) {
            attrs.push_str(t);
        } else {
            // Slow path: parse this one value, scrub it, write it back.
            let mut v: Value = serde_json::from_str(t).map_err(|e| LineError {
                code: "invalid_json",
                reason: format!("invalid JSON in {k:?}: {e}"),
            })?;
            scrubbed += scrub.scrub_value(&mut v);
            attrs.push_str(&v.to_string());
        }
    }
    attrs.push('}');
    // Nested values are kept raw; make sure none is too deep to read back.
    if attrs.len() > 2 && attrs[1..].contains(['{', '[']) {
        check_depth(&attrs)?;
    }

    let take = |typed: &mut [Option<String>; SLOTS], s: Slot| {
        typed[s as usize].take().filter(|v| !v.is_empty())
    };
    let mut exception = take(&mut typed, Slot::Exception);
    if let Some(stack) = take(&mut typed, Slot::Stack) {
        exception = Some(match exception {
            Some(e) => format!("{e}\n{stack}"),
            None => stack,
        });
    }
    let record = LogRecord {
        timestamp_ns: timestamp.unwrap_or(ctx.received_ns),
        received_ns: ctx.received_ns,
        service: take(&mut typed, Slot::Service)
            .or_else(|| ctx.service.map(str::to_string))
            .unwrap_or_else(|| "unknown".into()),
        environment: take(&mut typed, Slot::Environment),
        level: level.unwrap_or(Level::Info),
        message: typed[Slot::Message as usize].take().unwrap_or_default(),
        logger: take(&mut typed, Slot::Logger),
        request_id: take(&mut typed, Slot::RequestId),
        flow_id: take(&mut typed, Slot::FlowId),
        trace_id: take(&mut typed, Slot::TraceId),
        span_id: take(&mut typed, Slot::SpanId),
        user_id: take(&mut typed, Slot::UserId),
        exception,
        host: take(&mut typed, Slot::Host),
        attributes: attrs,
        truncated: false,
    };
    Ok(bound(n, record, scrubbed))
}

fn parse_raw_timestamp(raw: &RawValue) -> Option<i64> {
    let t = raw.get();
    match t.as_bytes().first()? {
        b'"' => serde_json::from_str::<CowStr<'_>>(t)
            .ok()
            .and_then(|s| crate::timefmt::parse_timestamp(&s.0)),
        b'0'..=b'9' => match t.parse::<u64>() {
            Ok(i) => crate::timefmt::epoch_int_to_ns(i),
            Err(_) => t.parse::<f64>().ok().and_then(crate::timefmt::epoch_to_ns),
        },
        _ => None,
    }
}

fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_string()).to_string());
    }
}

/// Rejects attributes nested deeper than the JSON parser's recursion limit
/// (they could not be read back).
fn check_depth(attrs: &str) -> Result<(), LineError> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    for b in attrs.bytes() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > 100 {
                    return Err(LineError {
                        code: "invalid_json",
                        reason: "invalid JSON: nested more than 100 levels deep".into(),
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn take_str(map: &mut Map<String, Value>, keys: &[&str]) -> Option<String> {
    for k in keys {
        if let Some(v) = map.get(*k) {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            map.shift_remove(*k);
            return Some(s);
        }
    }
    None
}

fn empty_none(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A plain-text line; the level comes from a leading level word (`INFO:`,
/// `[ERROR]`, `WARNING `).
pub fn normalize_plain(n: &Normalizer, text: &str, ctx: Context<'_>) -> Normalized {
    let mut message = text.to_string();
    let scrubbed = n.scrubber.scrub_string_in_place(&mut message);
    let record = LogRecord {
        timestamp_ns: ctx.received_ns,
        received_ns: ctx.received_ns,
        service: ctx.service.unwrap_or("unknown").to_string(),
        environment: None,
        level: leading_level(text).unwrap_or(Level::Info),
        message,
        logger: None,
        request_id: None,
        flow_id: None,
        trace_id: None,
        span_id: None,
        user_id: None,
        exception: None,
        host: None,
        attributes: String::new(),
        truncated: false,
    };
    finish(n, record, Map::new(), scrubbed)
}

fn leading_level(text: &str) -> Option<Level> {
    let t = text.trim_start();
    let t = t.strip_prefix('[').unwrap_or(t);
    let end = t
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(t.len());
    if end == 0 || end > 9 {
        return None;
    }
    let (word, rest) = t.split_at(end);
    let ok_sep = rest.is_empty() || rest.starts_with([':', ']', ' ', '\t', '|', '-']);
    if !ok_sep || !word.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Level::parse(word)
}

/// One OTLP log record.
pub fn normalize_otlp(n: &Normalizer, log: OtlpLog, ctx: Context<'_>) -> Normalized {
    let OtlpLog {
        time_unix_nano,
        observed_time_unix_nano,
        severity_number,
        severity_text,
        body,
        event_name,
        mut attributes,
        mut resource,
        scope_name,
        trace_id,
        span_id,
    } = log;
    let mut scrubbed = 0;
    let mut body = body;
    scrubbed += n.scrubber.scrub_value(&mut body);
    let mut attrs_v = Value::Object(std::mem::take(&mut attributes));
    scrubbed += n.scrubber.scrub_value(&mut attrs_v);
    let Value::Object(mut attributes) = attrs_v else {
        unreachable!()
    };
    let mut res_v = Value::Object(std::mem::take(&mut resource));
    scrubbed += n.scrubber.scrub_value(&mut res_v);
    let Value::Object(mut resource) = res_v else {
        unreachable!()
    };

    let ts = [time_unix_nano, observed_time_unix_nano]
        .into_iter()
        .find(|t| *t > 0 && *t < i64::MAX as u64)
        .map(|t| t as i64)
        .unwrap_or(ctx.received_ns);
    let level = Level::from_severity(severity_number)
        .or_else(|| Level::parse(&severity_text))
        .unwrap_or(Level::Info);
    let mut message = value_text(&body);
    if message.is_empty() {
        message = event_name.clone();
    } else if !event_name.is_empty() {
        attributes.insert("event_name".into(), Value::String(event_name));
    }

    let mut exception = None;
    let ex_type = take_str(&mut attributes, &["exception.type"]);
    let ex_msg = take_str(&mut attributes, &["exception.message"]);
    let ex_stack = take_str(&mut attributes, &["exception.stacktrace"]);
    if let Some(stack) = ex_stack {
        exception = Some(stack);
    } else if ex_type.is_some() || ex_msg.is_some() {
        exception = Some(format!(
            "{}: {}",
            ex_type.as_deref().unwrap_or("Exception"),
            ex_msg.as_deref().unwrap_or("")
        ));
    }
    if let Some(e) = take_str(&mut attributes, &["exception", "exc_info"]) {
        exception = Some(e);
    }

    let service = empty_none(take_str(&mut resource, &["service.name"]))
        .or_else(|| ctx.service.map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let environment = empty_none(take_str(
        &mut resource,
        &["deployment.environment.name", "deployment.environment"],
    ))
    .or_else(|| {
        empty_none(take_str(
            &mut attributes,
            &["environment", "deployment.environment"],
        ))
    });
    let host = empty_none(take_str(&mut resource, &["host.name"]));
    let logger = empty_none(take_str(
        &mut attributes,
        &["logger", "logger_name", "code.namespace.logger"],
    ))
    .or_else(|| empty_none(Some(scope_name)));
    let record = LogRecord {
        timestamp_ns: ts,
        received_ns: ctx.received_ns,
        service,
        environment,
        level,
        message,
        logger,
        request_id: empty_none(take_str(
            &mut attributes,
            &[
                "request_id",
                "http.request.header.x-request-id",
                "requestId",
            ],
        )),
        flow_id: empty_none(take_str(&mut attributes, &["flow_id"])),
        trace_id: empty_none(Some(trace_id))
            .or_else(|| empty_none(take_str(&mut attributes, &["trace_id"]))),
        span_id: empty_none(Some(span_id))
            .or_else(|| empty_none(take_str(&mut attributes, &["span_id"]))),
        user_id: empty_none(take_str(
            &mut attributes,
            &["user_id", "enduser.id", "user.id"],
        )),
        exception,
        host,
        attributes: String::new(),
        truncated: false,
    };
    if !resource.is_empty() {
        attributes.insert("resource".into(), Value::Object(resource));
    }
    finish(n, record, attributes, scrubbed)
}

/// Serializes the leftover keys and enforces the record size limit.
fn finish(
    n: &Normalizer,
    mut record: LogRecord,
    attrs: Map<String, Value>,
    scrubbed: usize,
) -> Normalized {
    record.attributes = if attrs.is_empty() {
        "{}".into()
    } else {
        Value::Object(attrs).to_string()
    };
    bound(n, record, scrubbed)
}

/// Enforces the record size limit: over it, the largest parts are cut until
/// the record fits, and the record is marked `truncated`.
fn bound(n: &Normalizer, mut record: LogRecord, scrubbed: usize) -> Normalized {
    if record.approx_bytes() <= n.max_record_bytes {
        return (record, scrubbed);
    }
    let mut attrs: Map<String, Value> =
        serde_json::from_str(&record.attributes).unwrap_or_default();
    record.truncated = true;
    let budget = n.max_record_bytes;
    let share = budget / 4;
    for (_, v) in attrs.iter_mut() {
        let text = v.to_string();
        if text.len() > share / 4 {
            *v = Value::String(format!("{}…", cut(&text, share / 4)));
        }
    }
    record.attributes = Value::Object(attrs).to_string();
    if record.attributes.len() > share {
        record.attributes =
            serde_json::json!({ "_truncated": cut(&record.attributes, share) }).to_string();
    }
    for field in [
        &mut record.exception,
        &mut record.host,
        &mut record.logger,
        &mut record.environment,
    ] {
        if let Some(s) = field {
            if s.len() > share {
                *s = cut(s, share).to_string();
            }
        }
    }
    for id in [
        &mut record.request_id,
        &mut record.flow_id,
        &mut record.trace_id,
        &mut record.span_id,
        &mut record.user_id,
    ] {
        if let Some(s) = id {
            if s.len() > 1024 {
                *s = cut(s, 1024).to_string();
            }
        }
    }
    if record.service.len() > 256 {
        record.service = cut(&record.service, 256).to_string();
    }
    if record.message.len() > share {
        record.message = cut(&record.message, share).to_string();
    }
    (record, scrubbed)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrub::ScrubConfig;

    fn n() -> Normalizer {
        Normalizer::new(
            Scrubber::new(&ScrubConfig::default()),
            DEFAULT_MAX_RECORD_BYTES,
        )
    }
    const CTX: Context<'static> = Context {
        service: Some("api"),
        received_ns: 1_000,
    };

    #[test]
    fn stdlib_json_formatter() {
        let (r, _) = n()
            .line(br#"{"asctime": "2026-11-25 16:43:06,616", "levelname": "WARNING", "name": "app.db", "message": "slow query", "duration_ms": 812}"#, CTX)
            .unwrap();
        assert_eq!(r.level, Level::Warning);
        assert_eq!(r.logger.as_deref(), Some("app.db"));
        assert_eq!(r.message, "slow query");
        assert_eq!(
            crate::timefmt::format_rfc3339_nanos(r.timestamp_ns),
            "2026-11-25T16:43:06.616000000Z"
        );
        assert_eq!(r.attributes, r#"{"duration_ms":812}"#);
    }

    #[test]
    fn plain_text_levels() {
        let nn = n();
        let lvl = |s: &str| nn.line(s.as_bytes(), CTX).unwrap().0.level;
        assert_eq!(
            lvl(r#"INFO:     127.0.0.1:52670 - "POST /x HTTP/1.1" 200 OK"#),
            Level::Info
        );
        assert_eq!(lvl("ERROR: boom"), Level::Error);
        assert_eq!(lvl("[WARNING] disk"), Level::Warning);
        assert_eq!(lvl("Errors are fine here"), Level::Info);
        assert_eq!(lvl("Traceback (most recent call last):"), Level::Info);
    }

    #[test]
    fn bad_lines_are_errors() {
        let nn = n();
        assert_eq!(
            nn.line(b"{\"event\": ", CTX).unwrap_err().code,
            "invalid_json"
        );
        assert_eq!(
            nn.line(b"\xff\xfe hi", CTX).unwrap_err().code,
            "invalid_utf8"
        );
    }

    #[test]
    fn oversized_records_are_truncated_and_marked() {
        let nn = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 4096);
        let big = "x".repeat(100_000);
        let line = serde_json::json!({"event": big, "blob": big, "request_id": "r1"}).to_string();
        let (r, _) = nn.line(line.as_bytes(), CTX).unwrap();
        assert!(r.truncated);
        assert!(r.approx_bytes() <= 4096 + 64, "{}", r.approx_bytes());
        assert_eq!(r.request_id.as_deref(), Some("r1"));
        assert!(serde_json::from_str::<Value>(&r.attributes).is_ok());
    }

    #[test]
    fn raw_members_are_kept_verbatim_unless_they_may_hold_secrets() {
        let (r, n) = n()
            .line(
                br#"{"event": "e", "n": 1.50, "nested": {"user": {"Password": "x"}, "ok": [1, 2]}, "hidden": "pass\u0077ord=hunter2", "dup": 1, "dup": 2, "level": "LOUD"}"#,
                CTX,
            )
            .unwrap();
        assert_eq!(n, 2);
        let v: Value = serde_json::from_str(&r.attributes).unwrap();
        assert_eq!(v["nested"]["user"]["Password"], "[REDACTED]");
        assert_eq!(v["nested"]["ok"], serde_json::json!([1, 2]));
        assert_eq!(v["hidden"], "password=[REDACTED]");
        assert_eq!(v["dup"], 2);
        assert!(
            r.attributes.contains("\"n\":1.50"),
            "numbers are kept as written: {}",
            r.attributes
        );
        assert_eq!(v["level"], "LOUD", "an unparsable level stays an attribute");
        assert_eq!(r.level, Level::Info);
    }

    #[test]
    fn too_deep_is_rejected() {
        let deep = format!(
            "{{\"event\":\"x\",\"a\":{}1{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            n().line(deep.as_bytes(), CTX).unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn secrets_are_scrubbed_before_extraction() {
        let (r, n) = n()
            .line(br#"{"event": "login password=hunter2", "password": "hunter2", "token": "abc", "request_id": "r"}"#, CTX)
            .unwrap();
        assert!(!r.message.contains("hunter2"));
        assert!(!r.attributes.contains("hunter2") && !r.attributes.contains("abc"));
        assert_eq!(n, 3);
    }
}
