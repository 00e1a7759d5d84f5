//! Label sets (`Labels`): sorted name/value pairs and the label manipulations PromQL needs.

use std::fmt;

/// The reserved label holding the metric name.
pub const METRIC_NAME: &str = "__name__";
/// The label holding a classic histogram bucket's upper bound.
pub const BUCKET_LABEL: &str = "le";

/// A label set: sorted by name, no duplicate names, no empty values; includes `__name__` when
/// present.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(pub Vec<(String, String)>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from arbitrary pairs: sorts by name, drops empty values, and keeps the
    /// last value given for a repeated name.
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = Vec::new();
        for (k, val) in pairs {
            let (k, val) = (k.into(), val.into());
            if let Some(slot) = v.iter_mut().find(|(n, _)| *n == k) {
                slot.1 = val;
            } else {
                v.push((k, val));
            }
        }
        v.retain(|(_, val)| !val.is_empty());
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Labels(v)
    }

    /// Builds a label set from pairs that are already sorted and valid (not checked).
    pub fn from_sorted(pairs: Vec<(String, String)>) -> Self {
        Labels(pairs)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The value of `name`, or "" when absent (Prometheus's `Labels.Get`).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The metric name, if any.
    pub fn name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// A copy without `__name__`.
    pub fn without_name(&self) -> Labels {
        if self.get(METRIC_NAME).is_none() {
            return self.clone();
        }
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| n != METRIC_NAME)
                .cloned()
                .collect(),
        )
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => {
                if value.is_empty() {
                    self.0.remove(i);
                } else {
                    self.0[i].1 = value.to_string();
                }
            }
            Err(i) => {
                if !value.is_empty() {
                    self.0.insert(i, (name.to_string(), value.to_string()));
                }
            }
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// Only the labels whose names are in `names` (Prometheus's `Builder.Keep`).
    pub fn keep<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| names.iter().any(|k| k.as_ref() == n))
                .cloned()
                .collect(),
        )
    }

    /// All labels except those whose names are in `names`.
    pub fn drop_labels<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| !names.iter().any(|k| k.as_ref() == n))
                .cloned()
                .collect(),
        )
    }

    /// Prometheus's `Labels.MatchLabels(on, names...)`: with `on`, the labels listed; otherwise
    /// every label not listed, except `__name__`.
    pub fn match_labels<S: AsRef<str>>(&self, on: bool, names: &[S]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| {
                    let listed = names.iter().any(|k| k.as_ref() == n);
                    on == listed && (on || n != METRIC_NAME)
                })
                .cloned()
                .collect(),
        )
    }
}

impl fmt::Display for Labels {
    /// Formats like Prometheus's `labels.Labels.String()`: `{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", n, go_quote(v))?;
        }
        f.write_str("}")
    }
}

/// Quotes a string roughly like Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub(crate) fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sorts_and_drops_empty() {
        let l = Labels::new([("b", "2"), ("a", "1"), ("c", "")]);
        assert_eq!(l.to_string(), r#"{a="1", b="2"}"#);
        assert_eq!(l.get("a"), Some("1"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn set_remove_keep() {
        let mut l = Labels::new([("__name__", "x"), ("a", "1")]);
        l.set("b", "2");
        l.set("a", "");
        assert_eq!(l.to_string(), r#"{__name__="x", b="2"}"#);
        assert_eq!(l.without_name().to_string(), r#"{b="2"}"#);
        assert_eq!(l.keep(&["b"]).to_string(), r#"{b="2"}"#);
        assert_eq!(l.match_labels(false, &["zzz"]).to_string(), r#"{b="2"}"#);
        assert_eq!(
            l.match_labels(true, &["__name__"]).to_string(),
            r#"{__name__="x"}"#
        );
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name(""));
        assert!(!is_valid_label_name("a-b"));
    }
}
