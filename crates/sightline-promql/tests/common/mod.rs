//! Test support: an in-memory `Storage`, a loader for series written like Prometheus's test
//! files (`0+10x5 _ stale 3`), and result assertions with tolerance.
#![allow(dead_code)]

use sightline_promql::{
    matches_all, stale_nan, Engine, EngineOptions, Labels, Matcher, QueryError, Series, Storage,
    Value,
};

#[derive(Default)]
pub struct MemStorage {
    pub series: Vec<Series>,
    pub selects: std::sync::Mutex<usize>,
}

impl Storage for MemStorage {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
        *self.selects.lock().unwrap() += 1;
        Ok(self
            .series
            .iter()
            .filter(|s| matches_all(&s.labels, matchers))
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= mint && *t <= maxt)
                    .collect(),
            })
            .collect())
    }
}

/// Parses `name{a="b", c="d"}`, `{a="b"}` or `{}` into labels.
pub fn labels(s: &str) -> Labels {
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    let inner = rest.trim_start_matches('{').trim_end_matches('}');
    let mut chars = inner.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ') | Some(',')) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        chars.next(); // '='
        chars.next(); // '"'
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => val.push(chars.next().unwrap()),
                '"' => break,
                c => val.push(c),
            }
        }
        pairs.push((key.trim().to_string(), val));
    }
    Labels::new(pairs)
}

fn parse_num(s: &str) -> f64 {
    match s {
        "Inf" | "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        "stale" => stale_nan(),
        _ => s.parse().unwrap_or_else(|_| panic!("bad number {s}")),
    }
}

/// Expands a Prometheus test-file value list into optional values (None = no sample).
pub fn expand(values: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for tok in values.split_whitespace() {
        if tok == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            for _ in 0..n.parse::<usize>().unwrap() {
                out.push(None);
            }
            continue;
        }
        if let Some((head, times)) = tok.rsplit_once('x') {
            if !head.is_empty() && times.chars().all(|c| c.is_ascii_digit()) && !times.is_empty() {
                let times: usize = times.parse().unwrap();
                // a+bxN, a-bxN or axN
                let (start, delta) = split_delta(head);
                for i in 0..=times {
                    out.push(Some(start + delta * i as f64));
                }
                continue;
            }
        }
        out.push(Some(parse_num(tok)));
    }
    out
}

fn split_delta(head: &str) -> (f64, f64) {
    // Find a '+' or '-' that is not at position 0 and not part of an exponent.
    let bytes = head.as_bytes();
    for i in 1..bytes.len() {
        let c = bytes[i] as char;
        if (c == '+' || c == '-') && !matches!(bytes[i - 1] as char, 'e' | 'E') {
            let a = parse_num(&head[..i]);
            let b = parse_num(&head[i + 1..]);
            return (a, if c == '+' { b } else { -b });
        }
    }
    (parse_num(head), 0.0)
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a series with samples every `interval_ms` starting at `start_ms`.
    pub fn load_from(&mut self, start_ms: i64, interval_ms: i64, series: &str, values: &str) {
        let l = labels(series);
        let samples: Vec<(i64, f64)> = expand(values)
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (start_ms + i as i64 * interval_ms, v)))
            .collect();
        if let Some(s) = self.series.iter_mut().find(|s| s.labels == l) {
            s.samples.extend(samples);
            s.samples.sort_by_key(|p| p.0);
        } else {
            self.series.push(Series { labels: l, samples });
        }
    }

    /// Adds a series with samples every `interval_ms` starting at 0.
    pub fn load(&mut self, interval_ms: i64, series: &str, values: &str) {
        self.load_from(0, interval_ms, series, values);
    }

    /// Adds explicit samples.
    pub fn add(&mut self, series: &str, samples: &[(i64, f64)]) {
        self.series.push(Series {
            labels: labels(series),
            samples: samples.to_vec(),
        });
    }
}

pub const S: i64 = 1000;
pub const M: i64 = 60 * S;
pub const H: i64 = 60 * M;

pub fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

pub fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    let diff = (a - b).abs();
    diff <= 1e-9 || diff <= 1e-9 * a.abs().max(b.abs())
}

pub fn instant(st: &MemStorage, q: &str, t: i64) -> Result<Value, QueryError> {
    engine().instant(st, q, t)
}

/// Asserts an instant query returns exactly `expected` (any order).
pub fn assert_vector(st: &MemStorage, q: &str, t: i64, expected: &[(&str, f64)]) {
    let v = instant(st, q, t).unwrap_or_else(|e| panic!("{q}: {e}"));
    let Value::Vector(mut got) = v else {
        panic!("{q}: expected vector, got {v:?}")
    };
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut exp: Vec<(Labels, f64)> = expected.iter().map(|(l, v)| (labels(l), *v)).collect();
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let got_desc: Vec<String> = got
        .iter()
        .map(|s| format!("{} {}", s.labels, s.v))
        .collect();
    assert_eq!(got.len(), exp.len(), "{q}: got {got_desc:?}");
    for (g, (l, v)) in got.iter().zip(exp.iter()) {
        assert_eq!(&g.labels, l, "{q}: got {got_desc:?}");
        assert!(close(g.v, *v), "{q}: {} = {} want {}", l, g.v, v);
        assert_eq!(g.t, t);
    }
}

/// Asserts an instant query returns `expected` in exactly this order.
pub fn assert_vector_ordered(st: &MemStorage, q: &str, t: i64, expected: &[(&str, f64)]) {
    let v = instant(st, q, t).unwrap_or_else(|e| panic!("{q}: {e}"));
    let Value::Vector(got) = v else {
        panic!("{q}: expected vector")
    };
    let got_desc: Vec<String> = got
        .iter()
        .map(|s| format!("{} {}", s.labels, s.v))
        .collect();
    assert_eq!(got.len(), expected.len(), "{q}: got {got_desc:?}");
    for (g, (l, v)) in got.iter().zip(expected.iter()) {
        assert_eq!(g.labels, labels(l), "{q}: got {got_desc:?}");
        assert!(close(g.v, *v), "{q}: got {got_desc:?}");
    }
}

pub fn assert_scalar(st: &MemStorage, q: &str, t: i64, expected: f64) {
    match instant(st, q, t).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Value::Scalar(ts, v) => {
            assert_eq!(ts, t);
            assert!(close(v, expected), "{q}: got {v} want {expected}");
        }
        other => panic!("{q}: expected scalar, got {other:?}"),
    }
}

pub fn assert_empty(st: &MemStorage, q: &str, t: i64) {
    assert_vector(st, q, t, &[]);
}

pub fn assert_exec_error(st: &MemStorage, q: &str, t: i64, contains: &str) {
    match instant(st, q, t) {
        Err(QueryError::Execution(m)) => {
            assert!(m.contains(contains), "{q}: error {m:?} lacks {contains:?}")
        }
        other => panic!("{q}: expected execution error, got {other:?}"),
    }
}

/// Runs a range query and returns (labels string, points) per series.
pub fn range(
    st: &MemStorage,
    q: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match engine()
        .range(st, q, start, end, step)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
    {
        Value::Matrix(m) => m.into_iter().map(|s| (s.labels, s.samples)).collect(),
        other => panic!("{q}: expected matrix, got {other:?}"),
    }
}

pub fn assert_points(got: &[(i64, f64)], exp: &[(i64, f64)], what: &str) {
    assert_eq!(got.len(), exp.len(), "{what}: got {got:?} want {exp:?}");
    for (g, e) in got.iter().zip(exp) {
        assert_eq!(g.0, e.0, "{what}: got {got:?} want {exp:?}");
        assert!(close(g.1, e.1), "{what}: got {got:?} want {exp:?}");
    }
}

/// Four `http_requests` counters (job api, instances 0/1, groups production/canary)
/// at 5m steps: the fixture of the aggregation and operator tests.
pub fn http() -> MemStorage {
    let mut st = MemStorage::new();
    st.load(
        5 * M,
        r#"http_requests{job="api", instance="0", group="production"}"#,
        "0+10x10",
    );
    st.load(
        5 * M,
        r#"http_requests{job="api", instance="1", group="production"}"#,
        "0+20x10",
    );
    st.load(
        5 * M,
        r#"http_requests{job="api", instance="0", group="canary"}"#,
        "0+30x10",
    );
    st.load(
        5 * M,
        r#"http_requests{job="api", instance="1", group="canary"}"#,
        "0+40x10",
    );
    st
}

/// The time those tests evaluate at.
pub const T: i64 = 50 * M;
