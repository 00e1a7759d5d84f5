//! Sentry envelopes (`POST /api/{project}/envelope/`): a JSON header line, then
//! items, each a JSON header line and a payload of `length` bytes, or up to the
//! next newline (or the end) when the header has no `length`. Payloads are
//! borrowed from the body; unknown item types are kept for the caller to skip.

use serde_json::{Map, Value};

/// Most items one envelope may hold.
pub const MAX_ITEMS: usize = 10_000;

/// One item: its header and its payload bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    /// `type` from the header (`event`, `transaction`, `attachment`, `log`, …).
    pub kind: String,
    /// The whole header object (`length`, `content_type`, `filename`, …).
    pub header: Map<String, Value>,
    pub payload: &'a [u8],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    /// The envelope header (`event_id`, `dsn`, `sent_at`, `sdk`, `trace`, …).
    pub header: Map<String, Value>,
    pub items: Vec<Item<'a>>,
}

impl Envelope<'_> {
    /// The envelope header's `event_id`, when it has one.
    pub fn event_id(&self) -> Option<&str> {
        self.header.get("event_id").and_then(Value::as_str)
    }

    /// The envelope header's `dsn` (an auth source when no other is given).
    pub fn dsn(&self) -> Option<&str> {
        self.header.get("dsn").and_then(Value::as_str)
    }
}

/// Why an envelope was refused; the message names the part that is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("empty envelope")]
    Empty,
    #[error("envelope header is not a JSON object: {0}")]
    Header(String),
    #[error("item {index}: header is not a JSON object: {reason}")]
    ItemHeader { index: usize, reason: String },
    #[error("item {index}: header has no string \"type\"")]
    MissingType { index: usize },
    #[error("item {index}: \"length\" must be a non-negative integer")]
    BadLength { index: usize },
    #[error("item {index}: \"length\" is {length} bytes but only {available} remain")]
    Truncated {
        index: usize,
        length: u64,
        available: usize,
    },
    #[error("item {index}: payload of {length} bytes is not followed by a newline")]
    NoNewlineAfterPayload { index: usize, length: u64 },
    #[error("more than {MAX_ITEMS} items")]
    TooManyItems,
}

/// The next line of `body` from `pos` (without its `\n`) and where the rest starts.
fn line(body: &[u8], pos: usize) -> (&[u8], usize) {
    match memchr::memchr(b'\n', &body[pos..]) {
        Some(i) => (&body[pos..pos + i], pos + i + 1),
        None => (&body[pos..], body.len()),
    }
}

fn object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "expected an object, found {}",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => unreachable!(),
            }
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses an envelope (already decompressed).
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(EnvelopeError::Empty);
    }
    let (head, mut pos) = line(body, 0);
    let header = object(head).map_err(EnvelopeError::Header)?;
    let mut items = Vec::new();
    while pos < body.len() {
        // 1-based, as people count them in error messages.
        let index = items.len() + 1;
        let (h, after) = line(body, pos);
        if h.is_empty() || h == b"\r" {
            // Blank lines between or after items carry nothing.
            pos = after;
            continue;
        }
        if items.len() >= MAX_ITEMS {
            return Err(EnvelopeError::TooManyItems);
        }
        let ih = object(h).map_err(|reason| EnvelopeError::ItemHeader { index, reason })?;
        let kind = match ih.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err(EnvelopeError::MissingType { index }),
        };
        pos = after;
        let payload = match ih.get("length") {
            None | Some(Value::Null) => {
                let (p, next) = line(body, pos);
                pos = next;
                p
            }
            Some(v) => {
                let length = v.as_u64().ok_or(EnvelopeError::BadLength { index })?;
                let available = body.len() - pos;
                if length > available as u64 {
                    return Err(EnvelopeError::Truncated {
                        index,
                        length,
                        available,
                    });
                }
                let p = &body[pos..pos + length as usize];
                pos += length as usize;
                match body.get(pos) {
                    None => {}
                    Some(b'\n') => pos += 1,
                    Some(b'\r') if body.get(pos + 1) == Some(&b'\n') => pos += 2,
                    Some(_) => return Err(EnvelopeError::NoNewlineAfterPayload { index, length }),
                }
                p
            }
        };
        items.push(Item {
            kind,
            header: ih,
            payload,
        });
    }
    Ok(Envelope { header, items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_and_without_length() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://e12d836b15bb49d7bbf99e64295d995b@sentry.io/42\"}\n\
{\"type\":\"attachment\",\"length\":10,\"content_type\":\"text/plain\",\"filename\":\"hello.txt\"}\n\
\xef\xbb\xbfHello\r\n\n\
{\"type\":\"event\",\"length\":41,\"content_type\":\"application/json\",\"filename\":\"application.log\"}\n\
{\"message\":\"hello world\",\"level\":\"error\"}\n\
{\"type\":\"session\"}\n\
{\"started\": \"2020-02-07T14:16:00Z\",\"attrs\":{\"release\":\"sentry-test@1.0.0\"}}";
        let e = parse(body).unwrap();
        assert_eq!(e.event_id(), Some("9ec79c33ec9942ab8353589fcb2e04dc"));
        assert!(e.dsn().unwrap().contains("sentry.io/42"));
        let kinds: Vec<&str> = e.items.iter().map(|i| i.kind.as_str()).collect();
        assert_eq!(kinds, ["attachment", "event", "session"]);
        assert_eq!(e.items[0].payload, b"\xef\xbb\xbfHello\r\n");
        assert_eq!(
            e.items[1].payload,
            b"{\"message\":\"hello world\",\"level\":\"error\"}"
        );
        assert!(e.items[2].payload.ends_with(b"}}"));
    }

    #[test]
    fn empty_payloads_and_trailing_newlines() {
        let e =
            parse(b"{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"x\"}\n\n").unwrap();
        assert_eq!(e.items.len(), 2);
        assert_eq!(e.items[0].payload, b"");
        assert_eq!(e.items[1].payload, b"");
        assert_eq!(parse(b"{}").unwrap().items.len(), 0);
        assert_eq!(parse(b"{}\n").unwrap().items.len(), 0);
        // A payload with a length may end the body without a newline.
        let e = parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}").unwrap();
        assert_eq!(e.items[0].payload, b"{}");
    }

    #[test]
    fn malformed_envelopes_say_what() {
        let err = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert_eq!(err(b""), "empty envelope");
        assert!(err(b"not json\n").starts_with("envelope header is not a JSON object"));
        assert!(err(b"[1]\n").contains("found an array"));
        assert!(err(b"{}\n{\"length\":1}\nx").contains("item 1: header has no string \"type\""));
        assert!(err(b"{}\n{\"type\":\"event\",\"length\":-1}\nx").contains("non-negative"));
        assert!(err(b"{}\n{\"type\":\"event\",\"length\":1e3}\nx").contains("non-negative"));
        assert!(err(b"{}\n{\"type\":\"event\",\"length\":100}\n{}").contains("only 2 remain"));
        assert!(
            err(b"{}\n{\"type\":\"event\",\"length\":1}\n{}").contains("not followed by a newline")
        );
        assert!(err(b"{}\n{\"type\":\"event\"}\nx\n{oops")
            .contains("item 2: header is not a JSON object"));
        assert!(
            err(b"{}\n{\"type\":\"event\",\"length\":18446744073709551615}\n").contains("remain")
        );
        let deep = format!("{{}}\n{}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(err(deep.as_bytes()).contains("item 1"));
        let many = format!(
            "{{}}\n{}",
            "{\"type\":\"x\",\"length\":0}\n\n".repeat(MAX_ITEMS + 1)
        );
        assert_eq!(err(many.as_bytes()), format!("more than {MAX_ITEMS} items"));
    }
}
