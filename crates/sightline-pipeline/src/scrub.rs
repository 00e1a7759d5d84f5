//! Server-side scrubbing, applied before anything reaches the write-ahead log.
//!
//! Two passes, as Sentry Relay does it: values under sensitive *keys* (matched as
//! case-insensitive substrings of the key, at any depth) become `[REDACTED]`, and
//! sensitive *patterns* are masked inside every string whatever its key: bearer
//! tokens, credit-card numbers (Luhn-checked), `scheme://user:pass@` credentials,
//! PEM private keys, and `password=…`-style pairs inside free text.

use aho_corasick::AhoCorasick;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

pub const REDACTED: &str = "[REDACTED]";

/// Substrings of key names whose values are always redacted: the union of Sentry
/// Relay's `@password` rule and sentry-sdk's `DEFAULT_DENYLIST`.
pub const DEFAULT_SENSITIVE_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "auth",
    "credential",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "private-key",
    "token",
    "session",
    "csrf",
    "xsrf",
    "cookie",
    "phpsessid",
    "connect.sid",
    "x_forwarded_for",
    "x-forwarded-for",
    "symfony",
    "passphrase",
    "card_number",
];

/// Keys under which values are kept even though they contain a sensitive
/// substring: they are the join ids Sightline exists to index, or are known not to
/// carry secrets.
pub const DEFAULT_EXCLUDED_KEYS: &[&str] = &[
    "author",
    "authority",
    "tokens_used",
    "token_count",
    "session_count",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrubConfig {
    /// More key substrings to redact.
    pub extra_keys: Vec<String>,
    /// Exact key names (case-insensitive) never redacted by key.
    pub exclude_keys: Vec<String>,
}

/// Words whose presence in a string means a value pattern may match; strings
/// without any of them (and with fewer than 13 digits, and no `\u` escapes)
/// are skipped without running a single regex.
const VALUE_TRIGGERS: &[&str] = &[
    "bearer",
    "basic",
    "token",
    "://",
    "private key",
    "authorization",
    "password",
    "passwd",
    "pwd",
    "secret",
    "api_key",
    "api-key",
    "apikey",
    "access_token",
    "access-token",
    "client_secret",
    "client-secret",
    "refresh",
];

#[derive(Debug)]
pub struct Scrubber {
    /// Sensitive key substrings, ASCII case-insensitive.
    keys: AhoCorasick,
    exclude: Vec<String>,
    /// Sensitive key substrings plus value-pattern triggers: one pass decides
    /// whether a string or a raw JSON value needs a closer look.
    triggers: AhoCorasick,
    bearer: Regex,
    url_creds: Regex,
    pem: Regex,
    card: Regex,
    pairs: Regex,
}

impl Scrubber {
    pub fn new(config: &ScrubConfig) -> Scrubber {
        let mut keys: Vec<String> = DEFAULT_SENSITIVE_KEYS
            .iter()
            .map(|s| s.to_string())
            .collect();
        keys.extend(config.extra_keys.iter().map(|k| k.to_ascii_lowercase()));
        let mut exclude: Vec<String> = DEFAULT_EXCLUDED_KEYS
            .iter()
            .map(|s| s.to_string())
            .collect();
        exclude.extend(config.exclude_keys.iter().map(|k| k.to_ascii_lowercase()));
        let ac = |words: &[String]| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(words)
                .expect("valid key patterns")
        };
        let mut trigger_words = keys.clone();
        trigger_words.extend(VALUE_TRIGGERS.iter().map(|s| s.to_string()));
        Scrubber {
            keys: ac(&keys),
            triggers: ac(&trigger_words),
            exclude,
            bearer: Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*").unwrap(),
            url_creds: Regex::new(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)([^:/@\s]+):([^@/\s]+)@").unwrap(),
            pem: Regex::new(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)").unwrap(),
            card: Regex::new(r"\b(?:[3-6]|2[2-7])\d(?:[ \-]?\d){11,17}\b").unwrap(),
            pairs: Regex::new(
                r#"(?i)\b(password|passwd|pwd|secret|api[_\-]?key|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|token|authorization|client[_\-]?secret)(["']?\s*[:=]\s*["']?)([^\s"'&,;}]+)"#,
            )
            .unwrap(),
        }
    }

    /// Whether values under `key` are redacted whole.
    pub fn is_sensitive_key(&self, key: &str) -> bool {
        if key.len() > 256 || !self.keys.is_match(key) {
            return false;
        }
        !self.exclude.iter().any(|e| e.eq_ignore_ascii_case(key))
    }

    /// Whether `bytes` (a string, or the raw text of any JSON value) may hold
    /// something to scrub: a sensitive key or value trigger, 13+ digits (a card
    /// number), or a `\u` escape that could hide either. False means it is safe
    /// to keep as is.
    pub fn needs_scan(&self, bytes: &[u8]) -> bool {
        if self.triggers.is_match(bytes) || memchr::memmem::find(bytes, b"\\u").is_some() {
            return true;
        }
        bytes.len() >= 13 && bytes.iter().filter(|b| b.is_ascii_digit()).count() >= 13
    }

    /// Scrubs a JSON value in place; returns how many values were redacted or masked.
    pub fn scrub_value(&self, v: &mut Value) -> usize {
        match v {
            Value::String(s) => self.scrub_string_in_place(s),
            Value::Array(items) => items.iter_mut().map(|i| self.scrub_value(i)).sum(),
            Value::Object(map) => {
                let mut n = 0;
                for (k, val) in map.iter_mut() {
                    if self.is_sensitive_key(k) && !val.is_null() && val.as_str() != Some(REDACTED)
                    {
                        *val = Value::String(REDACTED.into());
                        n += 1;
                    } else {
                        n += self.scrub_value(val);
                    }
                }
                n
            }
            _ => 0,
        }
    }

    /// Masks sensitive patterns inside `s`; returns the number of masks applied.
    pub fn scrub_string_in_place(&self, s: &mut String) -> usize {
        let (out, n) = self.scrub_str(s);
        if let Cow::Owned(o) = out {
            *s = o;
        }
        n
    }

    /// Masks sensitive patterns inside `s`.
    pub fn scrub_str<'a>(&self, s: &'a str) -> (Cow<'a, str>, usize) {
        let mut cur: Cow<'a, str> = Cow::Borrowed(s);
        let mut n = 0;
        let bytes = s.as_bytes();
        if !self.needs_scan(bytes) {
            return (cur, 0);
        }
        if bytes.len() >= 8 && memchr::memmem::find(bytes, b"PRIVATE KEY").is_some() {
            n += replace(&mut cur, &self.pem, |_| REDACTED.to_string());
        }
        if memchr::memmem::find(bytes, b"://").is_some() && memchr::memchr(b'@', bytes).is_some() {
            n += replace(&mut cur, &self.url_creds, |c| {
                format!("{}{}:{}@", &c[1], &c[2], REDACTED)
            });
        }
        if bytes.len() >= 13 && bytes.iter().filter(|b| b.is_ascii_digit()).count() >= 13 {
            n += replace_if(&mut cur, &self.card, |m| luhn(m), |_| REDACTED.to_string());
        }
        n += replace(&mut cur, &self.bearer, |c| {
            format!("{} {}", &c[1], REDACTED)
        });
        if memchr::memchr2(b'=', b':', bytes).is_some() {
            n += replace_if(
                &mut cur,
                &self.pairs,
                |m| !m.ends_with(REDACTED),
                |c| format!("{}{}{}", &c[1], &c[2], REDACTED),
            );
        }
        (cur, n)
    }
}

fn replace(cur: &mut Cow<'_, str>, re: &Regex, f: impl Fn(&regex::Captures) -> String) -> usize {
    replace_if(cur, re, |_| true, f)
}

fn replace_if(
    cur: &mut Cow<'_, str>,
    re: &Regex,
    keep: impl Fn(&str) -> bool,
    f: impl Fn(&regex::Captures) -> String,
) -> usize {
    let mut n = 0;
    let mut out = String::new();
    let mut last = 0;
    let text: &str = cur;
    for caps in re.captures_iter(text) {
        let m = caps.get(0).unwrap();
        if m.as_str().contains(REDACTED) || !keep(m.as_str()) {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        out.push_str(&f(&caps));
        last = m.end();
        n += 1;
    }
    if n > 0 {
        out.push_str(&text[last..]);
        *cur = Cow::Owned(out);
    }
    n
}

fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s
        .bytes()
        .filter(|b| b.is_ascii_digit())
        .map(|b| (b - b'0') as u32)
        .collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s() -> Scrubber {
        Scrubber::new(&ScrubConfig::default())
    }

    #[test]
    fn keys_at_any_depth() {
        let mut v = json!({"user": {"password": "hunter2", "name": "ann"}, "headers": [{"Authorization": "Basic abc"}],
            "api_key": 12345, "request_id": "req-1", "X-CSRFToken": "t", "session": {"id": 1}, "author": "bob"});
        let n = s().scrub_value(&mut v);
        assert_eq!(v["user"]["password"], json!(REDACTED));
        assert_eq!(v["user"]["name"], json!("ann"));
        assert_eq!(v["headers"][0]["Authorization"], json!(REDACTED));
        assert_eq!(v["api_key"], json!(REDACTED));
        assert_eq!(v["X-CSRFToken"], json!(REDACTED));
        assert_eq!(v["session"], json!(REDACTED));
        assert_eq!(v["request_id"], json!("req-1"));
        assert_eq!(v["author"], json!("bob"));
        assert_eq!(n, 5);
    }

    #[test]
    fn patterns_inside_strings() {
        let sc = s();
        let (o, _) =
            sc.scrub_str("calling with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def now");
        assert!(!o.contains("eyJhbGci"), "{o}");
        let (o, _) = sc.scrub_str("connect postgres://app:s3cr3tpw@db:5432/x failed");
        assert_eq!(o, "connect postgres://app:[REDACTED]@db:5432/x failed");
        let (o, n) = sc.scrub_str("card 4111 1111 1111 1111 declined");
        assert_eq!((o.as_ref(), n), ("card [REDACTED] declined", 1));
        let (o, n) = sc.scrub_str("order 1764088986616854 at 4111111111111112");
        assert_eq!(n, 0, "{o}");
        let (o, _) = sc.scrub_str("login failed password=hunter2 user=ann");
        assert_eq!(o, "login failed password=[REDACTED] user=ann");
        let (o, _) = sc.scrub_str("{'api_key': 'sk_live_abcdef'}");
        assert!(!o.contains("sk_live"), "{o}");
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        assert_eq!(sc.scrub_str(pem).0, REDACTED);
        let (o, n) = sc.scrub_str("plain message with nothing");
        assert!(matches!(o, Cow::Borrowed(_)) && n == 0);
    }

    #[test]
    fn idempotent() {
        let sc = s();
        let (once, _) = sc.scrub_str("password=hunter2 and Bearer abcdefghijk");
        let (twice, n) = sc.scrub_str(&once);
        assert_eq!(once, twice);
        assert_eq!(n, 0);
    }

    #[test]
    fn config_extra_and_exclude() {
        let sc = Scrubber::new(&ScrubConfig {
            extra_keys: vec!["ssn".into()],
            exclude_keys: vec!["csrf_exempt".into()],
        });
        let mut v = json!({"customer_ssn": "123", "csrf_exempt": true});
        sc.scrub_value(&mut v);
        assert_eq!(v, json!({"customer_ssn": REDACTED, "csrf_exempt": true}));
    }
}
