//! The normalized log record: typed columns for the keys every Python service
//! emits, and every other key kept as a JSON object in `attributes`.

use serde::Serialize;

/// Log levels as Python names them, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    /// OpenTelemetry severity number of the level's base (DEBUG=5 … FATAL=21).
    pub fn severity(self) -> u8 {
        match self {
            Level::Debug => 5,
            Level::Info => 9,
            Level::Warning => 13,
            Level::Error => 17,
            Level::Critical => 21,
        }
    }

    /// Parses the usual spellings (`WARN`, `warning`, `fatal`, `err`, `trace` …),
    /// ignoring ASCII case, without allocating (it runs once per line).
    pub fn parse(s: &str) -> Option<Level> {
        const NAMES: &[(&str, Level)] = &[
            ("info", Level::Info),
            ("debug", Level::Debug),
            ("warning", Level::Warning),
            ("error", Level::Error),
            ("warn", Level::Warning),
            ("critical", Level::Critical),
            ("trace", Level::Debug),
            ("dbg", Level::Debug),
            ("verbose", Level::Debug),
            ("information", Level::Info),
            ("informational", Level::Info),
            ("notice", Level::Info),
            ("log", Level::Info),
            ("err", Level::Error),
            ("exception", Level::Error),
            ("crit", Level::Critical),
            ("fatal", Level::Critical),
            ("panic", Level::Critical),
            ("alert", Level::Critical),
            ("emergency", Level::Critical),
            ("emerg", Level::Critical),
        ];
        let s = s.trim();
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, l)| *l)
    }

    /// Maps an OpenTelemetry severity number (1–24) to a level.
    pub fn from_severity(n: i32) -> Option<Level> {
        Some(match n {
            1..=8 => Level::Debug,
            9..=12 => Level::Info,
            13..=16 => Level::Warning,
            17..=20 => Level::Error,
            21..=24 => Level::Critical,
            _ => return None,
        })
    }

    pub fn from_u8(n: u8) -> Option<Level> {
        Level::from_severity(n as i32)
    }
}

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRecord {
    /// Event time, nanoseconds since the Unix epoch (receive time when absent).
    pub timestamp_ns: i64,
    /// When Sightline received it.
    pub received_ns: i64,
    pub service: String,
    pub environment: Option<String>,
    pub level: Level,
    /// structlog's `event`, stdlib's `message`, OTLP's body, or the plain line.
    pub message: String,
    pub logger: Option<String>,
    pub request_id: Option<String>,
    pub flow_id: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub user_id: Option<String>,
    /// Traceback text (`exception`, `exc_info`, `stack`).
    pub exception: Option<String>,
    pub host: Option<String>,
    /// Every other key, as a JSON object text (`{}` when none).
    pub attributes: String,
    /// True when the record was over the size limit and cut down.
    pub truncated: bool,
}

impl LogRecord {
    /// Approximate in-memory and on-wire size, used for limits and accounting.
    pub fn approx_bytes(&self) -> usize {
        fn o(s: &Option<String>) -> usize {
            s.as_ref().map_or(0, |s| s.len())
        }
        64 + self.service.len()
            + self.message.len()
            + self.attributes.len()
            + o(&self.environment)
            + o(&self.logger)
            + o(&self.request_id)
            + o(&self.flow_id)
            + o(&self.trace_id)
            + o(&self.span_id)
            + o(&self.user_id)
            + o(&self.exception)
            + o(&self.host)
    }

    /// The record as the read API returns it: typed fields plus the attributes
    /// merged in under `fields`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let mut m = Map::new();
        m.insert(
            "timestamp".into(),
            json!(crate::timefmt::format_rfc3339_nanos(self.timestamp_ns)),
        );
        m.insert("timestamp_ns".into(), json!(self.timestamp_ns));
        m.insert(
            "received_at".into(),
            json!(crate::timefmt::format_rfc3339_nanos(self.received_ns)),
        );
        m.insert("service".into(), json!(self.service));
        m.insert("level".into(), json!(self.level.as_str()));
        m.insert("severity".into(), json!(self.level.severity()));
        m.insert("message".into(), json!(self.message));
        for (k, v) in [
            ("environment", &self.environment),
            ("logger", &self.logger),
            ("request_id", &self.request_id),
            ("flow_id", &self.flow_id),
            ("trace_id", &self.trace_id),
            ("span_id", &self.span_id),
            ("user_id", &self.user_id),
            ("exception", &self.exception),
            ("host", &self.host),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        let fields: Value = serde_json::from_str(&self.attributes).unwrap_or_else(|_| json!({}));
        m.insert("fields".into(), fields);
        if self.truncated {
            m.insert("truncated".into(), json!(true));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_spellings() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warning));
        assert_eq!(Level::parse(" Error "), Some(Level::Error));
        assert_eq!(Level::parse("FATAL"), Some(Level::Critical));
        assert_eq!(Level::parse("trace"), Some(Level::Debug));
        assert_eq!(Level::parse("loud"), None);
        assert_eq!(Level::parse(""), None);
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
            assert_eq!(Level::from_u8(l.severity()), Some(l));
        }
    }
}
