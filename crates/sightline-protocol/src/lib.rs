//! Wire formats Sightline accepts, decoded without I/O: NDJSON line framing,
//! OTLP/HTTP logs (protobuf and JSON) and Sentry envelopes. Everything here is pure and fuzzable; the
//! server decides what to do with the decoded values.

pub mod envelope;
pub mod ndjson;
pub mod otlp;

pub use ndjson::{lines, Line};
pub use otlp::{decode_logs, OtlpEncoding, OtlpError, OtlpLog};
