//! OTLP/HTTP metrics: an `ExportMetricsServiceRequest` in protobuf or JSON,
//! converted to Prometheus series as the OpenTelemetry "Prometheus and
//! OpenMetrics Compatibility" spec and Prometheus's own OTLP receiver
//! (`storage/remote/otlptranslator`, first shipped in Prometheus 2.47 behind
//! `--enable-feature=otlp-write-receiver`) do it.
//!
//! Conversion rules:
//!
//! * **Names.** The OTLP name is split into words on every character outside
//!   `[A-Za-z0-9]` (so `.`, `-`, `:` and runs of `_` become one `_`, and
//!   leading/trailing ones go). The unit is appended unless the name already
//!   ends with it: `{…}` annotations are dropped, `s` → `seconds`, `ms` →
//!   `milliseconds`, `By` → `bytes` (the rest is in `unit_word`), `X/Y` →
//!   `X_per_Y` with `Y` singular (`s` → `second`), unknown units are appended
//!   as they are (cleaned). Monotonic sums (counters) end in `_total`; gauges
//!   with unit `1` end in `_ratio`. A name starting with a digit gets a `_`.
//!   The result always matches `[a-zA-Z_:][a-zA-Z0-9_:]*`.
//! * **Types.** Gauge → gauge. Cumulative monotonic sum → counter
//!   (`_total`). Cumulative non-monotonic sum → gauge. Explicit-bucket
//!   cumulative histogram → `_bucket{le=…}` (cumulative counts, `le="+Inf"` =
//!   count), `_count`, and `_sum` when the point has a sum. Summary →
//!   `{quantile=…}`, `_sum`, `_count`. Refused (counted in
//!   [`Converted::rejected_points`] with a reason): sums and histograms with
//!   delta or unspecified temporality (Prometheus 2.x has no delta counters),
//!   exponential histograms, points without a value or a timestamp, histogram
//!   points whose buckets do not match their bounds.
//! * **Labels.** Data-point attributes, names sanitized (`[^A-Za-z0-9_]` →
//!   `_`, a leading digit gets `key_`, a leading single `_` gets `key`);
//!   attributes whose sanitized names collide are joined with `;` in the
//!   order of their original keys. Values: strings as they are, numbers and
//!   booleans as text, bytes as base64, arrays and maps as JSON. From the
//!   resource: `job` = `service.namespace/service.name` (or `service.name`),
//!   `instance` = `service.instance.id`, and Sightline's `service` =
//!   `service.name`; these win over data-point attributes of the same name.
//!   Other resource attributes go to one `target_info` series per resource
//!   (value 1, at the newest point's time), like Prometheus. Scope name and
//!   version and exemplars are not kept.
//! * **Samples.** `time_unix_nano` → milliseconds (truncated). A point with
//!   the `NO_RECORDED_VALUE` flag becomes a Prometheus staleness marker
//!   ([`STALE_NAN_BITS`]) on every series it would have written.
//!
//! Memory is bounded: a label value longer than
//! [`Limits::max_label_value_bytes`] refuses its point, and the series an
//! export converts to may cost at most [`Limits::max_output_bytes`] (points
//! past that are refused), so a small export cannot expand into gigabytes
//! (a large resource attribute copied onto every series, many buckets times
//! many attributes).

use crate::otlp::{OtlpEncoding, OtlpError};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as AnyValueKind, AnyValue, KeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, HistogramDataPoint, Metric,
    NumberDataPoint, SummaryDataPoint,
};
use prost::Message;
use std::collections::HashMap;

/// Prometheus's staleness marker: a NaN with this exact bit pattern (the
/// same as `sightline_store::tsdb::STALE_NAN_BITS`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// Distinct (metric, reason) pairs kept in [`Converted::rejected`].
const MAX_REASONS: usize = 64;

/// Bounds of one conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest label value, bytes; a point that would carry a longer one is
    /// refused (naming the attribute).
    pub max_label_value_bytes: usize,
    /// Estimated heap bytes of all converted series (labels and samples);
    /// points past it are refused.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_label_value_bytes: 4096,
            max_output_bytes: 512 << 20,
        }
    }
}

/// One Prometheus series: labels sorted by name, unique, no empty values,
/// `__name__` among them; samples `(ms, value)` sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSeries {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

impl PromSeries {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.labels[i].1.as_str())
    }

    pub fn name(&self) -> &str {
        self.label("__name__").unwrap_or("")
    }
}

/// Points of one metric refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The OTLP metric name, as sent (cut to 100 bytes).
    pub metric: String,
    pub reason: String,
    pub points: u64,
}

/// What an export converted to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Converted {
    /// Sorted by labels.
    pub series: Vec<PromSeries>,
    /// Data points in the export.
    pub total_points: u64,
    pub accepted_points: u64,
    pub rejected_points: u64,
    /// Why points were refused, grouped by metric and reason (the first
    /// [`MAX_REASONS`] distinct pairs; the rest are in `rejected_points` only).
    pub rejected: Vec<Rejected>,
    /// Things accepted but worth telling the client (metrics without data).
    pub warnings: Vec<String>,
    /// Samples in `series`.
    pub samples: u64,
}

impl Converted {
    /// The OTLP `partialSuccess.errorMessage`: the reasons, most points first,
    /// at most `max` of them. Empty when nothing was refused or noted.
    pub fn error_message(&self, max: usize) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut shown = 0u64;
        let mut order: Vec<&Rejected> = self.rejected.iter().collect();
        order.sort_by_key(|r| std::cmp::Reverse(r.points));
        for r in order.iter().take(max) {
            shown += r.points;
            let unit = if r.points == 1 { "point" } else { "points" };
            parts.push(format!(
                "metric {:?}: {} ({} {unit})",
                r.metric, r.reason, r.points
            ));
        }
        if self.rejected_points > shown {
            parts.push(format!(
                "{} more points refused for other reasons",
                self.rejected_points - shown
            ));
        }
        for w in self.warnings.iter().take(max) {
            parts.push(w.clone());
        }
        parts.join("; ")
    }
}

/// Decodes an OTLP metrics export body.
pub fn decode_metrics(
    body: &[u8],
    encoding: OtlpEncoding,
) -> Result<ExportMetricsServiceRequest, OtlpError> {
    match encoding {
        OtlpEncoding::Protobuf => ExportMetricsServiceRequest::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string())),
        OtlpEncoding::Json => {
            let req: ExportMetricsServiceRequest =
                serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string()))?;
            let no_data = req
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .any(|m| m.data.is_none());
            if no_data {
                explain_missing_data(body, &req)?;
            }
            Ok(req)
        }
    }
}

/// The JSON decoder (`opentelemetry-proto`'s serde, where a metric's data is
/// a flattened optional oneof) turns a malformed `gauge`/`sum`/`histogram`/…
/// into "no data" instead of an error. Finds such metrics and names what is
/// wrong with them; metrics that really have no data pass.
fn explain_missing_data(body: &[u8], req: &ExportMetricsServiceRequest) -> Result<(), OtlpError> {
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, Gauge, Histogram, Sum, Summary,
    };
    use serde_json::Value;
    fn check<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
        T::deserialize(v).map(|_| ()).map_err(|e| e.to_string())
    }
    const KINDS: [&str; 5] = [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
    ];
    let json: Value = serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string()))?;
    let list = |v: Option<&Value>, k: &str| -> Vec<Value> {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let jrm = list(Some(&json), "resourceMetrics");
    for (ri, rm) in req.resource_metrics.iter().enumerate() {
        let jsm = list(jrm.get(ri), "scopeMetrics");
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            let jm = list(jsm.get(si), "metrics");
            for (mi, m) in sm.metrics.iter().enumerate() {
                let Some(obj) = jm.get(mi).filter(|_| m.data.is_none()) else {
                    continue;
                };
                let here = || {
                    format!(
                        "resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}] ({:?})",
                        m.name
                    )
                };
                let present: Vec<&str> = KINDS
                    .iter()
                    .copied()
                    .filter(|k| obj.get(k).is_some())
                    .collect();
                if present.len() > 1 {
                    return Err(OtlpError::Json(format!(
                        "{}: more than one of {}",
                        here(),
                        present.join(", ")
                    )));
                }
                let Some(kind) = present.first() else {
                    continue;
                };
                let v = &obj[*kind];
                let r = match *kind {
                    "gauge" => check::<Gauge>(v),
                    "sum" => check::<Sum>(v),
                    "histogram" => check::<Histogram>(v),
                    "exponentialHistogram" => check::<ExponentialHistogram>(v),
                    _ => check::<Summary>(v),
                };
                let why = r.err().unwrap_or_else(|| "not understood".into());
                return Err(OtlpError::Json(format!("{}: {kind}: {why}", here())));
            }
        }
    }
    Ok(())
}

/// The `ExportMetricsServiceResponse` answering an export, in the request's
/// encoding. Full success (nothing refused, nothing to say) is an empty
/// message: no bytes in protobuf, `{}` in JSON. Otherwise a partial success
/// with the count and the reasons (`rejectedDataPoints` 0 with a message is a
/// warning, as the OTLP spec has it).
pub fn export_response(encoding: OtlpEncoding, rejected: u64, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty()).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: rejected.min(i64::MAX as u64) as i64,
        error_message: message.to_string(),
    });
    match (encoding, partial) {
        (OtlpEncoding::Protobuf, partial) => ExportMetricsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        (OtlpEncoding::Json, None) => b"{}".to_vec(),
        (OtlpEncoding::Json, Some(p)) => serde_json::json!({"partialSuccess": {
            "rejectedDataPoints": p.rejected_data_points,
            "errorMessage": p.error_message,
        }})
        .to_string()
        .into_bytes(),
    }
}

/// Decodes and converts an export body.
pub fn decode_and_convert(
    body: &[u8],
    encoding: OtlpEncoding,
    limits: &Limits,
) -> Result<Converted, OtlpError> {
    Ok(convert(&decode_metrics(body, encoding)?, limits))
}

/// Converts a decoded export to Prometheus series.
pub fn convert(req: &ExportMetricsServiceRequest, limits: &Limits) -> Converted {
    let mut c = Converter {
        limits,
        series: HashMap::new(),
        cost: 0,
        out: Converted::default(),
        reasons: HashMap::new(),
    };
    for rm in &req.resource_metrics {
        let attrs: &[KeyValue] = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let mut res = Resource::new(attrs, limits);
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                c.metric(&mut res, m);
            }
        }
        c.target_info(&res, attrs);
    }
    let mut series: Vec<PromSeries> = c
        .series
        .into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|s| s.0);
            PromSeries { labels, samples }
        })
        .collect();
    series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    c.out.series = series;
    c.out
}

/// The number of data points in an export (every kind).
pub fn data_points(req: &ExportMetricsServiceRequest) -> u64 {
    req.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(points_of)
        .sum()
}

fn points_of(m: &Metric) -> u64 {
    (match &m.data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }) as u64
}

// ---------------------------------------------------------------------------
// Names

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Counter,
    /// Non-monotonic sum: a gauge, but no `_ratio`.
    UpDown,
    Histogram,
    Summary,
}

fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// Words of `s`: maximal runs of ASCII letters and digits.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// `s` without its `{…}` annotations (an unclosed `{` runs to the end).
fn strip_annotations(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The unit as name words (`ms` → `milliseconds`, `By/s` → `bytes per
/// second`), empty for none.
fn unit_words(unit: &str) -> Vec<String> {
    let unit = strip_annotations(unit);
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), p.trim()),
        None => (unit.trim(), ""),
    };
    let mut out: Vec<String> = words(unit_word(main)).map(str::to_string).collect();
    let per: Vec<String> = words(per_unit_word(per)).map(str::to_string).collect();
    if !per.is_empty() {
        out.push("per".into());
        out.extend(per);
    }
    out
}

/// The Prometheus name of an OTLP metric, `None` when nothing valid is left.
fn prom_name(name: &str, unit: &str, kind: Kind) -> Option<String> {
    let mut toks: Vec<String> = words(name).map(str::to_string).collect();
    let ratio = kind == Kind::Gauge && unit.trim() == "1";
    // The type suffix goes last: take it off before looking at the unit.
    if kind == Kind::Counter {
        toks.retain(|t| t != "total");
    } else if ratio {
        toks.retain(|t| t != "ratio");
    }
    let unit = unit_words(unit);
    if !unit.is_empty() && !toks.ends_with(&unit) {
        toks.extend(unit);
    }
    if kind == Kind::Counter {
        toks.push("total".into());
    } else if ratio {
        toks.push("ratio".into());
    }
    let mut s = toks.join("_");
    if s.is_empty() {
        return None;
    }
    if s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, '_');
    }
    Some(s)
}

/// A Prometheus label name for an attribute key (`None` for an empty key).
fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut s: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.as_bytes()[0].is_ascii_digit() {
        s.insert_str(0, "key_");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s.insert_str(0, "key");
    }
    Some(s)
}

// ---------------------------------------------------------------------------
// Attribute values

/// An attribute value as a label value (OTLP's "AsString").
pub fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(AnyValueKind::StringValue(s)) => s.clone(),
        Some(AnyValueKind::BoolValue(b)) => b.to_string(),
        Some(AnyValueKind::IntValue(i)) => i.to_string(),
        Some(AnyValueKind::DoubleValue(f)) => float_string(*f),
        Some(AnyValueKind::BytesValue(b)) => base64(b),
        Some(other @ (AnyValueKind::ArrayValue(_) | AnyValueKind::KvlistValue(_))) => {
            raw_json(Some(other)).to_string()
        }
        #[allow(unreachable_patterns)]
        Some(_) => String::new(),
    }
}

fn raw_json(v: Option<&AnyValueKind>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        None => Value::Null,
        Some(AnyValueKind::StringValue(s)) => Value::String(s.clone()),
        Some(AnyValueKind::BoolValue(b)) => Value::Bool(*b),
        Some(AnyValueKind::IntValue(i)) => Value::from(*i),
        Some(AnyValueKind::DoubleValue(f)) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(float_string(*f))),
        Some(AnyValueKind::BytesValue(b)) => Value::String(base64(b)),
        Some(AnyValueKind::ArrayValue(a)) => Value::Array(
            a.values
                .iter()
                .map(|v| raw_json(v.value.as_ref()))
                .collect(),
        ),
        Some(AnyValueKind::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        raw_json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

/// A float as JSON / JavaScript print it (`5`, `0.25`, `1e-7`, `1e+21`).
fn float_string(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

/// A bound or quantile as a label value, as Prometheus prints it (`0.005`,
/// `10`, `+Inf`).
fn le_string(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    format!("{f}")
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Labels

type LabelSet = Vec<(String, String)>;

/// Attributes as sorted, unique labels; colliding names joined with `;` in
/// the order of their original keys. Over-long values: `Err(reason)`.
fn attribute_labels(attrs: &[KeyValue], max_value: usize) -> Result<LabelSet, String> {
    let mut v: Vec<(String, &str, String)> = Vec::with_capacity(attrs.len());
    for kv in attrs {
        if let Some(name) = label_name(&kv.key) {
            v.push((name, kv.key.as_str(), value_string(kv.value.as_ref())));
        }
    }
    // Stable: equal original keys keep their wire order.
    v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let mut out: LabelSet = Vec::with_capacity(v.len() + 5);
    let mut first_key: Vec<&str> = Vec::with_capacity(v.len());
    for (name, key, value) in v {
        match out.last_mut() {
            Some((n, val)) if *n == name => {
                val.push(';');
                val.push_str(&value);
            }
            _ => {
                out.push((name, value));
                first_key.push(key);
            }
        }
    }
    for (i, (name, value)) in out.iter().enumerate() {
        if name.len() > max_value {
            return Err(format!(
                "attribute key {:?} is {} bytes, over the {max_value}-byte label name limit",
                clip(first_key[i]),
                name.len()
            ));
        }
        if value.len() > max_value {
            return Err(format!(
                "attribute {:?} is {} bytes, over the {max_value}-byte label value limit",
                clip(first_key[i]),
                value.len()
            ));
        }
    }
    Ok(out)
}

/// `s` cut to at most 100 bytes (on a character boundary), for messages.
fn clip(s: &str) -> String {
    if s.len() <= 100 {
        return s.to_string();
    }
    let mut end = 100;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Sets `name` to `value` in a sorted label set.
fn set_label(labels: &mut LabelSet, name: &str, value: String) {
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => labels[i].1 = value,
        Err(i) => labels.insert(i, (name.to_string(), value)),
    }
}

/// `base` with `__name__` = `name` + `suffix`, and `extra` when given.
fn named(base: &LabelSet, name: &str, suffix: &str, extra: Option<(&str, String)>) -> LabelSet {
    let mut l = Vec::with_capacity(base.len() + 2);
    l.extend(base.iter().cloned());
    if let Some((n, v)) = extra {
        set_label(&mut l, n, v);
    }
    set_label(&mut l, "__name__", format!("{name}{suffix}"));
    l
}

fn series_cost(labels: &LabelSet) -> usize {
    64 + labels
        .iter()
        .map(|(n, v)| 48 + n.len() + v.len())
        .sum::<usize>()
}

const SAMPLE_COST: usize = 16;

/// What a resource contributes to every series, and what was seen of it.
struct Resource {
    /// `job`, `instance`, `service` (sorted by name), when present.
    identity: Vec<(&'static str, String)>,
    /// Why every point of this resource is refused.
    bad: Option<String>,
    /// Newest accepted sample time, ms.
    newest: Option<i64>,
}

impl Resource {
    fn new(attrs: &[KeyValue], limits: &Limits) -> Resource {
        let get = |k: &str| {
            attrs
                .iter()
                .rev()
                .find(|kv| kv.key == k)
                .map(|kv| value_string(kv.value.as_ref()))
        };
        let name = get("service.name");
        let namespace = get("service.namespace");
        let instance = get("service.instance.id");
        let mut identity = Vec::new();
        let mut bad = None;
        let mut check = |attr: &str, v: &str| {
            if v.len() > limits.max_label_value_bytes && bad.is_none() {
                bad = Some(format!(
                    "resource attribute {attr:?} is {} bytes, over the {}-byte label value limit",
                    v.len(),
                    limits.max_label_value_bytes
                ));
            }
        };
        if let Some(i) = &instance {
            check("service.instance.id", i);
            identity.push(("instance", i.clone()));
        }
        if let Some(n) = &name {
            check("service.name", n);
            let job = match &namespace {
                Some(ns) => {
                    check("service.namespace", ns);
                    format!("{ns}/{n}")
                }
                None => n.clone(),
            };
            identity.push(("job", job));
            identity.push(("service", n.clone()));
        }
        identity.sort_by(|a, b| a.0.cmp(b.0));
        Resource {
            identity,
            bad,
            newest: None,
        }
    }

    fn apply(&self, labels: &mut LabelSet) {
        for (n, v) in &self.identity {
            set_label(labels, n, v.clone());
        }
    }
}

fn temporality_reason(t: i32) -> String {
    if t == AggregationTemporality::Delta as i32 {
        "delta temporality cannot be stored as a Prometheus series; configure the exporter for \
         cumulative temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative)"
            .into()
    } else {
        format!("aggregation temporality {t} is not cumulative")
    }
}

fn time_ms(ns: u64) -> Result<i64, String> {
    if ns == 0 {
        return Err("data point has no timestamp (time_unix_nano is 0)".into());
    }
    Ok((ns / 1_000_000) as i64)
}

fn stale_or(flags: u32, v: f64) -> f64 {
    if flags & FLAG_NO_RECORDED_VALUE != 0 {
        f64::from_bits(STALE_NAN_BITS)
    } else {
        v
    }
}

struct Converter<'l> {
    limits: &'l Limits,
    series: HashMap<LabelSet, Vec<(i64, f64)>>,
    cost: usize,
    out: Converted,
    reasons: HashMap<(String, String), usize>,
}

impl Converter<'_> {
    fn reject(&mut self, metric: &str, points: u64, reason: String) {
        if points == 0 {
            return;
        }
        self.out.total_points += points;
        self.out.rejected_points += points;
        let key = (clip(metric), reason);
        if let Some(&i) = self.reasons.get(&key) {
            self.out.rejected[i].points += points;
        } else if self.out.rejected.len() < MAX_REASONS {
            self.reasons.insert(key.clone(), self.out.rejected.len());
            self.out.rejected.push(Rejected {
                metric: key.0,
                reason: key.1,
                points,
            });
        }
    }

    /// Refuses a point whose `n` series (each `base` plus a name and one
    /// more label) could take the output over budget, before they are built.
    fn reserve(&self, base: &LabelSet, n: usize, name: &str) -> Result<(), String> {
        let each = series_cost(base) + 2 * 48 + name.len() + 32 + SAMPLE_COST;
        self.check(each.saturating_mul(n))
    }

    fn check(&self, more: usize) -> Result<(), String> {
        if self.cost.saturating_add(more) > self.limits.max_output_bytes {
            return Err(format!(
                "the export converts to more than {} MiB of series; send smaller exports",
                self.limits.max_output_bytes >> 20
            ));
        }
        Ok(())
    }

    /// Stores one point's samples, all or none (over budget: `Err`).
    fn emit(&mut self, t: i64, samples: Vec<(LabelSet, f64)>) -> Result<(), String> {
        let worst: usize = samples
            .iter()
            .map(|(l, _)| series_cost(l) + SAMPLE_COST)
            .sum();
        self.check(worst)?;
        for (mut labels, v) in samples {
            labels.retain(|(_, v)| !v.is_empty());
            let cost = series_cost(&labels);
            let e = self.series.entry(labels).or_insert_with(|| {
                self.cost += cost;
                Vec::new()
            });
            e.push((t, v));
            self.cost += SAMPLE_COST;
            self.out.samples += 1;
        }
        Ok(())
    }

    fn accept(&mut self, res: &mut Resource, t: i64) {
        self.out.total_points += 1;
        self.out.accepted_points += 1;
        res.newest = Some(res.newest.map_or(t, |n| n.max(t)));
    }

    /// Labels shared by every series of a point (no `__name__` yet).
    fn base_labels(&self, res: &Resource, attrs: &[KeyValue]) -> Result<LabelSet, String> {
        let mut l = attribute_labels(attrs, self.limits.max_label_value_bytes)?;
        res.apply(&mut l);
        Ok(l)
    }

    fn metric(&mut self, res: &mut Resource, m: &Metric) {
        let n = points_of(m);
        let Some(data) = &m.data else {
            if self.out.warnings.len() < MAX_REASONS {
                self.out.warnings.push(format!(
                    "metric {:?} has no data (no gauge, sum, histogram or summary)",
                    m.name
                ));
            }
            return;
        };
        if let Some(r) = &res.bad {
            self.reject(&m.name, n, r.clone());
            return;
        }
        let kind = match data {
            Data::Gauge(_) => Kind::Gauge,
            Data::Sum(s) => {
                if s.aggregation_temporality != AggregationTemporality::Cumulative as i32 {
                    self.reject(&m.name, n, temporality_reason(s.aggregation_temporality));
                    return;
                }
                if s.is_monotonic {
                    Kind::Counter
                } else {
                    Kind::UpDown
                }
            }
            Data::Histogram(h) => {
                if h.aggregation_temporality != AggregationTemporality::Cumulative as i32 {
                    self.reject(&m.name, n, temporality_reason(h.aggregation_temporality));
                    return;
                }
                Kind::Histogram
            }
            Data::ExponentialHistogram(_) => {
                self.reject(
                    &m.name,
                    n,
                    "exponential histograms are not supported; configure explicit-bucket \
                     histograms (OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION=\
                     explicit_bucket_histogram)"
                        .into(),
                );
                return;
            }
            Data::Summary(_) => Kind::Summary,
        };
        let Some(name) = prom_name(&m.name, &m.unit, kind) else {
            self.reject(
                &m.name,
                n,
                "the metric name has no letters or digits".into(),
            );
            return;
        };
        if name.len() > self.limits.max_label_value_bytes {
            self.reject(
                &m.name,
                n,
                format!(
                    "the metric name is {} bytes, over the {}-byte label value limit",
                    name.len(),
                    self.limits.max_label_value_bytes
                ),
            );
            return;
        }
        match data {
            Data::Gauge(g) => {
                for p in &g.data_points {
                    let r = self.number(res, &name, p);
                    self.settle(res, &m.name, r);
                }
            }
            Data::Sum(s) => {
                for p in &s.data_points {
                    let r = self.number(res, &name, p);
                    self.settle(res, &m.name, r);
                }
            }
            Data::Histogram(h) => {
                for p in &h.data_points {
                    let r = self.histogram(res, &name, p);
                    self.settle(res, &m.name, r);
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    let r = self.summary(res, &name, p);
                    self.settle(res, &m.name, r);
                }
            }
            Data::ExponentialHistogram(_) => {}
        }
    }

    fn settle(&mut self, res: &mut Resource, metric: &str, r: Result<i64, String>) {
        match r {
            Ok(t) => self.accept(res, t),
            Err(reason) => self.reject(metric, 1, reason),
        }
    }

    fn number(&mut self, res: &Resource, name: &str, p: &NumberDataPoint) -> Result<i64, String> {
        let t = time_ms(p.time_unix_nano)?;
        let v = match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            None if p.flags & FLAG_NO_RECORDED_VALUE != 0 => 0.0,
            None => return Err("data point has no value (no valid asDouble or asInt)".into()),
        };
        let mut l = self.base_labels(res, &p.attributes)?;
        set_label(&mut l, "__name__", name.to_string());
        self.emit(t, vec![(l, stale_or(p.flags, v))])?;
        Ok(t)
    }

    fn histogram(
        &mut self,
        res: &Resource,
        name: &str,
        p: &HistogramDataPoint,
    ) -> Result<i64, String> {
        let t = time_ms(p.time_unix_nano)?;
        let bounds = &p.explicit_bounds;
        let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
        if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("histogram bounds must be finite and strictly increasing".into());
        }
        if !stale && p.bucket_counts.len() != bounds.len() + 1 && !p.bucket_counts.is_empty()
            || !stale && p.bucket_counts.is_empty() && !bounds.is_empty()
        {
            return Err(format!(
                "histogram has {} bucket counts for {} bounds (want {})",
                p.bucket_counts.len(),
                bounds.len(),
                bounds.len() + 1
            ));
        }
        let base = self.base_labels(res, &p.attributes)?;
        self.reserve(&base, bounds.len() + 3, name)?;
        let with = |suffix: &str, extra: Option<(&str, String)>| named(&base, name, suffix, extra);
        let mut out = Vec::with_capacity(bounds.len() + 3);
        let mut cum: u64 = 0;
        for (i, b) in bounds.iter().enumerate() {
            cum = cum.saturating_add(p.bucket_counts.get(i).copied().unwrap_or(0));
            out.push((
                with("_bucket", Some(("le", le_string(*b)))),
                stale_or(p.flags, cum as f64),
            ));
        }
        out.push((
            with("_bucket", Some(("le", "+Inf".into()))),
            stale_or(p.flags, p.count as f64),
        ));
        out.push((with("_count", None), stale_or(p.flags, p.count as f64)));
        if let Some(sum) = p.sum {
            out.push((with("_sum", None), stale_or(p.flags, sum)));
        }
        self.emit(t, out)?;
        Ok(t)
    }

    fn summary(&mut self, res: &Resource, name: &str, p: &SummaryDataPoint) -> Result<i64, String> {
        let t = time_ms(p.time_unix_nano)?;
        let base = self.base_labels(res, &p.attributes)?;
        self.reserve(&base, p.quantile_values.len() + 2, name)?;
        let with = |suffix: &str, extra: Option<(&str, String)>| named(&base, name, suffix, extra);
        let mut out = Vec::with_capacity(p.quantile_values.len() + 2);
        for q in &p.quantile_values {
            out.push((
                with("", Some(("quantile", le_string(q.quantile)))),
                stale_or(p.flags, q.value),
            ));
        }
        out.push((with("_sum", None), stale_or(p.flags, p.sum)));
        out.push((with("_count", None), stale_or(p.flags, p.count as f64)));
        self.emit(t, out)?;
        Ok(t)
    }

    /// `target_info{job, instance, service, other resource attributes} 1` at
    /// the newest accepted point, when the resource has attributes besides
    /// its identity and at least one of `job`/`instance`.
    fn target_info(&mut self, res: &Resource, attrs: &[KeyValue]) {
        let Some(t) = res.newest else { return };
        if !res
            .identity
            .iter()
            .any(|(n, _)| *n == "job" || *n == "instance")
        {
            return;
        }
        let rest: Vec<KeyValue> = attrs
            .iter()
            .filter(|kv| {
                !matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .filter(|kv| value_string(kv.value.as_ref()).len() <= self.limits.max_label_value_bytes)
            .cloned()
            .collect();
        if rest.is_empty() {
            return;
        }
        let Ok(mut l) = attribute_labels(&rest, usize::MAX) else {
            return;
        };
        let max = self.limits.max_label_value_bytes;
        l.retain(|(n, v)| n.len() <= max && v.len() <= max);
        res.apply(&mut l);
        set_label(&mut l, "__name__", "target_info".into());
        let _ = self.emit(t, vec![(l, 1.0)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::metrics::v1::{
        exponential_histogram_data_point::Buckets, metric::Data, summary_data_point,
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, ResourceMetrics,
        ScopeMetrics, Sum, Summary,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
    use std::time::Instant;

    const T: u64 = 1_795_625_016_064_744_402; // ns
    const T_MS: i64 = 1_795_625_016_064;
    const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
    const DELTA: i32 = AggregationTemporality::Delta as i32;

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/python-sdks/otlp")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn kv(k: &str, v: AnyValueKind) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    fn s(v: &str) -> AnyValueKind {
        AnyValueKind::StringValue(v.into())
    }

    fn service(name: &str) -> Vec<KeyValue> {
        vec![
            kv("service.name", s(name)),
            kv("service.instance.id", s("i-1")),
        ]
    }

    fn export(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(OtlpResource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn metric(name: &str, unit: &str, data: Data) -> Metric {
        Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(data),
            ..Default::default()
        }
    }

    fn np(t: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attrs,
            time_unix_nano: t,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
        metric(
            name,
            unit,
            Data::Gauge(Gauge {
                data_points: points,
            }),
        )
    }

    fn sum(
        name: &str,
        unit: &str,
        monotonic: bool,
        temporality: i32,
        points: Vec<NumberDataPoint>,
    ) -> Metric {
        metric(
            name,
            unit,
            Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: temporality,
                is_monotonic: monotonic,
            }),
        )
    }

    fn hp(counts: &[u64], bounds: &[f64], sum: Option<f64>) -> HistogramDataPoint {
        HistogramDataPoint {
            time_unix_nano: T,
            count: counts.iter().sum(),
            sum,
            bucket_counts: counts.to_vec(),
            explicit_bounds: bounds.to_vec(),
            attributes: vec![kv("http.route", s("/a"))],
            ..Default::default()
        }
    }

    fn hist(name: &str, unit: &str, temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
        metric(
            name,
            unit,
            Data::Histogram(Histogram {
                data_points: points,
                aggregation_temporality: temporality,
            }),
        )
    }

    fn run(req: &ExportMetricsServiceRequest) -> Converted {
        let c = convert(req, &Limits::default());
        check_invariants(&c, &Limits::default());
        c
    }

    /// What every conversion must hold, whatever the input.
    fn check_invariants(c: &Converted, limits: &Limits) {
        assert_eq!(c.accepted_points + c.rejected_points, c.total_points);
        let mut cost = 0;
        let mut samples = 0;
        for (i, sr) in c.series.iter().enumerate() {
            assert!(
                i == 0 || c.series[i - 1].labels < sr.labels,
                "sorted, unique"
            );
            assert!(sr.labels.windows(2).all(|w| w[0].0 < w[1].0), "{sr:?}");
            assert!(sr
                .labels
                .iter()
                .all(|(n, v)| !v.is_empty() && valid_label(n)));
            let name = sr.name();
            let b = name.as_bytes();
            assert!(!b.is_empty() && !b[0].is_ascii_digit(), "{name:?}");
            assert!(b
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':'));
            assert!(sr.samples.windows(2).all(|w| w[0].0 <= w[1].0));
            assert!(!sr.samples.is_empty());
            cost += series_cost(&sr.labels) + SAMPLE_COST * sr.samples.len();
            samples += sr.samples.len() as u64;
        }
        assert_eq!(samples, c.samples);
        assert!(cost <= limits.max_output_bytes);
    }

    fn valid_label(n: &str) -> bool {
        let b = n.as_bytes();
        !b.is_empty()
            && !b[0].is_ascii_digit()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    }

    /// The series named `name` whose labels include `want`.
    fn find<'a>(c: &'a Converted, name: &str, want: &[(&str, &str)]) -> &'a PromSeries {
        c.series
            .iter()
            .find(|s| s.name() == name && want.iter().all(|(k, v)| s.label(k) == Some(v)))
            .unwrap_or_else(|| {
                let names: Vec<_> = c.series.iter().map(|s| &s.labels).collect();
                panic!("no {name} {want:?} in {names:#?}")
            })
    }

    fn value(c: &Converted, name: &str, want: &[(&str, &str)]) -> f64 {
        let s = find(c, name, want);
        assert_eq!(s.samples.len(), 1, "{s:?}");
        s.samples[0].1
    }

    #[test]
    fn python_sdk_fixture() {
        let c = decode_and_convert(
            &fixture("18-metrics.pb"),
            OtlpEncoding::Protobuf,
            &Limits::default(),
        )
        .unwrap();
        check_invariants(&c, &Limits::default());
        assert_eq!((c.total_points, c.rejected_points), (2, 0), "{c:?}");
        assert_eq!(c.error_message(10), "");
        let id = [
            ("job", "worker"),
            ("service", "worker"),
            ("instance", "97a06f9f-cdd9-409a-a186-b6d60c1743e9"),
            ("queue", "default"),
        ];
        let jobs = find(&c, "jobs_processed_total", &id);
        assert_eq!(jobs.samples, vec![(T_MS, 3.0)]);
        assert_eq!(jobs.labels.len(), 5, "{jobs:?}");
        // The unit is in the name already (and the SDK sent none).
        assert_eq!(value(&c, "job_duration_seconds_count", &id), 1.0);
        assert_eq!(value(&c, "job_duration_seconds_sum", &id), 0.25);
        assert_eq!(
            value(&c, "job_duration_seconds_bucket", &[("le", "0")]),
            0.0
        );
        assert_eq!(
            value(&c, "job_duration_seconds_bucket", &[("le", "5")]),
            1.0
        );
        assert_eq!(
            value(&c, "job_duration_seconds_bucket", &[("le", "10000")]),
            1.0
        );
        assert_eq!(
            value(&c, "job_duration_seconds_bucket", &[("le", "+Inf")]),
            1.0
        );
        let buckets = c
            .series
            .iter()
            .filter(|s| s.name() == "job_duration_seconds_bucket")
            .count();
        assert_eq!(buckets, 16);
        let ti = find(&c, "target_info", &[("job", "worker")]);
        assert_eq!(ti.samples, vec![(T_MS, 1.0)]);
        assert_eq!(ti.label("deployment_environment"), Some("staging"));
        assert_eq!(ti.label("telemetry_sdk_language"), Some("python"));
        assert_eq!(ti.label("service_name"), None);
        // 1 counter + 16 buckets + count + sum + target_info.
        assert_eq!(c.series.len(), 20);
        for f in ["20-metrics.pb", "21-metrics.pb"] {
            let c = decode_and_convert(&fixture(f), OtlpEncoding::Protobuf, &Limits::default())
                .unwrap();
            assert_eq!((c.accepted_points, c.rejected_points), (2, 0));
        }
    }

    #[test]
    fn names_units_and_suffixes() {
        use Kind::*;
        let cases: &[(&str, &str, Kind, &str)] = &[
            (
                "http.server.duration",
                "ms",
                Histogram,
                "http_server_duration_milliseconds",
            ),
            (
                "http.server.request.duration",
                "s",
                Histogram,
                "http_server_request_duration_seconds",
            ),
            (
                "job_duration_seconds",
                "s",
                Histogram,
                "job_duration_seconds",
            ),
            (
                "job_duration_seconds",
                "",
                Histogram,
                "job_duration_seconds",
            ),
            (
                "system.network.io",
                "By",
                Counter,
                "system_network_io_bytes_total",
            ),
            ("sent_bytes_total", "By", Counter, "sent_bytes_total"),
            ("requests.total", "", Counter, "requests_total"),
            ("requests", "1", Counter, "requests_total"),
            (
                "http.server.active_requests",
                "{request}",
                UpDown,
                "http_server_active_requests",
            ),
            (
                "system.memory.utilization",
                "1",
                Gauge,
                "system_memory_utilization_ratio",
            ),
            ("cpu.ratio.now", "1", Gauge, "cpu_now_ratio"),
            ("queue.fill", "1", UpDown, "queue_fill"),
            ("throughput", "By/s", Gauge, "throughput_bytes_per_second"),
            (
                "throughput_bytes_per_second",
                "By/s",
                Gauge,
                "throughput_bytes_per_second",
            ),
            ("rate", "{request}/s", Gauge, "rate_per_second"),
            ("packets", "{packet}", Counter, "packets_total"),
            ("speed", "km/h", Gauge, "speed_km_per_hour"),
            ("disk", "%", Gauge, "disk_percent"),
            ("temp", "Cel", Gauge, "temp_celsius"),
            ("heap", "MiBy", Gauge, "heap_mebibytes"),
            ("io", "By{transferred}", Counter, "io_bytes_total"),
            ("odd", "foo.bar", Gauge, "odd_foo_bar"),
            ("2xx.responses", "", Counter, "_2xx_responses_total"),
            (
                "(lambda).function.executions(#)",
                "",
                Gauge,
                "lambda_function_executions",
            ),
            ("a:b..c__d-e", "", Gauge, "a_b_c_d_e"),
            ("café.latency", "ms", Gauge, "caf_latency_milliseconds"),
            ("...", "s", Gauge, "seconds"),
            ("rpc.duration", "ms", Summary, "rpc_duration_milliseconds"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                prom_name(name, unit, *kind).as_deref(),
                Some(*want),
                "{name} [{unit}] {kind:?}"
            );
        }
        assert_eq!(prom_name("...", "", Gauge), None);
        assert_eq!(prom_name("", "{x}", Counter).as_deref(), Some("total"));
    }

    #[test]
    fn label_names_values_and_collisions() {
        assert_eq!(label_name("http.method").unwrap(), "http_method");
        assert_eq!(label_name("_private").unwrap(), "key_private");
        assert_eq!(label_name("__reserved").unwrap(), "__reserved");
        assert_eq!(label_name("0day").unwrap(), "key_0day");
        assert_eq!(label_name("é").unwrap(), "key_");
        assert_eq!(label_name(""), None);

        let arr = AnyValueKind::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(s("a")),
                },
                AnyValue {
                    value: Some(AnyValueKind::IntValue(2)),
                },
            ],
        });
        let map = AnyValueKind::KvlistValue(KeyValueList {
            values: vec![kv("k", AnyValueKind::BoolValue(true))],
        });
        let attrs = vec![
            kv("a_b", s("under")),
            kv("a.b", s("dot")),
            kv("a-b", s("dash")),
            kv("flag", AnyValueKind::BoolValue(false)),
            kv("n", AnyValueKind::IntValue(-42)),
            kv("f", AnyValueKind::DoubleValue(5.0)),
            kv("g", AnyValueKind::DoubleValue(0.25)),
            kv("tiny", AnyValueKind::DoubleValue(1e-7)),
            kv("huge", AnyValueKind::DoubleValue(1e21)),
            kv("raw", AnyValueKind::BytesValue(b"hi!?".to_vec())),
            kv("list", arr),
            kv("map", map),
            kv("empty", s("")),
            kv("", s("no key")),
            // Resource identity wins over data-point attributes.
            kv("job", s("spoofed")),
            kv("service", s("spoofed")),
        ];
        let c = run(&export(
            vec![
                kv("service.name", s("api")),
                kv("service.namespace", s("shop")),
                kv("service.instance.id", s("pod-7")),
            ],
            vec![gauge("g", "", vec![np(T, 1.0, attrs)])],
        ));
        let g = find(&c, "g", &[]);
        let want: Vec<(String, String)> = [
            ("__name__", "g"),
            // Sorted by original key: "a-b" < "a.b" < "a_b".
            ("a_b", "dash;dot;under"),
            ("f", "5"),
            ("flag", "false"),
            ("g", "0.25"),
            ("huge", "1e+21"),
            ("instance", "pod-7"),
            ("job", "shop/api"),
            ("list", r#"["a",2]"#),
            ("map", r#"{"k":true}"#),
            ("n", "-42"),
            ("raw", "aGkhPw=="),
            ("service", "api"),
            ("tiny", "1e-7"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(g.labels, want);
        // Without service.name there is no job or service, and the
        // data point's own `job` stays.
        let c = run(&export(
            vec![kv("host.name", s("h"))],
            vec![gauge("g", "", vec![np(T, 1.0, vec![kv("job", s("mine"))])])],
        ));
        assert_eq!(
            find(&c, "g", &[]).labels,
            vec![
                ("__name__".to_string(), "g".to_string()),
                ("job".to_string(), "mine".to_string())
            ]
        );
        // ... and no target_info without job or instance.
        assert!(c.series.iter().all(|s| s.name() != "target_info"));
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn sums_gauges_and_temporality() {
        let pt = |v| np(T, v, vec![kv("k", s("v"))]);
        let c = run(&export(
            service("api"),
            vec![
                sum(
                    "http.requests",
                    "{request}",
                    true,
                    CUMULATIVE,
                    vec![pt(7.0)],
                ),
                sum(
                    "db.connections",
                    "{connection}",
                    false,
                    CUMULATIVE,
                    vec![pt(3.0)],
                ),
                gauge("cpu", "1", vec![pt(0.5)]),
                sum("sent", "By", true, DELTA, vec![pt(1.0), pt(2.0)]),
                sum("inflight", "", false, DELTA, vec![pt(1.0)]),
                sum("weird", "", true, 0, vec![pt(1.0)]),
                hist("lat", "ms", DELTA, vec![hp(&[1, 2], &[1.0], Some(3.0))]),
                metric(
                    "exp",
                    "ms",
                    Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: vec![ExponentialHistogramDataPoint {
                            time_unix_nano: T,
                            count: 1,
                            positive: Some(Buckets {
                                offset: 0,
                                bucket_counts: vec![1],
                            }),
                            ..Default::default()
                        }],
                        aggregation_temporality: CUMULATIVE,
                    }),
                ),
                Metric {
                    name: "nothing".into(),
                    ..Default::default()
                },
            ],
        ));
        assert_eq!(value(&c, "http_requests_total", &[("k", "v")]), 7.0);
        assert_eq!(value(&c, "db_connections", &[("job", "api")]), 3.0);
        assert_eq!(value(&c, "cpu_ratio", &[("instance", "i-1")]), 0.5);
        assert_eq!(c.accepted_points, 3);
        assert_eq!(c.rejected_points, 6);
        assert!(c.series.iter().all(|s| !s.name().starts_with("sent")
            && !s.name().starts_with("lat")
            && !s.name().starts_with("exp")));
        let reasons: HashMap<&str, (&str, u64)> = c
            .rejected
            .iter()
            .map(|r| (r.metric.as_str(), (r.reason.as_str(), r.points)))
            .collect();
        assert!(reasons["sent"].0.contains("delta temporality"));
        assert_eq!(reasons["sent"].1, 2);
        assert!(reasons["inflight"].0.contains("delta"));
        assert!(reasons["weird"].0.contains("temporality 0"));
        assert!(reasons["lat"].0.contains("delta"));
        assert!(reasons["exp"].0.contains("exponential histograms"));
        let msg = c.error_message(10);
        assert!(
            msg.starts_with("metric \"sent\": delta temporality"),
            "{msg}"
        );
        assert!(
            msg.contains("(2 points)") && msg.contains("\"nothing\" has no data"),
            "{msg}"
        );
        assert!(
            c.error_message(1).contains("4 more points refused"),
            "{}",
            c.error_message(1)
        );
    }

    #[test]
    fn histograms() {
        let mut no_sum = hp(&[0, 0, 0], &[0.005, 0.01], None);
        no_sum.attributes = vec![kv("http.route", s("/b"))];
        let mut empty = hp(&[], &[], Some(0.0));
        empty.count = 4;
        empty.attributes = vec![kv("http.route", s("/c"))];
        let c = run(&export(
            service("api"),
            vec![hist(
                "http.server.duration",
                "ms",
                CUMULATIVE,
                vec![
                    hp(&[1, 2, 0, 4], &[5.0, 10.0, 25.5], Some(123.5)),
                    no_sum,
                    empty,
                ],
            )],
        ));
        assert_eq!(c.accepted_points, 3);
        let n = "http_server_duration_milliseconds";
        let a = [("http_route", "/a"), ("job", "api")];
        let bucket = |le: &str| {
            let mut w = a.to_vec();
            w.push(("le", le));
            value(&c, &format!("{n}_bucket"), &w)
        };
        assert_eq!(
            [bucket("5"), bucket("10"), bucket("25.5"), bucket("+Inf")],
            [1.0, 3.0, 3.0, 7.0]
        );
        assert_eq!(value(&c, &format!("{n}_count"), &a), 7.0);
        assert_eq!(value(&c, &format!("{n}_sum"), &a), 123.5);
        assert_eq!(
            value(
                &c,
                &format!("{n}_bucket"),
                &[("http_route", "/b"), ("le", "0.005")]
            ),
            0.0
        );
        // No sum sent: no _sum series.
        assert!(!c
            .series
            .iter()
            .any(|s| s.name().ends_with("_sum") && s.label("http_route") == Some("/b")));
        // No buckets: just +Inf, count and sum.
        let c_series: Vec<_> = c
            .series
            .iter()
            .filter(|s| s.label("http_route") == Some("/c"))
            .map(|s| (s.name().to_string(), s.label("le").map(str::to_string)))
            .collect();
        assert_eq!(c_series.len(), 3, "{c_series:?}");
        assert_eq!(
            value(&c, &format!("{n}_bucket"), &[("http_route", "/c")]),
            4.0
        );

        // Malformed points are refused, each with its reason.
        let c = run(&export(
            service("api"),
            vec![hist(
                "h",
                "",
                CUMULATIVE,
                vec![
                    hp(&[1, 2], &[1.0, 2.0], None),
                    hp(&[], &[1.0], None),
                    hp(&[1, 1, 1], &[2.0, 1.0], None),
                    hp(&[1, 1], &[f64::NAN], None),
                    hp(&[1, 1], &[1.0], None),
                ],
            )],
        ));
        assert_eq!((c.accepted_points, c.rejected_points), (1, 4));
        let msg = c.error_message(10);
        assert!(
            msg.contains("2 bucket counts for 2 bounds (want 3)"),
            "{msg}"
        );
        assert!(msg.contains("0 bucket counts for 1 bounds"), "{msg}");
        assert!(msg.contains("strictly increasing (2 points)"), "{msg}");
    }

    #[test]
    fn summaries() {
        let c = run(&export(
            service("api"),
            vec![metric(
                "rpc.duration",
                "s",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        time_unix_nano: T,
                        count: 10,
                        sum: 2.5,
                        quantile_values: vec![
                            summary_data_point::ValueAtQuantile {
                                quantile: 0.5,
                                value: 0.2,
                            },
                            summary_data_point::ValueAtQuantile {
                                quantile: 1.0,
                                value: 0.9,
                            },
                        ],
                        ..Default::default()
                    }],
                }),
            )],
        ));
        let n = "rpc_duration_seconds";
        assert_eq!(value(&c, n, &[("quantile", "0.5")]), 0.2);
        assert_eq!(value(&c, n, &[("quantile", "1")]), 0.9);
        assert_eq!(value(&c, &format!("{n}_sum"), &[]), 2.5);
        assert_eq!(value(&c, &format!("{n}_count"), &[]), 10.0);
    }

    #[test]
    fn staleness_timestamps_and_missing_values() {
        let mut stale = np(T + 2_000_000_000, 0.0, vec![]);
        stale.flags = FLAG_NO_RECORDED_VALUE;
        stale.value = None;
        let mut no_value = np(T, 0.0, vec![kv("x", s("1"))]);
        no_value.value = None;
        let mut int = np(T + 200_000, 0.0, vec![kv("x", s("2"))]);
        int.value = Some(number_data_point::Value::AsInt(-5));
        let mut stale_hist = hp(&[1, 1], &[1.0], Some(1.0));
        stale_hist.flags = FLAG_NO_RECORDED_VALUE;
        let c = run(&export(
            service("api"),
            vec![
                gauge("g", "", vec![np(T, 1.0, vec![]), stale, no_value, int]),
                gauge("zero", "", vec![np(0, 1.0, vec![])]),
                hist("h", "", CUMULATIVE, vec![stale_hist]),
            ],
        ));
        let g = find(&c, "g", &[("job", "api")]);
        assert_eq!(g.samples.len(), 2);
        assert_eq!(g.samples[0], (T_MS, 1.0));
        assert_eq!(g.samples[1].0, T_MS + 2000);
        assert_eq!(g.samples[1].1.to_bits(), STALE_NAN_BITS);
        // Nanoseconds are truncated to the millisecond.
        assert_eq!(find(&c, "g", &[("x", "2")]).samples, vec![(T_MS, -5.0)]);
        let h: Vec<_> = c
            .series
            .iter()
            .filter(|s| s.name().starts_with("h_"))
            .collect();
        assert_eq!(h.len(), 4);
        assert!(h.iter().all(|s| s.samples[0].1.to_bits() == STALE_NAN_BITS));
        let msg = c.error_message(10);
        assert!(
            msg.contains("metric \"g\": data point has no value"),
            "{msg}"
        );
        assert!(
            msg.contains("metric \"zero\": data point has no timestamp"),
            "{msg}"
        );
        assert_eq!((c.accepted_points, c.rejected_points), (4, 2));
        // target_info is at the newest accepted point.
        let c2 = run(&export(
            {
                let mut r = service("api");
                r.push(kv("host.name", s("box")));
                r
            },
            vec![gauge(
                "g",
                "",
                vec![np(T, 1.0, vec![]), np(T + 5_000_000_000, 2.0, vec![])],
            )],
        ));
        assert_eq!(
            find(&c2, "target_info", &[("host_name", "box")]).samples,
            vec![(T_MS + 5000, 1.0)]
        );
    }

    #[test]
    fn json_encoding() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"json-svc"}}]},
          "scopeMetrics":[{"scope":{"name":"app"},"metrics":[
            {"name":"http.server.duration","unit":"ms","histogram":{"aggregationTemporality":2,
              "dataPoints":[{"timeUnixNano":"1795625016064744402","count":"3","sum":12.5,
                "bucketCounts":["1","2",0],"explicitBounds":[5,10],
                "attributes":[{"key":"http.status_code","value":{"intValue":"200"}}],
                "exemplars":[{"timeUnixNano":"1795625016064744402","asDouble":4.0,
                  "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},
            {"name":"jobs","sum":{"aggregationTemporality":2,"isMonotonic":true,
              "dataPoints":[{"timeUnixNano":1795625016064744402,"asInt":"12"}]}},
            {"name":"temp","unit":"Cel","gauge":{"dataPoints":[{"timeUnixNano":"1795625016064744402","asDouble":21.5}]}},
            {"name":"delta","sum":{"aggregationTemporality":1,"isMonotonic":true,
              "dataPoints":[{"timeUnixNano":"1795625016064744402","asInt":"1"}]}},
            {"name":"nodata","unit":"1"}
          ]}]}]}"#;
        let c = decode_and_convert(body, OtlpEncoding::Json, &Limits::default()).unwrap();
        check_invariants(&c, &Limits::default());
        let n = "http_server_duration_milliseconds";
        let w = [
            ("http_status_code", "200"),
            ("job", "json-svc"),
            ("service", "json-svc"),
        ];
        assert_eq!(value(&c, &format!("{n}_count"), &w), 3.0);
        assert_eq!(value(&c, &format!("{n}_bucket"), &[("le", "10")]), 3.0);
        assert_eq!(value(&c, &format!("{n}_bucket"), &[("le", "+Inf")]), 3.0);
        assert_eq!(value(&c, "jobs_total", &[]), 12.0);
        assert_eq!(value(&c, "temp_celsius", &[]), 21.5);
        assert_eq!(find(&c, "temp_celsius", &[]).samples[0].0, T_MS);
        assert_eq!((c.accepted_points, c.rejected_points), (3, 1));
        assert!(c.error_message(10).contains("\"nodata\" has no data"));
        // The same export through protobuf converts the same.
        let req = decode_metrics(body, OtlpEncoding::Json).unwrap();
        let pb = decode_and_convert(
            &req.encode_to_vec(),
            OtlpEncoding::Protobuf,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(pb, c);
    }

    #[test]
    fn bad_json_is_an_error_naming_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "EOF"),
            (b"not json", "expected"),
            (br#"{"resourceMetrics": 5}"#, "invalid type"),
            // Enums are integers in OTLP JSON.
            (
                br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE"}}]}]}]}"#,
                r#"resourceMetrics[0].scopeMetrics[0].metrics[0] ("x"): sum: invalid type: string "AGGREGATION_TEMPORALITY_CUMULATIVE", expected i32"#,
            ),
            (
                br#"{"resourceMetrics":[{"scopeMetrics":[{},{"metrics":[{"name":"ok"},{"name":"y","gauge":{"dataPoints":[{"timeUnixNano":"soon"}]}}]}]}]}"#,
                r#"resourceMetrics[0].scopeMetrics[1].metrics[1] ("y"): gauge: invalid digit"#,
            ),
            (
                br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"z","gauge":{"dataPoints":5},"sum":{}}]}]}]}"#,
                "metrics[0] (\"z\"): more than one of gauge, sum",
            ),
            (br#"{"resourceMetrics":[{"#, "EOF"),
        ];
        for (body, want) in cases {
            let e = decode_metrics(body, OtlpEncoding::Json).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("invalid OTLP JSON"), "{msg}");
            assert!(
                msg.contains(want),
                "{:?}: {msg}",
                String::from_utf8_lossy(body)
            );
        }
        // A value that does not parse leaves the point without a value (the
        // oneof is flattened): refused with a reason, not a 400.
        let c = decode_and_convert(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"timeUnixNano":"1","asInt":"1.5"}]}}]}]}]}"#,
            OtlpEncoding::Json,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(c.rejected_points, 1);
        assert!(c.error_message(1).contains("no valid asDouble or asInt"));
        // Unknown fields are ignored, as the OTLP JSON encoding requires.
        let c = decode_and_convert(
            br#"{"resourceMetrics":[],"somethingNew":{"a":1}}"#,
            OtlpEncoding::Json,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(c.total_points, 0);
    }

    #[test]
    fn malformed_and_truncated_protobuf() {
        let good = fixture("18-metrics.pb");
        let mut errors = 0;
        for n in 0..good.len() {
            match decode_and_convert(&good[..n], OtlpEncoding::Protobuf, &Limits::default()) {
                Ok(c) => check_invariants(&c, &Limits::default()),
                Err(e) => {
                    errors += 1;
                    assert!(e.to_string().starts_with("invalid OTLP protobuf: "), "{e}");
                }
            }
        }
        assert!(errors > good.len() / 2, "{errors} of {}", good.len());
        let e = decode_metrics(&good[..good.len() - 3], OtlpEncoding::Protobuf).unwrap_err();
        assert!(
            e.to_string()
                .contains("ExportMetricsServiceRequest.resource_metrics"),
            "{e}"
        );
        for garbage in [
            &b"\xff\xff\xff\xff"[..],
            b"\x0a\xff\xff\xff\xff\x0f",
            b"{\"json\": 1}",
        ] {
            assert!(decode_metrics(garbage, OtlpEncoding::Protobuf).is_err());
        }
        // Flipping bytes never panics.
        let mut x = 0x9e37_79b9_u32;
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % b.len();
                b[i] = (x >> 8) as u8;
            }
            if let Ok(c) = decode_and_convert(&b, OtlpEncoding::Protobuf, &Limits::default()) {
                check_invariants(&c, &Limits::default());
            }
        }
        assert_eq!(
            decode_and_convert(b"", OtlpEncoding::Protobuf, &Limits::default()).unwrap(),
            Converted::default()
        );
    }

    #[test]
    fn one_mib_attribute_values() {
        let big = "x".repeat(1 << 20);
        // On a data point: that point is refused, naming the attribute.
        let req = export(
            service("api"),
            vec![gauge(
                "g",
                "",
                vec![
                    np(T, 1.0, vec![kv("payload", s(&big))]),
                    np(T, 2.0, vec![kv("small", s("ok"))]),
                ],
            )],
        );
        for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
            let body = match enc {
                OtlpEncoding::Protobuf => req.encode_to_vec(),
                OtlpEncoding::Json => serde_json::to_vec(&req).unwrap(),
            };
            assert!(body.len() > 1 << 20);
            let c = decode_and_convert(&body, enc, &Limits::default()).unwrap();
            check_invariants(&c, &Limits::default());
            assert_eq!((c.accepted_points, c.rejected_points), (1, 1), "{enc:?}");
            assert_eq!(
                c.error_message(5),
                "metric \"g\": attribute \"payload\" is 1048576 bytes, over the 4096-byte label \
                 value limit (1 point)"
            );
            assert_eq!(value(&c, "g", &[("small", "ok")]), 2.0);
        }
        // As a key or a metric name: refused too, the message stays short.
        let c = run(&export(
            service("api"),
            vec![
                gauge("g", "", vec![np(T, 1.0, vec![kv(&big, s("v"))])]),
                gauge(&big, "", vec![np(T, 1.0, vec![])]),
            ],
        ));
        assert_eq!((c.accepted_points, c.rejected_points), (0, 2));
        let msg = c.error_message(5);
        assert!(msg.len() < 600, "{msg}");
        assert!(
            msg.contains("is 1048576 bytes, over the 4096-byte label name limit"),
            "{msg}"
        );
        assert!(msg.contains("the metric name is 1048576 bytes"), "{msg}");
        // As service.name: every point of the resource is refused.
        let c = run(&export(
            vec![kv("service.name", s(&big))],
            vec![gauge("g", "", vec![np(T, 1.0, vec![]); 3])],
        ));
        assert_eq!((c.accepted_points, c.rejected_points), (0, 3));
        assert!(c.series.is_empty());
        assert!(c
            .error_message(5)
            .contains("resource attribute \"service.name\" is 1048576"));
        // As another resource attribute: points are kept, target_info
        // leaves it out.
        let mut r = service("api");
        r.push(kv("process.command_line", s(&big)));
        r.push(kv("host.name", s("box")));
        let c = run(&export(r, vec![gauge("g", "", vec![np(T, 1.0, vec![])])]));
        assert_eq!(c.rejected_points, 0);
        let ti = find(&c, "target_info", &[("host_name", "box")]);
        assert_eq!(ti.label("process_command_line"), None);
        let bytes: usize = c
            .series
            .iter()
            .flat_map(|s| &s.labels)
            .map(|(n, v)| n.len() + v.len())
            .sum();
        assert!(bytes < 1000, "{bytes}");
    }

    #[test]
    fn output_budget_stops_amplification() {
        // 300 attributes of 4000 bytes on a histogram of 2000 buckets would be
        // 2.4 GB of labels from a 1.2 MB export; refused before it is built.
        let attrs: Vec<KeyValue> = (0..300)
            .map(|i| kv(&format!("a{i}"), s(&"v".repeat(4000))))
            .collect();
        let bounds: Vec<f64> = (0..2000).map(f64::from).collect();
        let mut p = hp(&vec![0; 2001], &bounds, Some(0.0));
        p.attributes = attrs;
        let req = export(service("api"), vec![hist("h", "", CUMULATIVE, vec![p])]);
        let body = req.encode_to_vec();
        assert!(body.len() < 2 << 20);
        let start = Instant::now();
        let c = decode_and_convert(&body, OtlpEncoding::Protobuf, &Limits::default()).unwrap();
        assert!(start.elapsed().as_secs() < 10);
        check_invariants(&c, &Limits::default());
        assert_eq!((c.accepted_points, c.rejected_points), (0, 1));
        assert!(c.error_message(1).contains("more than 512 MiB of series"));

        // With a small budget, points past it are refused, the rest kept.
        let limits = Limits {
            max_output_bytes: 64 << 10,
            ..Limits::default()
        };
        let points: Vec<_> = (0..1000)
            .map(|i| np(T, i as f64, vec![kv("i", AnyValueKind::IntValue(i))]))
            .collect();
        let c = convert(
            &export(service("api"), vec![gauge("g", "", points)]),
            &limits,
        );
        check_invariants(&c, &limits);
        assert!(c.accepted_points > 50 && c.rejected_points > 500, "{c:?}");
        assert_eq!(c.accepted_points + c.rejected_points, 1000);
    }

    #[test]
    fn responses() {
        assert!(export_response(OtlpEncoding::Protobuf, 0, "").is_empty());
        assert_eq!(export_response(OtlpEncoding::Json, 0, ""), b"{}");
        let pb = export_response(OtlpEncoding::Protobuf, 3, "delta");
        let r = ExportMetricsServiceResponse::decode(&pb[..]).unwrap();
        let want = ExportMetricsPartialSuccess {
            rejected_data_points: 3,
            error_message: "delta".into(),
        };
        assert_eq!(r.partial_success.as_ref(), Some(&want));
        let json = export_response(OtlpEncoding::Json, 3, "delta");
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"partialSuccess": {"rejectedDataPoints": 3, "errorMessage": "delta"}})
        );
        // What OTLP JSON clients decode.
        let r: ExportMetricsServiceResponse = serde_json::from_slice(&json).unwrap();
        assert_eq!(r.partial_success, Some(want));
        // A warning: nothing refused, something said.
        let r = ExportMetricsServiceResponse::decode(
            &export_response(OtlpEncoding::Protobuf, 0, "note")[..],
        )
        .unwrap();
        assert_eq!(r.partial_success.unwrap().error_message, "note");
    }

    /// 100k points in one export: linear time and memory (the output is a
    /// small multiple of the input). Prints the decode speed.
    #[test]
    fn hundred_thousand_points() {
        let points: Vec<NumberDataPoint> = (0..100_000u64)
            .map(|i| {
                np(
                    T + i * 1_000_000,
                    i as f64,
                    vec![
                        kv("worker", AnyValueKind::IntValue((i % 1000) as i64)),
                        kv("queue", s(["default", "high", "low"][(i % 3) as usize])),
                    ],
                )
            })
            .collect();
        let mut r = service("api");
        r.push(kv("host.name", s("box")));
        let req = export(
            r,
            vec![sum("jobs.processed", "{job}", true, CUMULATIVE, points)],
        );
        for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
            let body = match enc {
                OtlpEncoding::Protobuf => req.encode_to_vec(),
                OtlpEncoding::Json => serde_json::to_vec(&req).unwrap(),
            };
            let start = Instant::now();
            let decoded = decode_metrics(&body, enc).unwrap();
            let decode = start.elapsed();
            let c = convert(&decoded, &Limits::default());
            let total = start.elapsed();
            eprintln!(
                "{enc:?}: {} bytes, 100k points: decode {decode:?}, decode+convert {total:?} \
                 ({:.0} points/s)",
                body.len(),
                100_000.0 / total.as_secs_f64()
            );
            check_invariants(&c, &Limits::default());
            assert_eq!(c.accepted_points, 100_000);
            // 1000 workers × 3 queues, 1 series each, plus target_info.
            assert_eq!(c.series.len(), 3001);
            assert_eq!(c.samples, 100_001);
            let s = find(
                &c,
                "jobs_processed_total",
                &[("worker", "7"), ("queue", "high")],
            );
            assert_eq!(s.samples.len(), 34);
            let cost: usize = c
                .series
                .iter()
                .map(|s| series_cost(&s.labels) + SAMPLE_COST * s.samples.len())
                .sum();
            assert!(
                cost < body.len() * 4,
                "{cost} for {} input bytes",
                body.len()
            );
            // Generous: debug builds on a busy 2-core machine.
            assert!(total.as_secs() < 60, "{total:?}");
        }
    }
}
