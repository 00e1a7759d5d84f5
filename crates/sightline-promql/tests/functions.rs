//! Instant-vector and scalar functions: math, clamp, round, time and date functions, absent,
//! scalar/vector, sort, timestamp, label_replace and label_join.
#![allow(clippy::excessive_precision, clippy::approx_constant)]

mod common;
use common::*;

#[test]
fn math_functions_drop_name() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"m{l="x"}"#, "10");
    st.load(5 * M, r#"m{l="y"}"#, "-2.5");
    assert_vector(
        &st,
        "abs(m)",
        0,
        &[(r#"{l="x"}"#, 10.0), (r#"{l="y"}"#, 2.5)],
    );
    assert_vector(
        &st,
        "ceil(m)",
        0,
        &[(r#"{l="x"}"#, 10.0), (r#"{l="y"}"#, -2.0)],
    );
    assert_vector(
        &st,
        "floor(m)",
        0,
        &[(r#"{l="x"}"#, 10.0), (r#"{l="y"}"#, -3.0)],
    );
    assert_vector(
        &st,
        "sgn(m)",
        0,
        &[(r#"{l="x"}"#, 1.0), (r#"{l="y"}"#, -1.0)],
    );
    assert_vector(
        &st,
        "exp(m)",
        0,
        &[
            (r#"{l="x"}"#, 22026.465794806718),
            (r#"{l="y"}"#, (-2.5f64).exp()),
        ],
    );
    assert_vector(
        &st,
        "ln(m)",
        0,
        &[(r#"{l="x"}"#, 2.302585092994046), (r#"{l="y"}"#, f64::NAN)],
    );
    assert_vector(
        &st,
        r#"log2(m{l="x"})"#,
        0,
        &[(r#"{l="x"}"#, 3.3219280948873626)],
    );
    assert_vector(&st, r#"log10(m{l="x"})"#, 0, &[(r#"{l="x"}"#, 1.0)]);
    assert_vector(
        &st,
        r#"sqrt(m{l="x"})"#,
        0,
        &[(r#"{l="x"}"#, 3.1622776601683795)],
    );
    assert_vector(
        &st,
        r#"ln(m{l="x"} - 10)"#,
        0,
        &[(r#"{l="x"}"#, f64::NEG_INFINITY)],
    );
    assert_vector(&st, r#"exp(ln(m{l="x"}))"#, 0, &[(r#"{l="x"}"#, 10.0)]);
}

#[test]
fn trig_functions() {
    let mut st = MemStorage::new();
    st.load(5 * M, "t", "0.5");
    for (f, v) in [
        ("sin", 0.5f64.sin()),
        ("cos", 0.5f64.cos()),
        ("tan", 0.5f64.tan()),
        ("asin", 0.5f64.asin()),
        ("acos", 0.5f64.acos()),
        ("atan", 0.5f64.atan()),
        ("sinh", 0.5f64.sinh()),
        ("cosh", 0.5f64.cosh()),
        ("tanh", 0.5f64.tanh()),
        ("asinh", 0.5f64.asinh()),
        ("atanh", 0.5f64.atanh()),
        ("deg", 0.5 * 180.0 / std::f64::consts::PI),
        ("rad", 0.5 * std::f64::consts::PI / 180.0),
    ] {
        assert_vector(&st, &format!("{f}(t)"), 0, &[("{}", v)]);
    }
    assert_vector(&st, "acosh(t + 1)", 0, &[("{}", 1.5f64.acosh())]);
    assert_scalar(&st, "pi()", 0, std::f64::consts::PI);
    assert_vector(&st, "deg(vector(pi()))", 0, &[("{}", 180.0)]);
}

#[test]
fn clamp_and_round() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"c{src="a"}"#, "-50");
    st.load(5 * M, r#"c{src="b"}"#, "0");
    st.load(5 * M, r#"c{src="c"}"#, "100");
    assert_vector(
        &st,
        "clamp_max(c, 75)",
        0,
        &[
            (r#"{src="a"}"#, -50.0),
            (r#"{src="b"}"#, 0.0),
            (r#"{src="c"}"#, 75.0),
        ],
    );
    assert_vector(
        &st,
        "clamp_min(c, -25)",
        0,
        &[
            (r#"{src="a"}"#, -25.0),
            (r#"{src="b"}"#, 0.0),
            (r#"{src="c"}"#, 100.0),
        ],
    );
    assert_vector(
        &st,
        "clamp(c, -25, 75)",
        0,
        &[
            (r#"{src="a"}"#, -25.0),
            (r#"{src="b"}"#, 0.0),
            (r#"{src="c"}"#, 75.0),
        ],
    );
    assert_vector(
        &st,
        "clamp(c, 0, NaN)",
        0,
        &[
            (r#"{src="a"}"#, f64::NAN),
            (r#"{src="b"}"#, f64::NAN),
            (r#"{src="c"}"#, f64::NAN),
        ],
    );
    assert_empty(&st, "clamp(c, 5, -5)", 0);

    let mut st = MemStorage::new();
    st.load(5 * M, r#"r{i="1"}"#, "1.25");
    st.load(5 * M, r#"r{i="2"}"#, "-2.5");
    st.load(5 * M, r#"r{i="3"}"#, "2.5");
    assert_vector(
        &st,
        "round(r)",
        0,
        &[
            (r#"{i="1"}"#, 1.0),
            (r#"{i="2"}"#, -2.0),
            (r#"{i="3"}"#, 3.0),
        ],
    );
    assert_vector(
        &st,
        "round(r, 0.1)",
        0,
        &[
            (r#"{i="1"}"#, 1.3),
            (r#"{i="2"}"#, -2.5),
            (r#"{i="3"}"#, 2.5),
        ],
    );
    assert_vector(
        &st,
        "round(r, 5)",
        0,
        &[
            (r#"{i="1"}"#, 0.0),
            (r#"{i="2"}"#, 0.0),
            (r#"{i="3"}"#, 5.0),
        ],
    );
}

#[test]
fn time_and_date_functions() {
    let st = MemStorage::new();
    assert_scalar(&st, "time()", 0, 0.0);
    assert_scalar(&st, "time()", 1, 0.001);
    assert_scalar(&st, "time()", 50 * M, 3000.0);
    assert_vector(&st, "vector(time())", 60 * M, &[("{}", 3600.0)]);
    assert_vector(&st, "year()", 0, &[("{}", 1970.0)]);
    assert_vector(&st, "month()", 0, &[("{}", 1.0)]);
    assert_vector(&st, "day_of_month()", 0, &[("{}", 1.0)]);
    assert_vector(&st, "day_of_year()", 0, &[("{}", 1.0)]);
    assert_vector(&st, "day_of_week()", 0, &[("{}", 4.0)]);
    assert_vector(&st, "hour()", 0, &[("{}", 0.0)]);
    assert_vector(&st, "minute()", 0, &[("{}", 0.0)]);
    assert_vector(&st, "days_in_month()", 0, &[("{}", 31.0)]);
    // 2006-01-02 22:04:05 UTC, a Monday.
    let t = "vector(1136239445)";
    assert_vector(&st, &format!("year({t})"), 0, &[("{}", 2006.0)]);
    assert_vector(&st, &format!("month({t})"), 0, &[("{}", 1.0)]);
    assert_vector(&st, &format!("day_of_month({t})"), 0, &[("{}", 2.0)]);
    assert_vector(&st, &format!("day_of_year({t})"), 0, &[("{}", 2.0)]);
    assert_vector(&st, &format!("day_of_week({t})"), 0, &[("{}", 1.0)]);
    assert_vector(&st, &format!("hour({t})"), 0, &[("{}", 22.0)]);
    assert_vector(&st, &format!("minute({t})"), 0, &[("{}", 4.0)]);
    // 2016-02-29 23:59:59 and 2016-03-01 00:00:00.
    assert_vector(
        &st,
        "month(vector(1456790399)) + day_of_month(vector(1456790399)) / 100",
        0,
        &[("{}", 2.29)],
    );
    assert_vector(
        &st,
        "month(vector(1456790400)) + day_of_month(vector(1456790400)) / 100",
        0,
        &[("{}", 3.01)],
    );
    assert_vector(&st, "day_of_year(vector(1483191420))", 0, &[("{}", 366.0)]);
    assert_vector(&st, "day_of_year(vector(1672493820))", 0, &[("{}", 365.0)]);
    assert_vector(&st, "days_in_month(vector(1454284800))", 0, &[("{}", 29.0)]);
    assert_vector(&st, "days_in_month(vector(1485907200))", 0, &[("{}", 28.0)]);
    assert_vector(&st, "year(vector(1230767999))", 0, &[("{}", 2008.0)]);
    assert_vector(&st, "year(vector(1230768000))", 0, &[("{}", 2009.0)]);
    // Before the epoch: 1969-12-31 23:59:59, a Wednesday.
    assert_vector(&st, "year(vector(-1))", 0, &[("{}", 1969.0)]);
    assert_vector(&st, "day_of_week(vector(-1))", 0, &[("{}", 3.0)]);
    assert_vector(&st, "hour(vector(-1))", 0, &[("{}", 23.0)]);

    let mut st = MemStorage::new();
    st.load(M, r#"ts{a="b"}"#, "1136239445");
    assert_vector(&st, "minute(ts)", 0, &[(r#"{a="b"}"#, 4.0)]);
}

#[test]
fn timestamp_function() {
    let mut st = MemStorage::new();
    st.load(10 * S, "metric", "1 1");
    assert_vector(&st, "timestamp(metric)", 0, &[("{}", 0.0)]);
    assert_vector(&st, "timestamp(metric)", 5 * S, &[("{}", 0.0)]);
    assert_vector(&st, "timestamp(((metric)))", 15 * S, &[("{}", 10.0)]);
    assert_vector(&st, "timestamp(metric @ 5)", 100 * S, &[("{}", 0.0)]);
    // Not a selector: the evaluation time.
    assert_vector(&st, "timestamp(-metric)", 15 * S, &[("{}", 15.0)]);
    let r = range(&st, "timestamp(metric)", 0, 20 * S, 5 * S);
    assert_points(
        &r[0].1,
        &[
            (0, 0.0),
            (5 * S, 0.0),
            (10 * S, 10.0),
            (15 * S, 10.0),
            (20 * S, 10.0),
        ],
        "timestamp",
    );
}

#[test]
fn absent_scalar_vector() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"http{job="api"}"#, "1");
    st.load(5 * M, r#"two{i="1"}"#, "1");
    st.load(5 * M, r#"two{i="2"}"#, "2");
    assert_vector(&st, "absent(nonexistent)", 0, &[("{}", 1.0)]);
    assert_vector(
        &st,
        r#"absent(nonexistent{job="testjob", instance="testinstance", method=~".x"})"#,
        0,
        &[(r#"{instance="testinstance", job="testjob"}"#, 1.0)],
    );
    assert_vector(
        &st,
        r#"absent(nonexistent{job="a", job="b", foo="bar"})"#,
        0,
        &[(r#"{foo="bar"}"#, 1.0)],
    );
    assert_vector(
        &st,
        r#"absent((nonexistent{job="a"}))"#,
        0,
        &[(r#"{job="a"}"#, 1.0)],
    );
    assert_vector(
        &st,
        r#"absent(sum(nonexistent{job="a"}))"#,
        0,
        &[("{}", 1.0)],
    );
    assert_empty(&st, "absent(http)", 0);
    assert_empty(&st, "absent(sum(http))", 0);
    assert_vector(&st, "absent(http > 5)", 0, &[("{}", 1.0)]);
    assert_scalar(&st, "scalar(http)", 0, 1.0);
    assert_scalar(&st, "scalar(two)", 0, f64::NAN);
    assert_scalar(&st, "scalar(nothing)", 0, f64::NAN);
    assert_vector(&st, "vector(1)", 0, &[("{}", 1.0)]);
    assert_vector(&st, "vector(scalar(http) * 3)", 0, &[("{}", 3.0)]);
    let r = range(&st, "absent(http)", 0, 10 * M, 5 * M);
    assert_points(&r[0].1, &[(10 * M, 1.0)], "absent range");
}

#[test]
fn sort_functions() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"h{i="0"}"#, "300");
    st.load(5 * M, r#"h{i="1"}"#, "NaN");
    st.load(5 * M, r#"h{i="2"}"#, "100");
    st.load(5 * M, r#"h{i="3"}"#, "200");
    assert_vector_ordered(
        &st,
        "sort(h)",
        0,
        &[
            (r#"h{i="2"}"#, 100.0),
            (r#"h{i="3"}"#, 200.0),
            (r#"h{i="0"}"#, 300.0),
            (r#"h{i="1"}"#, f64::NAN),
        ],
    );
    assert_vector_ordered(
        &st,
        "sort_desc(h)",
        0,
        &[
            (r#"h{i="0"}"#, 300.0),
            (r#"h{i="3"}"#, 200.0),
            (r#"h{i="2"}"#, 100.0),
            (r#"h{i="1"}"#, f64::NAN),
        ],
    );
}

#[test]
fn label_replace() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"tm{src="source-value-10", dst="original"}"#, "0");
    st.load(5 * M, r#"tm{src="source-value-20", dst="original"}"#, "1");
    assert_vector(
        &st,
        r#"label_replace(tm, "dst", "destination-value-$1", "src", "source-value-(.*)")"#,
        0,
        &[
            (
                r#"tm{src="source-value-10", dst="destination-value-10"}"#,
                0.0,
            ),
            (
                r#"tm{src="source-value-20", dst="destination-value-20"}"#,
                1.0,
            ),
        ],
    );
    // Full-string match only.
    assert_vector(
        &st,
        r#"label_replace(tm, "dst", "x-$1", "src", "value-(.*)")"#,
        0,
        &[
            (r#"tm{src="source-value-10", dst="original"}"#, 0.0),
            (r#"tm{src="source-value-20", dst="original"}"#, 1.0),
        ],
    );
    assert_vector(
        &st,
        r#"label_replace(tm, "dst", "$1-v-${2}", "src", "(.*)-value-(.*)")"#,
        0,
        &[
            (r#"tm{src="source-value-10", dst="source-v-10"}"#, 0.0),
            (r#"tm{src="source-value-20", dst="source-v-20"}"#, 1.0),
        ],
    );
    // An empty source matched by (.*) still replaces.
    assert_vector(
        &st,
        r#"label_replace(tm, "dst", "value-$1", "nonexistent", "(.*)")"#,
        0,
        &[
            (r#"tm{src="source-value-10", dst="value-"}"#, 0.0),
            (r#"tm{src="source-value-20", dst="value-"}"#, 1.0),
        ],
    );
    // Empty result removes the label; parenthesised string arguments are fine.
    assert_vector(
        &st,
        r#"label_replace((tm), ("dst"), "", "dst", ".*")"#,
        0,
        &[
            (r#"tm{src="source-value-10"}"#, 0.0),
            (r#"tm{src="source-value-20"}"#, 1.0),
        ],
    );
    assert_vector(
        &st,
        r#"label_replace(tm, "new", "$1", "src", "source-value-(1.*)")"#,
        0,
        &[
            (
                r#"tm{src="source-value-10", dst="original", new="10"}"#,
                0.0,
            ),
            (r#"tm{src="source-value-20", dst="original"}"#, 1.0),
        ],
    );
    assert_exec_error(
        &st,
        r#"label_replace(tm, "dst", "v", "src", "(.*")"#,
        0,
        "invalid regular expression in label_replace(): (.*",
    );
    assert_exec_error(
        &st,
        r#"label_replace(tm, "invalid-name", "", "src", "(.*)")"#,
        0,
        "invalid destination label name in label_replace(): invalid-name",
    );
    assert_exec_error(
        &st,
        r#"label_replace(tm, "src", "", "", "")"#,
        0,
        "vector cannot contain metrics with the same labelset",
    );
}

#[test]
fn label_join() {
    let mut st = MemStorage::new();
    st.load(5 * M, r#"tm{src="a", src1="b", src2="c", dst="orig"}"#, "0");
    st.load(5 * M, r#"tm{src="d", src1="e", src2="f", dst="orig"}"#, "1");
    assert_vector(
        &st,
        r#"label_join(tm, "dst", "-", "src", "src1", "src2")"#,
        0,
        &[
            (r#"tm{src="a", src1="b", src2="c", dst="a-b-c"}"#, 0.0),
            (r#"tm{src="d", src1="e", src2="f", dst="d-e-f"}"#, 1.0),
        ],
    );
    assert_vector(
        &st,
        r#"label_join(tm, "dst", "-", "src", "src3", "src1")"#,
        0,
        &[
            (r#"tm{src="a", src1="b", src2="c", dst="a--b"}"#, 0.0),
            (r#"tm{src="d", src1="e", src2="f", dst="d--e"}"#, 1.0),
        ],
    );
    assert_vector(
        &st,
        r#"label_join(tm, "dst", ", ")"#,
        0,
        &[
            (r#"tm{src="a", src1="b", src2="c"}"#, 0.0),
            (r#"tm{src="d", src1="e", src2="f"}"#, 1.0),
        ],
    );
    assert_vector(
        &st,
        r#"label_join(tm, "new", ", ", "src", "src1")"#,
        0,
        &[
            (
                r#"tm{src="a", src1="b", src2="c", dst="orig", new="a, b"}"#,
                0.0,
            ),
            (
                r#"tm{src="d", src1="e", src2="f", dst="orig", new="d, e"}"#,
                1.0,
            ),
        ],
    );
    assert_exec_error(
        &st,
        r#"label_join(tm, "dst", "-", "bad-src")"#,
        0,
        "invalid source label name in label_join(): bad-src",
    );
}

#[test]
fn unknown_and_newer_functions_are_parse_errors() {
    let st = MemStorage::new();
    for q in [
        "foo_bar(x)",
        "sort_by_label(x, \"a\")",
        "mad_over_time(x[5m])",
        "limitk(1, x)",
        "double_exponential_smoothing(x[5m], 0.5, 0.5)",
    ] {
        assert!(
            matches!(
                instant(&st, q, 0),
                Err(sightline_promql::QueryError::Parse(_))
            ),
            "{q}"
        );
    }
    assert!(matches!(
        instant(&st, "sum(", 0),
        Err(sightline_promql::QueryError::Parse(_))
    ));
}
