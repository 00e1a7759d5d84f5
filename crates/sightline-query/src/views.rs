//! The debugging views derived from logs: one request's timeline, and flows
//! (`<name>_started` → `<name>_step step=…` → `<name>_completed` | `<name>_failed`
//! events sharing a `flow_id`) with their status and the step where they stopped.

use crate::eval::json_text;
use crate::exec::{get, Sink, Strings};
use crate::QueryError;
use arrow::array::{Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt8Array};
use serde::Serialize;
use serde_json::{Map, Value};
use sightline_pipeline::timefmt::format_rfc3339_nanos;
use sightline_pipeline::{Level, LogRecord};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most logs returned for one request or one flow.
pub const MAX_TIMELINE_LOGS: usize = 10_000;

/// Everything logged for one request id, oldest first.
#[derive(Debug, Serialize)]
pub struct RequestTimeline {
    pub request_id: String,
    pub services: Vec<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub duration_ms: Option<f64>,
    pub levels: BTreeMap<&'static str, u64>,
    pub logs: Vec<Value>,
    /// More than `MAX_TIMELINE_LOGS` lines matched: the newest are shown.
    pub truncated: bool,
}

pub fn request_timeline(request_id: &str, mut rows: Vec<LogRecord>, more: bool) -> RequestTimeline {
    rows.sort_by_key(|r| r.timestamp_ns);
    let services: BTreeSet<&str> = rows.iter().map(|r| r.service.as_str()).collect();
    let mut levels = BTreeMap::new();
    for r in &rows {
        *levels.entry(r.level.as_str()).or_insert(0) += 1;
    }
    let (first, last) = (
        rows.first().map(|r| r.timestamp_ns),
        rows.last().map(|r| r.timestamp_ns),
    );
    RequestTimeline {
        request_id: request_id.to_string(),
        services: services.into_iter().map(String::from).collect(),
        first_seen: first.map(format_rfc3339_nanos),
        last_seen: last.map(format_rfc3339_nanos),
        duration_ms: first
            .zip(last)
            .map(|(a, b)| b.saturating_sub(a) as f64 / 1e6),
        levels,
        logs: rows.iter().map(|r| r.to_json()).collect(),
        truncated: more,
    }
}

/// The event suffixes of the flow convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowEvent {
    Started,
    Step,
    Completed,
    Failed,
}

fn flow_event(message: &str) -> Option<(&str, FlowEvent)> {
    for (suffix, e) in [
        ("_started", FlowEvent::Started),
        ("_step", FlowEvent::Step),
        ("_completed", FlowEvent::Completed),
        ("_failed", FlowEvent::Failed),
    ] {
        if let Some(name) = message.strip_suffix(suffix) {
            if !name.is_empty() {
                return Some((name, e));
            }
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    Completed,
    Failed,
    Running,
    Stalled,
}

impl FlowStatus {
    pub fn parse(s: &str) -> Option<FlowStatus> {
        Some(match s {
            "completed" => FlowStatus::Completed,
            "failed" => FlowStatus::Failed,
            "running" => FlowStatus::Running,
            "stalled" => FlowStatus::Stalled,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Completed => "completed",
            FlowStatus::Failed => "failed",
            FlowStatus::Running => "running",
            FlowStatus::Stalled => "stalled",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: String,
    pub at: String,
    pub level: &'static str,
    pub fields: Map<String, Value>,
    #[serde(skip)]
    ts: i64,
}

/// One flow as its events describe it.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub flow_id: String,
    pub name: Option<String>,
    pub service: String,
    pub status: FlowStatus,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// Start to the terminal event, or to the last event while not ended.
    pub duration_ms: f64,
    pub last_event_at: String,
    pub steps: Vec<Step>,
    /// The last step reached before `<name>_failed` (or the `step` it names).
    pub failed_at_step: Option<String>,
    /// The last step reached (where a running or stalled flow stands).
    pub last_step: Option<String>,
    pub error: Option<String>,
    pub events: u64,
    pub request_ids: Vec<String>,
}

/// Accumulates flows from rows with a `flow_id`, in any order.
#[derive(Debug, Default)]
struct Acc {
    name: Option<String>,
    service: String,
    started: Option<i64>,
    first: i64,
    last: i64,
    terminal: Option<(i64, FlowEvent)>,
    failed_step: Option<String>,
    error: Option<String>,
    steps: Vec<Step>,
    events: u64,
    request_ids: BTreeSet<String>,
}

/// Steps kept per flow.
const MAX_STEPS: usize = 1000;

struct Row<'a> {
    ts: i64,
    service: &'a str,
    level: Level,
    message: &'a str,
    attributes: &'a str,
    exception: Option<&'a str>,
    request_id: Option<&'a str>,
}

impl Acc {
    fn add(&mut self, r: Row<'_>, keep_steps: bool) {
        if self.events == 0 {
            self.first = r.ts;
            self.last = r.ts;
            self.service = r.service.to_string();
        }
        self.events += 1;
        self.first = self.first.min(r.ts);
        self.last = self.last.max(r.ts);
        if let Some(id) = r.request_id {
            if self.request_ids.len() < 100 {
                self.request_ids.insert(id.to_string());
            }
        }
        let Some((name, ev)) = flow_event(r.message) else {
            return;
        };
        if self.name.is_none() || ev == FlowEvent::Started {
            self.name = Some(name.to_string());
        }
        let attrs = || match serde_json::from_str::<Value>(r.attributes) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        match ev {
            FlowEvent::Started => {
                self.started = Some(self.started.map_or(r.ts, |s| s.min(r.ts)));
                self.service = r.service.to_string();
            }
            FlowEvent::Step => {
                if self.steps.len() < MAX_STEPS {
                    let mut fields = attrs();
                    let step = fields
                        .remove("step")
                        .map(|v| json_text(&v))
                        .unwrap_or_default();
                    if !keep_steps {
                        fields = Map::new();
                    }
                    self.steps.push(Step {
                        step,
                        at: String::new(),
                        level: r.level.as_str(),
                        fields,
                        ts: r.ts,
                    });
                }
            }
            FlowEvent::Completed | FlowEvent::Failed => {
                if self.terminal.is_none_or(|(t, _)| r.ts >= t) {
                    self.terminal = Some((r.ts, ev));
                    if ev == FlowEvent::Failed {
                        let m = attrs();
                        self.failed_step = m.get("step").map(json_text);
                        self.error = m
                            .get("error")
                            .or_else(|| m.get("reason"))
                            .map(json_text)
                            .or_else(|| r.exception.map(str::to_string))
                            .or_else(|| m.get("error_type").map(json_text))
                            .or_else(|| Some(r.message.to_string()));
                    }
                }
            }
        }
    }

    fn finish(mut self, flow_id: String, now_ns: i64, stall_ns: i64) -> Flow {
        self.steps.sort_by_key(|s| s.ts);
        for s in &mut self.steps {
            s.at = format_rfc3339_nanos(s.ts);
        }
        let started = self.started.unwrap_or(self.first);
        let status = match self.terminal {
            Some((_, FlowEvent::Completed)) => FlowStatus::Completed,
            Some((_, _)) => FlowStatus::Failed,
            None if now_ns.saturating_sub(self.last) > stall_ns => FlowStatus::Stalled,
            None => FlowStatus::Running,
        };
        let end = self.terminal.map(|(t, _)| t);
        let before = end.unwrap_or(i64::MAX);
        let last_step = self
            .steps
            .iter()
            .rev()
            .find(|s| s.ts <= before)
            .map(|s| s.step.clone());
        let failed_at_step = match status {
            FlowStatus::Failed => self.failed_step.clone().or_else(|| last_step.clone()),
            _ => None,
        };
        Flow {
            flow_id,
            name: self.name,
            service: self.service,
            status,
            started_at: format_rfc3339_nanos(started),
            ended_at: end.map(format_rfc3339_nanos),
            duration_ms: end.unwrap_or(self.last).saturating_sub(started) as f64 / 1e6,
            last_event_at: format_rfc3339_nanos(self.last),
            steps: self.steps,
            failed_at_step,
            last_step,
            error: if status == FlowStatus::Failed {
                self.error
            } else {
                None
            },
            events: self.events,
            request_ids: self.request_ids.into_iter().collect(),
        }
    }
}

/// One flow from its records (any order).
pub fn flow_from_records(
    flow_id: &str,
    rows: &[LogRecord],
    now_ns: i64,
    stall_ns: i64,
) -> Option<Flow> {
    let mut acc = Acc::default();
    for r in rows {
        acc.add(
            Row {
                ts: r.timestamp_ns,
                service: &r.service,
                level: r.level,
                message: &r.message,
                attributes: &r.attributes,
                exception: r.exception.as_deref(),
                request_id: r.request_id.as_deref(),
            },
            true,
        );
    }
    (acc.events > 0).then(|| acc.finish(flow_id.to_string(), now_ns, stall_ns))
}

/// Groups scanned rows by flow id.
#[derive(Debug)]
pub struct FlowSink {
    flows: HashMap<String, Acc>,
    max_flows: usize,
}

impl FlowSink {
    pub fn new(max_flows: usize) -> FlowSink {
        FlowSink {
            flows: HashMap::new(),
            max_flows,
        }
    }

    pub fn finish(self, now_ns: i64, stall_ns: i64) -> Vec<Flow> {
        self.flows
            .into_iter()
            .map(|(id, a)| a.finish(id, now_ns, stall_ns))
            .collect()
    }
}

impl Sink for FlowSink {
    fn columns(&self) -> BTreeSet<&'static str> {
        [
            "timestamp",
            "service",
            "severity",
            "message",
            "flow_id",
            "attributes",
            "exception",
            "request_id",
        ]
        .into_iter()
        .collect()
    }

    fn push(&mut self, b: &RecordBatch) -> Result<(), QueryError> {
        let ts = get::<TimestampNanosecondArray>(b, "timestamp")?;
        let svc = Strings::of(b, "service")?;
        let sev = get::<UInt8Array>(b, "severity")?;
        let msg = Strings::of(b, "message")?;
        let flow = get::<StringArray>(b, "flow_id")?;
        let attrs = get::<StringArray>(b, "attributes")?;
        let exc = get::<StringArray>(b, "exception")?;
        let req = get::<StringArray>(b, "request_id")?;
        fn opt(a: &StringArray, i: usize) -> Option<&str> {
            (!a.is_null(i)).then(|| a.value(i))
        }
        for i in 0..b.num_rows() {
            let Some(id) = opt(flow, i) else { continue };
            if !self.flows.contains_key(id) && self.flows.len() >= self.max_flows {
                return Err(QueryError::TooExpensive(format!(
                    "more than {} flows in range: narrow the time range or filter by name or service",
                    self.max_flows
                )));
            }
            self.flows.entry(id.to_string()).or_default().add(
                Row {
                    ts: ts.value(i),
                    service: svc.value(i).unwrap_or(""),
                    level: Level::from_u8(sev.value(i)).unwrap_or(Level::Info),
                    message: msg.value(i).unwrap_or(""),
                    attributes: attrs.value(i),
                    exception: opt(exc, i),
                    request_id: opt(req, i),
                },
                false,
            );
        }
        Ok(())
    }

    /// Flows are folded on one thread (an event's place in its flow depends
    /// on the others).
    fn fork(&self) -> Option<Self> {
        None
    }

    fn merge(&mut self, _other: Self) -> Result<(), QueryError> {
        Ok(())
    }
}

/// Counts and percentiles over a set of flows.
#[derive(Debug, Serialize)]
pub struct FlowStats {
    pub name: Option<String>,
    pub total: u64,
    pub by_status: BTreeMap<&'static str, u64>,
    /// Counts by status of each flow name (`""` for flows without one).
    pub by_name: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Where failed and stalled flows stopped: failed_at_step, or the last step
    /// reached (`(none)` when no step was reached).
    pub stopped_at_step: BTreeMap<String, u64>,
    /// Durations of ended (completed or failed) flows, in milliseconds.
    pub duration_ms: Percentiles,
}

#[derive(Debug, Serialize, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

pub fn flow_stats(name: Option<&str>, flows: &[Flow]) -> FlowStats {
    let mut by_status: BTreeMap<&'static str, u64> = [
        FlowStatus::Completed,
        FlowStatus::Failed,
        FlowStatus::Running,
        FlowStatus::Stalled,
    ]
    .into_iter()
    .map(|s| (s.as_str(), 0))
    .collect();
    let mut stopped = BTreeMap::new();
    let mut durations = Vec::new();
    let mut by_name: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for f in flows {
        *by_status.entry(f.status.as_str()).or_insert(0) += 1;
        *by_name
            .entry(f.name.clone().unwrap_or_default())
            .or_default()
            .entry(f.status.as_str())
            .or_insert(0) += 1;
        match f.status {
            FlowStatus::Failed | FlowStatus::Stalled => {
                let at = f
                    .failed_at_step
                    .clone()
                    .or_else(|| f.last_step.clone())
                    .unwrap_or_else(|| "(none)".into());
                *stopped.entry(at).or_insert(0) += 1;
            }
            _ => {}
        }
        if matches!(f.status, FlowStatus::Completed | FlowStatus::Failed) {
            durations.push(f.duration_ms);
        }
    }
    durations.sort_by(|a, b| a.total_cmp(b));
    FlowStats {
        name: name.map(str::to_string),
        total: flows.len() as u64,
        by_status,
        by_name,
        stopped_at_step: stopped,
        duration_ms: Percentiles {
            count: durations.len() as u64,
            p50: quantile(&durations, 0.5),
            p90: quantile(&durations, 0.9),
            p99: quantile(&durations, 0.99),
            max: durations.last().copied(),
        },
    }
}
