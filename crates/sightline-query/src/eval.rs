//! Evaluating a filter expression: vectorized over Arrow record batches of the
//! part schema (what the executor runs), and row by row over `LogRecord`s (the
//! head's pre-filter, and the oracle the property tests compare against). Both
//! share the scalar comparison rules below, so they agree by construction.

use crate::lang::{CmpOp, Column, Expr, Field, Match};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input};
use arrow::array::{
    Array, BooleanArray, BooleanBufferBuilder, DictionaryArray, RecordBatch, StringArray,
    UInt8Array,
};
use arrow::compute::kernels::cmp;
use arrow::compute::kernels::comparison::starts_with;
use arrow::compute::{and, not, or, prep_null_mask_filter};
use arrow::datatypes::Int32Type;
use arrow::error::ArrowError;
use serde_json::value::RawValue;
use serde_json::Value;
use sightline_pipeline::normalize::Members;
use sightline_pipeline::{Level, LogRecord};
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// A filter expression ready to run: text needles compiled once.
#[derive(Debug, Clone)]
pub enum Filter {
    All,
    Not(Box<Filter>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Leaf(Leaf),
}

#[derive(Debug, Clone)]
pub struct Leaf {
    pub field: Field,
    pub op: Match,
    /// Case-insensitive needle for text matches.
    needle: Option<AhoCorasick>,
    /// Severity for level matches.
    severity: Option<u8>,
    /// `"key` as it appears in the attributes JSON: rows without it cannot match.
    attr_probe: Option<Vec<u8>>,
}

impl Filter {
    pub fn new(e: &Expr) -> Filter {
        match e {
            Expr::All => Filter::All,
            Expr::Not(e) => Filter::Not(Box::new(Filter::new(e))),
            Expr::And(v) => Filter::And(v.iter().map(Filter::new).collect()),
            Expr::Or(v) => Filter::Or(v.iter().map(Filter::new).collect()),
            Expr::Term(t) => {
                let text = matches!(t.field, Field::Text)
                    || matches!(t.field, Field::Column(c) if c.is_text());
                let needle = match (&t.op, text) {
                    (Match::Eq(v), true) => Some(
                        AhoCorasickBuilder::new()
                            .ascii_case_insensitive(true)
                            .build([v.as_bytes()])
                            .expect("one literal pattern always builds"),
                    ),
                    _ => None,
                };
                let severity = match (&t.field, &t.op) {
                    (Field::Column(Column::Level), Match::Eq(v) | Match::Cmp(_, v)) => {
                        Level::parse(v).map(|l| l.severity())
                    }
                    _ => None,
                };
                let attr_probe = match &t.field {
                    Field::Attr(path) => {
                        let first = path.split('.').next().unwrap_or(path);
                        let quoted = serde_json::to_string(first).unwrap_or_default();
                        Some(quoted.as_bytes()[..quoted.len() - 1].to_vec())
                    }
                    _ => None,
                };
                Filter::Leaf(Leaf {
                    field: t.field.clone(),
                    op: t.op.clone(),
                    needle,
                    severity,
                    attr_probe,
                })
            }
        }
    }

    /// Part columns the filter reads.
    pub fn columns(&self, out: &mut BTreeSet<&'static str>) {
        match self {
            Filter::All => {}
            Filter::Not(f) => f.columns(out),
            Filter::And(v) | Filter::Or(v) => v.iter().for_each(|f| f.columns(out)),
            Filter::Leaf(l) => match &l.field {
                Field::Text => {
                    out.insert("message");
                    out.insert("exception");
                }
                Field::Column(Column::Level) => {
                    out.insert("severity");
                }
                Field::Column(c) => {
                    out.insert(c.name());
                }
                Field::Attr(_) => {
                    out.insert("attributes");
                }
            },
        }
    }

    /// The brute-force evaluation of one record.
    pub fn matches_record(&self, r: &LogRecord) -> bool {
        match self {
            Filter::All => true,
            Filter::Not(f) => !f.matches_record(r),
            Filter::And(v) => v.iter().all(|f| f.matches_record(r)),
            Filter::Or(v) => v.iter().any(|f| f.matches_record(r)),
            Filter::Leaf(l) => l.matches_record(r),
        }
    }

    /// The vectorized evaluation of a batch holding (at least) `columns()`.
    /// The result has no nulls.
    pub fn eval(&self, b: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        Ok(match self {
            Filter::All => BooleanArray::from(vec![true; b.num_rows()]),
            Filter::Not(f) => not(&f.eval(b)?)?,
            Filter::And(v) => {
                let mut acc: Option<BooleanArray> = None;
                for f in v {
                    let m = f.eval(b)?;
                    acc = Some(match acc {
                        None => m,
                        Some(a) => and(&a, &m)?,
                    });
                    if acc.as_ref().is_some_and(|a| a.true_count() == 0) {
                        break;
                    }
                }
                acc.unwrap_or_else(|| BooleanArray::from(vec![true; b.num_rows()]))
            }
            Filter::Or(v) => {
                let mut acc: Option<BooleanArray> = None;
                for f in v {
                    let m = f.eval(b)?;
                    acc = Some(match acc {
                        None => m,
                        Some(a) => or(&a, &m)?,
                    });
                }
                acc.unwrap_or_else(|| BooleanArray::from(vec![false; b.num_rows()]))
            }
            Filter::Leaf(l) => l.eval(b)?,
        })
    }
}

/// Evaluates a predicate over a string column that may be dictionary encoded
/// (low-cardinality columns are read from parts as dictionaries): on a
/// dictionary the predicate runs once per distinct value, then maps by key.
fn on_strings(
    b: &RecordBatch,
    name: &str,
    f: impl Fn(&StringArray) -> Result<BooleanArray, ArrowError>,
) -> Result<BooleanArray, ArrowError> {
    let a = b
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("batch lacks column {name}")))?;
    if let Some(d) = a.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        let values = d
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ArrowError::SchemaError(format!("{name}: not a string dictionary")))?;
        let m = f(values)?;
        let taken = arrow::compute::take(&m, d.keys(), None)?;
        let taken = taken
            .as_any()
            .downcast_ref::<BooleanArray>()
            .expect("take of a boolean array is boolean")
            .clone();
        return Ok(no_nulls(taken));
    }
    Ok(no_nulls(f(column(b, name)?)?))
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray, ArrowError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| ArrowError::SchemaError(format!("batch lacks string column {name}")))
}

fn no_nulls(m: BooleanArray) -> BooleanArray {
    if m.null_count() > 0 {
        prep_null_mask_filter(&m)
    } else {
        m
    }
}

impl Leaf {
    fn matches_record(&self, r: &LogRecord) -> bool {
        match &self.field {
            Field::Text => {
                let n = self.needle.as_ref();
                match &self.op {
                    Match::Eq(_) => {
                        let n = n.expect("text needle");
                        n.is_match(&r.message)
                            || r.exception.as_deref().is_some_and(|e| n.is_match(e))
                    }
                    _ => false,
                }
            }
            Field::Column(Column::Level) => match (&self.op, self.severity) {
                (Match::Eq(_), Some(s)) => r.level.severity() == s,
                (Match::Cmp(op, _), Some(s)) => op.test(r.level.severity().cmp(&s)),
                (Match::Exists, _) => true,
                (Match::Prefix(p), _) => r.level.as_str().starts_with(p.as_str()),
                _ => false,
            },
            Field::Column(c) => {
                let v: Option<&str> = match c {
                    Column::Service => Some(&r.service),
                    Column::Environment => r.environment.as_deref(),
                    Column::Message => Some(&r.message),
                    Column::Logger => r.logger.as_deref(),
                    Column::RequestId => r.request_id.as_deref(),
                    Column::FlowId => r.flow_id.as_deref(),
                    Column::TraceId => r.trace_id.as_deref(),
                    Column::SpanId => r.span_id.as_deref(),
                    Column::UserId => r.user_id.as_deref(),
                    Column::Exception => r.exception.as_deref(),
                    Column::Host => r.host.as_deref(),
                    Column::Level => unreachable!("handled above"),
                };
                match v {
                    None => false,
                    Some(v) => self.test_str(v),
                }
            }
            Field::Attr(path) => {
                let probe = self.attr_probe.as_deref().unwrap_or(b"");
                if memchr::memmem::find(r.attributes.as_bytes(), probe).is_none() {
                    return false;
                }
                attr_value(&r.attributes, path).is_some_and(|v| test_json(&v, &self.op))
            }
        }
    }

    /// A string column value against the term (text columns: word search).
    fn test_str(&self, v: &str) -> bool {
        match &self.op {
            Match::Eq(want) => match &self.needle {
                Some(n) => n.is_match(v),
                None => v == want,
            },
            Match::Prefix(p) => v.starts_with(p.as_str()),
            Match::Exists => true,
            Match::Cmp(op, want) => op.test(cmp_text(v, want)),
        }
    }

    fn eval(&self, b: &RecordBatch) -> Result<BooleanArray, ArrowError> {
        let n = b.num_rows();
        match &self.field {
            Field::Text => {
                let needle = self.needle.as_ref().expect("text needle");
                let m = on_strings(b, "message", |a| Ok(contains_ci(a, needle)))?;
                let e = on_strings(b, "exception", |a| Ok(contains_ci(a, needle)))?;
                or(&m, &e)
            }
            Field::Column(Column::Level) => {
                let sev = b
                    .column_by_name("severity")
                    .and_then(|c| c.as_any().downcast_ref::<UInt8Array>())
                    .ok_or_else(|| ArrowError::SchemaError("batch lacks severity".into()))?;
                let s = UInt8Array::new_scalar(self.severity.unwrap_or(0));
                Ok(match (&self.op, self.severity) {
                    (Match::Eq(_), Some(_)) => cmp::eq(sev, &s)?,
                    (Match::Cmp(CmpOp::Gt, _), Some(_)) => cmp::gt(sev, &s)?,
                    (Match::Cmp(CmpOp::Ge, _), Some(_)) => cmp::gt_eq(sev, &s)?,
                    (Match::Cmp(CmpOp::Lt, _), Some(_)) => cmp::lt(sev, &s)?,
                    (Match::Cmp(CmpOp::Le, _), Some(_)) => cmp::lt_eq(sev, &s)?,
                    (Match::Exists, _) => BooleanArray::from(vec![true; n]),
                    (Match::Prefix(p), _) => sev
                        .values()
                        .iter()
                        .map(|s| {
                            Some(
                                Level::from_u8(*s)
                                    .is_some_and(|l| l.as_str().starts_with(p.as_str())),
                            )
                        })
                        .collect(),
                    _ => BooleanArray::from(vec![false; n]),
                })
            }
            Field::Column(c) => on_strings(b, c.name(), |a| {
                Ok(no_nulls(match &self.op {
                    Match::Eq(v) => match &self.needle {
                        Some(needle) => contains_ci(a, needle),
                        None => cmp::eq(a, &StringArray::new_scalar(v))?,
                    },
                    Match::Prefix(p) => starts_with(a, &StringArray::new_scalar(p))?,
                    Match::Exists => arrow::compute::is_not_null(a)?,
                    Match::Cmp(op, want) => a
                        .iter()
                        .map(|v| Some(v.is_some_and(|v| op.test(cmp_text(v, want)))))
                        .collect(),
                }))
            }),
            Field::Attr(path) => {
                let a = column(b, "attributes")?;
                let probe = memchr::memmem::Finder::new(self.attr_probe.as_deref().unwrap_or(b""));
                let mut out = BooleanBufferBuilder::new(n);
                for i in 0..n {
                    let hit = !a.is_null(i) && {
                        let v = a.value(i);
                        probe.find(v.as_bytes()).is_some()
                            && attr_value(v, path).is_some_and(|j| test_json(&j, &self.op))
                    };
                    out.append(hit);
                }
                Ok(BooleanArray::new(out.finish(), None))
            }
        }
    }
}

/// Rows of `a` containing the needle (ASCII case-insensitive), found in one
/// pass over the contiguous value buffer rather than row by row.
pub fn contains_ci(a: &StringArray, needle: &AhoCorasick) -> BooleanArray {
    let n = a.len();
    let mut bits = BooleanBufferBuilder::new(n);
    bits.append_n(n, false);
    if n == 0 {
        return BooleanArray::new(bits.finish(), None);
    }
    let offsets = a.value_offsets();
    let data = a.value_data();
    let (start, end) = (offsets[0] as usize, offsets[n] as usize);
    if needle.patterns_len() == 1 && needle.max_pattern_len() == 0 {
        // The empty needle matches every present value.
        for i in 0..n {
            bits.set_bit(i, !a.is_null(i));
        }
        return BooleanArray::new(bits.finish(), None);
    }
    let mut pos = start;
    while pos < end {
        let Some(m) = needle.find(Input::new(&data[..end]).span(pos..end)) else {
            break;
        };
        let row = offsets.partition_point(|&o| (o as usize) <= m.start()) - 1;
        let row_end = offsets[row + 1] as usize;
        if m.end() <= row_end {
            bits.set_bit(row, !a.is_null(row));
            pos = row_end;
        } else {
            pos = m.start() + 1;
        }
    }
    BooleanArray::new(bits.finish(), None)
}

/// The value at `path` in an attributes object: the literal key first, then
/// the dotted path through nested objects. JSON `null` counts as absent. Only
/// the top level is parsed (values stay raw text) until the path needs more.
pub fn attr_value(attributes: &str, path: &str) -> Option<Value> {
    let m = Members::parse(attributes).ok()?;
    if let Some(v) = m.get(path) {
        return scalar(v);
    }
    let mut parts = path.split('.');
    let first = m.get(parts.next()?)?;
    let mut cur: Value = serde_json::from_str(first.get()).ok()?;
    for p in parts {
        cur = match cur {
            Value::Object(mut o) => o.remove(p)?,
            Value::Array(mut a) => {
                let i: usize = p.parse().ok()?;
                if i >= a.len() {
                    return None;
                }
                a.swap_remove(i)
            }
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

/// A raw JSON value as a `Value` (`null` as absent).
fn scalar(v: &RawValue) -> Option<Value> {
    match serde_json::from_str::<Value>(v.get()) {
        Ok(Value::Null) | Err(_) => None,
        Ok(v) => Some(v),
    }
}

/// How a raw JSON value prints as a facet or label: strings unquoted,
/// objects and arrays as `""`, `null` as absent.
pub fn raw_text(v: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    let t = v.get();
    match t.as_bytes().first() {
        Some(b'"') => {
            if !t.contains('\\') {
                Some(std::borrow::Cow::Borrowed(&t[1..t.len() - 1]))
            } else {
                serde_json::from_str::<String>(t)
                    .ok()
                    .map(std::borrow::Cow::Owned)
            }
        }
        Some(b'{') | Some(b'[') => Some(std::borrow::Cow::Borrowed("")),
        Some(b'n') => None,
        _ => Some(std::borrow::Cow::Borrowed(t)),
    }
}

/// How a JSON value prints as a label or compares as text.
pub fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn test_json(v: &Value, op: &Match) -> bool {
    match op {
        Match::Exists => true,
        Match::Eq(want) => match v {
            Value::Number(n) => match (n.as_f64(), want.parse::<f64>()) {
                (Some(a), Ok(b)) => a == b,
                _ => n.to_string() == *want,
            },
            other => json_text(other) == *want,
        },
        Match::Prefix(p) => json_text(v).starts_with(p.as_str()),
        Match::Cmp(op, want) => match v {
            Value::Number(n) => match (n.as_f64(), want.parse::<f64>()) {
                (Some(a), Ok(b)) => a.partial_cmp(&b).is_some_and(|o| op.test(o)),
                _ => op.test(cmp_text(&n.to_string(), want)),
            },
            other => op.test(cmp_text(&json_text(other), want)),
        },
    }
}

/// Orders two texts: numerically when both are numbers, else bytewise.
pub fn cmp_text(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_ci_finds_rows_in_one_pass() {
        let a = StringArray::from(vec![
            Some("Timeout talking to DB"),
            None,
            Some("ok"),
            Some("time"),
            Some("out"),
            Some("xxTIMEOUT"),
        ]);
        let n = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(["timeout"])
            .unwrap();
        let m = contains_ci(&a, &n);
        let got: Vec<bool> = m.iter().map(|v| v.unwrap()).collect();
        // "time" + "out" in adjacent rows is not a match.
        assert_eq!(got, vec![true, false, false, false, false, true]);
        let sliced = a.slice(3, 3);
        let got: Vec<bool> = contains_ci(&sliced, &n)
            .iter()
            .map(|v| v.unwrap())
            .collect();
        assert_eq!(got, vec![false, false, true]);
    }

    #[test]
    fn attribute_paths() {
        let a = r#"{"status":500,"http":{"route":"/x","codes":[1,2]},"a.b":"lit","n":null}"#;
        assert_eq!(attr_value(a, "status"), Some(Value::from(500)));
        assert_eq!(attr_value(a, "http.route"), Some(Value::from("/x")));
        assert_eq!(attr_value(a, "http.codes.1"), Some(Value::from(2)));
        assert_eq!(attr_value(a, "a.b"), Some(Value::from("lit")));
        assert_eq!(attr_value(a, "n"), None);
        assert_eq!(attr_value(a, "missing"), None);
        assert!(test_json(&Value::from(500), &Match::Eq("500".into())));
        assert!(test_json(&Value::from(500), &Match::Eq("500.0".into())));
        assert!(test_json(
            &Value::from(500),
            &Match::Cmp(CmpOp::Ge, "404".into())
        ));
        assert!(!test_json(
            &Value::from("abc"),
            &Match::Cmp(CmpOp::Lt, "abb".into())
        ));
    }
}
