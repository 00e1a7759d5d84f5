//! Wire formats Sightline accepts, decoded without I/O: NDJSON line framing and
//! OTLP/HTTP logs (protobuf and JSON). Everything here is pure and fuzzable; the
//! server decides what to do with the decoded values.

pub mod ndjson;
pub mod otlp;

pub use ndjson::{lines, Line};
pub use otlp::{decode_logs, OtlpEncoding, OtlpError, OtlpLog};
