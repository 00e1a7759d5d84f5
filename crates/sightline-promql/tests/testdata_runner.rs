//! Opt-in conformance runner for Prometheus-style `.test` scripts (`load`, `clear`,
//! `eval[_fail|_ordered] instant at <dur> <expr>`). Set `SIGHTLINE_PROMQL_TESTDATA` to a
//! directory of such files to run them; without it this test does nothing.

mod common;
use common::*;
use sightline_promql::Value;

fn parse_duration_ms(s: &str) -> i64 {
    let mut total = 0i64;
    let mut num = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            num.push(c);
            i += 1;
            continue;
        }
        let (unit, len) = if s[i..].starts_with("ms") {
            (1, 2)
        } else {
            (
                match c {
                    's' => 1000,
                    'm' => 60_000,
                    'h' => 3_600_000,
                    'd' => 86_400_000,
                    'w' => 604_800_000,
                    'y' => 31_536_000_000,
                    _ => panic!("bad duration {s}"),
                },
                1,
            )
        };
        total += num.parse::<i64>().unwrap() * unit;
        num.clear();
        i += len;
    }
    total
}

fn split_series_line(line: &str) -> (&str, &str) {
    // The series descriptor ends at the closing brace, or at the first whitespace.
    if let Some(close) = line.find('}') {
        if line.find('{').is_some_and(|o| o < close) {
            return (line[..=close].trim(), line[close + 1..].trim());
        }
    }
    let mut parts = line.splitn(2, char::is_whitespace);
    (parts.next().unwrap(), parts.next().unwrap_or("").trim())
}

fn run_file(path: &std::path::Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut st = MemStorage::new();
    let mut failures = Vec::new();
    let mut evals = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "clear" {
            st = MemStorage::new();
            continue;
        }
        let mut block = Vec::new();
        while i < lines.len() && lines[i].starts_with([' ', '\t']) && !lines[i].trim().is_empty() {
            if !lines[i].trim().starts_with('#') {
                block.push(lines[i].trim());
            }
            i += 1;
        }
        if let Some(rest) = line.strip_prefix("load ") {
            let interval = parse_duration_ms(rest.trim());
            for l in block {
                let (series, values) = split_series_line(l);
                st.load(interval, series, values);
            }
            continue;
        }
        let (kind, rest) = line.split_once(' ').unwrap();
        let Some(rest) = rest.strip_prefix("instant at ") else {
            continue;
        };
        let (at, query) = rest.split_once(' ').unwrap();
        let t = parse_duration_ms(at);
        evals += 1;
        let res = instant(&st, query, t);
        let ctx = format!("{}:{} {}", path.display(), i, line);
        match (kind, res) {
            ("eval_fail", Ok(v)) => failures.push(format!("{ctx}: expected failure, got {v:?}")),
            ("eval_fail", Err(_)) => {}
            (_, Err(e)) => failures.push(format!("{ctx}: error {e}")),
            (_, Ok(v)) => {
                let mut exp: Vec<(sightline_promql::Labels, f64)> = Vec::new();
                let mut scalar = None;
                for l in &block {
                    let (series, value) = split_series_line(l);
                    if value.is_empty() {
                        scalar = Some(expand(series)[0].unwrap());
                    } else {
                        exp.push((labels(series), expand(value)[0].unwrap()));
                    }
                }
                let ok = match &v {
                    Value::Scalar(_, x) => scalar.is_some_and(|s| close6(*x, s)),
                    Value::Vector(got) => {
                        let mut got: Vec<(sightline_promql::Labels, f64)> =
                            got.iter().map(|s| (s.labels.clone(), s.v)).collect();
                        if kind != "eval_ordered" {
                            got.sort_by(|a, b| a.0.cmp(&b.0));
                            exp.sort_by(|a, b| a.0.cmp(&b.0));
                        }
                        got.len() == exp.len()
                            && got
                                .iter()
                                .zip(&exp)
                                .all(|(a, b)| a.0 == b.0 && close6(a.1, b.1))
                    }
                    Value::Matrix(_) | Value::String(..) => true,
                };
                if !ok {
                    failures.push(format!("{ctx}: got {v:?}\n   want {exp:?} {scalar:?}"));
                }
                // The last step of a range query ending at `t` must equal the instant result.
                if let Value::Vector(inst) = &v {
                    match engine().range(&st, query, t - 60_000, t, 60_000) {
                        Ok(Value::Matrix(m)) => {
                            let mut last: Vec<(sightline_promql::Labels, f64)> = m
                                .iter()
                                .filter_map(|s| {
                                    s.samples
                                        .last()
                                        .filter(|p| p.0 == t)
                                        .map(|p| (s.labels.clone(), p.1))
                                })
                                .collect();
                            let mut inst: Vec<(sightline_promql::Labels, f64)> =
                                inst.iter().map(|s| (s.labels.clone(), s.v)).collect();
                            last.sort_by(|a, b| a.0.cmp(&b.0));
                            inst.sort_by(|a, b| a.0.cmp(&b.0));
                            let same = last.len() == inst.len()
                                && last
                                    .iter()
                                    .zip(&inst)
                                    .all(|(a, b)| a.0 == b.0 && close6(a.1, b.1));
                            if !same {
                                failures.push(format!("{ctx}: range mode got {last:?}"));
                            }
                        }
                        other => failures.push(format!("{ctx}: range mode {other:?}")),
                    }
                }
            }
        }
    }
    (evals, failures)
}

fn close6(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn prometheus_style_testdata() {
    let Ok(dir) = std::env::var("SIGHTLINE_PROMQL_TESTDATA") else {
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    paths.sort();
    let mut all = Vec::new();
    let mut total = 0;
    for p in paths {
        let (n, f) = run_file(&p);
        total += n;
        all.extend(f);
    }
    for f in &all {
        eprintln!("FAIL {f}");
    }
    eprintln!("{} of {} evals failed", all.len(), total);
    assert!(all.is_empty());
}
