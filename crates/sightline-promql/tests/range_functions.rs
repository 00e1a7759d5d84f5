//! Range-vector functions: rate/increase/delta extrapolation, irate/idelta, resets, changes,
//! deriv, predict_linear, the *_over_time family and holt_winters.
#![allow(clippy::excessive_precision, clippy::approx_constant)]

mod common;
use common::*;

#[test]
fn rate_aligned_window() {
    let mut st = MemStorage::new();
    st.load(5 * M, "c", "0+10x10");
    // 11 samples covering the whole 50m window: 100 over 3000s.
    assert_vector(&st, "rate(c[50m])", 50 * M, &[("{}", 100.0 / 3000.0)]);
    assert_vector(&st, "increase(c[50m])", 50 * M, &[("{}", 100.0)]);
    assert_vector(&st, "delta(c[50m])", 50 * M, &[("{}", 100.0)]);
}

#[test]
fn rate_extrapolates_to_window_edges() {
    let mut st = MemStorage::new();
    st.load(10 * S, "c", "0+1x100");
    // Window [5s, 65s] holds 1..6 at 10s..60s: 5 over 50s, 5s missing at each edge (< 1.1 * 10s),
    // so extrapolate to 60s: 5 * 60/50 = 6.
    assert_vector(&st, "increase(c[1m])", 65 * S, &[("{}", 6.0)]);
    assert_vector(&st, "rate(c[1m])", 65 * S, &[("{}", 0.1)]);
}

#[test]
fn rate_extrapolation_threshold() {
    let mut st = MemStorage::new();
    st.add("g", &[(20 * S, 5.0), (30 * S, 7.0), (40 * S, 9.0)]);
    // Window [0, 60s]: 20s gaps at both ends exceed 1.1 * 10s, so only half an interval (5s)
    // is added at each end: 4 * 30/20 = 6.
    assert_vector(&st, "delta(g[1m])", 60 * S, &[("{}", 6.0)]);
}

#[test]
fn rate_counter_zero_point_clamp() {
    let mut st = MemStorage::new();
    st.add("c", &[(40 * S, 2.0), (50 * S, 4.0), (60 * S, 6.0)]);
    // The counter would reach 0 10s before the first sample (< 40s to the window start), so
    // extrapolation stops there: 4 * (20 + 10) / 20 = 6.
    assert_vector(&st, "increase(c[1m])", 60 * S, &[("{}", 6.0)]);
    assert_vector(&st, "rate(c[1m])", 60 * S, &[("{}", 0.1)]);
    // delta is not a counter function: 40s > threshold, so half an interval: 4 * 25/20 = 5.
    assert_vector(&st, "delta(c[1m])", 60 * S, &[("{}", 5.0)]);
}

#[test]
fn rate_counter_resets() {
    let mut st = MemStorage::new();
    st.load(5 * M, "c", "0 1 2 3 2 3 4");
    // 4 - 0 + 3 (the value before the reset) = 7.
    assert_vector(&st, "increase(c[30m])", 30 * M, &[("{}", 7.0)]);
    st.load(5 * M, "r", "0+10x4 0+10x5");
    // 0..40, 0..50 over 50m: 40 + 50 = 90 over 3000s.
    assert_vector(&st, "rate(r[50m])", 50 * M, &[("{}", 0.03)]);
}

#[test]
fn rate_needs_two_samples_and_drops_name() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"c{a="x"}"#, "1 2");
    assert_empty(&st, "rate(c[1m])", 5 * M);
    assert_vector(&st, "rate(c[5m])", 5 * M, &[(r#"{a="x"}"#, 1.0 / 300.0)]);
}

#[test]
fn rate_with_offset_and_at() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"c{x="a"}"#, "0+10x10");
    assert_vector(
        &st,
        "rate(c[10m] offset 5m)",
        50 * M,
        &[(r#"{x="a"}"#, 20.0 / 600.0)],
    );
    assert_vector(
        &st,
        "increase(c[10m] @ 600)",
        50 * M,
        &[(r#"{x="a"}"#, 20.0)],
    );
}

#[test]
fn irate_and_idelta() {
    let mut st = MemStorage::new();
    st.load(5 * M, "c", "0+10x10");
    st.load(5 * M, "r", "0 10 20 5");
    st.load(5 * M, "g", "0 50 100 50");
    assert_vector(&st, "irate(c[50m])", 50 * M, &[("{}", 10.0 / 300.0)]);
    // Counter reset: the last value is the increase.
    assert_vector(&st, "irate(r[50m])", 15 * M, &[("{}", 5.0 / 300.0)]);
    assert_vector(&st, "idelta(g[20m])", 15 * M, &[("{}", -50.0)]);
    assert_empty(&st, "idelta(g[1m])", 15 * M);
}

#[test]
fn resets_and_changes() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"h{p="foo"}"#, "1 2 3 0 1 0 0 1 2 0");
    st.load(5 * M, r#"h{p="biz"}"#, "0 0 0 0 0 1 1 1 1 1");
    assert_vector(
        &st,
        "resets(h[45m])",
        45 * M,
        &[(r#"{p="foo"}"#, 3.0), (r#"{p="biz"}"#, 0.0)],
    );
    assert_vector(
        &st,
        "changes(h[45m])",
        45 * M,
        &[(r#"{p="foo"}"#, 8.0), (r#"{p="biz"}"#, 1.0)],
    );
    assert_vector(
        &st,
        "resets(h[5m])",
        45 * M,
        &[(r#"{p="foo"}"#, 1.0), (r#"{p="biz"}"#, 0.0)],
    );
    let mut st = MemStorage::new();
    st.load(5 * M, r#"x{a="b"}"#, "NaN NaN NaN");
    st.load(5 * M, r#"x{a="c"}"#, "0 NaN 0");
    assert_vector(
        &st,
        "changes(x[15m])",
        15 * M,
        &[(r#"{a="b"}"#, 0.0), (r#"{a="c"}"#, 2.0)],
    );
}

#[test]
fn deriv_and_predict_linear() {
    let mut st = MemStorage::new();
    st.load(5 * M, "c", "0+10x4 0+10x5");
    st.load(5 * M, "lin", "0+10x10");
    // Least squares over x = 0,300..3000 s; y = 0,10,20,30,40,0,10,20,30,40,50:
    // covXY = 105000, varX = 9900000.
    let slope = 105000.0 / 9900000.0;
    assert_vector(&st, "deriv(c[100m])", 50 * M, &[("{}", slope)]);
    assert_vector(&st, "deriv(lin[50m])", 50 * M, &[("{}", 10.0 / 300.0)]);
    // Intercept at t = 3000s is 250/11 + slope * (3000 - 16500/11).
    let intercept = 250.0 / 11.0 + slope * (3000.0 - 16500.0 / 11.0);
    assert_vector(
        &st,
        "predict_linear(c[100m], 3600)",
        50 * M,
        &[("{}", intercept + slope * 3600.0)],
    );
    // Constant series: slope 0, intercept the value.
    st.load(5 * M, "k", "7 7 7");
    assert_vector(&st, "predict_linear(k[10m], 100)", 10 * M, &[("{}", 7.0)]);
    assert_vector(&st, "deriv(k[10m])", 10 * M, &[("{}", 0.0)]);
}

#[test]
fn over_time_family() {
    let mut st = MemStorage::new();
    st.load(10 * S, "d", "2 0 3");
    let t = 20 * S;
    assert_vector(&st, "avg_over_time(d[1m])", t, &[("{}", 5.0 / 3.0)]);
    assert_vector(&st, "sum_over_time(d[1m])", t, &[("{}", 5.0)]);
    assert_vector(&st, "count_over_time(d[1m])", t, &[("{}", 3.0)]);
    assert_vector(&st, "min_over_time(d[1m])", t, &[("{}", 0.0)]);
    assert_vector(&st, "max_over_time(d[1m])", t, &[("{}", 3.0)]);
    // last_over_time keeps the metric name.
    assert_vector(&st, "last_over_time(d[1m])", t, &[("d", 3.0)]);
    assert_vector(&st, "present_over_time(d[1m])", t, &[("{}", 1.0)]);
    assert_vector(&st, "quantile_over_time(0.5, d[1m])", t, &[("{}", 2.0)]);
    assert_vector(&st, "quantile_over_time(0.75, d[1m])", t, &[("{}", 2.5)]);
    assert_vector(&st, "quantile_over_time(0, d[1m])", t, &[("{}", 0.0)]);
    assert_vector(
        &st,
        "quantile_over_time(-1, d[1m])",
        t,
        &[("{}", f64::NEG_INFINITY)],
    );
    assert_vector(
        &st,
        "quantile_over_time(2, d[1m])",
        t,
        &[("{}", f64::INFINITY)],
    );
    let var =
        ((2.0f64 - 5.0 / 3.0).powi(2) + (5.0f64 / 3.0).powi(2) + (3.0f64 - 5.0 / 3.0).powi(2))
            / 3.0;
    assert_vector(&st, "stdvar_over_time(d[1m])", t, &[("{}", var)]);
    assert_vector(&st, "stddev_over_time(d[1m])", t, &[("{}", var.sqrt())]);
    assert_vector(&st, "changes((d[1m]))", t, &[("{}", 2.0)]);

    st.load(10 * S, "e", "0 8 8 2 3");
    assert_vector(&st, "stdvar_over_time(e[1m])", 40 * S, &[("{}", 10.56)]);
}

#[test]
fn over_time_nan_and_inf() {
    let mut st = MemStorage::new();
    st.load(10 * S, r#"d{t="a"}"#, "2 NaN 1");
    st.load(10 * S, r#"d{t="b"}"#, "NaN 0 1");
    st.load(10 * S, r#"d{t="c"}"#, "NaN NaN NaN");
    let t = 20 * S;
    assert_vector(
        &st,
        "min_over_time(d[1m])",
        t,
        &[
            (r#"{t="a"}"#, 1.0),
            (r#"{t="b"}"#, 0.0),
            (r#"{t="c"}"#, f64::NAN),
        ],
    );
    assert_vector(
        &st,
        "max_over_time(d[1m])",
        t,
        &[
            (r#"{t="a"}"#, 2.0),
            (r#"{t="b"}"#, 1.0),
            (r#"{t="c"}"#, f64::NAN),
        ],
    );
    let mut st = MemStorage::new();
    st.load(10 * S, "i1", "1 2 3 4 Inf");
    st.load(10 * S, "i2", "1 2 3 Inf -Inf");
    st.load(10 * S, "i3", "Inf 0 Inf");
    st.load(
        10 * S,
        "big",
        "9.988465674311579e+307 9.988465674311579e+307",
    );
    assert_vector(
        &st,
        "avg_over_time(i1[1m])",
        60 * S,
        &[("{}", f64::INFINITY)],
    );
    assert_vector(&st, "avg_over_time(i2[1m])", 60 * S, &[("{}", f64::NAN)]);
    assert_vector(
        &st,
        "avg_over_time(i3[1m])",
        60 * S,
        &[("{}", f64::INFINITY)],
    );
    assert_vector(
        &st,
        "avg_over_time(big[1m])",
        60 * S,
        &[("{}", 9.988465674311579e307)],
    );
    assert_vector(
        &st,
        "sum_over_time(big[1m])",
        60 * S,
        &[("{}", f64::INFINITY)],
    );
}

#[test]
fn absent_over_time() {
    let mut st = MemStorage::new();
    st.load(M, r#"x{job="a"}"#, "1 1 1");
    assert_vector(
        &st,
        r#"absent_over_time(nope{job="j"}[5m])"#,
        0,
        &[(r#"{job="j"}"#, 1.0)],
    );
    assert_vector(
        &st,
        r#"absent_over_time(nope{job="j", job="k", i=~"x"}[5m])"#,
        0,
        &[("{}", 1.0)],
    );
    assert_empty(&st, "absent_over_time(x[5m])", 3 * M);
    assert_empty(&st, "absent_over_time(x[5m])", 7 * M);
    assert_vector(
        &st,
        r#"absent_over_time(x{job="a"}[5m])"#,
        8 * M,
        &[(r#"{job="a"}"#, 1.0)],
    );
    // Subquery arguments give no labels.
    assert_vector(
        &st,
        r#"absent_over_time(nope{job="j"}[5m:1m])"#,
        0,
        &[("{}", 1.0)],
    );
    let r = range(&st, "absent_over_time(x[1m])", 0, 5 * M, M);
    assert_points(&r[0].1, &[(4 * M, 1.0), (5 * M, 1.0)], "absent range");
}

#[test]
fn holt_winters() {
    let mut st = MemStorage::new();
    st.load(10 * S, "h", "1 2 4");
    // s1=1, b=1; i=1: s=0.5*2+0.5*(1+1)=2; i=2: b=0.5*(2-1)+0.5*1=1, s=0.5*4+0.5*(2+1)=3.5.
    assert_vector(&st, "holt_winters(h[1m], 0.5, 0.5)", 20 * S, &[("{}", 3.5)]);
    assert_exec_error(
        &st,
        "holt_winters(h[1m], 1, 0.5)",
        20 * S,
        "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000",
    );
    assert_exec_error(
        &st,
        "holt_winters(h[1m], 0.5, 0)",
        20 * S,
        "invalid trend factor",
    );
    // No data, no error.
    assert_empty(&st, "holt_winters(nope[1m], 1, 0.5)", 20 * S);
}

#[test]
fn range_function_over_range_query_slides_window() {
    let mut st = MemStorage::new();
    st.load(10 * S, "c", "0+1x100");
    let r = range(&st, "sum_over_time(c[20s])", 20 * S, 50 * S, 10 * S);
    // [0,20]: 0+1+2, [10,30]: 1+2+3, ...
    assert_points(
        &r[0].1,
        &[(20 * S, 3.0), (30 * S, 6.0), (40 * S, 9.0), (50 * S, 12.0)],
        "sum_over_time",
    );
    let r = range(&st, "rate(c[1m])", 60 * S, 120 * S, 30 * S);
    assert_points(
        &r[0].1,
        &[(60 * S, 0.1), (90 * S, 0.1), (120 * S, 0.1)],
        "rate",
    );
}

#[test]
fn duplicate_labelsets_after_dropping_names() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"t1{src="a"}"#, "0");
    st.load(5 * M, r#"t2{src="a"}"#, "1");
    assert_exec_error(
        &st,
        r#"changes({__name__=~"t1|t2"}[5m])"#,
        0,
        "vector cannot contain metrics with the same labelset",
    );
    assert_vector(
        &st,
        r#"last_over_time({__name__=~"t1|t2"}[5m])"#,
        0,
        &[(r#"t1{src="a"}"#, 0.0), (r#"t2{src="a"}"#, 1.0)],
    );
}

#[test]
fn at_pinned_windows_in_range_queries() {
    let mut st = MemStorage::new();
    st.load(10 * S, "c", "0+1x1000");
    // A step-invariant call: the window stays at [40s, 100s].
    let r = range(&st, "sum_over_time(c[1m] @ 100)", 100 * S, 120 * S, 10 * S);
    assert_points(
        &r[0].1,
        &[(100 * S, 49.0), (110 * S, 49.0), (120 * S, 49.0)],
        "invariant",
    );
    // predict_linear is not step invariant in Prometheus 2.42: the `@` becomes an offset
    // relative to the query start, so the window moves with the step.
    let r = range(
        &st,
        "predict_linear(c[1m] @ 100, 0)",
        100 * S,
        120 * S,
        10 * S,
    );
    assert_points(
        &r[0].1,
        &[(100 * S, 10.0), (110 * S, 11.0), (120 * S, 12.0)],
        "moving",
    );
    // Same for a call with a non-constant scalar argument.
    let r = range(
        &st,
        "quantile_over_time(scalar(vector(1)) * 0 + 1, c[1m] @ 100)",
        100 * S,
        120 * S,
        10 * S,
    );
    assert_points(
        &r[0].1,
        &[(100 * S, 10.0), (110 * S, 10.0), (120 * S, 10.0)],
        "vector(1) is invariant",
    );
    let r = range(
        &st,
        "quantile_over_time(scalar(c) * 0 + 1, c[1m] @ 100)",
        100 * S,
        120 * S,
        10 * S,
    );
    assert_points(
        &r[0].1,
        &[(100 * S, 10.0), (110 * S, 11.0), (120 * S, 12.0)],
        "moving quantile",
    );
    // timestamp() of an `@` selector ignores `offset` in 2.42.
    assert_vector(&st, "timestamp(c @ 100 offset 50s)", 0, &[("{}", 100.0)]);
}
