//! Normalizing error events and transactions, leniently as Sentry does:
//! timestamps as RFC 3339 or float, `exception`/`breadcrumbs`/`tags` in either
//! of their shapes, levels, event ids; scrubbing request data, headers,
//! cookies, frame vars, extra, breadcrumb data and `user.ip_address`; unknown
//! fields kept as they are.

use super::grouping;
use super::{EventRow, ItemContext, TransactionRow};
use crate::scrub::Scrubber;
use crate::timefmt;
use serde_json::{Map, Value};

/// Why an item was not stored (becomes part of a 400 answer or a dropped item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError(pub String);

impl std::fmt::Display for ItemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const MAX_TAG_KEY: usize = 200;
const MAX_TAG_VALUE: usize = 200;

pub(crate) fn parse_object(payload: &[u8], what: &str) -> Result<Map<String, Value>, ItemError> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ItemError(format!("{what} is not a JSON object"))),
        Err(e) => Err(ItemError(format!("{what} is not valid JSON: {e}"))),
    }
}

/// A 32-hex-digit id (dashes removed, lowercased), or None.
pub fn clean_event_id(s: &str) -> Option<String> {
    let id: String = s
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// Seconds as a float, a numeric string, or RFC 3339 → nanoseconds.
pub fn timestamp_ns(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_f64().and_then(timefmt::epoch_to_ns),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(timefmt::epoch_to_ns)
            .or_else(|| timefmt::parse_timestamp(s.trim())),
        _ => None,
    }
}

fn level(v: Option<&Value>) -> String {
    let l = v.and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
    match l.as_str() {
        "fatal" | "critical" => "fatal",
        "error" | "err" => "error",
        "warning" | "warn" => "warning",
        "info" | "log" => "info",
        "debug" | "trace" => "debug",
        _ => "error",
    }
    .to_string()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut i = max;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
    s
}

fn str_field(ev: &Map<String, Value>, k: &str) -> Option<String> {
    match ev.get(k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `tags` as an object or a list of pairs → an object of strings.
fn normalize_tags(ev: &mut Map<String, Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    match ev.get("tags") {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                out.push((k.clone(), text(v)));
            }
        }
        Some(Value::Array(a)) => {
            for p in a {
                if let Some([k, v]) = p.as_array().map(Vec::as_slice) {
                    out.push((text(k), text(v)));
                }
            }
        }
        _ => {}
    }
    out.retain(|(k, _)| !k.is_empty());
    for (k, v) in out.iter_mut() {
        *k = cut(std::mem::take(k), MAX_TAG_KEY);
        *v = cut(std::mem::take(v), MAX_TAG_VALUE);
    }
    if ev.contains_key("tags") {
        ev.insert(
            "tags".into(),
            Value::Object(
                out.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    out
}

/// `x` or `{"values": x}` → `{"values": x}` (exception, breadcrumbs, threads).
fn values_shape(ev: &mut Map<String, Value>, key: &str) {
    if let Some(v) = ev.get_mut(key) {
        if v.is_array() {
            *v = serde_json::json!({ "values": v.take() });
        } else if !v.get("values").is_some_and(Value::is_array) {
            if v.is_object() && v.get("values").is_none() && key == "exception" {
                // A single exception object.
                *v = serde_json::json!({ "values": [v.take()] });
            } else {
                ev.remove(key);
            }
        }
    }
}

fn normalize_exception(ev: &mut Map<String, Value>, scrubber: &Scrubber) -> usize {
    let mut scrubbed = 0;
    values_shape(ev, "exception");
    let Some(values) = ev
        .get_mut("exception")
        .and_then(|e| e.get_mut("values"))
        .and_then(Value::as_array_mut)
    else {
        return 0;
    };
    values.retain(Value::is_object);
    for e in values.iter_mut() {
        let e = e.as_object_mut().expect("retained objects");
        if let Some(v) = e.get_mut("value") {
            if !v.is_string() && !v.is_null() {
                *v = Value::String(text(v));
            }
        }
        if let Some(Value::Array(frames)) =
            e.get_mut("stacktrace").and_then(|s| s.get_mut("frames"))
        {
            frames.retain(Value::is_object);
            for f in frames.iter_mut() {
                let f = f.as_object_mut().expect("retained objects");
                if let Some(ia) = f.get("in_app") {
                    let b = match ia {
                        Value::Bool(b) => *b,
                        Value::String(s) => s == "true" || s == "1",
                        Value::Number(n) => n.as_i64() == Some(1),
                        _ => false,
                    };
                    f.insert("in_app".into(), Value::Bool(b));
                }
                if let Some(vars) = f.get_mut("vars") {
                    scrubbed += scrubber.scrub_value(vars);
                }
            }
        }
    }
    scrubbed
}

/// `message` as a string or an object, and `logentry` → `logentry` object with
/// `formatted` (and `message` as its formatted string).
fn normalize_message(ev: &mut Map<String, Value>) {
    if let Some(m) = ev.get("message").cloned() {
        if let Value::Object(o) = &m {
            if !ev.contains_key("logentry") {
                ev.insert("logentry".into(), Value::Object(o.clone()));
            }
        }
    }
    if let Some(le) = ev.get_mut("logentry").and_then(Value::as_object_mut) {
        if !le.contains_key("formatted") {
            if let Some(m) = le.get("message").cloned() {
                le.insert("formatted".into(), m);
            }
        }
    }
    let formatted = ev
        .get("logentry")
        .and_then(|l| l.get("formatted"))
        .and_then(Value::as_str)
        .map(String::from);
    match (ev.get("message"), formatted) {
        (Some(Value::String(_)), _) => {}
        (_, Some(f)) => {
            ev.insert("message".into(), Value::String(f));
        }
        (Some(_), None) => {
            ev.remove("message");
        }
        _ => {}
    }
}

/// Scrubs what Sentry's data scrubbing covers, and the user's IP unless kept.
fn scrub_event(ev: &mut Map<String, Value>, ctx: &ItemContext<'_>, scrubber: &Scrubber) -> usize {
    let mut n = 0;
    for key in ["request", "extra"] {
        if let Some(v) = ev.get_mut(key) {
            n += scrubber.scrub_value(v);
        }
    }
    values_shape(ev, "breadcrumbs");
    if let Some(Value::Array(crumbs)) = ev.get_mut("breadcrumbs").and_then(|b| b.get_mut("values"))
    {
        for c in crumbs.iter_mut() {
            if let Some(d) = c.get_mut("data") {
                n += scrubber.scrub_value(d);
            }
            if let Some(Value::String(m)) = c.get_mut("message") {
                n += scrubber.scrub_string_in_place(m);
            }
        }
    }
    if let Some(user) = ev.get_mut("user").and_then(Value::as_object_mut) {
        let ip = user
            .get("ip_address")
            .and_then(Value::as_str)
            .map(String::from);
        match ip {
            Some(ip) if ctx.keep_ip => {
                if ip == "{{auto}}" {
                    match ctx.client_ip {
                        Some(c) => {
                            user.insert("ip_address".into(), Value::String(c.into()));
                        }
                        None => {
                            user.remove("ip_address");
                        }
                    }
                }
            }
            Some(_) => {
                user.remove("ip_address");
                n += 1;
            }
            None => {}
        }
        for (k, v) in user.iter_mut() {
            if !matches!(k.as_str(), "id" | "email" | "username" | "ip_address") {
                n += scrubber.scrub_value(v);
            }
        }
    } else if ev.get("user").is_some() {
        ev.remove("user");
    }
    n
}

fn user_key(ev: &Map<String, Value>) -> Option<String> {
    let u = ev.get("user")?.as_object()?;
    for (k, label) in [
        ("id", "id"),
        ("email", "email"),
        ("username", "username"),
        ("ip_address", "ip"),
    ] {
        if let Some(v) = u.get(k) {
            let t = text(v);
            if !t.is_empty() {
                return Some(cut(format!("{label}:{t}"), 256));
            }
        }
    }
    None
}

fn trace_ids(ev: &Map<String, Value>) -> (Option<String>, Option<String>) {
    let t = ev.get("contexts").and_then(|c| c.get("trace"));
    let get = |k| {
        t.and_then(|t| t.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_ascii_lowercase())
    };
    (get("trace_id"), get("span_id"))
}

/// The request id an app tagged (tag `request_id`), else `extra.request_id`,
/// else the request's `X-Request-ID` header.
fn request_id(ev: &Map<String, Value>, tags: &[(String, String)]) -> Option<String> {
    if let Some((_, v)) = tags
        .iter()
        .find(|(k, _)| k == "request_id" || k == "request.id")
    {
        return Some(v.clone()).filter(|v| !v.is_empty());
    }
    if let Some(v) = ev.get("extra").and_then(|e| e.get("request_id")) {
        let t = text(v);
        if !t.is_empty() {
            return Some(t);
        }
    }
    let headers = ev.get("request")?.get("headers")?;
    let from_pairs = |k: &str, v: &Value| -> Option<String> {
        k.eq_ignore_ascii_case("x-request-id")
            .then(|| text(v))
            .filter(|v| !v.is_empty() && v != crate::scrub::REDACTED)
    };
    match headers {
        Value::Object(m) => m.iter().find_map(|(k, v)| from_pairs(k, v)),
        Value::Array(a) => a
            .iter()
            .find_map(|p| match p.as_array().map(Vec::as_slice) {
                Some([k, v]) => from_pairs(k.as_str().unwrap_or(""), v),
                _ => None,
            }),
        _ => None,
    }
}

fn event_id(ev: &Map<String, Value>, ctx: &ItemContext<'_>) -> String {
    ev.get("event_id")
        .and_then(Value::as_str)
        .and_then(clean_event_id)
        .or_else(|| ctx.envelope_event_id.and_then(clean_event_id))
        .unwrap_or_else(|| ctx.fallback_event_id.to_string())
}

/// Normalizes, scrubs and groups one error/message event. Returns the row and
/// the number of values scrubbed.
pub fn normalize_event(
    payload: &[u8],
    ctx: &ItemContext<'_>,
    scrubber: &Scrubber,
) -> Result<(EventRow, usize), ItemError> {
    if payload.len() > ctx.max_item_bytes {
        return Err(ItemError(format!(
            "event of {} bytes is over the limit of {} bytes",
            payload.len(),
            ctx.max_item_bytes
        )));
    }
    let mut ev = parse_object(payload, "event")?;
    let id = event_id(&ev, ctx);
    ev.insert("event_id".into(), Value::String(id.clone()));
    let ts = timestamp_ns(ev.get("timestamp")).unwrap_or(ctx.received_ns);
    ev.insert(
        "timestamp".into(),
        Value::String(timefmt::format_rfc3339_nanos(ts)),
    );
    ev.insert(
        "received".into(),
        Value::String(timefmt::format_rfc3339_nanos(ctx.received_ns)),
    );
    let lvl = level(ev.get("level"));
    ev.insert("level".into(), Value::String(lvl.clone()));
    if !ev.get("platform").is_some_and(Value::is_string) {
        ev.insert("platform".into(), Value::String("other".into()));
    }
    let mut scrubbed = normalize_exception(&mut ev, scrubber);
    values_shape(&mut ev, "threads");
    normalize_message(&mut ev);
    let mut tags = normalize_tags(&mut ev);
    scrubbed += scrub_event(&mut ev, ctx, scrubber);
    if !ev.get("contexts").is_none_or(Value::is_object) {
        ev.remove("contexts");
    }
    if let Some(Value::Object(c)) = ev.get_mut("contexts") {
        for v in c.values_mut() {
            if v.is_object() {
                scrubbed += scrubber.scrub_value(v);
            }
        }
    }

    let g = grouping::group(&ev);
    let title = grouping::title(&ev);
    let culprit = grouping::culprit(&ev);
    let last_exc = grouping::exceptions(&ev).last();
    let exc_type = last_exc
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .map(String::from);
    let exc_value = last_exc
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(|v| cut(v.to_string(), 1024));
    ev.insert(
        "grouping".into(),
        serde_json::json!({
            "version": grouping::GROUPING_VERSION,
            "variant": g.variant,
            "hash": g.hash,
            "components": g.components,
        }),
    );
    ev.insert("title".into(), Value::String(title.clone()));
    ev.insert("culprit".into(), Value::String(culprit.clone()));

    let release = str_field(&ev, "release");
    let environment = str_field(&ev, "environment");
    let (trace_id, span_id) = trace_ids(&ev);
    let request_id = request_id(&ev, &tags);
    let user_key = user_key(&ev);
    for (k, v) in [
        ("level", Some(lvl.clone())),
        ("environment", environment.clone()),
        ("release", release.clone()),
        ("server_name", str_field(&ev, "server_name")),
        ("transaction", str_field(&ev, "transaction")),
        ("user", user_key.clone()),
    ] {
        if let Some(v) = v {
            if !tags.iter().any(|(tk, _)| tk == k) {
                tags.push((k.to_string(), cut(v, MAX_TAG_VALUE)));
            }
        }
    }
    let body = serde_json::to_vec(&Value::Object(ev)).map_err(|e| ItemError(e.to_string()))?;
    Ok((
        EventRow {
            event_id: id,
            project_id: ctx.project_id,
            timestamp_ns: ts,
            received_ns: ctx.received_ns,
            level: lvl,
            title,
            culprit,
            exc_type,
            exc_value,
            fingerprint: g.hash,
            grouping_variant: g.variant.to_string(),
            grouping_version: grouping::GROUPING_VERSION.to_string(),
            release,
            environment,
            request_id,
            trace_id,
            span_id,
            user_key,
            tags,
            body,
        },
        scrubbed,
    ))
}

/// Normalizes and scrubs a transaction (kept whole with its spans).
pub fn normalize_transaction(
    payload: &[u8],
    ctx: &ItemContext<'_>,
    scrubber: &Scrubber,
) -> Result<(TransactionRow, usize), ItemError> {
    if payload.len() > ctx.max_item_bytes {
        return Err(ItemError(format!(
            "transaction of {} bytes is over the limit of {} bytes",
            payload.len(),
            ctx.max_item_bytes
        )));
    }
    let mut ev = parse_object(payload, "transaction")?;
    let id = event_id(&ev, ctx);
    ev.insert("event_id".into(), Value::String(id.clone()));
    let end = timestamp_ns(ev.get("timestamp")).unwrap_or(ctx.received_ns);
    let start = timestamp_ns(ev.get("start_timestamp"))
        .unwrap_or(end)
        .min(end);
    ev.insert(
        "timestamp".into(),
        Value::String(timefmt::format_rfc3339_nanos(end)),
    );
    ev.insert(
        "start_timestamp".into(),
        Value::String(timefmt::format_rfc3339_nanos(start)),
    );
    let tags = normalize_tags(&mut ev);
    let mut scrubbed = scrub_event(&mut ev, ctx, scrubber);
    if let Some(Value::Array(spans)) = ev.get_mut("spans") {
        for s in spans.iter_mut() {
            if let Some(d) = s.get_mut("data") {
                scrubbed += scrubber.scrub_value(d);
            }
        }
    }
    let (trace_id, span_id) = trace_ids(&ev);
    let trace = ev.get("contexts").and_then(|c| c.get("trace"));
    let op = trace
        .and_then(|t| t.get("op"))
        .and_then(Value::as_str)
        .map(String::from);
    let status = trace
        .and_then(|t| t.get("status"))
        .and_then(Value::as_str)
        .map(String::from);
    let row = TransactionRow {
        event_id: id,
        project_id: ctx.project_id,
        start_ns: start,
        end_ns: end,
        name: str_field(&ev, "transaction").unwrap_or_else(|| "<unlabeled transaction>".into()),
        op,
        status,
        trace_id,
        span_id,
        request_id: request_id(&ev, &tags),
        release: str_field(&ev, "release"),
        environment: str_field(&ev, "environment"),
        body: Vec::new(),
    };
    let body = serde_json::to_vec(&Value::Object(ev)).map_err(|e| ItemError(e.to_string()))?;
    Ok((TransactionRow { body, ..row }, scrubbed))
}
