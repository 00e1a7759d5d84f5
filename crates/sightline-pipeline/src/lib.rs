//! The ingest pipeline between wire formats and the store, pure and synchronous:
//! normalize a decoded line or OTLP record into a [`LogRecord`], scrub secrets out
//! of it, and bound its size. Nothing here touches disk or the network.

pub mod normalize;
pub mod record;
pub mod scrub;
pub mod sentry;
pub mod span;
pub mod timefmt;

pub use normalize::{normalize_line, normalize_otlp, LineError, Normalizer};
pub use record::{Level, LogRecord};
pub use scrub::{ScrubConfig, Scrubber};
pub use span::Span;
