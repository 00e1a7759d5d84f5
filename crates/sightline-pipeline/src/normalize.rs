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
use serde_json::{Map, Value};
use sightline_protocol::OtlpLog;

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
        let value: Value = serde_json::from_str(trimmed).map_err(|e| LineError {
            code: "invalid_json",
            reason: format!("invalid JSON: {e}"),
        })?;
        match value {
            Value::Object(map) => Ok(normalize_json(n, map, ctx)),
            _ => unreachable!("a JSON text starting with '{{' is an object"),
        }
    } else {
        Ok(normalize_plain(n, text.trim_end(), ctx))
    }
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

/// A structlog / stdlib JSON object.
pub fn normalize_json(n: &Normalizer, mut map: Map<String, Value>, ctx: Context<'_>) -> Normalized {
    let mut scrubbed = 0;
    for (k, v) in map.iter_mut() {
        if n.scrubber.is_sensitive_key(k) {
            if !v.is_null() {
                *v = Value::String(crate::scrub::REDACTED.into());
                scrubbed += 1;
            }
        } else {
            scrubbed += n.scrubber.scrub_value(v);
        }
    }
    let stdlib = map.contains_key("levelname") && !map.contains_key("event");

    let message = ["event", "message", "msg"]
        .iter()
        .find_map(|k| map.shift_remove(*k).map(|v| value_text(&v)))
        .unwrap_or_default();

    let mut level = None;
    for k in ["level", "levelname", "severity", "loglevel", "log.level"] {
        if let Some(Value::String(s)) = map.get(k) {
            if let Some(l) = Level::parse(s) {
                level = Some(l);
                map.shift_remove(k);
                break;
            }
        }
    }

    let mut timestamp = None;
    for k in [
        "timestamp",
        "time",
        "ts",
        "@timestamp",
        "asctime",
        "datetime",
    ] {
        let parsed = match map.get(k) {
            Some(Value::String(s)) => crate::timefmt::parse_timestamp(s),
            Some(Value::Number(num)) => match num.as_u64() {
                Some(i) => crate::timefmt::epoch_int_to_ns(i),
                None => num.as_f64().and_then(crate::timefmt::epoch_to_ns),
            },
            _ => None,
        };
        if parsed.is_some() {
            timestamp = parsed;
            map.shift_remove(k);
            break;
        }
    }

    let logger_keys: &[&str] = if stdlib {
        &["logger", "logger_name", "name"]
    } else {
        &["logger", "logger_name"]
    };
    let logger = take_str(&mut map, logger_keys);
    let mut exception = take_str(
        &mut map,
        &["exception", "exc_info", "exc_text", "traceback"],
    );
    if let Some(stack) = take_str(&mut map, &["stack", "stack_info"]) {
        exception = Some(match exception {
            Some(e) => format!("{e}\n{stack}"),
            None => stack,
        });
    }
    let record = LogRecord {
        timestamp_ns: timestamp.unwrap_or(ctx.received_ns),
        received_ns: ctx.received_ns,
        service: empty_none(take_str(
            &mut map,
            &["service", "service_name", "service.name"],
        ))
        .or_else(|| ctx.service.map(str::to_string))
        .unwrap_or_else(|| "unknown".into()),
        environment: empty_none(take_str(
            &mut map,
            &["environment", "env", "deployment.environment"],
        )),
        level: level.unwrap_or(Level::Info),
        message,
        logger: empty_none(logger),
        request_id: empty_none(take_str(
            &mut map,
            &["request_id", "requestId", "req_id", "x_request_id"],
        )),
        flow_id: empty_none(take_str(&mut map, &["flow_id", "flowId"])),
        trace_id: empty_none(take_str(&mut map, &["trace_id", "traceId", "otelTraceID"])),
        span_id: empty_none(take_str(&mut map, &["span_id", "spanId", "otelSpanID"])),
        user_id: empty_none(take_str(&mut map, &["user_id", "userId"])),
        exception: empty_none(exception),
        host: empty_none(take_str(&mut map, &["host", "hostname", "host.name"])),
        attributes: String::new(),
        truncated: false,
    };
    finish(n, record, map, scrubbed)
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
    mut attrs: Map<String, Value>,
    scrubbed: usize,
) -> Normalized {
    record.attributes = if attrs.is_empty() {
        "{}".into()
    } else {
        Value::Object(attrs.clone()).to_string()
    };
    if record.approx_bytes() <= n.max_record_bytes {
        return (record, scrubbed);
    }
    // Over the limit: cut the largest parts until it fits, and say so.
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
    fn secrets_are_scrubbed_before_extraction() {
        let (r, n) = n()
            .line(br#"{"event": "login password=hunter2", "password": "hunter2", "token": "abc", "request_id": "r"}"#, CTX)
            .unwrap();
        assert!(!r.message.contains("hunter2"));
        assert!(!r.attributes.contains("hunter2") && !r.attributes.contains("abc"));
        assert_eq!(n, 3);
    }
}
