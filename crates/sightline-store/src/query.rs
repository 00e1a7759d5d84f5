//! The minimal read path's filter: equality on service and the join ids, a level
//! set, a time range, newest first, limited. The query language builds on it.

use sightline_pipeline::{Level, LogRecord};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    pub service: Option<String>,
    pub request_id: Option<String>,
    pub flow_id: Option<String>,
    pub trace_id: Option<String>,
    pub user_id: Option<String>,
    pub levels: Option<Vec<Level>>,
    /// Inclusive start, nanoseconds.
    pub start_ns: Option<i64>,
    /// Exclusive end, nanoseconds.
    pub end_ns: Option<i64>,
    pub limit: usize,
}

impl LogQuery {
    /// The id equality filters that have bloom filters, as (column, value).
    pub fn id_filters(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("request_id", self.request_id.as_deref()),
            ("flow_id", self.flow_id.as_deref()),
            ("trace_id", self.trace_id.as_deref()),
            ("user_id", self.user_id.as_deref()),
        ]
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| (c, v)))
    }

    pub fn matches(&self, r: &LogRecord) -> bool {
        fn eq(want: &Option<String>, got: &Option<String>) -> bool {
            want.as_ref()
                .is_none_or(|w| got.as_deref() == Some(w.as_str()))
        }
        self.service.as_ref().is_none_or(|s| *s == r.service)
            && eq(&self.request_id, &r.request_id)
            && eq(&self.flow_id, &r.flow_id)
            && eq(&self.trace_id, &r.trace_id)
            && eq(&self.user_id, &r.user_id)
            && self.levels.as_ref().is_none_or(|l| l.contains(&r.level))
            && self.start_ns.is_none_or(|s| r.timestamp_ns >= s)
            && self.end_ns.is_none_or(|e| r.timestamp_ns < e)
    }
}
