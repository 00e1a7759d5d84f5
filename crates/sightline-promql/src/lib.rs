//! Sightline's PromQL engine: evaluates queries parsed by `promql-parser` with Prometheus 2.42
//! semantics against any [`Storage`], and renders results as the Prometheus HTTP API does.
#![forbid(unsafe_code)]

mod aggregate;
mod binary;
mod engine;
mod eval;
mod format;
mod functions;
mod labels;
mod quantile;
mod value;

pub use engine::{parse, Engine, EngineOptions};
pub use format::{format_float, format_value, timestamp_json, to_json};
pub use labels::{Labels, BUCKET_LABEL, METRIC_NAME};
pub use promql_parser::label::{MatchOp, Matcher};
pub use value::{
    is_stale_nan, matches_all, stale_nan, QueryError, Sample, Series, Storage, Value,
    STALE_NAN_BITS,
};
