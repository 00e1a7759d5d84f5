//! Sentry items as sentry-sdk sends them, turned into the rows Sightline stores:
//! error events (normalized, scrubbed, grouped), transactions, cron check-ins,
//! release-health sessions, client reports, and Sentry logs (as log records).
//! Pure and synchronous like the rest of the pipeline.

pub mod event;
pub mod grouping;
pub mod items;

use serde::{Deserialize, Serialize};

/// An error or message event, ready for the event store. `body` is the
/// normalized event JSON (what `GET /api/v1/events/{id}` returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub project_id: i64,
    pub timestamp_ns: i64,
    pub received_ns: i64,
    pub level: String,
    pub title: String,
    pub culprit: String,
    pub exc_type: Option<String>,
    pub exc_value: Option<String>,
    /// Grouping hash (hex) the issue is keyed by, with its variant and version.
    pub fingerprint: String,
    pub grouping_variant: String,
    pub grouping_version: String,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// `id:…`, `email:…`, `username:…` or `ip:…`: what counts distinct users.
    pub user_key: Option<String>,
    /// The event's tags plus the ones Sentry derives (level, environment,
    /// release, server_name, transaction, user), counted per issue.
    pub tags: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// A transaction (kept whole; its spans are read by the traces view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionRow {
    pub event_id: String,
    pub project_id: i64,
    pub start_ns: i64,
    pub end_ns: i64,
    pub name: String,
    pub op: Option<String>,
    pub status: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub request_id: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// One cron check-in (an `in_progress` and its final `ok`/`error` share a
/// `check_in_id`: the later one updates the earlier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckInRow {
    pub project_id: i64,
    pub monitor_slug: String,
    pub check_in_id: String,
    pub status: String,
    pub duration_s: Option<f64>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub timestamp_ns: i64,
    /// `monitor_config` as sent (schedule, margins), JSON text.
    pub monitor_config: Option<String>,
}

/// Session counts to add to one release (and environment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub project_id: i64,
    pub release: String,
    pub environment: String,
    pub started: u64,
    pub errored: u64,
    pub crashed: u64,
    pub abnormal: u64,
    pub timestamp_ns: i64,
}

/// Events an SDK discarded before sending, by reason and category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientReportRow {
    pub project_id: i64,
    pub reason: String,
    pub category: String,
    pub quantity: u64,
}

/// One stored Sentry item; a write-ahead-log frame holds a batch of them.
#[derive(Debug, Clone, PartialEq)]
pub enum SentryItem {
    Event(EventRow),
    Transaction(TransactionRow),
    CheckIn(CheckInRow),
    Session(SessionRow),
    ClientReport(ClientReportRow),
}

impl SentryItem {
    pub fn kind(&self) -> &'static str {
        match self {
            SentryItem::Event(_) => "event",
            SentryItem::Transaction(_) => "transaction",
            SentryItem::CheckIn(_) => "check_in",
            SentryItem::Session(_) => "session",
            SentryItem::ClientReport(_) => "client_report",
        }
    }
}

/// Where an item came from: its project, when it arrived, the envelope's
/// `event_id`, and the sender's address (for `{{auto}}` IPs).
#[derive(Debug, Clone, Copy)]
pub struct ItemContext<'a> {
    pub project_id: i64,
    pub received_ns: i64,
    pub envelope_event_id: Option<&'a str>,
    /// Used when neither the item nor the envelope carries an event id.
    pub fallback_event_id: &'a str,
    pub client_ip: Option<&'a str>,
    /// Keep `user.ip_address` (the project opted in); otherwise it is removed.
    pub keep_ip: bool,
    pub max_item_bytes: usize,
}
