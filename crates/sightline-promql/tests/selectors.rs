//! Instant and range vector selectors: lookback, staleness, offset, `@`, matchers, raw matrices.

mod common;
use common::*;
use sightline_promql::{Labels, Value};

fn stale_store() -> MemStorage {
    let mut st = MemStorage::new();
    st.load(10 * S, "metric", "0 1 stale 2");
    st
}

#[test]
fn instant_selector_lookback_and_staleness() {
    let st = stale_store();
    assert_vector(&st, "metric", 10 * S, &[("metric", 1.0)]);
    assert_empty(&st, "metric", 20 * S);
    assert_empty(&st, "metric", 25 * S);
    assert_vector(&st, "metric", 30 * S, &[("metric", 2.0)]);
    // The lookback window includes its start: 30s + 5m.
    assert_vector(&st, "metric", 330 * S, &[("metric", 2.0)]);
    assert_empty(&st, "metric", 330 * S + 1);
    assert_empty(&st, "metric", -1);
}

#[test]
fn range_selector_drops_stale_markers_and_is_inclusive() {
    let st = stale_store();
    assert_vector(&st, "count_over_time(metric[1m])", 30 * S, &[("{}", 3.0)]);
    assert_vector(&st, "count_over_time(metric[10s])", 20 * S, &[("{}", 1.0)]);
    assert_empty(&st, "count_over_time(metric[1s])", 20 * S);
    // [10s, 30s] includes both ends.
    assert_vector(&st, "count_over_time(metric[20s])", 30 * S, &[("{}", 2.0)]);
}

#[test]
fn offset_and_at_modifiers() {
    let st = stale_store();
    assert_vector(&st, "metric offset 20s", 50 * S, &[("metric", 2.0)]);
    assert_vector(&st, "metric offset -10s", 0, &[("metric", 1.0)]);
    assert_vector(&st, "metric @ 10", 1000 * S, &[("metric", 1.0)]);
    assert_vector(&st, "metric @ 30 offset 20s", 0, &[("metric", 1.0)]);
    assert_vector(&st, "metric offset 20s @ 30", 0, &[("metric", 1.0)]);
    assert_vector(&st, "metric @ 0.01", 0, &[("metric", 0.0)]);
    assert_vector(
        &st,
        "sum_over_time(metric[1m] @ 30)",
        5000 * S,
        &[("{}", 3.0)],
    );
    assert_vector(&st, "metric @ start()", 10 * S, &[("metric", 1.0)]);
    assert_vector(&st, "metric @ end()", 30 * S, &[("metric", 2.0)]);
}

#[test]
fn label_matchers() {
    let mut st = MemStorage::new();
    st.load(10 * S, r#"http{job="a"}"#, "1");
    st.load(10 * S, r#"http{job="b"}"#, "2");
    st.load(10 * S, r#"other{job="a"}"#, "3");
    st.load(10 * S, r#"http{job="c", extra="x"}"#, "4");
    assert_vector(
        &st,
        r#"http{job=~"a|b"}"#,
        0,
        &[(r#"http{job="a"}"#, 1.0), (r#"http{job="b"}"#, 2.0)],
    );
    assert_vector(&st, r#"http{job!~"a|c"}"#, 0, &[(r#"http{job="b"}"#, 2.0)]);
    assert_vector(
        &st,
        r#"{job="a"}"#,
        0,
        &[(r#"http{job="a"}"#, 1.0), (r#"other{job="a"}"#, 3.0)],
    );
    // A matcher matching "" also selects series without the label.
    assert_vector(
        &st,
        r#"http{extra=""}"#,
        0,
        &[(r#"http{job="a"}"#, 1.0), (r#"http{job="b"}"#, 2.0)],
    );
    assert_vector(
        &st,
        r#"{__name__=~"oth.*"}"#,
        0,
        &[(r#"other{job="a"}"#, 3.0)],
    );
    assert_vector(&st, r#"http{job="zzz"}"#, 0, &[]);
}

#[test]
fn gaps_beyond_lookback() {
    let mut st = MemStorage::new();
    st.add("gappy", &[(0, 1.0), (10 * M, 2.0)]);
    assert_vector(&st, "gappy", 5 * M, &[("gappy", 1.0)]);
    assert_empty(&st, "gappy", 6 * M);
    assert_vector(&st, "gappy", 10 * M, &[("gappy", 2.0)]);
}

#[test]
fn raw_matrix_result() {
    let st = stale_store();
    match instant(&st, "metric[30s]", 30 * S).unwrap() {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels, labels("metric"));
            assert_eq!(m[0].samples, vec![(0, 0.0), (10 * S, 1.0), (30 * S, 2.0)]);
        }
        other => panic!("{other:?}"),
    }
    match instant(&st, "metric[30s] offset 10s", 30 * S).unwrap() {
        Value::Matrix(m) => assert_eq!(m[0].samples, vec![(0, 0.0), (10 * S, 1.0)]),
        other => panic!("{other:?}"),
    }
    // A subquery as the query returns its points at the aligned steps.
    match instant(&st, "metric[20s:10s]", 35 * S).unwrap() {
        Value::Matrix(m) => assert_eq!(m[0].samples, vec![(30 * S, 2.0)]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn string_and_scalar_literals() {
    let st = MemStorage::new();
    assert_eq!(
        instant(&st, r#""hello""#, 5 * S).unwrap(),
        Value::String(5 * S, "hello".into())
    );
    assert_scalar(&st, "1.5", 5 * S, 1.5);
    assert_scalar(&st, "-(2)", 0, -2.0);
    assert_scalar(&st, "0x10", 0, 16.0);
    assert_scalar(&st, "Inf", 0, f64::INFINITY);
}

#[test]
fn range_query_selects_once_per_selector() {
    let mut st = MemStorage::new();
    st.load(15 * S, "x", "0+1x1000");
    st.load(15 * S, "y", "0+2x1000");
    let _ = range(&st, "rate(x[5m])", 0, 2 * H, 60 * S);
    assert_eq!(*st.selects.lock().unwrap(), 1);
    let _ = range(&st, "sum(x) + sum(rate(y[1m]))", 0, 2 * H, 60 * S);
    assert_eq!(*st.selects.lock().unwrap(), 3);
}

#[test]
fn range_query_vector_selector_with_stale() {
    let st = stale_store();
    let r = range(&st, "metric", 0, 40 * S, 10 * S);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, labels("metric"));
    assert_points(
        &r[0].1,
        &[(0, 0.0), (10 * S, 1.0), (30 * S, 2.0), (40 * S, 2.0)],
        "metric",
    );
}

#[test]
fn range_query_at_start_end() {
    let mut st = MemStorage::new();
    st.load(10 * S, "m", "0+1x100");
    let r = range(&st, "m @ start()", 100 * S, 120 * S, 10 * S);
    assert_points(
        &r[0].1,
        &[(100 * S, 10.0), (110 * S, 10.0), (120 * S, 10.0)],
        "start",
    );
    let r = range(&st, "m @ end()", 100 * S, 120 * S, 10 * S);
    assert_points(
        &r[0].1,
        &[(100 * S, 12.0), (110 * S, 12.0), (120 * S, 12.0)],
        "end",
    );
    let r = range(&st, "m offset 1m", 100 * S, 120 * S, 10 * S);
    assert_points(
        &r[0].1,
        &[(100 * S, 4.0), (110 * S, 5.0), (120 * S, 6.0)],
        "offset",
    );
}

#[test]
fn range_query_shapes() {
    let mut st = MemStorage::new();
    st.load(10 * S, r#"m{a="2"}"#, "0+1x10");
    st.load(10 * S, r#"m{a="1"}"#, "_ _ 5 5");
    let r = range(&st, "time()", 0, 20 * S, 10 * S);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, Labels::empty());
    assert_points(&r[0].1, &[(0, 0.0), (10 * S, 10.0), (20 * S, 20.0)], "time");
    let r = range(&st, "1 + 1", 0, 10 * S, 10 * S);
    assert_points(&r[0].1, &[(0, 2.0), (10 * S, 2.0)], "1+1");
    // Sorted by labels; series appear only where they have values.
    let r = range(&st, "m", 0, 20 * S, 10 * S);
    assert_eq!(r[0].0, labels(r#"m{a="1"}"#));
    assert_points(&r[0].1, &[(20 * S, 5.0)], "a=1");
    assert_eq!(r[1].0, labels(r#"m{a="2"}"#));
    assert_points(&r[1].1, &[(0, 0.0), (10 * S, 1.0), (20 * S, 2.0)], "a=2");
}

#[test]
fn range_query_rejects_bad_requests() {
    let st = MemStorage::new();
    let e = engine();
    assert!(matches!(
        e.range(&st, "x[5m]", 0, 10, 1),
        Err(sightline_promql::QueryError::Parse(m)) if m.contains("range vector")
    ));
    assert!(e.range(&st, "x", 10, 0, 1).is_err());
    assert!(e.range(&st, "x", 0, 10, 0).is_err());
    assert!(e.range(&st, "x", 0, 20_000, 1).is_err());
}
