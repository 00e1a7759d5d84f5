//! Wire formats Sightline accepts, decoded without I/O: NDJSON line framing,
//! OTLP/HTTP logs, traces and metrics (protobuf and JSON; metrics converted to
//! Prometheus series), Sentry envelopes and the Prometheus / OpenMetrics text
//! exposition formats. Everything here is pure and fuzzable; the server
//! decides what to do with the decoded values.

pub mod envelope;
pub mod exposition;
pub mod ndjson;
pub mod otlp;
pub mod otlp_metrics;
pub mod otlp_traces;
pub mod remote_write;

pub use ndjson::{lines, Line};
pub use otlp::{decode_logs, OtlpEncoding, OtlpError, OtlpLog};
