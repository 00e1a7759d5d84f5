//! The effective configuration: defaults, then `sightline.toml`, then
//! `SIGHTLINE_*` environment variables and flags (applied by the binary).
//! Unknown keys are an error.

use serde::{Deserialize, Serialize};
use sightline_pipeline::ScrubConfig;
use sightline_store::FsyncPolicy;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The OpenTelemetry SDK's default OTLP/HTTP endpoint, so OTel apps need no setting.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4318";
pub const DEFAULT_DATA_DIR: &str = "./sightline-data";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Non-loopback addresses require an ingest key.
    pub listen: SocketAddr,
    /// Where everything is stored.
    pub data_dir: PathBuf,
    /// Bearer token for read APIs; generated into the data dir when unset.
    pub api_token: Option<String>,
    /// Key required on ingest when listening beyond loopback; generated when unset.
    pub ingest_key: Option<String>,
    /// `always`: fsync before acknowledging; `batch`: fsync every 100 ms.
    pub fsync: FsyncPolicy,
    /// Filter for Sightline's own logs (`info`, `debug`, `sightline_store=debug` …).
    pub log_level: String,
    pub limits: Limits,
    pub storage: Storage,
    pub scrub: ScrubConfig,
    pub query: QueryLimits,
    pub flows: Flows,
    /// The Sentry-compatible ingest endpoints.
    pub sentry: Sentry,
    /// Projects with fixed ids and keys (so DSNs survive a new data dir).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<ProjectConfig>,
    pub metrics: MetricsConfig,
    pub traces: Traces,
    /// Services Sightline scrapes (`/metrics`) and probes (`/health`, `/health/ready`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetConfig>,
}

/// `[metrics]`: scraping defaults and the PromQL engine's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Default scrape and probe interval of targets (`15s`).
    pub scrape_interval: String,
    /// Default scrape and probe timeout (`10s`).
    pub scrape_timeout: String,
    /// Scrapes running at once, over all targets.
    pub max_concurrent_scrapes: usize,
    /// Largest `/metrics` body read (bytes); larger scrapes fail.
    pub max_scrape_bytes: usize,
    /// Most samples one scrape may hold; more fails the scrape (0 = no limit).
    pub max_samples_per_scrape: usize,
    /// Samples one PromQL query may hold in memory.
    pub max_samples: usize,
    /// How far back an instant selector looks for a sample (`5m`, as Prometheus).
    pub lookback_delta: String,
    /// Largest remote-write / OTLP metrics body (bytes, compressed).
    pub max_write_bytes: usize,
    /// How long samples are kept (`15d`, as Prometheus).
    pub retention: String,
    /// Time range of a persisted block (`2h`).
    pub block_duration: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            scrape_interval: "15s".into(),
            scrape_timeout: "10s".into(),
            max_concurrent_scrapes: 16,
            max_scrape_bytes: 64 * 1024 * 1024,
            max_samples_per_scrape: 500_000,
            max_samples: 50_000_000,
            lookback_delta: "5m".into(),
            max_write_bytes: 32 * 1024 * 1024,
            retention: "15d".into(),
            block_duration: "2h".into(),
        }
    }
}

/// `[[targets]]`: one service to scrape and probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The service name: the `job` and `service` labels of its series.
    pub service: String,
    /// Base URL, e.g. `http://127.0.0.1:8000`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Extra labels on every series of this target.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// `[[projects]]`: a project Sightline makes sure exists on start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    pub name: String,
    /// The number in the DSN's path (`/42`); the next free one when unset.
    pub id: Option<i64>,
    /// Public keys (32 hex digits) accepted for this project.
    pub keys: Vec<String>,
    /// Keep `user.ip_address` of this project's events (removed by default).
    #[serde(default)]
    pub keep_ip_address: bool,
    /// Envelopes per minute for this project (overrides `[sentry]`; 0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u64>,
}

/// `[sentry]`: limits of the Sentry-compatible ingest endpoints
/// (`/api/{project_id}/envelope/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sentry {
    /// Compressed body of one envelope (413 above).
    pub max_envelope_bytes: usize,
    /// Decompressed body of one envelope (413 above).
    pub max_envelope_decompressed_bytes: usize,
    /// One event or transaction item (413 above).
    pub max_event_bytes: usize,
    /// Envelopes per project per minute (429 above); 0 = no limit (the default).
    pub rate_limit_per_minute: u64,
}

impl Default for Sentry {
    fn default() -> Self {
        Sentry {
            max_envelope_bytes: 20 * 1024 * 1024,
            max_envelope_decompressed_bytes: 100 * 1024 * 1024,
            max_event_bytes: 1024 * 1024,
            rate_limit_per_minute: 0,
        }
    }
}

/// Bounds on one log query (search, aggregation, facets, flows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// A query running longer fails with 503 and a clear error.
    pub timeout_secs: u64,
    /// Most groups an aggregation may produce; more: 422.
    pub max_groups: usize,
    /// Most bytes of records one page may hold; more: 422.
    pub max_page_bytes: usize,
    /// Facets are computed from at most this many of the newest matching rows.
    pub facet_rows: usize,
    /// Most distinct flows one flows query may see; more: 422.
    pub max_flows: usize,
    /// Queries run at once; more wait for a slot.
    pub max_concurrent: usize,
}

/// Flows: `<name>_started` / `_step` / `_completed` / `_failed` events sharing a `flow_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flows {
    /// A flow with no terminal event and no event for this long is `stalled`.
    pub stall_timeout_secs: u64,
}

/// `[traces]`: the span store (`DATA/traces/`) and the RED metrics made from spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Traces {
    /// Span parts older than this many days are deleted (0: kept).
    pub retention_days: u64,
    /// Oldest span parts are deleted while parts take more (0: no budget).
    pub max_disk_bytes: u64,
    /// Flush spans from memory to a part at least this often (seconds).
    pub flush_interval_secs: u64,
    /// How often `sightline_span_calls_total` and
    /// `sightline_span_duration_seconds` are written to the metrics store.
    pub red_interval_secs: u64,
    /// Buckets (seconds) of `sightline_span_duration_seconds`.
    pub duration_buckets: Vec<f64>,
}

impl Default for Traces {
    fn default() -> Self {
        Traces {
            retention_days: 30,
            max_disk_bytes: 0,
            flush_interval_secs: 300,
            red_interval_secs: 15,
            duration_buckets: vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        let d = sightline_query::Limits::default();
        QueryLimits {
            timeout_secs: d.timeout.as_secs(),
            max_groups: d.max_groups,
            max_page_bytes: d.max_page_bytes,
            facet_rows: d.facet_rows,
            max_flows: d.max_flows,
            max_concurrent: 4,
        }
    }
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            stall_timeout_secs: sightline_query::Limits::default().stall_timeout.as_secs(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body as sent (compressed), bytes. Over it: 413.
    pub max_body_bytes: usize,
    /// Largest body after decompression, bytes. Over it: 413 (gzip bombs stop here).
    pub max_decompressed_bytes: usize,
    /// Records larger than this are truncated and marked `truncated`.
    pub max_record_bytes: usize,
    /// Most per-line errors listed in an ingest answer (all are counted).
    pub max_reported_errors: usize,
    /// Most lines in one NDJSON request (each costs memory until flushed). Over it: 413.
    pub max_lines_per_request: usize,
    /// Ingest requests processed at once; more get 503 + Retry-After.
    pub max_concurrent_ingest: usize,
    /// Most rows a read API returns per page.
    pub max_query_limit: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// Flush the in-memory head to a part at least this often (seconds).
    pub flush_interval_secs: u64,
    pub max_head_rows: usize,
    pub max_head_bytes: usize,
    /// Unflushed bytes above which ingest answers 503.
    pub max_pending_bytes: usize,
    /// Drop data older than this many days (0 = keep forever).
    pub retention_days: u64,
    /// Drop the oldest parts while parts use more than this (0 = no limit).
    pub max_disk_bytes: u64,
    /// `/health/ready` degrades when the data dir's filesystem has less free space.
    pub min_free_disk_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            api_token: None,
            ingest_key: None,
            fsync: FsyncPolicy::Always,
            log_level: "info".into(),
            limits: Limits::default(),
            storage: Storage::default(),
            scrub: ScrubConfig::default(),
            query: QueryLimits::default(),
            flows: Flows::default(),
            sentry: Sentry::default(),
            projects: Vec::new(),
            metrics: MetricsConfig::default(),
            traces: Traces::default(),
            targets: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_decompressed_bytes: 128 * 1024 * 1024,
            max_record_bytes: sightline_pipeline::normalize::DEFAULT_MAX_RECORD_BYTES,
            max_reported_errors: 100,
            max_lines_per_request: 500_000,
            max_concurrent_ingest: 256,
            max_query_limit: 10_000,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            flush_interval_secs: 300,
            max_head_rows: 262_144,
            max_head_bytes: 64 * 1024 * 1024,
            max_pending_bytes: 192 * 1024 * 1024,
            retention_days: 30,
            max_disk_bytes: 0,
            min_free_disk_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    pub fn query_limits(&self) -> sightline_query::Limits {
        use std::time::Duration;
        sightline_query::Limits {
            max_limit: self.limits.max_query_limit.max(1),
            timeout: Duration::from_secs(self.query.timeout_secs.max(1)),
            max_groups: self.query.max_groups.max(1),
            max_page_bytes: self.query.max_page_bytes.max(1),
            facet_rows: self.query.facet_rows.max(1),
            max_flows: self.query.max_flows.max(1),
            stall_timeout: Duration::from_secs(self.flows.stall_timeout_secs),
        }
    }

    pub fn store_config(&self) -> sightline_store::StoreConfig {
        let mut c = sightline_store::StoreConfig::new(&self.data_dir);
        c.fsync = self.fsync;
        c.max_head_rows = self.storage.max_head_rows;
        c.max_head_bytes = self.storage.max_head_bytes;
        c.flush_interval = std::time::Duration::from_secs(self.storage.flush_interval_secs.max(1));
        c.max_pending_bytes = self.storage.max_pending_bytes;
        c.retention = (self.storage.retention_days > 0)
            .then(|| std::time::Duration::from_secs(self.storage.retention_days * 86_400));
        c.max_disk_bytes = (self.storage.max_disk_bytes > 0).then_some(self.storage.max_disk_bytes);
        c
    }

    /// The span store's settings: the log store's memory bounds, its own
    /// directory, retention and flush interval.
    pub fn span_store_config(&self) -> sightline_store::StoreConfig {
        let mut c = self.store_config();
        c.data_dir = sightline_store::files::traces_dir(&self.data_dir);
        c.flush_interval = std::time::Duration::from_secs(self.traces.flush_interval_secs.max(1));
        c.retention = (self.traces.retention_days > 0)
            .then(|| std::time::Duration::from_secs(self.traces.retention_days * 86_400));
        c.max_disk_bytes = (self.traces.max_disk_bytes > 0).then_some(self.traces.max_disk_bytes);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors() {
        let e =
            toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisten_addr = 3\n").unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
        let e = toml::from_str::<Config>("[storage]\nretention = 3\n").unwrap_err();
        assert!(e.to_string().contains("retention"), "{e}");
    }

    #[test]
    fn defaults_roundtrip_through_toml() {
        let c = Config::default();
        assert_eq!(toml::from_str::<Config>(&c.to_toml()).unwrap(), c);
    }
}
