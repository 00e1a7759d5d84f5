//! Binary operators: arithmetic, comparisons, bool, scalar/vector combinations, vector matching,
//! group_left/group_right, set operators and their errors.

mod common;
use common::*;

#[test]
fn scalar_arithmetic_and_precedence() {
    let st = MemStorage::new();
    assert_scalar(&st, "1 + 2 * 3", 0, 7.0);
    assert_scalar(&st, "(1 + 2) * 3", 0, 9.0);
    assert_scalar(&st, "2 ^ 3 ^ 2", 0, 512.0);
    assert_scalar(&st, "10 % 3", 0, 1.0);
    assert_scalar(&st, "-7 % 3", 0, -1.0);
    assert_scalar(&st, "1 / 0", 0, f64::INFINITY);
    assert_scalar(&st, "0 / 0", 0, f64::NAN);
    assert_scalar(&st, "1 atan2 1", 0, std::f64::consts::FRAC_PI_4);
    assert_scalar(&st, "1 < bool 2", 0, 1.0);
    assert_scalar(&st, "2 == bool 3", 0, 0.0);
}

#[test]
fn vector_scalar_arithmetic_drops_name() {
    let st = http();
    assert_vector(
        &st,
        r#"http_requests{group="canary"} + 1"#,
        T,
        &[
            (r#"{job="api", instance="0", group="canary"}"#, 301.0),
            (r#"{job="api", instance="1", group="canary"}"#, 401.0),
        ],
    );
    assert_vector(
        &st,
        r#"1000 - http_requests{group="canary"}"#,
        T,
        &[
            (r#"{job="api", instance="0", group="canary"}"#, 700.0),
            (r#"{job="api", instance="1", group="canary"}"#, 600.0),
        ],
    );
    assert_vector(
        &st,
        r#"-http_requests{group="canary", instance="0"}"#,
        T,
        &[(r#"{job="api", instance="0", group="canary"}"#, -300.0)],
    );
}

#[test]
fn comparisons_filter_and_keep_name() {
    let st = http();
    assert_vector(
        &st,
        "http_requests > 250",
        T,
        &[
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
            (
                r#"http_requests{job="api", instance="1", group="canary"}"#,
                400.0,
            ),
        ],
    );
    // Scalar on the left: the vector element's value is kept.
    assert_vector(
        &st,
        "250 < http_requests",
        T,
        &[
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
            (
                r#"http_requests{job="api", instance="1", group="canary"}"#,
                400.0,
            ),
        ],
    );
    assert_vector(
        &st,
        r#"http_requests{instance="0"} > bool 250"#,
        T,
        &[
            (r#"{job="api", instance="0", group="production"}"#, 0.0),
            (r#"{job="api", instance="0", group="canary"}"#, 1.0),
        ],
    );
    assert_vector(
        &st,
        r#"http_requests{group="canary"} == http_requests{group="canary"}"#,
        T,
        &[
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
            (
                r#"http_requests{job="api", instance="1", group="canary"}"#,
                400.0,
            ),
        ],
    );
}

#[test]
fn one_to_one_matching() {
    let st = http();
    assert_vector(
        &st,
        r#"http_requests{group="canary"} / on(instance, job) http_requests{group="production"}"#,
        T,
        &[
            (r#"{instance="0", job="api"}"#, 3.0),
            (r#"{instance="1", job="api"}"#, 2.0),
        ],
    );
    assert_vector(
        &st,
        r#"http_requests{group="canary"} / ignoring(group) http_requests{group="production"}"#,
        T,
        &[
            (r#"{instance="0", job="api"}"#, 3.0),
            (r#"{instance="1", job="api"}"#, 2.0),
        ],
    );
    assert_vector(
        &st,
        r#"http_requests{group="canary"} > bool ignoring(group) http_requests{group="production"}"#,
        T,
        &[
            (r#"{instance="0", job="api"}"#, 1.0),
            (r#"{instance="1", job="api"}"#, 1.0),
        ],
    );
    // Without matching modifiers all labels (but the name) must match.
    assert_vector(
        &st,
        r#"http_requests - http_requests"#,
        T,
        &[
            (r#"{job="api", instance="0", group="production"}"#, 0.0),
            (r#"{job="api", instance="1", group="production"}"#, 0.0),
            (r#"{job="api", instance="0", group="canary"}"#, 0.0),
            (r#"{job="api", instance="1", group="canary"}"#, 0.0),
        ],
    );
    assert_empty(
        &st,
        r#"http_requests{group="canary"} + http_requests{group="production"}"#,
        T,
    );
}

fn nodes() -> MemStorage {
    let mut st = MemStorage::new();
    st.load(M, r#"node_cpu{instance="a", cpu="0"}"#, "10");
    st.load(M, r#"node_cpu{instance="a", cpu="1"}"#, "20");
    st.load(M, r#"node_cpu{instance="b", cpu="0"}"#, "30");
    st.load(
        M,
        r#"node_info{instance="a", os="linux", version="1"}"#,
        "1",
    );
    st.load(M, r#"node_info{instance="b", os="bsd", version="2"}"#, "2");
    st
}

#[test]
fn group_left_copies_labels_from_one_side() {
    let st = nodes();
    assert_vector(
        &st,
        "node_cpu * on(instance) group_left(os) node_info",
        0,
        &[
            (r#"{cpu="0", instance="a", os="linux"}"#, 10.0),
            (r#"{cpu="1", instance="a", os="linux"}"#, 20.0),
            (r#"{cpu="0", instance="b", os="bsd"}"#, 60.0),
        ],
    );
    assert_vector(
        &st,
        "node_info * on(instance) group_right(os, version) node_cpu",
        0,
        &[
            (r#"{cpu="0", instance="a", os="linux", version="1"}"#, 10.0),
            (r#"{cpu="1", instance="a", os="linux", version="1"}"#, 20.0),
            (r#"{cpu="0", instance="b", os="bsd", version="2"}"#, 60.0),
        ],
    );
    // Comparisons keep the many side's name; for group_right the value is the left operand's.
    assert_vector(
        &st,
        "node_cpu > on(instance) group_left node_info",
        0,
        &[
            (r#"node_cpu{cpu="0", instance="a"}"#, 10.0),
            (r#"node_cpu{cpu="1", instance="a"}"#, 20.0),
            (r#"node_cpu{cpu="0", instance="b"}"#, 30.0),
        ],
    );
    assert_vector(
        &st,
        "node_info < on(instance) group_right node_cpu",
        0,
        &[
            (r#"node_cpu{cpu="0", instance="a"}"#, 1.0),
            (r#"node_cpu{cpu="1", instance="a"}"#, 1.0),
            (r#"node_cpu{cpu="0", instance="b"}"#, 2.0),
        ],
    );
    // A group_left label missing on the one side is removed.
    assert_vector(
        &st,
        r#"node_cpu{instance="a"} + on(instance) group_left(nothere) node_info"#,
        0,
        &[
            (r#"{cpu="0", instance="a"}"#, 11.0),
            (r#"{cpu="1", instance="a"}"#, 21.0),
        ],
    );
}

#[test]
fn matching_errors() {
    let st = nodes();
    assert_exec_error(
        &st,
        "node_info + on(instance) node_cpu",
        0,
        r#"found duplicate series for the match group {instance="a"} on the right hand-side of the operation: [{__name__="node_cpu", cpu="1", instance="a"}, {__name__="node_cpu", cpu="0", instance="a"}];many-to-many matching not allowed: matching labels must be unique on one side"#,
    );
    assert_exec_error(
        &st,
        "node_cpu + on(instance) group_right node_info",
        0,
        "on the left hand-side of the operation",
    );
    assert_exec_error(
        &st,
        "node_cpu + on(instance) node_info",
        0,
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
    );
    let mut st = MemStorage::new();
    st.load(M, r#"x{instance="a", os="p"}"#, "1");
    st.load(M, r#"x{instance="a", os="q"}"#, "2");
    st.load(M, r#"info{instance="a", os="linux"}"#, "1");
    assert_exec_error(
        &st,
        "x * on(instance) group_left(os) info",
        0,
        "multiple matches for labels: grouping labels must ensure unique matches",
    );
    let mut st = MemStorage::new();
    st.load(M, r#"t1{src="a"}"#, "0");
    st.load(M, r#"t2{src="a"}"#, "1");
    assert_exec_error(
        &st,
        r#"{__name__=~"t1|t2"} + 1"#,
        0,
        "vector cannot contain metrics with the same labelset",
    );
    assert_exec_error(
        &st,
        r#"-{__name__=~"t1|t2"}"#,
        0,
        "vector cannot contain metrics with the same labelset",
    );
    // Comparisons without bool keep the name, so no collision.
    assert_vector(
        &st,
        r#"{__name__=~"t1|t2"} >= 0"#,
        0,
        &[(r#"t1{src="a"}"#, 0.0), (r#"t2{src="a"}"#, 1.0)],
    );
}

#[test]
fn set_operators() {
    let st = http();
    assert_vector(
        &st,
        r#"http_requests{group="canary"} and http_requests{instance="0"}"#,
        T,
        &[(
            r#"http_requests{job="api", instance="0", group="canary"}"#,
            300.0,
        )],
    );
    assert_vector(
        &st,
        r#"http_requests{group="canary"} and on(instance) http_requests{group="production", instance="1"}"#,
        T,
        &[(
            r#"http_requests{job="api", instance="1", group="canary"}"#,
            400.0,
        )],
    );
    assert_vector(
        &st,
        r#"http_requests{group="canary"} or http_requests{group="production", instance="0"}"#,
        T,
        &[
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
            (
                r#"http_requests{job="api", instance="1", group="canary"}"#,
                400.0,
            ),
            (
                r#"http_requests{job="api", instance="0", group="production"}"#,
                100.0,
            ),
        ],
    );
    assert_vector(
        &st,
        r#"http_requests{group="canary"} or on(instance) (http_requests{group="production"} + 1)"#,
        T,
        &[
            (
                r#"http_requests{job="api", instance="0", group="canary"}"#,
                300.0,
            ),
            (
                r#"http_requests{job="api", instance="1", group="canary"}"#,
                400.0,
            ),
        ],
    );
    assert_vector(
        &st,
        r#"http_requests unless http_requests{instance="0"}"#,
        T,
        &[
            (
                r#"http_requests{job="api", instance="1", group="production"}"#,
                200.0,
            ),
            (
                r#"http_requests{job="api", instance="1", group="canary"}"#,
                400.0,
            ),
        ],
    );
    assert_vector(
        &st,
        r#"http_requests{instance="0"} unless ignoring(group) http_requests{group="canary", instance="0"}"#,
        T,
        &[],
    );
    assert_vector(&st, "vector(1) or vector(2)", T, &[("{}", 1.0)]);
    assert_vector(&st, "vector(1) and nothing", T, &[]);
    assert_vector(&st, "nothing or vector(2)", T, &[("{}", 2.0)]);
}

#[test]
fn binary_over_range_query() {
    let mut st = MemStorage::new();
    st.load(10 * S, r#"a{k="1"}"#, "1 2 3");
    st.load(10 * S, r#"b{k="1"}"#, "10 _ 30");
    let r = range(&st, "a + on(k) b", 0, 20 * S, 10 * S);
    // b at 10s is still b@0s (within the lookback), so every step matches.
    assert_points(&r[0].1, &[(0, 11.0), (10 * S, 12.0), (20 * S, 33.0)], "a+b");
    let r = range(&st, "a > bool 1.5", 0, 20 * S, 10 * S);
    assert_points(&r[0].1, &[(0, 0.0), (10 * S, 1.0), (20 * S, 1.0)], "bool");
    let r = range(&st, "a > 1.5", 0, 20 * S, 10 * S);
    assert_points(&r[0].1, &[(10 * S, 2.0), (20 * S, 3.0)], "filter");
    let r = range(&st, "a * time()", 0, 20 * S, 10 * S);
    assert_points(
        &r[0].1,
        &[(0, 0.0), (10 * S, 20.0), (20 * S, 60.0)],
        "times time",
    );
}
