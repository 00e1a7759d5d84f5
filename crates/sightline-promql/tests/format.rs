//! Value formatting and the HTTP API JSON shape.

mod common;
use common::*;
use serde_json::json;
use sightline_promql::{format_float, format_value, to_json, Labels, Sample, Series, Value};

#[test]
fn format_value_like_prometheus_api() {
    assert_eq!(format_value(1.0), "1");
    assert_eq!(format_value(0.1), "0.1");
    assert_eq!(format_value(1.0 / 3.0), "0.3333333333333333");
    assert_eq!(format_value(-0.0), "-0");
    assert_eq!(format_value(0.0), "0");
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_value(1e21), "1e+21");
    assert_eq!(format_value(1.5e300), "1.5e+300");
    assert_eq!(format_value(1e20), "100000000000000000000");
    assert_eq!(format_value(123456789.125), "123456789.125");
    assert_eq!(format_value(1e-7), "1e-07");
    assert_eq!(format_value(-2.5e-9), "-2.5e-09");
    assert_eq!(format_value(1e-6), "0.000001");
    assert_eq!(format_value(5e-324), "5e-324");
    assert_eq!(format_value(-42.75), "-42.75");
}

#[test]
fn format_float_never_uses_exponent() {
    assert_eq!(format_float(1e21), "1000000000000000000000");
    assert_eq!(format_float(1e-7), "0.0000001");
    assert_eq!(format_float(f64::INFINITY), "+Inf");
    assert_eq!(format_float(2.5), "2.5");
}

#[test]
fn json_shapes() {
    let v = Value::Vector(vec![Sample {
        labels: labels(r#"up{job="p", instance="i"}"#),
        t: 1435781451781,
        v: 1.0,
    }]);
    assert_eq!(
        to_json(&v),
        json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "instance": "i", "job": "p"}, "value": [1435781451.781, "1"]}
        ]})
    );
    let m = Value::Matrix(vec![Series {
        labels: Labels::empty(),
        samples: vec![(1000, 1e-7), (2500, f64::NAN)],
    }]);
    assert_eq!(
        to_json(&m),
        json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1, "1e-07"], [2.5, "NaN"]]}
        ]})
    );
    assert_eq!(
        to_json(&Value::Scalar(1500, 1e-7)),
        json!({"resultType": "scalar", "result": [1.5, "0.0000001"]})
    );
    assert_eq!(
        to_json(&Value::String(0, "x".into())),
        json!({"resultType": "string", "result": [0, "x"]})
    );
    assert_eq!(
        to_json(&Value::Vector(vec![])).to_string(),
        r#"{"resultType":"vector","result":[]}"#
    );
    // Label order in the metric object is sorted.
    let s = to_json(&v).to_string();
    assert!(
        s.contains(r#"{"__name__":"up","instance":"i","job":"p"}"#),
        "{s}"
    );
}

#[test]
fn errors_map_to_api_error_types() {
    use sightline_promql::QueryError;
    let st = MemStorage::new();
    let e = instant(&st, "sum(", 0).unwrap_err();
    assert_eq!(e.error_type(), "bad_data");
    assert_eq!(e.http_status(), 400);
    let e = QueryError::TooManySamples;
    assert_eq!(
        e.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    assert_eq!(e.error_type(), "execution");
    assert_eq!(QueryError::Timeout.error_type(), "timeout");
}

#[test]
fn too_many_samples() {
    let mut st = MemStorage::new();
    for i in 0..10 {
        st.load(10 * S, &format!(r#"m{{i="{i}"}}"#), "0+1x100");
    }
    let e = sightline_promql::Engine::new(sightline_promql::EngineOptions {
        max_samples: 50,
        ..Default::default()
    });
    assert_eq!(
        e.range(&st, "m", 0, 100 * S, 10 * S).unwrap_err(),
        sightline_promql::QueryError::TooManySamples
    );
    assert!(e.instant(&st, "sum(m)", 100 * S).is_ok());
    assert_eq!(
        e.instant(&st, "m[1000s]", 1000 * S).unwrap_err(),
        sightline_promql::QueryError::TooManySamples
    );
}

#[test]
fn timeout() {
    let mut st = MemStorage::new();
    st.load(10 * S, "m", "0+1x100");
    let e = sightline_promql::Engine::new(sightline_promql::EngineOptions {
        timeout: std::time::Duration::ZERO,
        ..Default::default()
    });
    let err = e.instant(&st, "sum(m)", 0).unwrap_err();
    assert_eq!(err, sightline_promql::QueryError::Timeout);
    assert_eq!(err.to_string(), "query timed out in expression evaluation");
    assert_eq!(err.http_status(), 503);
}

#[test]
fn topk_overflow_message_uses_go_float_format() {
    let mut st = MemStorage::new();
    st.load(10 * S, "m", "1");
    assert_exec_error(
        &st,
        "topk(1e19, m)",
        0,
        "Scalar value 1e+19 overflows int64",
    );
    assert_exec_error(
        &st,
        "topk(-1e300, m)",
        0,
        "Scalar value -1e+300 overflows int64",
    );
}
