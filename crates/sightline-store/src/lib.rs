//! The embedded telemetry store: write-ahead log, in-memory head, immutable
//! Parquet parts, the SQLite manifest, compaction and retention — one machine
//! ([`Store`]) for any row [`Kind`]: log records ([`LogStore`]) and spans
//! ([`spans::SpanStore`]). The event store (`events`) and the metrics store
//! (`tsdb`) are their own.
//!
//! # Path of a batch
//! 1. [`LogStore::append`] encodes the batch on the caller's thread and queues it
//!    (bounded: a full queue or too much unflushed data is [`StoreError::Overloaded`]).
//! 2. The WAL writer thread takes every queued batch, writes them as frames with
//!    one `write` and one `fdatasync` (group commit), appends them to the head in
//!    WAL order, then calls each batch's completion: acknowledged means durable
//!    and queryable.
//! 3. When the head is large or old, the writer closes the segment and freezes the
//!    head; the flusher thread writes it as one part per UTC day, commits the parts
//!    and the WAL coverage to the manifest in one transaction, then deletes the
//!    covered segments. On open, segments past the coverage are replayed.
//! 4. The flusher also merges small parts of a day (compaction) and drops parts
//!    past the retention age or over the size budget, oldest first.

pub mod codec;
pub mod events;
pub mod files;
pub mod inspect;
pub mod manifest;
pub mod part;
pub mod projects;
pub mod spans;
pub mod stats;
pub mod tsdb;
pub mod wal;

use arrow::array::RecordBatch;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use manifest::{Manifest, PartMeta};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sightline_pipeline::timefmt::now_ns;
use sightline_pipeline::LogRecord;
pub use stats::StoreStats;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Queue of batches waiting for the WAL writer. A full queue answers
/// `Overloaded` (HTTP 503 + Retry-After) instead of growing memory.
pub const WAL_QUEUE_DEPTH: usize = 4096;
/// Records are framed in pieces of about this many bytes (a frame over
/// `wal::MAX_FRAME_BYTES` would be refused on replay).
pub const FRAME_TARGET_BYTES: usize = 16 * 1024 * 1024;
/// Most bytes written in one group commit.
pub const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;
/// How often the writer wakes without work (age-based flush, batch fsync).
pub const WRITER_TICK: Duration = Duration::from_millis(100);
/// Parts under this many rows are merged with their day's other small parts.
pub const SMALL_PART_ROWS: i64 = 262_144;
/// Upper bound on the rows of one compaction (bounds its memory).
pub const MAX_COMPACTION_ROWS: i64 = 524_288;
/// … and on its compressed input bytes (inputs are decoded in memory; parts
/// compress ~17×, so 16 MiB is ~300 MiB decoded).
pub const MAX_COMPACTION_BYTES: i64 = 16 * 1024 * 1024;
/// How often retention runs.
pub const RETENTION_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("disk full: {0}")]
    DiskFull(String),
    #[error("store overloaded: {0}")]
    Overloaded(&'static str),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("store is shutting down")]
    Closed,
    #[error("another process holds {0}")]
    Locked(String),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    fn from_io(e: std::io::Error) -> StoreError {
        if is_disk_full(&e) {
            StoreError::DiskFull(e.to_string())
        } else {
            StoreError::Io(e)
        }
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(122)) || e.kind() == std::io::ErrorKind::StorageFull
}

/// When a batch is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// fsync before acknowledging (default; survives power loss).
    Always,
    /// Acknowledge after `write`, fsync every 100 ms (survives a process crash).
    Batch,
}

/// What one store holds: its rows, their WAL encoding and their Parquet
/// parts. The WAL, the head, flushing, compaction and retention are the same
/// machine for every kind ([`Logs`], [`spans::Spans`]).
pub trait Kind: Send + Sync + 'static {
    type Row: Clone + Send + Sync + std::fmt::Debug + 'static;
    /// Parts live in `parts/<NAME>/<day>/`.
    const NAME: &'static str;
    fn approx_bytes(row: &Self::Row) -> usize;
    /// Files a row under a UTC day and bounds its part's time range.
    fn timestamp_ns(row: &Self::Row) -> i64;
    /// One WAL frame payload (uncompressed).
    fn encode(rows: &[Self::Row]) -> Vec<u8>;
    fn decode(payload: &[u8]) -> Result<Vec<Self::Row>, String>;
    /// Puts a part's rows in its order.
    fn sort(rows: &mut [&Self::Row]);
    fn to_batch(rows: &[&Self::Row]) -> RecordBatch;
    /// Writes sorted batches as one part and fsyncs it.
    fn write_part(
        path: &Path,
        batches: &mut dyn Iterator<Item = Result<RecordBatch, StoreError>>,
        rows_hint: usize,
        zstd_level: i32,
    ) -> Result<part::Written, StoreError>;
    /// Opens a part and checks its format and version.
    fn check_part(path: &Path) -> Result<(), StoreError>;
    /// A whole part (compaction, tools).
    fn read_part(path: &Path) -> Result<Vec<RecordBatch>, StoreError>;
    fn batch_rows(batch: &RecordBatch, out: &mut Vec<Self::Row>);
    /// Merges batches each in part order into chunks of at most `chunk_rows`.
    fn merge_sorted<'a>(
        batches: &'a [RecordBatch],
        chunk_rows: usize,
    ) -> Box<dyn Iterator<Item = Result<RecordBatch, StoreError>> + 'a>;
}

/// Log records: parts sorted by service then time.
#[derive(Debug)]
pub struct Logs;

impl Kind for Logs {
    type Row = LogRecord;
    const NAME: &'static str = files::LOG_PARTS;
    fn approx_bytes(row: &LogRecord) -> usize {
        row.approx_bytes()
    }
    fn timestamp_ns(row: &LogRecord) -> i64 {
        row.timestamp_ns
    }
    fn encode(rows: &[LogRecord]) -> Vec<u8> {
        codec::encode_logs(rows)
    }
    fn decode(payload: &[u8]) -> Result<Vec<LogRecord>, String> {
        codec::decode_logs(payload).map_err(|e| e.to_string())
    }
    fn sort(rows: &mut [&LogRecord]) {
        rows.sort_unstable_by(|a, b| {
            (a.service.as_str(), a.timestamp_ns).cmp(&(b.service.as_str(), b.timestamp_ns))
        });
    }
    fn to_batch(rows: &[&LogRecord]) -> RecordBatch {
        part::to_batch(rows)
    }
    fn write_part(
        path: &Path,
        batches: &mut dyn Iterator<Item = Result<RecordBatch, StoreError>>,
        rows_hint: usize,
        zstd_level: i32,
    ) -> Result<part::Written, StoreError> {
        part::write_part(path, batches, rows_hint, zstd_level)
    }
    fn check_part(path: &Path) -> Result<(), StoreError> {
        part::open(path).map(|_| ())
    }
    fn read_part(path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
        part::read_all(path)
    }
    fn batch_rows(batch: &RecordBatch, out: &mut Vec<LogRecord>) {
        part::batch_to_records(batch, out)
    }
    fn merge_sorted<'a>(
        batches: &'a [RecordBatch],
        chunk_rows: usize,
    ) -> Box<dyn Iterator<Item = Result<RecordBatch, StoreError>> + 'a> {
        Box::new(part::merge_sorted(batches, chunk_rows))
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Flush the head to parts at this many rows …
    pub max_head_rows: usize,
    /// … or this many bytes …
    pub max_head_bytes: usize,
    /// … or when its oldest row is this old.
    pub flush_interval: Duration,
    /// Unflushed bytes (head + frozen) above which appends are refused.
    pub max_pending_bytes: usize,
    /// Drop parts whose newest row is older than this.
    pub retention: Option<Duration>,
    /// Drop oldest parts while parts take more than this.
    pub max_disk_bytes: Option<u64>,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            fsync: FsyncPolicy::Always,
            max_head_rows: 262_144,
            max_head_bytes: 64 * 1024 * 1024,
            flush_interval: Duration::from_secs(300),
            max_pending_bytes: 192 * 1024 * 1024,
            retention: Some(Duration::from_secs(30 * 86_400)),
            max_disk_bytes: None,
        }
    }
}

/// Called once with the outcome of an append.
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

enum WalOp<K: Kind> {
    Append {
        /// One WAL frame each (a large batch is split across frames).
        payloads: Vec<Vec<u8>>,
        records: Vec<K::Row>,
        bytes: usize,
        done: Done,
    },
    Flush {
        done: Box<dyn FnOnce() + Send>,
    },
    Shutdown,
}

enum FlushOp<K: Kind> {
    Frozen(Arc<Frozen<K>>),
    Barrier(Box<dyn FnOnce() + Send>),
    Compact(Box<dyn FnOnce() + Send>),
    Shutdown,
}

/// Records appended together (one ingest request), immutable once in the head.
pub type Chunk<R = LogRecord> = Arc<Vec<R>>;

/// Called with every chunk once it is durable (acknowledged) and in the head.
pub type AppendHook<R = LogRecord> = Box<dyn Fn(&Chunk<R>) + Send + Sync>;

/// What a query reads: the head and frozen heads (records in memory) and the
/// live parts, taken at one instant. Parts may be compacted away afterwards:
/// opening one can then fail with `NotFound` and the query takes a new snapshot.
#[derive(Debug)]
pub struct Snapshot<K: Kind = Logs> {
    pub chunks: Vec<Chunk<K::Row>>,
    pub parts: Vec<Arc<PartMeta>>,
    pub data_dir: PathBuf,
}

impl<K: Kind> Clone for Snapshot<K> {
    fn clone(&self) -> Self {
        Snapshot {
            chunks: self.chunks.clone(),
            parts: self.parts.clone(),
            data_dir: self.data_dir.clone(),
        }
    }
}

impl<K: Kind> Snapshot<K> {
    /// Every row of the snapshot, unordered, parts read whole: for tests and
    /// tools (queries go through `sightline-query`, which reads only what they need).
    pub fn rows(&self) -> Result<Vec<K::Row>, StoreError> {
        let mut out: Vec<K::Row> = self.chunks.iter().flat_map(|c| c.iter().cloned()).collect();
        for p in &self.parts {
            for b in K::read_part(&self.data_dir.join(&p.path))? {
                K::batch_rows(&b, &mut out);
            }
        }
        Ok(out)
    }
}

/// A head that has been closed and waits to become parts.
struct Frozen<K: Kind> {
    chunks: Vec<Chunk<K::Row>>,
    bytes: usize,
    /// Every row of WAL segments up to and including this one is in `chunks`
    /// or in earlier parts.
    covers_segment: u64,
}

struct State<K: Kind> {
    head: Vec<Chunk<K::Row>>,
    head_rows: usize,
    head_bytes: usize,
    head_since: Option<Instant>,
    frozen: Vec<Arc<Frozen<K>>>,
    parts: Vec<Arc<PartMeta>>,
}

struct Inner<K: Kind> {
    cfg: StoreConfig,
    state: RwLock<State<K>>,
    manifest: Mutex<Manifest>,
    stats: StoreStats,
    pending_bytes: AtomicUsize,
    part_seq: AtomicU64,
    /// Set by the writer when it stops: the flusher gives up retrying then.
    closing: std::sync::atomic::AtomicBool,
    flush_tx: Sender<FlushOp<K>>,
    on_append: RwLock<Option<AppendHook<K::Row>>>,
}

/// A store of one kind of row. Cheap to share behind an `Arc`.
pub struct Store<K: Kind = Logs> {
    inner: Arc<Inner<K>>,
    tx: Sender<WalOp<K>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    _lock: File,
}

/// The log store.
pub type LogStore = Store<Logs>;

impl<K: Kind> std::fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("kind", &K::NAME)
            .field("data_dir", &self.inner.cfg.data_dir)
            .finish()
    }
}

fn check_version_file(root: &Path) -> Result<(), StoreError> {
    let path = root.join(files::VERSION_FILE);
    let want = format!("sightline-data {}\n", files::DATA_DIR_VERSION);
    match std::fs::read_to_string(&path) {
        Ok(s) if s == want => Ok(()),
        Ok(s) => Err(StoreError::Corrupt(format!(
            "{}: found {:?}, this build reads {:?}",
            path.display(),
            s.trim(),
            want.trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_data = std::fs::read_dir(root)?
                .any(|e| e.is_ok_and(|e| e.file_name() != files::LOCK_FILE));
            if has_data && root.join(files::MANIFEST_FILE).exists() {
                return Err(StoreError::Corrupt(format!(
                    "{} is missing",
                    path.display()
                )));
            }
            let tmp = root.join("VERSION.tmp");
            std::fs::write(&tmp, want)?;
            File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            files::sync_dir(root)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

impl<K: Kind> Store<K> {
    /// Opens (or creates) the store in `cfg.data_dir`: validates every format,
    /// removes unfinished part files, replays the WAL and starts the writer and
    /// flusher threads.
    pub fn open(cfg: StoreConfig) -> Result<Self, StoreError> {
        let root = cfg.data_dir.clone();
        std::fs::create_dir_all(&root)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(files::LOCK_FILE))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(root.display().to_string()));
        }
        check_version_file(&root)?;
        for d in [
            files::wal_dir(&root),
            files::parts_dir(&root, K::NAME),
            files::tmp_dir(&root),
        ] {
            std::fs::create_dir_all(d)?;
        }
        for e in std::fs::read_dir(files::tmp_dir(&root))? {
            let _ = std::fs::remove_file(e?.path());
        }
        let manifest = Manifest::open(&root.join(files::MANIFEST_FILE))?;
        let parts = manifest.parts()?;
        let known: std::collections::HashSet<PathBuf> =
            parts.iter().map(|p| root.join(&p.path)).collect();
        for p in &parts {
            K::check_part(&root.join(&p.path))?;
        }
        remove_orphans(&files::parts_dir(&root, K::NAME), &known)?;

        let stats = StoreStats::default();
        let covered = manifest.wal_covered()?;
        let mut head = Vec::new();
        let (mut head_rows, mut head_bytes) = (0, 0);
        let mut last_seg = covered;
        for (id, path) in wal::list_segments(&root)? {
            last_seg = last_seg.max(id);
            if id <= covered {
                std::fs::remove_file(&path)?;
                continue;
            }
            let replay = wal::replay_segment(&path)?;
            if replay.torn_bytes > 0 {
                stats.wal_torn_tails.fetch_add(1, Relaxed);
                stats.wal_torn_bytes.fetch_add(replay.torn_bytes, Relaxed);
                tracing::warn!(
                    segment = id,
                    bytes = replay.torn_bytes,
                    "truncated torn wal tail"
                );
            }
            for frame in replay.frames {
                let recs = K::decode(&frame)
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
                head_rows += recs.len();
                head_bytes += recs.iter().map(K::approx_bytes).sum::<usize>();
                stats.replayed_records.fetch_add(recs.len() as u64, Relaxed);
                head.push(Arc::new(recs));
            }
        }
        let segment =
            wal::SegmentWriter::create(&root, last_seg + 1).map_err(StoreError::from_io)?;
        if head_rows > 0 {
            tracing::info!(records = head_rows, "replayed write-ahead log");
        }

        let (tx, rx) = bounded(WAL_QUEUE_DEPTH);
        let (flush_tx, flush_rx) = bounded(1024);
        let inner = Arc::new(Inner::<K> {
            state: RwLock::new(State::<K> {
                head,
                head_rows,
                head_bytes,
                head_since: (head_rows > 0).then(Instant::now),
                frozen: vec![],
                parts: parts.into_iter().map(Arc::new).collect(),
            }),
            manifest: Mutex::new(manifest),
            stats,
            pending_bytes: AtomicUsize::new(head_bytes),
            part_seq: AtomicU64::new(0),
            closing: std::sync::atomic::AtomicBool::new(false),
            flush_tx,
            on_append: RwLock::new(None),
            cfg,
        });
        let w = inner.clone();
        let writer = std::thread::Builder::new()
            .name(format!("{}-wal", K::NAME))
            .spawn(move || writer_loop(w, rx, segment))?;
        let f = inner.clone();
        let flusher = std::thread::Builder::new()
            .name(format!("{}-flusher", K::NAME))
            .spawn(move || flusher_loop(f, flush_rx))?;
        Ok(Store {
            inner,
            tx,
            threads: Mutex::new(vec![writer, flusher]),
            _lock: lock,
        })
    }

    pub fn stats(&self) -> &StoreStats {
        &self.inner.stats
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.cfg.data_dir
    }

    /// Whether an append would be refused for memory right now: lets a caller
    /// answer 503 before spending work on a body.
    pub fn check_capacity(&self) -> Result<(), StoreError> {
        let pending = self.inner.pending_bytes.load(Relaxed);
        if pending >= self.inner.cfg.max_pending_bytes {
            return Err(StoreError::Overloaded(
                "unflushed data over the memory budget",
            ));
        }
        Ok(())
    }

    /// Queues a batch; `done` is called once it is durable and queryable (or failed).
    pub fn append(&self, records: Vec<K::Row>, done: Done) -> Result<(), StoreError> {
        if records.is_empty() {
            done(Ok(()));
            return Ok(());
        }
        let bytes: usize = records.iter().map(K::approx_bytes).sum();
        let pending = self.inner.pending_bytes.load(Relaxed);
        // One batch is always let in when nothing is pending, whatever its size.
        if pending > 0 && pending + bytes > self.inner.cfg.max_pending_bytes {
            return Err(StoreError::Overloaded(
                "unflushed data over the memory budget",
            ));
        }
        // Frames of at most FRAME_TARGET_BYTES of records each, so that no frame
        // nears MAX_FRAME_BYTES however large the batch.
        let payloads = chunks_by_bytes(&records, usize::MAX, FRAME_TARGET_BYTES, K::approx_bytes)
            .map(|c| wal::compress(&K::encode(c)))
            .collect();
        match self.tx.try_send(WalOp::Append {
            payloads,
            records,
            bytes,
            done,
        }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Overloaded("write-ahead log queue full")),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Closed),
        }
    }

    /// [`append`](Self::append) and wait.
    pub fn append_blocking(&self, records: Vec<K::Row>) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.append(
            records,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Freezes the head and waits until it is in parts.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx
            .send(WalOp::Flush {
                done: Box::new(move || {
                    let _ = tx.send(());
                }),
            })
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)
    }

    /// Runs compaction now and waits for it.
    pub fn compact(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner
            .flush_tx
            .send(FlushOp::Compact(Box::new(move || {
                let _ = tx.send(());
            })))
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)
    }

    /// Stops accepting, writes the head to parts and joins the threads.
    pub fn shutdown(&self) {
        let _ = self.tx.send(WalOp::Shutdown);
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }

    /// Parts currently live, oldest first.
    pub fn parts(&self) -> Vec<PartMeta> {
        self.inner
            .state
            .read()
            .parts
            .iter()
            .map(|p| (**p).clone())
            .collect()
    }

    /// Rows in the head and frozen heads (not yet in parts).
    pub fn unflushed_rows(&self) -> usize {
        let s = self.inner.state.read();
        s.head_rows
            + s.frozen
                .iter()
                .map(|f| f.chunks.iter().map(|c| c.len()).sum::<usize>())
                .sum::<usize>()
    }

    /// The head, frozen heads and live parts at this instant.
    pub fn snapshot(&self) -> Snapshot<K> {
        let s = self.inner.state.read();
        let mut chunks: Vec<Chunk<K::Row>> = s.head.clone();
        for f in &s.frozen {
            chunks.extend(f.chunks.iter().cloned());
        }
        Snapshot {
            chunks,
            parts: s.parts.clone(),
            data_dir: self.inner.cfg.data_dir.clone(),
        }
    }

    /// Sets the function called with every chunk once it is acknowledged (live
    /// tail). It runs on the WAL writer thread: it must not block.
    pub fn on_append(&self, hook: AppendHook<K::Row>) {
        *self.inner.on_append.write() = Some(hook);
    }
}

impl<K: Kind> Drop for Store<K> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn remove_orphans(
    dir: &Path,
    known: &std::collections::HashSet<PathBuf>,
) -> Result<(), StoreError> {
    for day in std::fs::read_dir(dir)? {
        let day = day?.path();
        if !day.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&day)? {
            let f = f?.path();
            if !known.contains(&f) {
                tracing::warn!(path = %f.display(), "removing part not in the manifest");
                std::fs::remove_file(&f)?;
            }
        }
    }
    Ok(())
}

fn writer_loop<K: Kind>(inner: Arc<Inner<K>>, rx: Receiver<WalOp<K>>, mut seg: wal::SegmentWriter) {
    let mut buf: Vec<u8> = Vec::new();
    let mut dirty = false;
    let mut last_sync = Instant::now();
    loop {
        let first = match rx.recv_timeout(WRITER_TICK) {
            Ok(op) => op,
            Err(RecvTimeoutError::Timeout) => {
                if dirty && last_sync.elapsed() >= WRITER_TICK {
                    if seg.sync().is_ok() {
                        dirty = false;
                    }
                    last_sync = Instant::now();
                }
                maybe_rotate(&inner, &mut seg, false);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        let mut group_bytes = 0;
        while group_bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(op) => {
                    if let WalOp::Append { payloads, .. } = &op {
                        group_bytes += payloads.iter().map(Vec::len).sum::<usize>();
                    }
                    group.push(op);
                }
                Err(_) => break,
            }
        }
        buf.clear();
        let mut appends = Vec::new();
        let mut flushes = Vec::new();
        let mut shutdown = false;
        for op in group {
            match op {
                WalOp::Append {
                    payloads,
                    records,
                    bytes,
                    done,
                } => {
                    for p in &payloads {
                        wal::frame_into(&mut buf, p);
                    }
                    appends.push((records, bytes, done));
                }
                WalOp::Flush { done } => flushes.push(done),
                WalOp::Shutdown => shutdown = true,
            }
        }
        if !appends.is_empty() {
            let t = Instant::now();
            let before = seg.len();
            let result = seg.write(&buf).and_then(|_| match inner.cfg.fsync {
                FsyncPolicy::Always => seg.sync().inspect_err(|_| {
                    // Not acknowledged: drop the frames so a retry is not stored twice.
                    if let Err(e) = seg.rollback(before) {
                        tracing::error!(error = %e, "cannot roll back unsynced wal frames");
                    }
                }),
                FsyncPolicy::Batch => {
                    dirty = true;
                    if last_sync.elapsed() >= WRITER_TICK {
                        last_sync = Instant::now();
                        if seg.sync().is_ok() {
                            dirty = false;
                        }
                    }
                    Ok(())
                }
            });
            let st = &inner.stats;
            match result {
                Ok(()) => {
                    if inner.cfg.fsync == FsyncPolicy::Always {
                        st.wal_fsync.observe(t.elapsed());
                        last_sync = Instant::now();
                    }
                    st.wal_frames.fetch_add(appends.len() as u64, Relaxed);
                    st.wal_bytes.fetch_add(buf.len() as u64, Relaxed);
                    st.wal_healthy.store(true, Relaxed);
                    let mut dones = Vec::with_capacity(appends.len());
                    let mut pushed: Vec<Chunk<K::Row>> = Vec::with_capacity(appends.len());
                    {
                        let mut s = inner.state.write();
                        for (records, bytes, done) in appends {
                            st.records_appended.fetch_add(records.len() as u64, Relaxed);
                            s.head_rows += records.len();
                            s.head_bytes += bytes;
                            s.head_since.get_or_insert_with(Instant::now);
                            inner.pending_bytes.fetch_add(bytes, Relaxed);
                            let c = Arc::new(records);
                            s.head.push(c.clone());
                            pushed.push(c);
                            dones.push(done);
                        }
                    }
                    for d in dones {
                        d(Ok(()));
                    }
                    if let Some(hook) = inner.on_append.read().as_ref() {
                        for c in &pushed {
                            hook(c);
                        }
                    }
                }
                Err(e) => {
                    st.wal_write_errors.fetch_add(1, Relaxed);
                    st.wal_healthy.store(false, Relaxed);
                    tracing::error!(error = %e, "write-ahead log append failed");
                    let msg = e.to_string();
                    let full = is_disk_full(&e);
                    for (_, _, done) in appends {
                        done(Err(if full {
                            StoreError::DiskFull(msg.clone())
                        } else {
                            StoreError::Io(std::io::Error::other(msg.clone()))
                        }));
                    }
                }
            }
        }
        let force = !flushes.is_empty() || shutdown;
        maybe_rotate(&inner, &mut seg, force);
        for done in flushes {
            let _ = inner.flush_tx.send(FlushOp::Barrier(done));
        }
        if shutdown {
            break;
        }
    }
    let _ = seg.sync();
    inner.closing.store(true, Relaxed);
    let _ = inner.flush_tx.send(FlushOp::Shutdown);
    // Refuse anything still queued.
    while let Ok(op) = rx.try_recv() {
        match op {
            WalOp::Append { done, .. } => done(Err(StoreError::Closed)),
            WalOp::Flush { done } => done(),
            WalOp::Shutdown => {}
        }
    }
}

fn maybe_rotate<K: Kind>(inner: &Arc<Inner<K>>, seg: &mut wal::SegmentWriter, force: bool) {
    let due = {
        let s = inner.state.read();
        s.head_rows > 0
            && (force
                || s.head_rows >= inner.cfg.max_head_rows
                || s.head_bytes >= inner.cfg.max_head_bytes
                || s.head_since
                    .is_some_and(|t| t.elapsed() >= inner.cfg.flush_interval))
    };
    if !due {
        return;
    }
    if let Err(e) = seg.sync() {
        tracing::error!(error = %e, "wal sync before rotation failed");
        return;
    }
    let next = match wal::SegmentWriter::create(&inner.cfg.data_dir, seg.id + 1) {
        Ok(n) => n,
        Err(e) => {
            // Keep appending to the current segment; try again later.
            inner.stats.wal_healthy.store(false, Relaxed);
            tracing::error!(error = %e, "cannot open next wal segment");
            return;
        }
    };
    let closed = std::mem::replace(seg, next);
    let frozen = {
        let mut s = inner.state.write();
        let f = Arc::new(Frozen {
            chunks: std::mem::take(&mut s.head),
            bytes: std::mem::take(&mut s.head_bytes),
            covers_segment: closed.id,
        });
        s.head_rows = 0;
        s.head_since = None;
        s.frozen.push(f.clone());
        f
    };
    if inner.flush_tx.send(FlushOp::Frozen(frozen)).is_err() {
        tracing::error!("flusher is gone; head stays in the wal");
    }
}

fn flusher_loop<K: Kind>(inner: Arc<Inner<K>>, rx: Receiver<FlushOp<K>>) {
    let mut last_retention = Instant::now() - RETENTION_EVERY;
    loop {
        let op = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(op) => Some(op),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match op {
            Some(FlushOp::Frozen(f)) => {
                let mut backoff = Duration::from_millis(500);
                loop {
                    match flush_frozen(&inner, &f) {
                        Ok(()) => {
                            inner.stats.flush_healthy.store(true, Relaxed);
                            break;
                        }
                        Err(e) => {
                            inner.stats.flush_errors.fetch_add(1, Relaxed);
                            inner.stats.flush_healthy.store(false, Relaxed);
                            tracing::error!(error = %e, "writing part failed; rows stay in the wal and head");
                            if inner.closing.load(Relaxed) {
                                // Leave the rest in the WAL for the next start.
                                return;
                            }
                            std::thread::sleep(backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(10));
                        }
                    }
                }
                // Flushing comes first: compact only when no head is waiting.
                if rx.is_empty() {
                    if let Err(e) = compact(&inner) {
                        tracing::error!(error = %e, "compaction failed");
                    }
                }
            }
            Some(FlushOp::Barrier(done)) => done(),
            Some(FlushOp::Compact(done)) => {
                if let Err(e) = compact(&inner) {
                    tracing::error!(error = %e, "compaction failed");
                }
                done();
            }
            Some(FlushOp::Shutdown) => {
                // Drain what the writer queued before it stopped.
                while let Ok(op) = rx.try_recv() {
                    match op {
                        FlushOp::Frozen(f) => {
                            if let Err(e) = flush_frozen(&inner, &f) {
                                tracing::error!(error = %e, "final flush failed; rows stay in the wal");
                            }
                        }
                        FlushOp::Barrier(d) | FlushOp::Compact(d) => d(),
                        FlushOp::Shutdown => {}
                    }
                }
                break;
            }
            None => {}
        }
        if last_retention.elapsed() >= RETENTION_EVERY {
            last_retention = Instant::now();
            if let Err(e) = retention(&inner) {
                tracing::error!(error = %e, "retention failed");
            }
        }
    }
}

fn new_part_name<K: Kind>(inner: &Inner<K>) -> String {
    format!(
        "{:016x}-{:06x}",
        now_ns(),
        inner.part_seq.fetch_add(1, Relaxed) & 0xff_ffff
    )
}

/// Writes `batch` (already sorted) as a part of `day`; returns its manifest row.
fn write_part_file<K: Kind>(
    inner: &Inner<K>,
    day: &str,
    batches: &mut dyn Iterator<Item = Result<arrow::array::RecordBatch, StoreError>>,
    rows_hint: usize,
    level: i64,
) -> Result<PartMeta, StoreError> {
    let root = &inner.cfg.data_dir;
    let name = new_part_name(inner);
    let tmp = files::tmp_dir(root).join(format!("{name}.parquet"));
    let zstd = if level == 0 {
        part::ZSTD_LEVEL_FLUSH
    } else {
        part::ZSTD_LEVEL
    };
    let written = match K::write_part(&tmp, batches, rows_hint, zstd) {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let rel = files::part_rel(K::NAME, day, &name);
    let dest = root.join(&rel);
    let dir = dest.parent().expect("part has a parent dir").to_path_buf();
    let moved = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::rename(&tmp, &dest))
        .and_then(|_| files::sync_dir(&dir))
        .and_then(|_| files::sync_dir(&files::parts_dir(root, K::NAME)));
    if let Err(e) = moved {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&dest);
        return Err(StoreError::from_io(e));
    }
    inner.stats.parts_written.fetch_add(1, Relaxed);
    inner
        .stats
        .part_bytes_written
        .fetch_add(written.bytes, Relaxed);
    Ok(PartMeta {
        id: 0,
        path: rel,
        day: day.to_string(),
        min_ts: written.min_ts,
        max_ts: written.max_ts,
        rows: written.rows as i64,
        bytes: written.bytes as i64,
        level,
    })
}

fn flush_frozen<K: Kind>(inner: &Arc<Inner<K>>, f: &Arc<Frozen<K>>) -> Result<(), StoreError> {
    const DAY_NS: i64 = 86_400_000_000_000;
    let mut by_day: BTreeMap<i64, Vec<&K::Row>> = BTreeMap::new();
    for r in f.chunks.iter().flat_map(|c| c.iter()) {
        by_day
            .entry(K::timestamp_ns(r).div_euclid(DAY_NS))
            .or_default()
            .push(r);
    }
    let mut metas = Vec::new();
    let cleanup = |metas: &[PartMeta]| {
        for m in metas {
            let _ = std::fs::remove_file(inner.cfg.data_dir.join(&m.path));
        }
    };
    for (day, rows) in by_day.iter_mut() {
        let day = sightline_pipeline::timefmt::day_of(*day * DAY_NS);
        // Sort the row references, then build the batch in order: cheaper than
        // sorting the built columns (no second copy of every value).
        K::sort(rows);
        // Built and encoded a chunk at a time: memory is one chunk, not a copy of the head.
        let mut chunks =
            chunks_by_bytes(rows, part::BUILD_CHUNK_ROWS, part::BUILD_CHUNK_BYTES, |r| {
                K::approx_bytes(r)
            })
            .map(|c| Ok(K::to_batch(c)));
        match write_part_file(inner, &day, &mut chunks, rows.len(), 0) {
            Ok(m) => metas.push(m),
            Err(e) => {
                cleanup(&metas);
                return Err(e);
            }
        }
    }
    let added = match inner
        .manifest
        .lock()
        .commit(&metas, &[], Some(f.covers_segment), now_ns())
    {
        Ok(a) => a,
        Err(e) => {
            cleanup(&metas);
            return Err(e);
        }
    };
    {
        let mut s = inner.state.write();
        s.frozen.retain(|x| !Arc::ptr_eq(x, f));
        s.parts.extend(added.into_iter().map(Arc::new));
    }
    inner
        .pending_bytes
        .fetch_sub(f.bytes.min(inner.pending_bytes.load(Relaxed)), Relaxed);
    if let Ok(segs) = wal::list_segments(&inner.cfg.data_dir) {
        for (id, path) in segs {
            if id <= f.covers_segment {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    Ok(())
}

/// Splits `items` into consecutive pieces of at most `max_rows` items whose
/// `size` adds up to about `max_bytes` (a piece ends on the item that reaches
/// it; one item alone may exceed it). Used for WAL frames and for part build
/// chunks (Arrow string columns hold at most 2 GiB).
fn chunks_by_bytes<'a, T>(
    items: &'a [T],
    max_rows: usize,
    max_bytes: usize,
    size: impl Fn(&T) -> usize + 'a,
) -> impl Iterator<Item = &'a [T]> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= items.len() {
            return None;
        }
        let mut end = start;
        let mut bytes = 0;
        while end < items.len() && end - start < max_rows && (end == start || bytes < max_bytes) {
            bytes += size(&items[end]);
            end += 1;
        }
        let chunk = &items[start..end];
        start = end;
        Some(chunk)
    })
}

/// Merges each day's small parts into one, oldest first, bounded in rows.
/// A panic inside (a bug, or a column over Arrow's limits) is caught and
/// logged: the flusher thread must survive it, and the inputs stay as they are.
fn compact<K: Kind>(inner: &Arc<Inner<K>>) -> Result<(), StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compact_parts(inner))) {
        Ok(r) => r,
        Err(_) => Err(StoreError::Corrupt(
            "compaction panicked; parts left as they were".into(),
        )),
    }
}

fn compact_parts<K: Kind>(inner: &Arc<Inner<K>>) -> Result<(), StoreError> {
    let parts = inner.state.read().parts.clone();
    let mut by_day: BTreeMap<&str, Vec<&Arc<PartMeta>>> = BTreeMap::new();
    for p in &parts {
        if p.rows < SMALL_PART_ROWS {
            by_day.entry(&p.day).or_default().push(p);
        }
    }
    for (day, mut small) in by_day {
        if small.len() < 2 {
            continue;
        }
        small.sort_by_key(|p| p.min_ts);
        let mut picked = Vec::new();
        let mut rows = 0;
        let mut bytes = 0;
        for p in small {
            if (rows + p.rows > MAX_COMPACTION_ROWS || bytes + p.bytes > MAX_COMPACTION_BYTES)
                && picked.len() >= 2
            {
                break;
            }
            rows += p.rows;
            bytes += p.bytes;
            picked.push(p.clone());
        }
        if picked.len() < 2 {
            continue;
        }
        let mut batches = Vec::new();
        for p in &picked {
            batches.extend(K::read_part(&inner.cfg.data_dir.join(&p.path))?);
        }
        let level = picked.iter().map(|p| p.level).max().unwrap_or(0) + 1;
        let mut merged = K::merge_sorted(&batches, part::BUILD_CHUNK_ROWS);
        let meta = write_part_file(inner, day, &mut merged, rows as usize, level)?;
        drop(merged);
        drop(batches);
        let removed: Vec<i64> = picked.iter().map(|p| p.id).collect();
        let added = match inner
            .manifest
            .lock()
            .commit(&[meta.clone()], &removed, None, now_ns())
        {
            Ok(a) => a,
            Err(e) => {
                let _ = std::fs::remove_file(inner.cfg.data_dir.join(&meta.path));
                return Err(e);
            }
        };
        {
            let mut s = inner.state.write();
            s.parts.retain(|p| !removed.contains(&p.id));
            s.parts.extend(added.into_iter().map(Arc::new));
        }
        for p in &picked {
            let _ = std::fs::remove_file(inner.cfg.data_dir.join(&p.path));
        }
        inner.stats.compactions.fetch_add(1, Relaxed);
        tracing::info!(day, parts = picked.len(), rows, "compacted parts");
    }
    Ok(())
}

/// Drops parts past the retention age, then oldest parts while over the size budget.
fn retention<K: Kind>(inner: &Arc<Inner<K>>) -> Result<(), StoreError> {
    let mut parts = inner.state.read().parts.clone();
    parts.sort_by_key(|p| p.min_ts);
    let mut drop_ids = Vec::new();
    if let Some(age) = inner.cfg.retention {
        let cutoff = now_ns() - age.as_nanos() as i64;
        drop_ids.extend(parts.iter().filter(|p| p.max_ts < cutoff).map(|p| p.id));
    }
    if let Some(budget) = inner.cfg.max_disk_bytes {
        let mut total: u64 = parts
            .iter()
            .filter(|p| !drop_ids.contains(&p.id))
            .map(|p| p.bytes as u64)
            .sum();
        for p in &parts {
            if total <= budget {
                break;
            }
            if !drop_ids.contains(&p.id) {
                drop_ids.push(p.id);
                total -= p.bytes as u64;
            }
        }
    }
    if drop_ids.is_empty() {
        return Ok(());
    }
    inner
        .manifest
        .lock()
        .commit(&[], &drop_ids, None, now_ns())?;
    inner
        .state
        .write()
        .parts
        .retain(|p| !drop_ids.contains(&p.id));
    for p in parts.iter().filter(|p| drop_ids.contains(&p.id)) {
        let _ = std::fs::remove_file(inner.cfg.data_dir.join(&p.path));
        inner.stats.retention_deleted_parts.fetch_add(1, Relaxed);
    }
    tracing::info!(parts = drop_ids.len(), "retention dropped parts");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use codec::tests::sample;

    /// The data dir as a crash left it (WAL and manifest, no lock), copied so a
    /// second store can open it while the forgotten one still holds the lock.
    fn crashed_copy(dir: &Path) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        for sub in ["", "wal"] {
            std::fs::create_dir_all(copy.path().join(sub)).unwrap();
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let e = e.unwrap();
                if e.path().is_file() && e.file_name() != "LOCK" {
                    std::fs::copy(e.path(), copy.path().join(sub).join(e.file_name())).unwrap();
                }
            }
        }
        copy
    }

    fn cfg(dir: &Path) -> StoreConfig {
        StoreConfig::new(dir)
    }

    #[test]
    fn append_query_flush_reopen_compact() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(cfg(dir.path())).unwrap();
            store
                .append_blocking((0..100).map(sample).collect())
                .unwrap();
            let by_req = |store: &LogStore, id: &str| -> Vec<LogRecord> {
                let rows = store.snapshot().rows().unwrap();
                rows.into_iter()
                    .filter(|r| r.request_id.as_deref() == Some(id))
                    .collect()
            };
            assert_eq!(by_req(&store, "req-42").len(), 1);
            store.flush().unwrap();
            assert_eq!(store.parts().len(), 1);
            assert_eq!(store.unflushed_rows(), 0);
            assert_eq!(by_req(&store, "req-42"), vec![sample(42)]);
            store
                .append_blocking((100..200).map(sample).collect())
                .unwrap();
        }
        // Reopen: the second batch was flushed at shutdown.
        let store = LogStore::open(cfg(dir.path())).unwrap();
        assert_eq!(store.unflushed_rows(), 0);
        assert_eq!(store.snapshot().rows().unwrap().len(), 200);
        store.compact().unwrap();
        assert_eq!(store.parts().len(), 1);
        assert_eq!(store.parts()[0].level, 1);
        let rows = store.snapshot().rows().unwrap();
        let by = |id: &str| -> Vec<&LogRecord> {
            rows.iter()
                .filter(|r| r.request_id.as_deref() == Some(id))
                .collect()
        };
        assert_eq!(by("req-150"), vec![&sample(150)]);
        assert!(by("nope").is_empty());
    }

    #[test]
    fn compaction_merges_parts_in_service_then_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.retention = None;
        let store = LogStore::open(c).unwrap();
        for round in 0..3 {
            let batch: Vec<_> = (0..1000)
                .map(|i| {
                    let mut r = sample(i);
                    r.service = ["b", "a", "c"][i % 3].into();
                    r.timestamp_ns += (i * 3 + round) as i64;
                    r.request_id = Some(format!("r{round}-{i}"));
                    r
                })
                .collect();
            store.append_blocking(batch).unwrap();
            store.flush().unwrap();
        }
        store.compact().unwrap();
        let parts = store.parts();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].rows, 3000);
        let mut rows = Vec::new();
        for b in part::read_all(&dir.path().join(&parts[0].path)).unwrap() {
            part::batch_to_records(&b, &mut rows);
        }
        assert_eq!(rows.len(), 3000);
        assert!(rows
            .windows(2)
            .all(|w| (w[0].service.as_str(), w[0].timestamp_ns)
                <= (w[1].service.as_str(), w[1].timestamp_ns)));
        let ids: std::collections::HashSet<_> =
            rows.iter().map(|r| r.request_id.clone().unwrap()).collect();
        assert_eq!(ids.len(), 3000);
    }

    #[test]
    fn unflushed_rows_replay_from_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(cfg(dir.path())).unwrap();
        store
            .append_blocking((0..10).map(sample).collect())
            .unwrap();
        // Simulate a crash: skip the shutdown flush.
        std::mem::forget(store);
        let copy = crashed_copy(dir.path());
        let store = LogStore::open(cfg(copy.path())).unwrap();
        assert_eq!(store.unflushed_rows(), 10);
        assert_eq!(store.stats().replayed_records.load(Relaxed), 10);
    }

    #[test]
    fn a_large_batch_is_split_into_frames_and_replays_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(cfg(dir.path())).unwrap();
        // ~18 MiB of records: more than one FRAME_TARGET_BYTES frame.
        let batch: Vec<_> = (0..60_000)
            .map(|i| {
                let mut r = sample(i);
                r.attributes = format!("{{\"pad\":\"{}\"}}", "p".repeat(250));
                r
            })
            .collect();
        assert!(batch.iter().map(|r| r.approx_bytes()).sum::<usize>() > FRAME_TARGET_BYTES);
        store.append_blocking(batch).unwrap();
        assert!(store.stats().wal_bytes.load(Relaxed) > 0);
        let segs = wal::list_segments(dir.path()).unwrap();
        let frames: usize = segs
            .iter()
            .map(|(_, p)| wal::read_segment(p).unwrap().frames.len())
            .sum();
        assert!(frames >= 2, "{frames} frames");
        std::mem::forget(store);
        let copy = crashed_copy(dir.path());
        let store = LogStore::open(cfg(copy.path())).unwrap();
        assert_eq!(store.unflushed_rows(), 60_000);
    }

    #[test]
    fn retention_by_size_drops_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path());
        c.max_disk_bytes = Some(1);
        let store = LogStore::open(c).unwrap();
        store.append_blocking(vec![sample(1)]).unwrap();
        store.flush().unwrap();
        retention(&store.inner).unwrap();
        assert!(store.parts().is_empty());
        assert_eq!(store.stats().retention_deleted_parts.load(Relaxed), 1);
        assert_eq!(
            std::fs::read_dir(files::log_parts_dir(dir.path()))
                .unwrap()
                .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
                .count(),
            0
        );
    }

    #[test]
    fn wrong_data_dir_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("VERSION"), "sightline-data 99\n").unwrap();
        let e = LogStore::open(cfg(dir.path())).unwrap_err();
        assert!(e.to_string().contains("sightline-data 99"), "{e}");
    }
}
