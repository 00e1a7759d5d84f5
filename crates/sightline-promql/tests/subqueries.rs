//! Subqueries: step alignment, offset and `@`, nesting, default step, range queries.

mod common;
use common::*;

fn metrics() -> MemStorage {
    let mut st = MemStorage::new();
    st.load(10 * S, "metric1", "0+1x1000");
    st.load(10 * S, "metric2", "0+2x1000");
    st
}

#[test]
fn step_alignment() {
    let st = metrics();
    // Steps 970, 980, 990, 1000: 97+98+99+100.
    assert_vector(
        &st,
        "sum_over_time(metric1[30s:10s])",
        1000 * S,
        &[("{}", 394.0)],
    );
    // Steps every 5s from 970: each value twice except 100.
    assert_vector(
        &st,
        "sum_over_time(metric1[30s:5s])",
        1000 * S,
        &[("{}", 688.0)],
    );
    // Offset 10s at 1010s is the same window.
    assert_vector(
        &st,
        "sum_over_time(metric1[30s:10s] offset 10s)",
        1010 * S,
        &[("{}", 394.0)],
    );
    // Window [971, 1001] aligns to 980, 990, 1000.
    for off in ["9s", "7s", "5s", "3s"] {
        assert_vector(
            &st,
            &format!("sum_over_time(metric1[30s:10s] offset {off})"),
            1010 * S,
            &[("{}", 297.0)],
        );
    }
    assert_vector(
        &st,
        "sum_over_time((metric1)[30s:10s] offset 3s)",
        1010 * S,
        &[("{}", 297.0)],
    );
    // Window [983, 1003] at 1003s: steps 990, 1000.
    assert_vector(
        &st,
        "sum_over_time(metric1[20s:10s])",
        1003 * S,
        &[("{}", 199.0)],
    );
}

#[test]
fn before_zero_and_staleness() {
    let mut st = MemStorage::new();
    st.load(10 * S, "metric", "1 2");
    // Steps -40..10 every 10s: only 0 and 10 have samples.
    assert_vector(
        &st,
        "sum_over_time(metric[50s:10s])",
        10 * S,
        &[("{}", 3.0)],
    );
    assert_vector(&st, "sum_over_time(metric[50s:5s])", 10 * S, &[("{}", 4.0)]);
    // Every step in [250s, 300s] sees the last value, 2.
    assert_vector(
        &st,
        "sum_over_time(metric[50s:10s])",
        5 * M,
        &[("{}", 12.0)],
    );
    // The series disappears 5m after its last sample (10s): only the step at 310s remains.
    assert_vector(&st, "sum_over_time(metric[50s:10s])", 6 * M, &[("{}", 2.0)]);
    assert_vector(&st, "rate(metric[20s:10s])", 10 * S, &[("{}", 0.1)]);
    assert_vector(&st, "rate(metric[20s:5s])", 20 * S, &[("{}", 0.05)]);
}

#[test]
fn nested_subqueries() {
    let st = metrics();
    // sum_over_time(metric1[30s:10s]) at t is 4t/10 - 6: slope 4 per 10s over [950, 1000].
    assert_vector(
        &st,
        "rate(sum_over_time(metric1[30s:10s])[50s:10s])",
        1000 * S,
        &[("{}", 0.4)],
    );
    assert_vector(
        &st,
        "rate(sum_over_time(metric2[30s:10s])[50s:10s])",
        1000 * S,
        &[("{}", 0.8)],
    );
    assert_vector(
        &st,
        "rate(sum_over_time((metric1+metric2)[30s:10s])[30s:10s])",
        1000 * S,
        &[("{}", 1.2)],
    );
    assert_vector(
        &st,
        "max_over_time(rate(metric1[1m])[5m:1m])",
        1000 * S,
        &[("{}", 0.1)],
    );
}

#[test]
fn at_modifier_on_subqueries() {
    let st = metrics();
    // Steps 0..100 every 1s: 10 * (0+1+...+9) + 10.
    assert_vector(
        &st,
        "sum_over_time(metric1[100s:1s] @ 100)",
        25 * S,
        &[("{}", 460.0)],
    );
    // Ends at 80s: 10 * (0+...+7) + 8.
    assert_vector(
        &st,
        "sum_over_time(metric1[100s:1s] @ 100 offset 20s)",
        25 * S,
        &[("{}", 288.0)],
    );
    // Inner selector pinned by @: 55 at every one of the 5 steps.
    assert_vector(
        &st,
        "sum_over_time(sum_over_time(metric1[100s] @ 100)[100s:25s] @ 50)",
        100 * S,
        &[("{}", 275.0)],
    );
    // time() inside a subquery is the subquery step time: 2900 + ... + 3000.
    assert_vector(
        &st,
        "sum_over_time(vector(time())[100s:1s] @ 3000)",
        0,
        &[("{}", 297950.0)],
    );
    assert_vector(
        &st,
        "sum_over_time(minute()[50m:1m] @ 6000)",
        0,
        &[("{}", 1365.0)],
    );
    assert_vector(
        &st,
        "sum_over_time(timestamp(metric1 @ 10)[100s:10s] @ 3000)",
        0,
        &[("{}", 110.0)],
    );
}

#[test]
fn default_step_is_one_minute() {
    let mut st = MemStorage::new();
    st.load(10 * S, "m", "0+1x1000");
    // Steps 300, 360, 420, 480, 540, 600 s: 30 + 36 + ... + 60.
    assert_vector(&st, "sum_over_time(m[5m:])", 600 * S, &[("{}", 270.0)]);
    assert_vector(&st, "count_over_time(m[5m:])", 600 * S, &[("{}", 6.0)]);
}

#[test]
fn subqueries_in_range_queries() {
    let st = metrics();
    let r = range(
        &st,
        "sum_over_time(metric1[20s:10s])",
        100 * S,
        120 * S,
        10 * S,
    );
    assert_points(
        &r[0].1,
        &[(100 * S, 27.0), (110 * S, 30.0), (120 * S, 33.0)],
        "aligned",
    );
    // Inner steps are multiples of 10s: 90, 100, 110, 120.
    let r = range(
        &st,
        "sum_over_time(metric1[20s:10s])",
        105 * S,
        125 * S,
        10 * S,
    );
    assert_points(
        &r[0].1,
        &[(105 * S, 19.0), (115 * S, 21.0), (125 * S, 23.0)],
        "unaligned",
    );
    let r = range(
        &st,
        "sum_over_time(metric1[20s:10s] @ 100)",
        105 * S,
        125 * S,
        10 * S,
    );
    assert_points(
        &r[0].1,
        &[(105 * S, 27.0), (115 * S, 27.0), (125 * S, 27.0)],
        "at",
    );
}
