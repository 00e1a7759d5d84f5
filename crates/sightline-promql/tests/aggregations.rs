//! Aggregation operators with by/without, parameters and their validation.
#![allow(clippy::excessive_precision, clippy::approx_constant)]

mod common;
use common::*;

#[test]
fn basic_aggregations() {
    let st = http();
    assert_vector(&st, "sum(http_requests)", T, &[("{}", 1000.0)]);
    assert_vector(
        &st,
        "sum by (group) (http_requests)",
        T,
        &[
            (r#"{group="production"}"#, 300.0),
            (r#"{group="canary"}"#, 700.0),
        ],
    );
    assert_vector(
        &st,
        "sum(http_requests) by (group)",
        T,
        &[
            (r#"{group="production"}"#, 300.0),
            (r#"{group="canary"}"#, 700.0),
        ],
    );
    assert_vector(
        &st,
        "sum without (instance) (http_requests)",
        T,
        &[
            (r#"{group="production", job="api"}"#, 300.0),
            (r#"{group="canary", job="api"}"#, 700.0),
        ],
    );
    assert_vector(
        &st,
        "avg by (group) (http_requests)",
        T,
        &[
            (r#"{group="production"}"#, 150.0),
            (r#"{group="canary"}"#, 350.0),
        ],
    );
    assert_vector(&st, "count(http_requests)", T, &[("{}", 4.0)]);
    assert_vector(&st, "min(http_requests)", T, &[("{}", 100.0)]);
    assert_vector(&st, "max(http_requests)", T, &[("{}", 400.0)]);
    assert_vector(
        &st,
        "group by (job) (http_requests)",
        T,
        &[(r#"{job="api"}"#, 1.0)],
    );
    assert_vector(&st, "stdvar(http_requests)", T, &[("{}", 12500.0)]);
    assert_vector(&st, "stddev(http_requests)", T, &[("{}", 12500f64.sqrt())]);
    assert_vector(
        &st,
        "sum by (__name__) (http_requests)",
        T,
        &[("http_requests", 1000.0)],
    );
    assert_vector(
        &st,
        "count by (nonexistent) (http_requests)",
        T,
        &[("{}", 4.0)],
    );
    assert_vector(&st, "sum(nothing)", T, &[]);
}

#[test]
fn quantile_aggregation() {
    let st = http();
    assert_vector(&st, "quantile(0.5, http_requests)", T, &[("{}", 250.0)]);
    assert_vector(
        &st,
        "quantile by (group) (0.9, http_requests)",
        T,
        &[
            (r#"{group="production"}"#, 190.0),
            (r#"{group="canary"}"#, 390.0),
        ],
    );
    assert_vector(
        &st,
        "quantile(-1, http_requests)",
        T,
        &[("{}", f64::NEG_INFINITY)],
    );
    assert_vector(&st, "quantile(NaN, http_requests)", T, &[("{}", f64::NAN)]);
}

#[test]
fn topk_bottomk() {
    let st = http();
    assert_vector_ordered(
        &st,
        "topk(2, http_requests)",
        T,
        &[
            (
                r#"http_requests{job="api", instance="1", group="canary"}"#,
                400.0,
            ),
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
        ],
    );
    assert_vector(
        &st,
        "bottomk by (group) (1, http_requests)",
        T,
        &[
            (
                r#"http_requests{job="api", instance="0", group="production"}"#,
                100.0,
            ),
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
        ],
    );
    assert_vector_ordered(
        &st,
        "bottomk(3, http_requests)",
        T,
        &[
            (
                r#"http_requests{job="api", instance="0", group="production"}"#,
                100.0,
            ),
            (
                r#"http_requests{job="api", instance="1", group="production"}"#,
                200.0,
            ),
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
        ],
    );
    assert_vector(&st, "topk(0, http_requests)", T, &[]);
    assert_vector(&st, "count(topk(100, http_requests))", T, &[("{}", 4.0)]);
    assert_exec_error(
        &st,
        "topk(NaN, http_requests)",
        T,
        "Scalar value NaN overflows int64",
    );
    // k is truncated.
    assert_vector(&st, "count(topk(1.9, http_requests))", T, &[("{}", 1.0)]);
}

#[test]
fn topk_prefers_numbers_over_nan() {
    let mut st = MemStorage::new();
    st.load(M, r#"v{i="a"}"#, "NaN");
    st.load(M, r#"v{i="b"}"#, "1");
    st.load(M, r#"v{i="c"}"#, "2");
    assert_vector_ordered(
        &st,
        "topk(2, v)",
        0,
        &[(r#"v{i="c"}"#, 2.0), (r#"v{i="b"}"#, 1.0)],
    );
    assert_vector_ordered(
        &st,
        "bottomk(2, v)",
        0,
        &[(r#"v{i="b"}"#, 1.0), (r#"v{i="c"}"#, 2.0)],
    );
    assert_vector(&st, "max(v)", 0, &[("{}", 2.0)]);
    assert_vector(&st, "min(v)", 0, &[("{}", 1.0)]);
    assert_vector(&st, "sum(v)", 0, &[("{}", f64::NAN)]);
}

#[test]
fn count_values() {
    let st = http();
    assert_vector(
        &st,
        r#"count_values("value", http_requests)"#,
        T,
        &[
            (r#"{value="100"}"#, 1.0),
            (r#"{value="200"}"#, 1.0),
            (r#"{value="300"}"#, 1.0),
            (r#"{value="400"}"#, 1.0),
        ],
    );
    assert_vector(
        &st,
        r#"count_values by (group) ("v", floor(http_requests / 1000))"#,
        T,
        &[
            (r#"{group="production", v="0"}"#, 2.0),
            (r#"{group="canary", v="0"}"#, 2.0),
        ],
    );
    assert_vector(
        &st,
        r#"count_values without (instance) ("v", http_requests{group="canary"} * 0 + 1e21)"#,
        T,
        &[(
            r#"{group="canary", job="api", v="1000000000000000000000"}"#,
            2.0,
        )],
    );
    assert_exec_error(
        &st,
        r#"count_values("a-b", http_requests)"#,
        T,
        r#"invalid label name "a-b""#,
    );
}

#[test]
fn avg_with_infinities_and_large_values() {
    let mut st = MemStorage::new();
    st.load(M, r#"x{i="1"}"#, "Inf");
    st.load(M, r#"x{i="2"}"#, "1");
    st.load(M, r#"y{i="1"}"#, "9.988465674311579e+307");
    st.load(M, r#"y{i="2"}"#, "9.988465674311579e+307");
    assert_vector(&st, "avg(x)", 0, &[("{}", f64::INFINITY)]);
    assert_vector(&st, "avg(y)", 0, &[("{}", 9.988465674311579e307)]);
    assert_vector(&st, "sum(y)", 0, &[("{}", f64::INFINITY)]);
}

#[test]
fn aggregation_over_range_query() {
    let mut st = MemStorage::new();
    st.load(10 * S, r#"m{g="a", i="1"}"#, "1 2 3");
    st.load(10 * S, r#"m{g="a", i="2"}"#, "_ 5 5");
    st.load(10 * S, r#"m{g="b", i="3"}"#, "7 _ _");
    let r = range(&st, "sum by (g) (m)", 0, 20 * S, 10 * S);
    assert_eq!(r[0].0, labels(r#"{g="a"}"#));
    assert_points(&r[0].1, &[(0, 1.0), (10 * S, 7.0), (20 * S, 8.0)], "a");
    assert_eq!(r[1].0, labels(r#"{g="b"}"#));
    assert_points(&r[1].1, &[(0, 7.0), (10 * S, 7.0), (20 * S, 7.0)], "b");
    let r = range(&st, "topk(1, m)", 0, 20 * S, 10 * S);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, labels(r#"m{g="b", i="3"}"#));
    let r = range(&st, "count(m)", 0, 20 * S, 10 * S);
    assert_points(&r[0].1, &[(0, 2.0), (10 * S, 3.0), (20 * S, 3.0)], "count");
}
