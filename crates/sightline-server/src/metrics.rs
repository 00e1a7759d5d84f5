//! Sightline's own metrics, declared in one place and rendered in the Prometheus
//! text format on `/metrics`. Label values come from bounded sets (endpoint
//! names, route templates, error codes), never from client input.

use parking_lot::Mutex;
use sightline_store::stats::{Histogram, LATENCY_BUCKETS};
use sightline_store::LogStore;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A counter family with labels.
#[derive(Debug, Default)]
pub struct CounterVec {
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    pub fn inc_by(&self, labels: &[&str], n: u64) {
        let mut v = self.values.lock();
        *v.entry(labels.iter().map(|s| s.to_string()).collect())
            .or_insert(0) += n;
    }

    pub fn get(&self, labels: &[&str]) -> u64 {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        self.values.lock().get(&key).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, help: &str, label_names: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (vals, n) in self.values.lock().iter() {
            let _ = writeln!(out, "{name}{{{}}} {n}", labels(label_names, vals));
        }
    }
}

/// A histogram family with labels.
#[derive(Debug, Default)]
pub struct HistogramVec {
    values: Mutex<BTreeMap<Vec<String>, std::sync::Arc<Histogram>>>,
}

impl HistogramVec {
    pub fn observe(&self, labels: &[&str], d: std::time::Duration) {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let h = self
            .values
            .lock()
            .entry(key)
            .or_insert_with(|| std::sync::Arc::new(Histogram::new(LATENCY_BUCKETS)))
            .clone();
        h.observe(d);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, label_names: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (vals, h) in self.values.lock().iter() {
            render_histogram(out, name, &labels(label_names, vals), h);
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(names: &[&str], vals: &[String]) -> String {
    names
        .iter()
        .zip(vals)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn render_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let (buckets, sum, count) = h.snapshot();
    let sep = if labels.is_empty() { "" } else { "," };
    for (le, c) in buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

/// Every metric the server exports besides the store's own counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `sightline_ingested_records_total{endpoint}`: records accepted.
    pub ingested_records: CounterVec,
    /// `sightline_ingested_bytes_total{endpoint}`: request body bytes after decompression.
    pub ingested_bytes: CounterVec,
    /// `sightline_ingest_rejected_total{endpoint,reason}`: lines or requests refused.
    pub rejected: CounterVec,
    /// `sightline_scrubbed_values_total{endpoint}`: values redacted or masked before the WAL.
    pub scrubbed: CounterVec,
    /// `sightline_http_requests_total{method,route,status}`.
    pub http_requests: CounterVec,
    /// `sightline_http_request_duration_seconds{route}`.
    pub http_duration: HistogramVec,
    /// `sightline_query_duration_seconds{endpoint}`: time spent in store queries.
    pub query_duration: HistogramVec,
    /// `sightline_truncated_records_total`: records cut down to the size limit.
    pub truncated: AtomicU64,
    /// `sightline_sentry_items_total{type,outcome}`: envelope items accepted,
    /// invalid (dropped) or skipped (types not stored).
    pub sentry_items: CounterVec,
}

/// The event store's part of `/metrics`: items applied, and the events SDKs
/// reported discarding (client reports), by reason and category.
pub fn render_events(out: &mut String, events: &sightline_store::events::EventStore) {
    let _ = writeln!(
        out,
        "# HELP sightline_events_applied_total Sentry items applied to the event store.\n# TYPE sightline_events_applied_total counter\nsightline_events_applied_total {}",
        events.stats.items_applied.load(Relaxed)
    );
    let reports = events
        .read(sightline_store::events::client_reports)
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "# HELP sightline_sentry_client_discarded_events_total Events SDKs reported discarding (client reports).\n# TYPE sightline_sentry_client_discarded_events_total counter"
    );
    for (reason, category, n) in reports {
        let _ = writeln!(
            out,
            "sightline_sentry_client_discarded_events_total{{{}}} {n}",
            labels(&["reason", "category"], &[reason, category])
        );
    }
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

/// The metrics store's part of `/metrics`.
/// The span store's own series (`sightline_span_store_*`).
pub fn render_spans(out: &mut String, spans: &sightline_store::spans::SpanStore) {
    let st = spans.stats();
    counter(
        out,
        "sightline_span_store_spans_total",
        "Spans written to the span store's WAL.",
        st.records_appended.load(Relaxed),
    );
    counter(
        out,
        "sightline_span_store_wal_write_errors_total",
        "Failed span WAL appends.",
        st.wal_write_errors.load(Relaxed),
    );
    let parts = spans.parts();
    gauge(
        out,
        "sightline_span_store_parts",
        "Span parts on disk.",
        parts.len() as f64,
    );
    gauge(
        out,
        "sightline_span_store_part_bytes",
        "Bytes of span parts on disk.",
        parts.iter().map(|p| p.bytes as f64).sum(),
    );
    gauge(
        out,
        "sightline_span_store_unflushed_spans",
        "Spans in memory (in the WAL, not yet in parts).",
        spans.unflushed_rows() as f64,
    );
}

pub fn render_tsdb(out: &mut String, tsdb: &sightline_store::tsdb::Tsdb) {
    let st = &tsdb.stats;
    counter(
        out,
        "sightline_tsdb_samples_appended_total",
        "Samples stored in the metrics store.",
        st.samples_appended.load(Relaxed),
    );
    counter(
        out,
        "sightline_tsdb_out_of_order_samples_total",
        "Samples refused: older than their series' newest.",
        st.samples_out_of_order.load(Relaxed),
    );
    counter(
        out,
        "sightline_tsdb_duplicate_samples_total",
        "Samples refused: same timestamp, different value.",
        st.samples_duplicate.load(Relaxed),
    );
    counter(
        out,
        "sightline_tsdb_series_created_total",
        "Series created.",
        st.series_created.load(Relaxed),
    );
    let (series, head_samples, head_bytes) = tsdb.head_stats();
    let (blocks, block_bytes, block_samples) = tsdb.block_stats();
    gauge(
        out,
        "sightline_tsdb_series",
        "Series known (head and blocks).",
        series as f64,
    );
    gauge(
        out,
        "sightline_tsdb_head_samples",
        "Samples in the in-memory head.",
        head_samples as f64,
    );
    gauge(
        out,
        "sightline_tsdb_head_bytes",
        "Approximate bytes the head holds.",
        head_bytes as f64,
    );
    gauge(
        out,
        "sightline_tsdb_blocks",
        "Persisted metric blocks.",
        blocks as f64,
    );
    gauge(
        out,
        "sightline_tsdb_blocks_bytes",
        "Bytes of persisted metric blocks.",
        block_bytes as f64,
    );
    gauge(
        out,
        "sightline_tsdb_blocks_samples",
        "Samples in persisted metric blocks.",
        block_samples as f64,
    );
}

impl Metrics {
    pub fn render(&self, store: &LogStore) -> String {
        let mut out = String::with_capacity(8192);
        self.ingested_records.render(
            &mut out,
            "sightline_ingested_records_total",
            "Records accepted, by endpoint.",
            &["endpoint"],
        );
        self.ingested_bytes.render(
            &mut out,
            "sightline_ingested_bytes_total",
            "Decompressed body bytes received, by endpoint.",
            &["endpoint"],
        );
        self.sentry_items.render(
            &mut out,
            "sightline_sentry_items_total",
            "Sentry envelope items, by type and outcome (accepted, invalid, skipped).",
            &["type", "outcome"],
        );
        self.rejected.render(
            &mut out,
            "sightline_ingest_rejected_total",
            "Lines or requests rejected, by endpoint and reason.",
            &["endpoint", "reason"],
        );
        self.scrubbed.render(
            &mut out,
            "sightline_scrubbed_values_total",
            "Sensitive values redacted or masked before the WAL.",
            &["endpoint"],
        );
        let _ = writeln!(
            out,
            "# HELP sightline_truncated_records_total Records over the size limit, truncated.\n# TYPE sightline_truncated_records_total counter\nsightline_truncated_records_total {}",
            self.truncated.load(Relaxed)
        );
        self.http_requests.render(
            &mut out,
            "sightline_http_requests_total",
            "HTTP requests served.",
            &["method", "route", "status"],
        );
        self.http_duration.render(
            &mut out,
            "sightline_http_request_duration_seconds",
            "HTTP request latency.",
            &["route"],
        );
        self.query_duration.render(
            &mut out,
            "sightline_query_duration_seconds",
            "Store query latency.",
            &["endpoint"],
        );

        let st = store.stats();
        counter(
            &mut out,
            "sightline_wal_records_total",
            "Records written to the WAL.",
            st.records_appended.load(Relaxed),
        );
        counter(
            &mut out,
            "sightline_wal_bytes_total",
            "Bytes written to the WAL.",
            st.wal_bytes.load(Relaxed),
        );
        counter(
            &mut out,
            "sightline_wal_write_errors_total",
            "Failed WAL appends.",
            st.wal_write_errors.load(Relaxed),
        );
        counter(
            &mut out,
            "sightline_wal_torn_tails_total",
            "Torn WAL tails truncated on replay.",
            st.wal_torn_tails.load(Relaxed),
        );
        counter(
            &mut out,
            "sightline_wal_replayed_records_total",
            "Records replayed from the WAL at start.",
            st.replayed_records.load(Relaxed),
        );
        let _ = writeln!(out, "# HELP sightline_wal_fsync_duration_seconds WAL group-commit fsync latency.\n# TYPE sightline_wal_fsync_duration_seconds histogram");
        render_histogram(
            &mut out,
            "sightline_wal_fsync_duration_seconds",
            "",
            &st.wal_fsync,
        );
        counter(
            &mut out,
            "sightline_parts_written_total",
            "Parts written (flushes and compactions).",
            st.parts_written.load(Relaxed),
        );
        counter(
            &mut out,
            "sightline_compactions_total",
            "Compactions run.",
            st.compactions.load(Relaxed),
        );
        counter(
            &mut out,
            "sightline_flush_errors_total",
            "Failed attempts to write a part.",
            st.flush_errors.load(Relaxed),
        );
        counter(
            &mut out,
            "sightline_retention_deleted_parts_total",
            "Parts dropped by retention.",
            st.retention_deleted_parts.load(Relaxed),
        );
        let parts = store.parts();
        gauge(
            &mut out,
            "sightline_parts",
            "Live parts.",
            parts.len() as f64,
        );
        gauge(
            &mut out,
            "sightline_parts_bytes",
            "Bytes in live parts.",
            parts.iter().map(|p| p.bytes as f64).sum(),
        );
        gauge(
            &mut out,
            "sightline_parts_rows",
            "Rows in live parts.",
            parts.iter().map(|p| p.rows as f64).sum(),
        );
        gauge(
            &mut out,
            "sightline_head_rows",
            "Rows not yet in parts.",
            store.unflushed_rows() as f64,
        );
        if let Some(rss) = resident_memory_bytes() {
            gauge(
                &mut out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss as f64,
            );
        }
        out
    }
}

/// RSS from /proc (Linux).
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
