//! histogram_quantile over classic `le` buckets.

mod common;
use common::*;

fn hist() -> MemStorage {
    let mut st = MemStorage::new();
    for (le, v) in [("0.1", "10"), ("0.5", "20"), ("1", "25"), ("+Inf", "30")] {
        st.load(M, &format!(r#"h_bucket{{job="a", le="{le}"}}"#), v);
    }
    st
}

#[test]
fn interpolates_within_buckets() {
    let st = hist();
    // rank 15 lands in (0.1, 0.5]: 0.1 + 0.4 * (15 - 10) / 10.
    assert_vector(
        &st,
        "histogram_quantile(0.5, h_bucket)",
        0,
        &[(r#"{job="a"}"#, 0.3)],
    );
    // rank 7.5 in the first bucket, interpolated from 0.
    assert_vector(
        &st,
        "histogram_quantile(0.25, h_bucket)",
        0,
        &[(r#"{job="a"}"#, 0.075)],
    );
    // rank 27 falls into +Inf: the highest finite bound.
    assert_vector(
        &st,
        "histogram_quantile(0.9, h_bucket)",
        0,
        &[(r#"{job="a"}"#, 1.0)],
    );
    assert_vector(
        &st,
        "histogram_quantile(1, h_bucket)",
        0,
        &[(r#"{job="a"}"#, 1.0)],
    );
    assert_vector(
        &st,
        "histogram_quantile(0, h_bucket)",
        0,
        &[(r#"{job="a"}"#, 0.0)],
    );
    assert_vector(
        &st,
        "histogram_quantile(-0.1, h_bucket)",
        0,
        &[(r#"{job="a"}"#, f64::NEG_INFINITY)],
    );
    assert_vector(
        &st,
        "histogram_quantile(1.01, h_bucket)",
        0,
        &[(r#"{job="a"}"#, f64::INFINITY)],
    );
    assert_vector(
        &st,
        "histogram_quantile(NaN, h_bucket)",
        0,
        &[(r#"{job="a"}"#, f64::NAN)],
    );
}

#[test]
fn edge_cases() {
    let mut st = MemStorage::new();
    // No +Inf bucket.
    st.load(M, r#"noinf_bucket{le="1"}"#, "1");
    st.load(M, r#"noinf_bucket{le="2"}"#, "2");
    // Non-monotonic counts are fixed up: 0.5 becomes 10.
    for (le, v) in [("0.1", "10"), ("0.5", "8"), ("1", "25"), ("+Inf", "30")] {
        st.load(M, &format!(r#"nm_bucket{{le="{le}"}}"#), v);
    }
    // Lowest bucket with a non-positive bound.
    for (le, v) in [("-1", "5"), ("0", "10"), ("+Inf", "10")] {
        st.load(M, &format!(r#"neg_bucket{{le="{le}"}}"#), v);
    }
    // Zero observations.
    for (le, v) in [("1", "0"), ("+Inf", "0")] {
        st.load(M, &format!(r#"zero_bucket{{le="{le}"}}"#), v);
    }
    // Only +Inf.
    st.load(M, r#"one_bucket{le="+Inf"}"#, "4");
    // Different spellings of the same bound are merged.
    for (le, v) in [("0.2", "1"), ("2e-1", "1"), ("+inf", "2"), ("+Inf", "2")] {
        st.load(M, &format!(r#"mixed_bucket{{le="{le}"}}"#), v);
    }
    // A bucket without a parsable le is ignored.
    st.load(M, r#"mixed_bucket{le="abc"}"#, "100");
    assert_vector(
        &st,
        "histogram_quantile(0.5, noinf_bucket)",
        0,
        &[("{}", f64::NAN)],
    );
    assert_vector(
        &st,
        "histogram_quantile(0.5, nm_bucket)",
        0,
        &[("{}", 0.5 + 0.5 * 5.0 / 15.0)],
    );
    assert_vector(
        &st,
        "histogram_quantile(0.25, neg_bucket)",
        0,
        &[("{}", -1.0)],
    );
    assert_vector(
        &st,
        "histogram_quantile(0.75, neg_bucket)",
        0,
        &[("{}", -0.5)],
    );
    assert_vector(
        &st,
        "histogram_quantile(0.5, zero_bucket)",
        0,
        &[("{}", f64::NAN)],
    );
    assert_vector(
        &st,
        "histogram_quantile(0.5, one_bucket)",
        0,
        &[("{}", f64::NAN)],
    );
    // Buckets 0.2 -> 2, +Inf -> 4: rank 2 is reached at 0.2: 0.2 * 2/2.
    assert_vector(
        &st,
        "histogram_quantile(0.5, mixed_bucket)",
        0,
        &[("{}", 0.2)],
    );
}

#[test]
fn aggregated_rates_per_group() {
    let mut st = MemStorage::new();
    for (inst, counts) in [("1", [1.0, 3.0, 4.0]), ("2", [2.0, 5.0, 6.0])] {
        for (le, c) in ["0.1", "0.2", "+Inf"].iter().zip(counts) {
            st.load(
                5 * M,
                &format!(r#"req_bucket{{job="j", instance="{inst}", le="{le}"}}"#),
                &format!("0+{c}x10"),
            );
        }
    }
    // Summed per-second rates: 0.1 -> 3/300, 0.2 -> 8/300, +Inf -> 10/300.
    // q=0.5: rank 5/300 in (0.1, 0.2]: 0.1 + 0.1 * (5-3)/(8-3).
    assert_vector(
        &st,
        "histogram_quantile(0.5, sum by (le) (rate(req_bucket[10m])))",
        50 * M,
        &[("{}", 0.14)],
    );
    // Per instance: instance 1 rank 2 in (0.1,0.2] -> 0.1 + 0.1*(2-1)/2 = 0.15;
    // instance 2 rank 3 in (0.1,0.2] -> 0.1 + 0.1*(3-2)/3.
    assert_vector(
        &st,
        "histogram_quantile(0.5, rate(req_bucket[10m]))",
        50 * M,
        &[
            (r#"{job="j", instance="1"}"#, 0.15),
            (r#"{job="j", instance="2"}"#, 0.1 + 0.1 / 3.0),
        ],
    );
    let r = range(
        &st,
        "histogram_quantile(0.5, sum by (le) (rate(req_bucket[10m])))",
        40 * M,
        50 * M,
        5 * M,
    );
    assert_points(
        &r[0].1,
        &[(40 * M, 0.14), (45 * M, 0.14), (50 * M, 0.14)],
        "range",
    );
}

#[test]
fn output_collisions_are_errors() {
    let mut st = MemStorage::new();
    st.load(M, r#"a_bucket{le="1"}"#, "1");
    st.load(M, r#"a_bucket{le="+Inf"}"#, "1");
    st.load(M, r#"b_bucket{le="1"}"#, "1");
    st.load(M, r#"b_bucket{le="+Inf"}"#, "1");
    assert_exec_error(
        &st,
        r#"histogram_quantile(0.5, {__name__=~"a_bucket|b_bucket"})"#,
        0,
        "vector cannot contain metrics with the same labelset",
    );
}
