//! Prometheus-compatible text and JSON output: Go float formatting and the HTTP API `data` object.

use serde_json::{json, Map, Value as Json};

use crate::labels::Labels;
use crate::value::Value;

/// Formats a sample value the way Prometheus's HTTP API does for vector and matrix samples
/// (`jsonutil.MarshalValue`): Go's `strconv.FormatFloat(v, 'f', -1, 64)`, except that non-zero
/// values with magnitude below 1e-6 or at least 1e21 use the `'e'` format (`1e-07`, `1e+21`).
/// Special values are `NaN`, `+Inf` and `-Inf`.
pub fn format_value(v: f64) -> String {
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        format_float_e(v)
    } else {
        format_float(v)
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that round-trips, never with
/// an exponent. Used by Prometheus for scalar results and for `count_values` label values.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    // Rust's `Display` for f64 prints the shortest round-trip digits without an exponent.
    format!("{v}")
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest digits, exponent with a sign and at least
/// two digits (`1e-07`, `1.5e+21`).
pub(crate) fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    if digits.len() < 2 {
        format!("{mant}e{sign}0{digits}")
    } else {
        format!("{mant}e{sign}{digits}")
    }
}

/// Go's `%v` / `strconv.FormatFloat(v, 'g', -1, 64)` (used in error messages): the exponent
/// form when the decimal exponent is below -4 or at least 6.
pub(crate) fn format_float_g(v: f64) -> String {
    if v.is_nan() || v.is_infinite() || v == 0.0 {
        return format_float(v);
    }
    let s = format!("{v:e}");
    let exp: i32 = s
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if !(-4..6).contains(&exp) {
        format_float_e(v)
    } else {
        format_float(v)
    }
}

/// Go's `%f` (six decimals).
pub(crate) fn format_float_fixed6(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    format!("{v:.6}")
}

/// A timestamp in milliseconds as Prometheus writes it: seconds, with up to three decimals.
pub fn timestamp_json(t_ms: i64) -> Json {
    if t_ms % 1000 == 0 {
        Json::from(t_ms / 1000)
    } else {
        Json::from(t_ms as f64 / 1000.0)
    }
}

fn labels_json(l: &Labels) -> Json {
    let mut m = Map::with_capacity(l.len());
    for (n, v) in l.iter() {
        m.insert(n.to_string(), Json::String(v.to_string()));
    }
    Json::Object(m)
}

/// Prometheus JSON `data` object for the HTTP API: `{"resultType": "...", "result": ...}`.
pub fn to_json(v: &Value) -> Json {
    let result = match v {
        Value::Scalar(t, x) => json!([timestamp_json(*t), format_float(*x)]),
        Value::String(t, s) => json!([timestamp_json(*t), s]),
        Value::Vector(samples) => Json::Array(
            samples
                .iter()
                .map(|s| {
                    json!({
                        "metric": labels_json(&s.labels),
                        "value": [timestamp_json(s.t), format_value(s.v)],
                    })
                })
                .collect(),
        ),
        Value::Matrix(series) => Json::Array(
            series
                .iter()
                .map(|s| {
                    let values: Vec<Json> = s
                        .samples
                        .iter()
                        .map(|(t, x)| json!([timestamp_json(*t), format_value(*x)]))
                        .collect();
                    json!({
                        "metric": labels_json(&s.labels),
                        "values": values,
                    })
                })
                .collect(),
        ),
    };
    json!({ "resultType": v.type_name(), "result": result })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(format_float_e(1e-7), "1e-07");
        assert_eq!(format_float_e(123.0), "1.23e+02");
        assert_eq!(format_float_g(1e6), "1e+06");
        assert_eq!(format_float_g(123456.0), "123456");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
        assert_eq!(format_float_fixed6(1.0), "1.000000");
        assert_eq!(timestamp_json(1500).to_string(), "1.5");
        assert_eq!(timestamp_json(-2000).to_string(), "-2");
    }
}
