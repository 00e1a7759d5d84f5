//! Every on-disk name in a data directory, and the data directory's own version
//! stamp. Nothing else in Sightline spells a path inside the data dir.
//!
//! ```text
//! DATA/
//!   VERSION                   "sightline-data 1": checked on open
//!   LOCK                      held (flock) while a server owns the directory
//!   api-token, ingest-key     generated secrets (owned by the server crate)
//!   manifest.sqlite           parts, their time ranges and row counts, WAL coverage
//!   meta.sqlite               projects and their public keys (Sentry DSNs)
//!   wal/0000000000000001.wal  write-ahead log segments
//!   parts/logs/2026-11-25/<id>.parquet   immutable columnar parts, by day
//!   tmp/                      parts being written; emptied on open
//!   events/wal/*.wal          write-ahead log of Sentry items (same format)
//!   events/events.sqlite      issues, events, transactions, check-ins, sessions
//!   metrics/                  the metrics store: wal/, blocks/
//!   traces/                   the span store, laid out like DATA itself:
//!     VERSION, LOCK, manifest.sqlite, wal/, tmp/, parts/spans/<day>/<id>.parquet
//! ```

use std::path::{Path, PathBuf};

/// Version of the data directory layout. Bump when a layout change needs migration.
pub const DATA_DIR_VERSION: u32 = 1;
pub const VERSION_FILE: &str = "VERSION";
pub const LOCK_FILE: &str = "LOCK";
pub const API_TOKEN_FILE: &str = "api-token";
pub const INGEST_KEY_FILE: &str = "ingest-key";
/// UI sessions ended by logout before their time (`<nonce> <expires>` lines).
pub const UI_REVOKED_FILE: &str = "ui-revoked-sessions";
pub const MANIFEST_FILE: &str = "manifest.sqlite";
pub const META_FILE: &str = "meta.sqlite";
pub const WAL_DIR: &str = "wal";
pub const PARTS_DIR: &str = "parts";
pub const TMP_DIR: &str = "tmp";
/// Sub-directory of `parts/` for log parts; other signals get their own.
pub const LOG_PARTS: &str = "logs";
pub const EVENTS_DIR: &str = "events";
pub const EVENTS_DB: &str = "events.sqlite";
pub const METRICS_DIR: &str = "metrics";
pub const TRACES_DIR: &str = "traces";
/// Sub-directory of `traces/parts/` for span parts.
pub const SPAN_PARTS: &str = "spans";

/// Root of the event store (it has its own `wal/` inside).
pub fn events_dir(root: &Path) -> PathBuf {
    root.join(EVENTS_DIR)
}

/// Root of the metrics store (its own `wal/` and `blocks/` inside).
pub fn metrics_dir(root: &Path) -> PathBuf {
    root.join(METRICS_DIR)
}

pub fn wal_dir(root: &Path) -> PathBuf {
    root.join(WAL_DIR)
}

pub fn wal_segment(root: &Path, id: u64) -> PathBuf {
    wal_dir(root).join(format!("{id:016}.wal"))
}

/// Parses a segment id out of a WAL file name.
pub fn parse_wal_segment(name: &str) -> Option<u64> {
    name.strip_suffix(".wal")
        .filter(|s| s.len() == 16)
        .and_then(|s| s.parse().ok())
}

pub fn log_parts_dir(root: &Path) -> PathBuf {
    parts_dir(root, LOG_PARTS)
}

/// `parts/<kind>/` of a store rooted at `root`.
pub fn parts_dir(root: &Path, kind: &str) -> PathBuf {
    root.join(PARTS_DIR).join(kind)
}

/// Path of a part, relative to its store's root (as stored in the manifest).
pub fn part_rel(kind: &str, day: &str, name: &str) -> String {
    format!("{PARTS_DIR}/{kind}/{day}/{name}.parquet")
}

/// Root of the span store (its own `VERSION`, `wal/`, `manifest.sqlite` and
/// `parts/spans/` inside).
pub fn traces_dir(root: &Path) -> PathBuf {
    root.join(TRACES_DIR)
}

pub fn tmp_dir(root: &Path) -> PathBuf {
    root.join(TMP_DIR)
}

/// fsyncs a directory so that a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
