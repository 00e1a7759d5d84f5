//! Grouping error events into issues: the fingerprint an event is filed under,
//! and the title and culprit its issue shows.
//!
//! The order is Sentry's: an explicit `fingerprint` (with `{{ default }}`
//! expanded) → the in-app stack frames of the exception chain (module +
//! function, never line numbers, so a deploy that moves code keeps the issue) →
//! exception type + parameterized value → parameterized message. The variant and
//! [`GROUPING_VERSION`] are stored with every event, so a later change of the
//! rules can be told apart from a new error.

use regex::{Captures, Regex};
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// Stored with every event and issue; bump when the rules below change.
pub const GROUPING_VERSION: &str = "sightline-1";

#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// Hex of a 128-bit hash of the components (with the variant).
    pub hash: String,
    /// `fingerprint`, `in-app-stacktrace`, `exception`, `message` or `fallback`.
    pub variant: &'static str,
    /// What was hashed, in order (kept for "why is this grouped so").
    pub components: Vec<String>,
}

/// The exception chain of an event (`exception.values`, oldest first).
pub fn exceptions(ev: &Map<String, Value>) -> &[Value] {
    ev.get("exception")
        .and_then(|e| e.get("values"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn frames(exc: &Value) -> &[Value] {
    exc.get("stacktrace")
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn in_app(f: &Value) -> bool {
    f.get("in_app").and_then(Value::as_bool).unwrap_or(false)
}

/// `module` (or the file name when there is none) and `function` of a frame.
fn frame_key(f: &Value) -> String {
    let module = s(f, "module")
        .or_else(|| s(f, "filename"))
        .or_else(|| s(f, "abs_path"))
        .unwrap_or("?");
    let function = s(f, "function").unwrap_or("?");
    format!("{module}.{function}")
}

/// The message an event was logged with: the template when parameters were
/// given separately, else the formatted text.
pub fn message_text(ev: &Map<String, Value>) -> Option<String> {
    if let Some(le) = ev.get("logentry") {
        if let Some(m) = s(le, "message").or_else(|| s(le, "formatted")) {
            return Some(m.to_string());
        }
    }
    match ev.get("message") {
        Some(Value::String(m)) if !m.is_empty() => Some(m.clone()),
        Some(m @ Value::Object(_)) => s(m, "formatted")
            .or_else(|| s(m, "message"))
            .map(String::from),
        _ => None,
    }
}

fn default_components(ev: &Map<String, Value>) -> (&'static str, Vec<String>) {
    let chain = exceptions(ev);
    let any_in_app = chain.iter().any(|e| frames(e).iter().any(in_app));
    if any_in_app {
        let mut c = Vec::new();
        for e in chain {
            c.push(s(e, "type").unwrap_or("Error").to_string());
            c.extend(frames(e).iter().filter(|f| in_app(f)).map(frame_key));
        }
        return ("in-app-stacktrace", c);
    }
    if !chain.is_empty() {
        let mut c = Vec::new();
        for e in chain {
            c.push(s(e, "type").unwrap_or("Error").to_string());
            c.push(parameterize(s(e, "value").unwrap_or("")));
        }
        return ("exception", c);
    }
    if let Some(m) = message_text(ev) {
        return ("message", vec![parameterize(&m)]);
    }
    (
        "fallback",
        vec![ev
            .get("transaction")
            .and_then(Value::as_str)
            .unwrap_or("<unlabeled event>")
            .to_string()],
    )
}

fn template_var(part: &str) -> Option<&str> {
    let inner = part.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    Some(inner.trim())
}

/// Computes the grouping of a normalized event.
pub fn group(ev: &Map<String, Value>) -> Grouping {
    let custom: Option<Vec<String>> = ev.get("fingerprint").and_then(Value::as_array).map(|a| {
        a.iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    });
    let (variant, components) = match custom.filter(|c| !c.is_empty()) {
        Some(parts) => {
            let mut c = Vec::new();
            for p in parts {
                match template_var(&p) {
                    Some("default") => c.extend(default_components(ev).1),
                    Some("transaction") => c.push(
                        ev.get("transaction")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    ),
                    Some("type") | Some("error.type") => c.push(
                        exceptions(ev)
                            .last()
                            .and_then(|e| s(e, "type"))
                            .unwrap_or("")
                            .to_string(),
                    ),
                    Some("message") => c.push(message_text(ev).unwrap_or_default()),
                    _ => c.push(p),
                }
            }
            ("fingerprint", c)
        }
        None => default_components(ev),
    };
    let mut h = twox_hash::XxHash3_128::new();
    h.write(variant.as_bytes());
    for c in &components {
        h.write(&[0]);
        h.write(c.as_bytes());
    }
    Grouping {
        hash: format!("{:032x}", h.finish_128()),
        variant,
        components,
    }
}

static PARAMS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?P<quoted>'[^'\n]{0,200}'|"[^"\n]{0,200}")"#,
        r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)",
        r"|(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)",
        r"|(?P<ip>\b\d{1,3}(?:\.\d{1,3}){3}\b(?::\d{1,5})?|\b[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}\b)",
        r"|(?P<hex>\b0[xX][0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,}\b)",
        r"|(?P<num>\b\d+(?:\.\d+)?)",
    ))
    .expect("parameter pattern")
});

/// Masks the variable parts of a message or exception value so that the same
/// error about different objects groups together: quoted strings, emails,
/// UUIDs, IP addresses, hex ids and numbers.
pub fn parameterize(text: &str) -> String {
    PARAMS
        .replace_all(text, |c: &Captures| {
            let m = c.get(0).map_or("", |m| m.as_str());
            if c.name("quoted").is_some() {
                "<quoted>"
            } else if c.name("email").is_some() {
                "<email>"
            } else if c.name("uuid").is_some() {
                "<uuid>"
            } else if c.name("ip").is_some() {
                "<ip>"
            } else if c.name("hex").is_some() {
                if m.bytes().all(|b| b.is_ascii_digit()) {
                    "<int>"
                } else {
                    "<hex>"
                }
            } else if m.contains('.') {
                "<float>"
            } else {
                "<int>"
            }
        })
        .into_owned()
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What an issue is called, like Sentry: `Type: value` of the raised exception
/// (the last of the chain), else the message's first line.
pub fn title(ev: &Map<String, Value>) -> String {
    if let Some(e) = exceptions(ev).last() {
        let ty = s(e, "type").unwrap_or("Error");
        return match s(e, "value") {
            Some(v) => truncate(&format!("{ty}: {}", v.lines().next().unwrap_or("")), 200),
            None => ty.to_string(),
        };
    }
    let formatted = ev
        .get("logentry")
        .and_then(|l| s(l, "formatted"))
        .map(String::from)
        .or_else(|| message_text(ev));
    match formatted {
        Some(m) => truncate(m.lines().next().unwrap_or(""), 200),
        None => "<unlabeled event>".to_string(),
    }
}

/// Where it happened: the transaction (route) when the SDK set one, else the
/// innermost in-app frame as `module in function`.
pub fn culprit(ev: &Map<String, Value>) -> String {
    if let Some(t) = ev.get("transaction").and_then(Value::as_str) {
        if !t.is_empty() {
            return truncate(t, 200);
        }
    }
    let frame = exceptions(ev).last().and_then(|e| {
        let fs = frames(e);
        fs.iter().rev().find(|f| in_app(f)).or(fs.last())
    });
    match frame {
        Some(f) => format!(
            "{} in {}",
            s(f, "module").or_else(|| s(f, "filename")).unwrap_or("?"),
            s(f, "function").unwrap_or("?")
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parameterize_masks_variable_parts() {
        assert_eq!(
            parameterize("score out of range for assessment a-2"),
            "score out of range for assessment a-<int>"
        );
        assert_eq!(
            parameterize("user 42 (bob@example.com) from 10.0.0.12:5432 took 1.5s"),
            "user <int> (<email>) from <ip> took <float>s"
        );
        assert_eq!(
            parameterize("KeyError 'user_id' in 6f9619ff-8b86-d011-b42d-00cf4fc964ff"),
            "KeyError <quoted> in <uuid>"
        );
        assert_eq!(
            parameterize("object at 0x7fa7716ce740, sha deadbeef12, v2 ok 3.25"),
            "object at <hex>, sha <hex>, v2 ok <float>"
        );
        assert_eq!(parameterize("addr fe80::1:2:3 down"), "addr <ip> down");
    }

    #[test]
    fn in_app_frames_group_without_line_numbers() {
        let a = obj(
            json!({"exception":{"values":[{"type":"ValueError","value":"bad 1",
            "stacktrace":{"frames":[
                {"module":"starlette.routing","function":"handle","lineno":10,"in_app":false},
                {"module":"app","function":"submit","lineno":148,"in_app":true}]}}]}}),
        );
        let mut b = a.clone();
        b["exception"]["values"][0]["value"] = json!("totally different text");
        b["exception"]["values"][0]["stacktrace"]["frames"][1]["lineno"] = json!(170);
        let (ga, gb) = (group(&a), group(&b));
        assert_eq!(ga.variant, "in-app-stacktrace");
        assert_eq!(ga.hash, gb.hash);
        assert_eq!(ga.components, vec!["ValueError", "app.submit"]);
        let mut c = a.clone();
        c["exception"]["values"][0]["stacktrace"]["frames"][1]["function"] = json!("other");
        assert_ne!(group(&c).hash, ga.hash);
    }

    #[test]
    fn without_in_app_frames_type_and_parameterized_value() {
        let a = obj(json!({"exception":{"values":[{"type":"KeyError","value":"'u-1'"}]}}));
        let b = obj(json!({"exception":{"values":[{"type":"KeyError","value":"'u-2'"}]}}));
        let c = obj(json!({"exception":{"values":[{"type":"TypeError","value":"'u-2'"}]}}));
        assert_eq!(group(&a).hash, group(&b).hash);
        assert_ne!(group(&a).hash, group(&c).hash);
        assert_eq!(group(&a).variant, "exception");
    }

    #[test]
    fn messages_and_fingerprints() {
        let a = obj(json!({"message":"payment 17 failed"}));
        let b = obj(json!({"logentry":{"formatted":"payment 18 failed"}}));
        assert_eq!(group(&a).hash, group(&b).hash);
        assert_eq!(title(&b), "payment 18 failed");
        let f1 = obj(json!({"message":"x","fingerprint":["payments","{{ default }}"]}));
        let f2 = obj(json!({"message":"y","fingerprint":["payments","{{default}}"]}));
        let f3 = obj(json!({"message":"y","fingerprint":["payments"]}));
        let g1 = group(&f1);
        assert_eq!(g1.variant, "fingerprint");
        assert_eq!(g1.components, vec!["payments", "x"]);
        assert_ne!(g1.hash, group(&f2).hash);
        assert_eq!(group(&f3).components, vec!["payments"]);
        assert_ne!(
            group(&f3).hash,
            group(&obj(json!({"message":"payments"}))).hash
        );
    }

    #[test]
    fn title_and_culprit_like_sentry() {
        let e = obj(json!({"exception":{"values":[
            {"type":"KeyError","value":"inner"},
            {"type":"ValueError","value":"score out of range\nmore",
             "stacktrace":{"frames":[{"module":"app","function":"submit","in_app":true},
                                     {"module":"lib","function":"deep","in_app":false}]}}]}}));
        assert_eq!(title(&e), "ValueError: score out of range");
        assert_eq!(culprit(&e), "app in submit");
        let mut t = e.clone();
        t.insert("transaction".into(), json!("/assessments/{id}/submit"));
        assert_eq!(culprit(&t), "/assessments/{id}/submit");
        assert_eq!(title(&obj(json!({}))), "<unlabeled event>");
    }
}
