//! Query result values (`Value`, `Sample`, `Series`), the storage interface (`Storage`) and query
//! errors (`QueryError`).

use std::fmt;

use crate::labels::Labels;

/// Bit pattern of Prometheus's staleness marker NaN.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is a staleness marker.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// A series with its samples, sorted by time (milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// Milliseconds.
    pub t: i64,
    pub v: f64,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Time (ms) and value.
    Scalar(i64, f64),
    /// Time (ms) and value.
    String(i64, String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    /// Prometheus's `resultType` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(..) => "scalar",
            Value::String(..) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// What the evaluator reads. Implemented by the storage (and by in-memory stores in tests).
pub trait Storage: Send + Sync {
    /// Every series matching all matchers (Prometheus semantics: a matcher that matches the empty
    /// string also matches series without that label), with their samples in
    /// `[mint_ms, maxt_ms]` inclusive, sorted by time. A sample whose bits are
    /// [`STALE_NAN_BITS`] is a staleness marker.
    fn select(
        &self,
        matchers: &[promql_parser::label::Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<Series>, String>;
}

/// Whether `labels` satisfies every matcher (a missing label reads as "").
pub fn matches_all(labels: &Labels, matchers: &[promql_parser::label::Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.is_match(labels.get_or_empty(&m.name)))
}

/// Why a query failed.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    /// The query (or a request parameter) is invalid: HTTP 400, `errorType` `bad_data`.
    Parse(String),
    /// Evaluation failed: HTTP 422, `errorType` `execution`.
    Execution(String),
    /// The query ran longer than the engine's timeout: HTTP 503, `errorType` `timeout`.
    Timeout,
    /// The query would hold more samples than allowed: HTTP 422, `errorType` `execution`.
    TooManySamples,
    /// The storage failed: HTTP 500, `errorType` `internal`.
    Storage(String),
}

impl QueryError {
    /// Prometheus's `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples => "execution",
            QueryError::Timeout => "timeout",
            QueryError::Storage(_) => "internal",
        }
    }

    /// The HTTP status Prometheus answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::Parse(_) => 400,
            QueryError::Execution(_) | QueryError::TooManySamples => 422,
            QueryError::Timeout => 503,
            QueryError::Storage(_) => 500,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Parse(m) | QueryError::Execution(m) => f.write_str(m),
            QueryError::Timeout => f.write_str("query timed out in expression evaluation"),
            QueryError::TooManySamples => f.write_str(
                "query processing would load too many samples into memory in query execution",
            ),
            QueryError::Storage(m) => write!(f, "expanding series: {m}"),
        }
    }
}

impl std::error::Error for QueryError {}
