//! The event store: Sentry items (error events, transactions, check-ins,
//! sessions, client reports) made durable in their own write-ahead log, then
//! applied to `DATA/events/events.sqlite`, where issues are grouped and counted.
//!
//! # Path of an envelope's items
//! 1. [`EventStore::append`] encodes the items as one WAL frame and queues it.
//! 2. The writer thread writes every queued frame with one `write` and one
//!    `fdatasync` (group commit), then applies them to SQLite in one transaction
//!    that also records the last applied frame (`segment`, `frame`), then
//!    acknowledges: acknowledged means durable *and* visible to the read API.
//! 3. SQLite runs with `synchronous=NORMAL` (no fsync per commit): after a crash
//!    the frames past the recorded watermark are applied again from the WAL,
//!    exactly once. When a segment is full, SQLite is checkpointed (which
//!    fsyncs the database) and the applied segments are deleted.

use crate::{files, wal, FsyncPolicy, StoreError};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{json, Value};
use sightline_pipeline::sentry::{
    CheckInRow, ClientReportRow, EventRow, SentryItem, SessionRow, TransactionRow,
};
use sightline_pipeline::timefmt::format_rfc3339_nanos;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const EVENTS_DB_VERSION: i64 = 1;
/// A segment is closed (and SQLite checkpointed) past this size.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const QUEUE_DEPTH: usize = 4096;
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
const TICK: Duration = Duration::from_millis(100);
/// Stored event bodies are zstd-compressed at this level.
const BODY_ZSTD_LEVEL: i32 = 1;

/// Called once with the outcome of an append.
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

enum Op {
    Append {
        frame: Vec<u8>,
        items: Vec<SentryItem>,
        done: Done,
    },
    Shutdown,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct EventStats {
    pub items_applied: AtomicU64,
    pub frames_replayed: AtomicU64,
    pub wal_torn_bytes: AtomicU64,
}

pub struct EventStore {
    tx: Sender<Op>,
    read: Mutex<Connection>,
    db_path: PathBuf,
    pub stats: Arc<EventStats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("db", &self.db_path)
            .finish()
    }
}

// ---------------------------------------------------------------- WAL codec

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// `kind:u8 meta_len:u32 meta(JSON) body_len:u32 body` per item.
pub fn encode_items(items: &[SentryItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for it in items {
        let (kind, meta, body): (u8, Vec<u8>, &[u8]) = match it {
            SentryItem::Event(r) => (1, serde_json::to_vec(r).unwrap_or_default(), &r.body),
            SentryItem::Transaction(r) => (2, serde_json::to_vec(r).unwrap_or_default(), &r.body),
            SentryItem::CheckIn(r) => (3, serde_json::to_vec(r).unwrap_or_default(), &[]),
            SentryItem::Session(r) => (4, serde_json::to_vec(r).unwrap_or_default(), &[]),
            SentryItem::ClientReport(r) => (5, serde_json::to_vec(r).unwrap_or_default(), &[]),
        };
        out.push(kind);
        put_bytes(&mut out, &meta);
        put_bytes(&mut out, body);
    }
    out
}

pub fn decode_items(mut b: &[u8]) -> Result<Vec<SentryItem>, String> {
    fn take<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], String> {
        let n = u32::from_le_bytes(
            b.get(..4)
                .ok_or("short length")?
                .try_into()
                .map_err(|_| "short length")?,
        ) as usize;
        let v = b.get(4..4 + n).ok_or("short item")?;
        *b = &b[4 + n..];
        Ok(v)
    }
    let mut out = Vec::new();
    while let Some((&kind, rest)) = b.split_first() {
        b = rest;
        let meta = take(&mut b)?;
        let body = take(&mut b)?.to_vec();
        let e = |e: serde_json::Error| e.to_string();
        out.push(match kind {
            1 => SentryItem::Event(EventRow {
                body,
                ..serde_json::from_slice(meta).map_err(e)?
            }),
            2 => SentryItem::Transaction(TransactionRow {
                body,
                ..serde_json::from_slice(meta).map_err(e)?
            }),
            3 => SentryItem::CheckIn(serde_json::from_slice(meta).map_err(e)?),
            4 => SentryItem::Session(serde_json::from_slice(meta).map_err(e)?),
            5 => SentryItem::ClientReport(serde_json::from_slice(meta).map_err(e)?),
            k => return Err(format!("unknown item kind {k}")),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- schema

fn open_db(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Checkpoints (each an fsync) happen when a WAL segment is closed, not
    // every 1000 pages inside an ingest commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        0 => conn.execute_batch(
            "BEGIN;
             CREATE TABLE wal_applied (id INTEGER PRIMARY KEY CHECK (id = 1),
                segment INTEGER NOT NULL, frame INTEGER NOT NULL);
             INSERT INTO wal_applied VALUES (1, 0, -1);
             CREATE TABLE issues (
                id INTEGER PRIMARY KEY,
                project_id INTEGER NOT NULL,
                fingerprint TEXT NOT NULL,
                grouping_variant TEXT NOT NULL,
                grouping_version TEXT NOT NULL,
                title TEXT NOT NULL,
                culprit TEXT NOT NULL,
                type TEXT,
                value TEXT,
                level TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'unresolved',
                substatus TEXT,
                count INTEGER NOT NULL DEFAULT 0,
                users INTEGER NOT NULL DEFAULT 0,
                first_seen INTEGER NOT NULL,
                last_seen INTEGER NOT NULL,
                first_release TEXT,
                last_release TEXT,
                last_event_id TEXT,
                status_changed_at INTEGER,
                regressed_at INTEGER,
                UNIQUE (project_id, fingerprint)
             );
             CREATE INDEX issues_last_seen ON issues(last_seen);
             CREATE TABLE events (
                event_id TEXT NOT NULL UNIQUE,
                project_id INTEGER NOT NULL,
                issue_id INTEGER NOT NULL,
                ts INTEGER NOT NULL,
                received INTEGER NOT NULL,
                level TEXT NOT NULL,
                title TEXT NOT NULL,
                request_id TEXT,
                trace_id TEXT,
                span_id TEXT,
                release TEXT,
                environment TEXT,
                user_key TEXT,
                body BLOB NOT NULL
             );
             CREATE INDEX events_issue ON events(issue_id, ts);
             CREATE INDEX events_request ON events(request_id) WHERE request_id IS NOT NULL;
             CREATE INDEX events_trace ON events(trace_id) WHERE trace_id IS NOT NULL;
             CREATE TABLE issue_tags (
                issue_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                count INTEGER NOT NULL, PRIMARY KEY (issue_id, key, value)) WITHOUT ROWID;
             CREATE TABLE issue_users (
                issue_id INTEGER NOT NULL, user_key TEXT NOT NULL,
                PRIMARY KEY (issue_id, user_key)) WITHOUT ROWID;
             CREATE TABLE transactions (
                event_id TEXT NOT NULL UNIQUE,
                project_id INTEGER NOT NULL,
                start_ns INTEGER NOT NULL,
                end_ns INTEGER NOT NULL,
                name TEXT NOT NULL,
                op TEXT, status TEXT, trace_id TEXT, span_id TEXT, request_id TEXT,
                release TEXT, environment TEXT,
                body BLOB NOT NULL
             );
             CREATE INDEX transactions_trace ON transactions(trace_id) WHERE trace_id IS NOT NULL;
             CREATE INDEX transactions_request ON transactions(request_id) WHERE request_id IS NOT NULL;
             CREATE TABLE check_ins (
                project_id INTEGER NOT NULL,
                check_in_id TEXT NOT NULL,
                monitor_slug TEXT NOT NULL,
                status TEXT NOT NULL,
                duration REAL,
                environment TEXT,
                release TEXT,
                started INTEGER NOT NULL,
                updated INTEGER NOT NULL,
                PRIMARY KEY (project_id, check_in_id)) WITHOUT ROWID;
             CREATE INDEX check_ins_monitor ON check_ins(project_id, monitor_slug, started);
             CREATE TABLE monitors (
                project_id INTEGER NOT NULL,
                slug TEXT NOT NULL,
                config TEXT,
                last_status TEXT NOT NULL,
                last_check_in INTEGER NOT NULL,
                environment TEXT,
                PRIMARY KEY (project_id, slug)) WITHOUT ROWID;
             CREATE TABLE release_health (
                project_id INTEGER NOT NULL,
                release TEXT NOT NULL,
                environment TEXT NOT NULL,
                sessions INTEGER NOT NULL DEFAULT 0,
                errored INTEGER NOT NULL DEFAULT 0,
                crashed INTEGER NOT NULL DEFAULT 0,
                abnormal INTEGER NOT NULL DEFAULT 0,
                first_seen INTEGER NOT NULL,
                last_seen INTEGER NOT NULL,
                PRIMARY KEY (project_id, release, environment)) WITHOUT ROWID;
             CREATE TABLE client_reports (
                project_id INTEGER NOT NULL, reason TEXT NOT NULL, category TEXT NOT NULL,
                quantity INTEGER NOT NULL, PRIMARY KEY (project_id, reason, category)) WITHOUT ROWID;
             PRAGMA user_version = 1;
             COMMIT;",
        )?,
        EVENTS_DB_VERSION => {}
        v => {
            return Err(StoreError::Corrupt(format!(
                "{}: events version {v} is newer than this build understands ({EVENTS_DB_VERSION})",
                path.display()
            )))
        }
    }
    Ok(conn)
}

// ---------------------------------------------------------------- apply

/// Tag counts of a transaction's events, summed before they are written (an
/// issue's tags repeat from event to event).
type TagCounts = std::collections::HashMap<(i64, String, String), i64>;

fn apply_event(tx: &Transaction, r: &EventRow, tags: &mut TagCounts) -> rusqlite::Result<()> {
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM issues WHERE project_id = ?1 AND fingerprint = ?2")?
        .query_row(params![r.project_id, r.fingerprint], |row| row.get(0))
        .optional()?;
    let issue_id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached(
                "INSERT INTO issues (project_id, fingerprint, grouping_variant, grouping_version,
                    title, culprit, type, value, level, first_seen, last_seen, first_release,
                    last_release, last_event_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?11, ?12)",
            )?
            .execute(params![
                r.project_id,
                r.fingerprint,
                r.grouping_variant,
                r.grouping_version,
                r.title,
                r.culprit,
                r.exc_type,
                r.exc_value,
                r.level,
                r.timestamp_ns,
                r.release,
                r.event_id,
            ])?;
            tx.last_insert_rowid()
        }
    };
    let body = &r.body;
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (event_id, project_id, issue_id, ts, received, level,
                title, request_id, trace_id, span_id, release, environment, user_key, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![
            r.event_id,
            r.project_id,
            issue_id,
            r.timestamp_ns,
            r.received_ns,
            r.level,
            r.title,
            r.request_id,
            r.trace_id,
            r.span_id,
            r.release,
            r.environment,
            r.user_key,
            body,
        ])?;
    if inserted == 0 {
        return Ok(()); // the same event_id again: counted once, like Sentry
    }
    // In SET, `status` is the old value in every CASE: a resolved issue that
    // sees a new event is reopened and marked regressed.
    tx.prepare_cached(
        "UPDATE issues SET
            count = count + 1,
            first_seen = min(first_seen, ?2),
            last_seen = max(last_seen, ?2),
            first_release = coalesce(first_release, ?3),
            last_release = CASE WHEN ?2 >= last_seen THEN coalesce(?3, last_release) ELSE last_release END,
            last_event_id = CASE WHEN ?2 >= last_seen THEN ?4 ELSE last_event_id END,
            level = CASE WHEN ?2 >= last_seen THEN ?5 ELSE level END,
            substatus = CASE WHEN status = 'resolved' THEN 'regressed' ELSE substatus END,
            regressed_at = CASE WHEN status = 'resolved' THEN ?6 ELSE regressed_at END,
            status_changed_at = CASE WHEN status = 'resolved' THEN ?6 ELSE status_changed_at END,
            status = CASE WHEN status = 'resolved' THEN 'unresolved' ELSE status END
         WHERE id = ?1",
    )?
    .execute(params![
        issue_id,
        r.timestamp_ns,
        r.release,
        r.event_id,
        r.level,
        r.received_ns
    ])?;
    for (k, v) in &r.tags {
        *tags.entry((issue_id, k.clone(), v.clone())).or_insert(0) += 1;
    }
    if let Some(u) = &r.user_key {
        let new = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO issue_users (issue_id, user_key) VALUES (?1, ?2)",
            )?
            .execute(params![issue_id, u])?;
        if new > 0 {
            tx.prepare_cached("UPDATE issues SET users = users + 1 WHERE id = ?1")?
                .execute(params![issue_id])?;
        }
    }
    Ok(())
}

fn apply_transaction(tx: &Transaction, r: &TransactionRow) -> rusqlite::Result<()> {
    let body = &r.body;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO transactions (event_id, project_id, start_ns, end_ns, name, op,
            status, trace_id, span_id, request_id, release, environment, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        r.event_id,
        r.project_id,
        r.start_ns,
        r.end_ns,
        r.name,
        r.op,
        r.status,
        r.trace_id,
        r.span_id,
        r.request_id,
        r.release,
        r.environment,
        body
    ])?;
    Ok(())
}

fn apply_check_in(tx: &Transaction, r: &CheckInRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO check_ins (project_id, check_in_id, monitor_slug, status, duration,
            environment, release, started, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (project_id, check_in_id) DO UPDATE SET
            status = excluded.status,
            duration = coalesce(excluded.duration, duration),
            updated = excluded.updated",
    )?
    .execute(params![
        r.project_id,
        r.check_in_id,
        r.monitor_slug,
        r.status,
        r.duration_s,
        r.environment,
        r.release,
        r.timestamp_ns
    ])?;
    tx.prepare_cached(
        "INSERT INTO monitors (project_id, slug, config, last_status, last_check_in, environment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (project_id, slug) DO UPDATE SET
            config = coalesce(excluded.config, config),
            last_status = CASE WHEN excluded.last_check_in >= last_check_in
                THEN excluded.last_status ELSE last_status END,
            last_check_in = max(last_check_in, excluded.last_check_in),
            environment = coalesce(excluded.environment, environment)",
    )?
    .execute(params![
        r.project_id,
        r.monitor_slug,
        r.monitor_config,
        r.status,
        r.timestamp_ns,
        r.environment
    ])?;
    Ok(())
}

fn apply_session(tx: &Transaction, r: &SessionRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO release_health (project_id, release, environment, sessions, errored,
            crashed, abnormal, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (project_id, release, environment) DO UPDATE SET
            sessions = sessions + excluded.sessions,
            errored = errored + excluded.errored,
            crashed = crashed + excluded.crashed,
            abnormal = abnormal + excluded.abnormal,
            first_seen = min(first_seen, excluded.first_seen),
            last_seen = max(last_seen, excluded.last_seen)",
    )?
    .execute(params![
        r.project_id,
        r.release,
        r.environment,
        r.started as i64,
        r.errored as i64,
        r.crashed as i64,
        r.abnormal as i64,
        r.timestamp_ns
    ])?;
    Ok(())
}

fn apply_client_report(tx: &Transaction, r: &ClientReportRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO client_reports (project_id, reason, category, quantity) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, reason, category) DO UPDATE SET quantity = quantity + excluded.quantity",
    )?
    .execute(params![r.project_id, r.reason, r.category, r.quantity as i64])?;
    Ok(())
}

/// Applies the items of one or more frames inside `tx`.
fn apply<'a>(
    tx: &Transaction,
    frames: impl IntoIterator<Item = &'a [SentryItem]>,
) -> rusqlite::Result<()> {
    let mut tags = TagCounts::new();
    for items in frames {
        apply_items(tx, items, &mut tags)?;
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO issue_tags (issue_id, key, value, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (issue_id, key, value) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((issue, k, v), n) in tags {
        st.execute(params![issue, k, v, n])?;
    }
    Ok(())
}

fn apply_items(
    tx: &Transaction,
    items: &[SentryItem],
    tags: &mut TagCounts,
) -> rusqlite::Result<()> {
    for it in items {
        match it {
            SentryItem::Event(r) => apply_event(tx, r, tags)?,
            SentryItem::Transaction(r) => apply_transaction(tx, r)?,
            SentryItem::CheckIn(r) => apply_check_in(tx, r)?,
            SentryItem::Session(r) => apply_session(tx, r)?,
            SentryItem::ClientReport(r) => apply_client_report(tx, r)?,
        }
    }
    Ok(())
}

fn set_watermark(tx: &Transaction, segment: u64, frame: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE wal_applied SET segment = ?1, frame = ?2 WHERE id = 1")?
        .execute(params![segment as i64, frame])?;
    Ok(())
}

/// Checkpoints SQLite into its database file (fsynced under NORMAL) and, when
/// that completed, deletes the WAL segments before `keep_from`.
fn checkpoint_and_trim(conn: &Connection, wal_root: &Path, keep_from: u64) {
    let busy: rusqlite::Result<i64> =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
    match busy {
        Ok(0) => {
            if let Ok(segs) = wal::list_segments(wal_root) {
                for (id, path) in segs {
                    if id < keep_from {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
        }
        Ok(_) => tracing::debug!("events checkpoint busy; wal segments kept"),
        Err(e) => tracing::warn!(error = %e, "events checkpoint failed"),
    }
}

// ---------------------------------------------------------------- store

thread_local! {
    static BODY_COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// zstd with a per-thread reused context (creating one per body is costly).
fn compress_body(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    BODY_COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(zstd::bulk::Compressor::new(BODY_ZSTD_LEVEL)?);
        }
        Ok(c.as_mut().expect("set above").compress(body)?)
    })
}

impl EventStore {
    /// Opens `DATA/events/`: creates the schema, applies WAL frames past the
    /// watermark, and starts the writer thread.
    pub fn open(data_dir: &Path, fsync: FsyncPolicy) -> Result<EventStore, StoreError> {
        let root = files::events_dir(data_dir);
        std::fs::create_dir_all(files::wal_dir(&root))?;
        let db_path = root.join(files::EVENTS_DB);
        let mut conn = open_db(&db_path)?;
        let stats = Arc::new(EventStats::default());
        let (w_seg, w_frame): (i64, i64) = conn.query_row(
            "SELECT segment, frame FROM wal_applied WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut last_seg = w_seg.max(0) as u64;
        for (id, path) in wal::list_segments(&root)? {
            last_seg = last_seg.max(id);
            if (id as i64) < w_seg {
                continue;
            }
            let replay = wal::replay_segment(&path)?;
            stats.wal_torn_bytes.fetch_add(replay.torn_bytes, Relaxed);
            let tx = conn.transaction()?;
            let mut applied = 0;
            for (i, frame) in replay.frames.iter().enumerate() {
                if id as i64 == w_seg && (i as i64) <= w_frame {
                    continue;
                }
                let items = decode_items(frame)
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
                apply(&tx, [items.as_slice()])?;
                set_watermark(&tx, id, i as i64)?;
                applied += 1;
            }
            tx.commit()?;
            if applied > 0 {
                stats.frames_replayed.fetch_add(applied, Relaxed);
                tracing::info!(
                    segment = id,
                    frames = applied,
                    "replayed events write-ahead log"
                );
            }
        }
        let seg = wal::SegmentWriter::create(&root, last_seg + 1).map_err(StoreError::Io)?;
        {
            let tx = conn.transaction()?;
            set_watermark(&tx, seg.id, -1)?;
            tx.commit()?;
        }
        checkpoint_and_trim(&conn, &root, seg.id);
        let read = Connection::open(&db_path)?;
        read.busy_timeout(Duration::from_secs(10))?;
        let (tx, rx) = bounded(QUEUE_DEPTH);
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("events-writer".into())
            .spawn(move || writer_loop(conn, root, seg, rx, fsync, st))?;
        Ok(EventStore {
            tx,
            read: Mutex::new(read),
            db_path,
            stats,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues items; `done` is called once they are durable and queryable.
    /// Event and transaction bodies are zstd-compressed here, on the caller's
    /// thread: the WAL frame and the database hold the compressed body.
    pub fn append(&self, mut items: Vec<SentryItem>, done: Done) -> Result<(), StoreError> {
        if items.is_empty() {
            done(Ok(()));
            return Ok(());
        }
        for it in &mut items {
            match it {
                SentryItem::Event(r) => r.body = compress_body(&r.body)?,
                SentryItem::Transaction(r) => r.body = compress_body(&r.body)?,
                _ => {}
            }
        }
        let frame = wal::compress(&encode_items(&items));
        if frame.len() as u64 > wal::MAX_FRAME_BYTES as u64 / 2 {
            return Err(StoreError::Invalid("items too large for one frame".into()));
        }
        match self.tx.try_send(Op::Append { frame, items, done }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Overloaded("event queue full")),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }

    /// [`append`](Self::append) and wait.
    pub fn append_blocking(&self, items: Vec<SentryItem>) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.append(
            items,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    pub fn shutdown(&self) {
        let _ = self.tx.send(Op::Shutdown);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// Runs `f` on the read connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        Ok(f(&self.read.lock())?)
    }

    /// A short-lived connection for a state change made outside the WAL (an
    /// issue's status): committed with a full fsync.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let c = Connection::open(&self.db_path)?;
        c.busy_timeout(Duration::from_secs(10))?;
        c.pragma_update(None, "synchronous", "FULL")?;
        Ok(f(&c)?)
    }
}

impl Drop for EventStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn writer_loop(
    mut conn: Connection,
    root: PathBuf,
    mut seg: wal::SegmentWriter,
    rx: Receiver<Op>,
    fsync: FsyncPolicy,
    stats: Arc<EventStats>,
) {
    let mut frames_in_seg: i64 = 0;
    let mut buf = Vec::new();
    let mut dirty = false;
    let mut last_sync = Instant::now();
    loop {
        let first = match rx.recv_timeout(TICK) {
            Ok(op) => op,
            Err(RecvTimeoutError::Timeout) => {
                if dirty && seg.sync().is_ok() {
                    dirty = false;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        let mut bytes = 0;
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(op) => {
                    if let Op::Append { frame, .. } = &op {
                        bytes += frame.len();
                    }
                    group.push(op);
                }
                Err(_) => break,
            }
        }
        let mut shutdown = false;
        let mut appends = Vec::new();
        buf.clear();
        for op in group {
            match op {
                Op::Append { frame, items, done } => {
                    wal::frame_into(&mut buf, &frame);
                    appends.push((items, done));
                }
                Op::Shutdown => shutdown = true,
            }
        }
        if !appends.is_empty() {
            let before = seg.len();
            let written = seg.write(&buf).and_then(|_| match fsync {
                FsyncPolicy::Always => seg.sync().inspect_err(|_| {
                    let _ = seg.rollback(before);
                }),
                FsyncPolicy::Batch => {
                    dirty = true;
                    if last_sync.elapsed() >= TICK {
                        last_sync = Instant::now();
                        if seg.sync().is_ok() {
                            dirty = false;
                        }
                    }
                    Ok(())
                }
            });
            let result = written.map_err(StoreError::from_io).and_then(|_| {
                let last = frames_in_seg + appends.len() as i64 - 1;
                let applied = conn.transaction().and_then(|tx| {
                    apply(&tx, appends.iter().map(|(items, _)| items.as_slice()))?;
                    set_watermark(&tx, seg.id, last)?;
                    tx.commit()
                });
                match applied {
                    Ok(()) => {
                        frames_in_seg = last + 1;
                        Ok(())
                    }
                    Err(e) => {
                        // Not acknowledged: take the frames back out of the WAL
                        // so that a restart does not apply them after all.
                        if let Err(e) = seg.rollback(before) {
                            tracing::error!(error = %e, "cannot roll back events wal frames");
                        }
                        Err(e.into())
                    }
                }
            });
            match result {
                Ok(()) => {
                    let n: usize = appends.iter().map(|(i, _)| i.len()).sum();
                    stats.items_applied.fetch_add(n as u64, Relaxed);
                    for (_, done) in appends {
                        done(Ok(()));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "events append failed");
                    let msg = e.to_string();
                    for (_, done) in appends {
                        done(Err(StoreError::Invalid(format!("event store: {msg}"))));
                    }
                }
            }
        }
        if seg.len() >= SEGMENT_BYTES || shutdown {
            if seg.sync().is_ok() {
                if let Ok(next) = wal::SegmentWriter::create(&root, seg.id + 1) {
                    seg = next;
                    frames_in_seg = 0;
                    let marked = conn
                        .transaction()
                        .and_then(|tx| set_watermark(&tx, seg.id, -1).and_then(|_| tx.commit()));
                    if marked.is_ok() {
                        checkpoint_and_trim(&conn, &root, seg.id);
                    }
                }
            }
        }
        if shutdown {
            break;
        }
    }
    let _ = seg.sync();
    while let Ok(op) = rx.try_recv() {
        if let Op::Append { done, .. } = op {
            done(Err(StoreError::Closed));
        }
    }
}

// ---------------------------------------------------------------- reads

fn ts(ns: i64) -> Value {
    Value::String(format_rfc3339_nanos(ns))
}

/// Decompresses a stored body into JSON.
pub fn body_json(blob: &[u8]) -> Value {
    zstd::stream::decode_all(blob)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Filters of `GET /api/v1/issues`.
#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    pub project_id: Option<i64>,
    pub status: Option<String>,
    /// Case-insensitive substring of title, culprit or type.
    pub q: Option<String>,
    /// `last_seen` (default), `first_seen` or `count`.
    pub sort: String,
    pub limit: usize,
    /// Issues that have events in this environment.
    pub environment: Option<String>,
    /// Issues that have events of this release.
    pub release: Option<String>,
    /// Issues first seen at or after this time (ns).
    pub first_seen_after: Option<i64>,
    /// Adds `stats`: event counts in `buckets` equal buckets of
    /// `[start_ns, end_ns)` (for sparklines).
    pub stats: Option<StatsWindow>,
}

#[derive(Debug, Clone, Copy)]
pub struct StatsWindow {
    pub start_ns: i64,
    pub end_ns: i64,
    pub buckets: usize,
}

/// Event counts of one issue per bucket of `w`.
fn issue_stats(c: &Connection, issue_id: i64, w: &StatsWindow) -> rusqlite::Result<Vec<i64>> {
    let n = w.buckets.clamp(1, 1000);
    let width = ((w.end_ns - w.start_ns) / n as i64).max(1);
    let mut out = vec![0i64; n];
    let mut st = c.prepare_cached(
        "SELECT (ts - ?2) / ?4, count(*) FROM events
         WHERE issue_id = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY 1",
    )?;
    let mut rows = st.query(params![issue_id, w.start_ns, w.end_ns, width])?;
    while let Some(r) = rows.next()? {
        let (b, k): (i64, i64) = (r.get(0)?, r.get(1)?);
        if let Some(slot) = usize::try_from(b).ok().and_then(|b| out.get_mut(b)) {
            *slot += k;
        }
    }
    Ok(out)
}

const ISSUE_COLS: &str = "id, project_id, title, culprit, type, value, level, status, substatus,
    count, users, first_seen, last_seen, first_release, last_release, fingerprint,
    grouping_variant, grouping_version, last_event_id, regressed_at";

fn issue_json(r: &rusqlite::Row) -> rusqlite::Result<Value> {
    let id: i64 = r.get(0)?;
    Ok(json!({
        "id": id.to_string(),
        "project_id": r.get::<_, i64>(1)?,
        "title": r.get::<_, String>(2)?,
        "culprit": r.get::<_, String>(3)?,
        "type": r.get::<_, Option<String>>(4)?,
        "value": r.get::<_, Option<String>>(5)?,
        "level": r.get::<_, String>(6)?,
        "status": r.get::<_, String>(7)?,
        "substatus": r.get::<_, Option<String>>(8)?,
        "count": r.get::<_, i64>(9)?,
        "users": r.get::<_, i64>(10)?,
        "first_seen": ts(r.get(11)?),
        "last_seen": ts(r.get(12)?),
        "first_release": r.get::<_, Option<String>>(13)?,
        "last_release": r.get::<_, Option<String>>(14)?,
        "fingerprint": r.get::<_, String>(15)?,
        "grouping": {"variant": r.get::<_, String>(16)?, "version": r.get::<_, String>(17)?},
        "last_event_id": r.get::<_, Option<String>>(18)?,
        "regressed_at": r.get::<_, Option<i64>>(19)?.map(ts),
    }))
}

fn environments(c: &Connection, issue_id: i64) -> rusqlite::Result<Vec<String>> {
    c.prepare_cached(
        "SELECT value FROM issue_tags WHERE issue_id = ?1 AND key = 'environment' ORDER BY count DESC",
    )?
    .query_map([issue_id], |r| r.get(0))?
    .collect()
}

/// The conditions of an [`IssueFilter`] (parameters ?1–?3 and ?5–?7).
const ISSUE_WHERE: &str = "(?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR status = ?2)
           AND (?3 IS NULL OR instr(lower(title || ' ' || culprit || ' ' || coalesce(type, '')), lower(?3)) > 0)
           AND (?5 IS NULL OR EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = issues.id
                                      AND t.key = 'environment' AND t.value = ?5))
           AND (?6 IS NULL OR EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = issues.id
                                      AND t.key = 'release' AND t.value = ?6))
           AND (?7 IS NULL OR first_seen >= ?7)";

/// How many issues match `f` (its limit aside).
pub fn count_issues(c: &Connection, f: &IssueFilter) -> rusqlite::Result<i64> {
    let sql = format!("SELECT count(*) FROM issues WHERE {ISSUE_WHERE} AND ?4 IS NOT NULL");
    c.prepare_cached(&sql)?.query_row(
        rusqlite::params_from_iter(issue_params(f).iter().map(|b| b.as_ref())),
        |r| r.get(0),
    )
}

fn issue_params(f: &IssueFilter) -> Vec<Box<dyn rusqlite::ToSql + '_>> {
    vec![
        Box::new(f.project_id),
        Box::new(f.status.as_deref()),
        Box::new(f.q.as_deref()),
        Box::new(f.limit.max(1) as i64),
        Box::new(f.environment.as_deref()),
        Box::new(f.release.as_deref()),
        Box::new(f.first_seen_after),
    ]
}

pub fn list_issues(c: &Connection, f: &IssueFilter) -> rusqlite::Result<Vec<Value>> {
    let order = match f.sort.as_str() {
        "count" => "count DESC, last_seen DESC",
        "first_seen" => "first_seen DESC",
        _ => "last_seen DESC",
    };
    let sql =
        format!("SELECT {ISSUE_COLS} FROM issues WHERE {ISSUE_WHERE} ORDER BY {order} LIMIT ?4");
    let mut st = c.prepare_cached(&sql)?;
    let params = issue_params(f);
    let rows: Vec<Value> = st
        .query_map(
            rusqlite::params_from_iter(params.iter().map(|b| b.as_ref())),
            issue_json,
        )?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|mut v| {
            let id: i64 = v["id"].as_str().unwrap_or("0").parse().unwrap_or(0);
            v["environments"] = json!(environments(c, id)?);
            if let Some(w) = &f.stats {
                v["stats"] = json!(issue_stats(c, id, w)?);
            }
            Ok(v)
        })
        .collect()
}

/// One issue with its tag distributions (top 10 values per key) and latest event.
pub fn issue(c: &Connection, id: i64) -> rusqlite::Result<Option<Value>> {
    let sql = format!("SELECT {ISSUE_COLS} FROM issues WHERE id = ?1");
    let Some(mut v) = c.query_row(&sql, [id], issue_json).optional()? else {
        return Ok(None);
    };
    v["environments"] = json!(environments(c, id)?);
    let mut tags: Vec<Value> = Vec::new();
    let mut st = c.prepare_cached(
        "SELECT key, value, count FROM issue_tags WHERE issue_id = ?1 ORDER BY key, count DESC, value",
    )?;
    let mut rows = st.query([id])?;
    let mut cur: Option<(String, Vec<Value>, i64, usize)> = None;
    let flush = |cur: Option<(String, Vec<Value>, i64, usize)>, tags: &mut Vec<Value>| {
        if let Some((k, vals, total, distinct)) = cur {
            tags.push(json!({"key": k, "total": total, "distinct": distinct, "values": vals}));
        }
    };
    while let Some(r) = rows.next()? {
        let (k, val, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if cur.as_ref().is_none_or(|c| c.0 != k) {
            flush(cur.take(), &mut tags);
            cur = Some((k, Vec::new(), 0, 0));
        }
        let e = cur.as_mut().expect("set above");
        e.2 += n;
        e.3 += 1;
        if e.1.len() < 10 {
            e.1.push(json!({"value": val, "count": n}));
        }
    }
    flush(cur, &mut tags);
    v["tags"] = Value::Array(tags);
    let latest = c
        .query_row(
            "SELECT event_id, body, request_id FROM events WHERE issue_id = ?1 ORDER BY ts DESC LIMIT 1",
            [id],
            |r| {
                let mut v = body_json(&r.get::<_, Vec<u8>>(1)?);
                // The request id the event was joined on (tag, extra or header).
                v["request_id"] = json!(r.get::<_, Option<String>>(2)?);
                Ok(v)
            },
        )
        .optional()?;
    v["latest_event"] = latest.unwrap_or(Value::Null);
    Ok(Some(v))
}

/// Sets an issue's status (`unresolved`, `resolved`, `ignored`).
pub fn set_issue_status(
    c: &Connection,
    id: i64,
    status: &str,
    now_ns: i64,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE issues SET status = ?2, status_changed_at = ?3,
            substatus = CASE WHEN ?2 = 'unresolved' THEN substatus ELSE NULL END
         WHERE id = ?1",
        params![id, status, now_ns],
    )?;
    Ok(n > 0)
}

fn event_summary(r: &rusqlite::Row) -> rusqlite::Result<Value> {
    Ok(json!({
        "event_id": r.get::<_, String>(0)?,
        "issue_id": r.get::<_, i64>(1)?.to_string(),
        "timestamp": ts(r.get(2)?),
        "level": r.get::<_, String>(3)?,
        "title": r.get::<_, String>(4)?,
        "request_id": r.get::<_, Option<String>>(5)?,
        "trace_id": r.get::<_, Option<String>>(6)?,
        "release": r.get::<_, Option<String>>(7)?,
        "environment": r.get::<_, Option<String>>(8)?,
        "user": r.get::<_, Option<String>>(9)?,
    }))
}

const EVENT_COLS: &str =
    "event_id, issue_id, ts, level, title, request_id, trace_id, release, environment, user_key";

pub fn issue_events(c: &Connection, issue_id: i64, limit: usize) -> rusqlite::Result<Vec<Value>> {
    let sql =
        format!("SELECT {EVENT_COLS} FROM events WHERE issue_id = ?1 ORDER BY ts DESC LIMIT ?2");
    c.prepare_cached(&sql)?
        .query_map(params![issue_id, limit as i64], event_summary)?
        .collect()
}

/// Events of one request id or trace id, oldest first.
pub fn events_by(
    c: &Connection,
    column: &str,
    value: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Value>> {
    let col = match column {
        "trace_id" => "trace_id",
        _ => "request_id",
    };
    let sql = format!("SELECT {EVENT_COLS} FROM events WHERE {col} = ?1 ORDER BY ts LIMIT ?2");
    c.prepare_cached(&sql)?
        .query_map(params![value, limit as i64], event_summary)?
        .collect()
}

/// The full normalized event with its issue id.
pub fn event(c: &Connection, event_id: &str) -> rusqlite::Result<Option<Value>> {
    c.query_row(
        "SELECT issue_id, body, project_id, request_id FROM events WHERE event_id = ?1",
        [event_id],
        |r| {
            let mut v = body_json(&r.get::<_, Vec<u8>>(1)?);
            if let Value::Object(m) = &mut v {
                m.insert(
                    "issue_id".into(),
                    Value::String(r.get::<_, i64>(0)?.to_string()),
                );
                m.insert("project_id".into(), json!(r.get::<_, i64>(2)?));
                m.insert("request_id".into(), json!(r.get::<_, Option<String>>(3)?));
            }
            Ok(v)
        },
    )
    .optional()
}

/// Transactions of one request or trace (summaries).
pub fn transactions_by(
    c: &Connection,
    column: &str,
    value: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Value>> {
    let col = match column {
        "trace_id" => "trace_id",
        _ => "request_id",
    };
    let sql = format!(
        "SELECT event_id, name, op, status, start_ns, end_ns, trace_id, span_id FROM transactions
         WHERE {col} = ?1 ORDER BY start_ns LIMIT ?2"
    );
    c.prepare_cached(&sql)?
        .query_map(params![value, limit as i64], |r| {
            let (s, e): (i64, i64) = (r.get(4)?, r.get(5)?);
            Ok(json!({
                "event_id": r.get::<_, String>(0)?,
                "name": r.get::<_, String>(1)?,
                "op": r.get::<_, Option<String>>(2)?,
                "status": r.get::<_, Option<String>>(3)?,
                "start": ts(s),
                "duration_ms": (e - s) as f64 / 1e6,
                "trace_id": r.get::<_, Option<String>>(6)?,
                "span_id": r.get::<_, Option<String>>(7)?,
            }))
        })?
        .collect()
}

/// One monitor as stored: its config, last status and recent check-ins
/// (newest first). Missed and timed-out runs are judged by the caller.
#[derive(Debug, Clone)]
pub struct MonitorRow {
    pub project_id: i64,
    pub slug: String,
    pub config: Option<Value>,
    pub last_status: String,
    pub last_check_in_ns: i64,
    pub environment: Option<String>,
    pub history: Vec<Value>,
    /// `(started_ns, status)` of the newest check-in.
    pub newest: Option<(i64, String)>,
}

pub fn monitors(c: &Connection, history: usize) -> rusqlite::Result<Vec<MonitorRow>> {
    let mut out: Vec<MonitorRow> = c
        .prepare_cached(
            "SELECT project_id, slug, config, last_status, last_check_in, environment
             FROM monitors ORDER BY project_id, slug",
        )?
        .query_map([], |r| {
            Ok(MonitorRow {
                project_id: r.get(0)?,
                slug: r.get(1)?,
                config: r
                    .get::<_, Option<String>>(2)?
                    .and_then(|s| serde_json::from_str(&s).ok()),
                last_status: r.get(3)?,
                last_check_in_ns: r.get(4)?,
                environment: r.get(5)?,
                history: Vec::new(),
                newest: None,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = c.prepare_cached(
        "SELECT check_in_id, status, duration, environment, release, started, updated
         FROM check_ins WHERE project_id = ?1 AND monitor_slug = ?2 ORDER BY started DESC LIMIT ?3",
    )?;
    for m in &mut out {
        let rows: Vec<(Value, i64, String)> = st
            .query_map(params![m.project_id, m.slug, history as i64], |r| {
                let started: i64 = r.get(5)?;
                let status: String = r.get(1)?;
                Ok((
                    json!({
                        "check_in_id": r.get::<_, String>(0)?,
                        "status": status,
                        "duration": r.get::<_, Option<f64>>(2)?,
                        "environment": r.get::<_, Option<String>>(3)?,
                        "release": r.get::<_, Option<String>>(4)?,
                        "started": ts(started),
                        "updated": ts(r.get(6)?),
                    }),
                    started,
                    status,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        m.newest = rows.first().map(|(_, s, st)| (*s, st.clone()));
        m.history = rows.into_iter().map(|(v, _, _)| v).collect();
    }
    Ok(out)
}

pub fn releases(c: &Connection) -> rusqlite::Result<Vec<Value>> {
    c.prepare_cached(
        "SELECT project_id, release, environment, sessions, errored, crashed, abnormal,
            first_seen, last_seen FROM release_health ORDER BY last_seen DESC",
    )?
    .query_map([], |r| {
        let (sessions, errored, crashed, abnormal): (i64, i64, i64, i64) =
            (r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
        let rate =
            |bad: i64| (sessions > 0).then(|| 1.0 - (bad.min(sessions) as f64 / sessions as f64));
        Ok(json!({
            "project_id": r.get::<_, i64>(0)?,
            "release": r.get::<_, String>(1)?,
            "environment": r.get::<_, String>(2)?,
            "sessions": sessions,
            "errored": errored,
            "crashed": crashed,
            "abnormal": abnormal,
            "crash_free_rate": rate(crashed),
            "error_free_rate": rate(errored),
            "first_seen": ts(r.get(7)?),
            "last_seen": ts(r.get(8)?),
        }))
    })?
    .collect()
}

/// Events SDKs reported as discarded: `(reason, category, quantity)` summed
/// over projects.
pub fn client_reports(c: &Connection) -> rusqlite::Result<Vec<(String, String, i64)>> {
    c.prepare_cached(
        "SELECT reason, category, sum(quantity) FROM client_reports GROUP BY reason, category",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// Errors-per-release counts for the releases view.
pub fn release_event_counts(c: &Connection) -> rusqlite::Result<Vec<(i64, String, i64)>> {
    c.prepare_cached(
        "SELECT project_id, release, count(*) FROM events WHERE release IS NOT NULL
         GROUP BY project_id, release",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_pipeline::sentry::{event, ItemContext};
    use sightline_pipeline::{ScrubConfig, Scrubber};

    fn ev(id: &str, value: &str) -> SentryItem {
        let ctx = ItemContext {
            project_id: 1,
            received_ns: 1_000,
            envelope_event_id: None,
            fallback_event_id: id,
            client_ip: None,
            keep_ip: false,
            max_item_bytes: 1 << 20,
        };
        let body = format!(
            r#"{{"event_id":"{id}","exception":{{"values":[{{"type":"E","value":"{value}"}}]}},"user":{{"id":"{value}"}}}}"#
        );
        let (r, _) = event::normalize_event(
            body.as_bytes(),
            &ctx,
            &Scrubber::new(&ScrubConfig::default()),
        )
        .unwrap();
        SentryItem::Event(r)
    }

    fn count(s: &EventStore) -> (i64, i64, i64) {
        s.read(|c| {
            c.query_row(
                "SELECT (SELECT count(*) FROM events), (SELECT sum(count) FROM issues), (SELECT sum(users) FROM issues)",
                [],
                |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0), r.get::<_, Option<i64>>(2)?.unwrap_or(0))),
            )
        })
        .unwrap()
    }

    #[test]
    fn codec_round_trips() {
        let items = vec![ev("0123456789abcdef0123456789abcdef", "x")];
        assert_eq!(decode_items(&encode_items(&items)).unwrap(), items);
        assert!(decode_items(&[1, 200, 0, 0, 0]).is_err());
        assert!(decode_items(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    /// Frames in the WAL past the watermark (acknowledged, not yet applied
    /// when the process died) are applied on open exactly once.
    #[test]
    fn unapplied_frames_replay_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = EventStore::open(dir.path(), FsyncPolicy::Always).unwrap();
            s.append_blocking(vec![ev("00000000000000000000000000000001", "a")])
                .unwrap();
            assert_eq!(count(&s), (1, 1, 1));
            s.shutdown();
        }
        // Simulate a crash between the WAL fsync and the SQLite commit: frames
        // written straight into a new segment past the watermark.
        let root = files::events_dir(dir.path());
        let last = wal::list_segments(&root).unwrap().last().unwrap().0;
        let mut seg = wal::SegmentWriter::create(&root, last + 1).unwrap();
        let mut buf = Vec::new();
        for (i, v) in ["b", "a"].iter().enumerate() {
            let mut items = vec![ev(&format!("0000000000000000000000000000001{i}"), v)];
            if let SentryItem::Event(r) = &mut items[0] {
                r.body = compress_body(&r.body).unwrap();
            }
            wal::frame_into(&mut buf, &wal::compress(&encode_items(&items)));
        }
        seg.write(&buf).unwrap();
        seg.sync().unwrap();
        drop(seg);
        for _ in 0..2 {
            let s = EventStore::open(dir.path(), FsyncPolicy::Always).unwrap();
            assert_eq!(count(&s), (3, 3, 2));
            assert!(s.stats.frames_replayed.load(Relaxed) <= 2);
            s.shutdown();
        }
        // Applied segments are trimmed once checkpointed.
        assert!(wal::list_segments(&root).unwrap().len() <= 2);
    }

    #[test]
    fn regression_reopens_resolved_issues() {
        let dir = tempfile::tempdir().unwrap();
        let s = EventStore::open(dir.path(), FsyncPolicy::Batch).unwrap();
        s.append_blocking(vec![ev("00000000000000000000000000000001", "a")])
            .unwrap();
        let id: i64 = s
            .read(|c| c.query_row("SELECT id FROM issues", [], |r| r.get(0)))
            .unwrap();
        assert!(s.write(|c| set_issue_status(c, id, "resolved", 5)).unwrap());
        s.append_blocking(vec![ev("00000000000000000000000000000002", "a")])
            .unwrap();
        let v = s.read(|c| issue(c, id)).unwrap().unwrap();
        assert_eq!(v["status"], "unresolved");
        assert_eq!(v["substatus"], "regressed");
        assert_eq!(v["count"], 2);
        assert_eq!(v["users"], 1);
        // The same event id again changes nothing.
        s.append_blocking(vec![ev("00000000000000000000000000000002", "a")])
            .unwrap();
        assert_eq!(count(&s), (2, 2, 1));
    }
}
