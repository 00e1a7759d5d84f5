//! The metrics store: series and samples from scrapes, remote write and OTLP,
//! made durable through their own WAL (`DATA/metrics/wal/`), held in an
//! in-memory head of Gorilla chunks with a postings index, and read by
//! label matchers over a time range.
//!
//! Write path: [`Tsdb::append`] hands a batch to the writer thread, which
//! resolves series ids (new series get a `Series` WAL record), drops samples
//! older than their series' newest one (out of order, as Prometheus does),
//! writes one CRC-framed WAL frame per batch with group commit and one
//! `fdatasync`, then appends to the head and answers. Acknowledged means
//! durable. When the head spans 1.5 block ranges (2 h by default) its oldest
//! whole range is written as an immutable block (`DATA/metrics/blocks/`,
//! `block.rs`: delta-of-delta timestamps, integer/decimal/XOR values, zstd),
//! then a checkpoint of what the head still holds replaces the older WAL.
//! On start the newest checkpoint and the segments after it are replayed and
//! the blocks' series are added to the index. Blocks past retention are
//! deleted, and series left without samples are forgotten.

pub mod block;
pub mod chunk;
pub mod head;

use crate::{files, wal, FsyncPolicy, StoreError};
use block::{get_str, get_varint, put_str, put_varint, unzz as unzigzag, zz as zigzag};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use head::{labels_hash, Head, SeriesId};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prometheus's staleness marker: a NaN with this exact bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

const SEGMENT_BYTES: u64 = 128 << 20;
const MAX_GROUP_BYTES: usize = 16 << 20;
const TICK: Duration = Duration::from_millis(100);

/// A label set: sorted by name, unique names, no empty values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(pub Vec<(String, String)>);

impl Labels {
    /// Sorts, drops empty values, keeps the last of duplicate names.
    pub fn new(mut pairs: Vec<(String, String)>) -> Labels {
        pairs.retain(|(_, v)| !v.is_empty());
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|b, a| {
            if a.0 == b.0 {
                std::mem::swap(&mut a.1, &mut b.1);
                true
            } else {
                false
            }
        });
        Labels(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum MatchOp {
    Equal(String),
    NotEqual(String),
    /// Anchored regular expressions.
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
}

impl LabelMatcher {
    pub fn matches(&self, v: &str) -> bool {
        match &self.op {
            MatchOp::Equal(x) => x == v,
            MatchOp::NotEqual(x) => x != v,
            MatchOp::Regex(r) => r.is_match(v),
            MatchOp::NotRegex(r) => !r.is_match(v),
        }
    }

    pub fn equal(name: &str, value: &str) -> LabelMatcher {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Equal(value.into()),
        }
    }

    /// `name =~ pattern`, anchored like Prometheus.
    pub fn regex(name: &str, pattern: &str, negate: bool) -> Result<LabelMatcher, regex::Error> {
        let r = regex::Regex::new(&format!("^(?s:{pattern})$"))?;
        Ok(LabelMatcher {
            name: name.into(),
            op: if negate {
                MatchOp::NotRegex(r)
            } else {
                MatchOp::Regex(r)
            },
        })
    }
}

/// Samples of one series to append.
#[derive(Debug, Clone)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// What an append did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub appended: u64,
    pub new_series: u64,
    pub out_of_order: u64,
    pub duplicate: u64,
}

/// A series read back with its samples in the asked range.
#[derive(Debug, Clone)]
pub struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

#[derive(Debug, Default)]
pub struct TsdbStats {
    pub samples_appended: AtomicU64,
    pub samples_out_of_order: AtomicU64,
    pub samples_duplicate: AtomicU64,
    pub series_created: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub replayed_samples: AtomicU64,
}

pub type AppendDone = Box<dyn FnOnce(Result<AppendOutcome, StoreError>) + Send>;

enum Op {
    Append {
        batch: Vec<SeriesSamples>,
        done: AppendDone,
    },
    Shutdown,
}

// ---------------------------------------------------------------- WAL records

const REC_SERIES: u8 = 1;
const REC_SAMPLES: u8 = 2;

/// One WAL frame: new series first, then samples as (id, t, v).
fn encode_frame(series: &[(SeriesId, &Labels)], samples: &[(SeriesId, i64, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + series.len() * 64 + samples.len() * 12);
    if !series.is_empty() {
        out.push(REC_SERIES);
        put_varint(&mut out, series.len() as u64);
        for (id, labels) in series {
            put_varint(&mut out, *id as u64);
            put_varint(&mut out, labels.0.len() as u64);
            for (n, v) in &labels.0 {
                put_str(&mut out, n);
                put_str(&mut out, v);
            }
        }
    }
    if !samples.is_empty() {
        out.push(REC_SAMPLES);
        put_varint(&mut out, samples.len() as u64);
        let mut prev_t = 0i64;
        for &(id, t, v) in samples {
            put_varint(&mut out, id as u64);
            put_varint(&mut out, zigzag(t.wrapping_sub(prev_t)));
            prev_t = t;
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    out
}

type DecodedFrame = (Vec<(SeriesId, Labels)>, Vec<(SeriesId, i64, f64)>);

fn decode_frame(mut b: &[u8]) -> Option<DecodedFrame> {
    let mut series = vec![];
    let mut samples = vec![];
    while let Some((&kind, rest)) = b.split_first() {
        b = rest;
        let n = get_varint(&mut b)? as usize;
        match kind {
            REC_SERIES => {
                for _ in 0..n {
                    let id = get_varint(&mut b)? as SeriesId;
                    let k = get_varint(&mut b)? as usize;
                    if k > b.len() {
                        return None;
                    }
                    let mut pairs = Vec::with_capacity(k);
                    for _ in 0..k {
                        pairs.push((get_str(&mut b)?, get_str(&mut b)?));
                    }
                    series.push((id, Labels(pairs)));
                }
            }
            REC_SAMPLES => {
                if n > b.len() {
                    return None;
                }
                samples.reserve(n);
                let mut t = 0i64;
                for _ in 0..n {
                    let id = get_varint(&mut b)? as SeriesId;
                    t = t.wrapping_add(unzigzag(get_varint(&mut b)?));
                    let v = f64::from_bits(u64::from_le_bytes(b.get(..8)?.try_into().ok()?));
                    b = &b[8..];
                    samples.push((id, t, v));
                }
            }
            _ => return None,
        }
    }
    Some((series, samples))
}

// ---------------------------------------------------------------- the store

/// How the metrics store keeps data.
#[derive(Debug, Clone)]
pub struct TsdbOptions {
    pub fsync: FsyncPolicy,
    /// Time range of a persisted block (Prometheus: 2h). The head holds up to
    /// 1.5× this before its oldest whole range is cut into a block.
    pub block_ms: i64,
    /// Blocks whose newest sample is older than this (wall clock) are deleted.
    pub retention_ms: i64,
}

impl Default for TsdbOptions {
    fn default() -> Self {
        TsdbOptions {
            fsync: FsyncPolicy::Always,
            block_ms: 2 * 3_600_000,
            retention_ms: 15 * 86_400_000,
        }
    }
}

/// A block's location table: series id → where its data is.
#[derive(Debug)]
struct LoadedBlock {
    /// Unique per process: the frame cache's key.
    uid: u64,
    meta: block::BlockMeta,
    /// (series id, index into meta.entries), by id.
    ids: Vec<(SeriesId, u32)>,
}

impl LoadedBlock {
    fn entry(&self, id: SeriesId) -> Option<&block::Entry> {
        self.ids
            .binary_search_by_key(&id, |x| x.0)
            .ok()
            .map(|i| &self.meta.entries[self.ids[i].1 as usize])
    }
}

type Blocks = Arc<RwLock<Vec<Arc<LoadedBlock>>>>;

fn checkpoint_path(root: &Path, id: u64) -> PathBuf {
    files::wal_dir(root).join(format!("checkpoint-{id:016}"))
}

fn list_checkpoints(root: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = vec![];
    for e in std::fs::read_dir(files::wal_dir(root))? {
        let e = e?;
        if let Some(id) = e
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((id, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn blocks_dir(root: &Path) -> PathBuf {
    root.join("blocks")
}

/// Registers a block's series in the index and keeps only their locations.
fn load_block(head: &mut Head, mut meta: block::BlockMeta) -> LoadedBlock {
    let mut ids = Vec::with_capacity(meta.entries.len());
    for (i, e) in meta.entries.iter_mut().enumerate() {
        let hash = labels_hash(&e.labels.0);
        let id = match head.lookup(hash, &e.labels.0) {
            Some(id) => id,
            None => {
                let id = head.next_id;
                head.insert(id, &e.labels.0, false);
                id
            }
        };
        let s = head.series.get_mut(&id).expect("just found or inserted");
        if s.last.is_none_or(|(t, _)| e.maxt > t) {
            s.last = Some((e.maxt, e.last_v.to_bits()));
        }
        // The labels live in the index now.
        e.labels = Labels::default();
        ids.push((id, i as u32));
    }
    ids.sort_unstable();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    LoadedBlock {
        uid: NEXT.fetch_add(1, Relaxed),
        meta,
        ids,
    }
}

/// Decompressed block frames most recently read, up to a byte budget: a
/// dashboard's repeated queries over the same series decompress once.
#[derive(Debug, Default)]
struct FrameCache {
    map: HashMap<(u64, u32), Arc<Vec<u8>>>,
    order: std::collections::VecDeque<(u64, u32)>,
    bytes: usize,
}

const FRAME_CACHE_BYTES: usize = 64 << 20;

impl FrameCache {
    fn get(&mut self, key: (u64, u32)) -> Option<Arc<Vec<u8>>> {
        let f = self.map.get(&key)?.clone();
        if let Some(pos) = self.order.iter().position(|k| *k == key) {
            self.order.remove(pos);
        }
        self.order.push_back(key);
        Some(f)
    }

    fn put(&mut self, key: (u64, u32), frame: Arc<Vec<u8>>) {
        if frame.len() > FRAME_CACHE_BYTES / 4 || self.map.contains_key(&key) {
            return;
        }
        self.bytes += frame.len();
        self.map.insert(key, frame);
        self.order.push_back(key);
        while self.bytes > FRAME_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(f) = self.map.remove(&old) {
                self.bytes -= f.len();
            }
        }
    }

    fn forget_block(&mut self, uid: u64) {
        let gone: Vec<(u64, u32)> = self.map.keys().filter(|k| k.0 == uid).copied().collect();
        for k in gone {
            if let Some(f) = self.map.remove(&k) {
                self.bytes -= f.len();
            }
        }
        self.order.retain(|k| k.0 != uid);
    }
}

pub struct Tsdb {
    head: Arc<RwLock<Head>>,
    blocks: Blocks,
    frames: Arc<Mutex<FrameCache>>,
    tx: Sender<Op>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub stats: Arc<TsdbStats>,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb").finish_non_exhaustive()
    }
}

fn replay_frames(head: &mut Head, frames: Vec<Vec<u8>>, what: &Path) -> u64 {
    let mut replayed = 0;
    for frame in frames {
        let Some((series, samples)) = decode_frame(&frame) else {
            tracing::warn!(file = %what.display(), "metrics wal: undecodable frame skipped");
            continue;
        };
        for (id, labels) in series {
            match head.series.get_mut(&id) {
                Some(s) => s.logged = true,
                None => head.insert(id, &labels.0, true),
            }
        }
        for (id, t, v) in samples {
            if let Some(s) = head.series.get_mut(&id) {
                if s.max_time().is_none_or(|m| t > m) {
                    s.push(t, v);
                    replayed += 1;
                    head.min_t = head.min_t.min(t);
                    head.max_t = head.max_t.max(t);
                }
            }
        }
    }
    replayed
}

impl Tsdb {
    /// Opens (creating) `DATA/metrics`: replays the newest checkpoint and
    /// the WAL segments after it, loads the blocks, starts the writer.
    pub fn open(data_dir: &Path, opts: TsdbOptions) -> Result<Tsdb, StoreError> {
        let root = files::metrics_dir(data_dir);
        std::fs::create_dir_all(files::wal_dir(&root))?;
        std::fs::create_dir_all(blocks_dir(&root))?;
        let stats = Arc::new(TsdbStats::default());
        let mut head = Head::new();
        let mut replayed = 0u64;
        let checkpoints = list_checkpoints(&root)?;
        let cp = checkpoints.last().map(|(id, _)| *id).unwrap_or(0);
        if let Some((_, path)) = checkpoints.last() {
            let r = wal::read_segment(path)?;
            replayed += replay_frames(&mut head, r.frames, path);
        }
        let segments = wal::list_segments(&root)?;
        for (id, path) in &segments {
            if *id <= cp {
                continue; // covered by the checkpoint (left by a crash before deletion)
            }
            let r = wal::replay_segment(path)?;
            if r.torn_bytes > 0 {
                tracing::warn!(segment = %path.display(), bytes = r.torn_bytes, "metrics wal: torn tail cut");
            }
            replayed += replay_frames(&mut head, r.frames, path);
        }
        head.samples = replayed;
        stats.replayed_samples.store(replayed, Relaxed);
        let mut blocks = vec![];
        let mut names: Vec<PathBuf> = std::fs::read_dir(blocks_dir(&root))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for path in names {
            match path.extension().and_then(|e| e.to_str()) {
                Some("blk") => match block::open(&path) {
                    Ok(meta) => blocks.push(Arc::new(load_block(&mut head, meta))),
                    Err(e) => {
                        tracing::error!(block = %path.display(), error = %e, "metrics block unreadable; skipped")
                    }
                },
                Some("tmp") => {
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        blocks.sort_by_key(|b| (b.meta.mint, b.meta.maxt));
        let next = segments
            .last()
            .map(|(id, _)| id + 1)
            .unwrap_or(1)
            .max(cp + 1);
        let seg = wal::SegmentWriter::create(&root, next)?;
        let head = Arc::new(RwLock::new(head));
        let blocks: Blocks = Arc::new(RwLock::new(blocks));
        let frames: Arc<Mutex<FrameCache>> = Arc::default();
        let (tx, rx) = bounded(256);
        let writer = {
            let w = Writer {
                root,
                seg,
                head: head.clone(),
                blocks: blocks.clone(),
                frames: frames.clone(),
                opts,
                stats: stats.clone(),
                block_seq: 0,
                last_retention: Instant::now() - Duration::from_secs(3600),
            };
            std::thread::Builder::new()
                .name("metrics-writer".into())
                .spawn(move || w.run(rx))?
        };
        Ok(Tsdb {
            head,
            blocks,
            frames,
            tx,
            writer: Mutex::new(Some(writer)),
            stats,
        })
    }

    /// Queues a batch; `done` runs on the writer thread once it is durable
    /// and queryable (or failed).
    pub fn append(&self, batch: Vec<SeriesSamples>, done: AppendDone) -> Result<(), StoreError> {
        self.tx
            .try_send(Op::Append { batch, done })
            .map_err(|e| match e {
                crossbeam_channel::TrySendError::Full(_) => {
                    StoreError::Overloaded("metrics writer queue is full")
                }
                crossbeam_channel::TrySendError::Disconnected(_) => StoreError::Closed,
            })
    }

    /// Appends and waits.
    pub fn append_blocking(&self, batch: Vec<SeriesSamples>) -> Result<AppendOutcome, StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx
            .send(Op::Append {
                batch,
                done: Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            })
            .map_err(|_| StoreError::Closed)?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    fn blocks_in(&self, mint: i64, maxt: i64) -> Vec<Arc<LoadedBlock>> {
        self.blocks
            .read()
            .iter()
            .filter(|b| b.meta.maxt >= mint && b.meta.mint <= maxt)
            .cloned()
            .collect()
    }

    /// Every series matching all `matchers`, with its samples in
    /// `[mint, maxt]` from the blocks and the head (series without samples
    /// there are left out), sorted by labels.
    pub fn select(&self, matchers: &[LabelMatcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        let blocks = self.blocks_in(mint, maxt);
        let head = self.head.read();
        let ids = head.matching(matchers);
        let mut found: HashMap<SeriesId, Vec<(i64, f64)>> = HashMap::new();
        for id in &ids {
            let s = &head.series[id];
            if s.max_time().is_some_and(|m| m >= mint) && s.min_time().is_some_and(|m| m <= maxt) {
                let mut v = Vec::new();
                s.samples_into(mint, maxt, &mut v);
                if !v.is_empty() {
                    found.insert(*id, v);
                }
            }
        }
        // Labels are resolved under the same lock as the ids.
        let labels: HashMap<SeriesId, Labels> = ids
            .iter()
            .map(|id| (*id, head.labels_of(&head.series[id])))
            .collect();
        drop(head);
        for b in &blocks {
            let mut wanted: Vec<(u32, &block::Entry, SeriesId)> = ids
                .iter()
                .filter_map(|id| b.entry(*id).map(|e| (e.frame, e, *id)))
                .filter(|(_, e, _)| e.maxt >= mint && e.mint <= maxt)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            wanted.sort_by_key(|w| (w.0, w.1.offset));
            let mut file: Option<std::fs::File> = None;
            let mut frame_no = u32::MAX;
            let mut frame: Arc<Vec<u8>> = Arc::default();
            for (f, e, id) in wanted {
                if f != frame_no {
                    frame_no = f;
                    let cached = self.frames.lock().get((b.uid, f));
                    frame = match cached {
                        Some(x) => x,
                        None => {
                            if file.is_none() {
                                file = std::fs::File::open(&b.meta.path)
                                    .inspect_err(|e| tracing::error!(block = %b.meta.path.display(), error = %e, "metrics block unreadable"))
                                    .ok();
                            }
                            let read = match file.as_mut() {
                                Some(fh) => block::read_frame(&b.meta, fh, f as usize),
                                None => Err(std::io::Error::other("block file unreadable")),
                            };
                            match read {
                                Ok(x) => {
                                    let x = Arc::new(x);
                                    self.frames.lock().put((b.uid, f), x.clone());
                                    x
                                }
                                Err(err) => {
                                    tracing::error!(block = %b.meta.path.display(), error = %err, "metrics block frame unreadable");
                                    Arc::default()
                                }
                            }
                        }
                    };
                }
                let range = e.offset as usize..(e.offset as usize + e.len as usize);
                let Some(samples) = frame.get(range).and_then(block::decode_series) else {
                    continue;
                };
                let v = found.entry(id).or_default();
                let before = v.len();
                v.extend(samples.into_iter().filter(|s| s.0 >= mint && s.0 <= maxt));
                if before > 0 {
                    // Blocks may overlap each other or the head: merge by time.
                    v.sort_by_key(|s| s.0);
                    v.dedup_by_key(|s| s.0);
                }
            }
        }
        let mut out: Vec<SeriesData> = found
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(id, samples)| SeriesData {
                labels: labels[&id].clone(),
                samples,
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Label sets of series matching any of the matcher sets (all series
    /// when none) with samples overlapping `[mint, maxt]`.
    pub fn series(&self, matcher_sets: &[Vec<LabelMatcher>], mint: i64, maxt: i64) -> Vec<Labels> {
        let blocks = self.blocks_in(mint, maxt);
        let head = self.head.read();
        let mut ids: Vec<SeriesId> = if matcher_sets.is_empty() {
            head.matching(&[])
        } else {
            matcher_sets.iter().flat_map(|m| head.matching(m)).collect()
        };
        ids.sort_unstable();
        ids.dedup();
        let mut out: Vec<Labels> = ids
            .into_iter()
            .filter_map(|id| {
                let s = &head.series[&id];
                let in_head = s.max_time().is_some_and(|m| m >= mint)
                    && s.min_time().is_some_and(|m| m <= maxt);
                let in_blocks = || {
                    blocks.iter().any(|b| {
                        b.entry(id)
                            .is_some_and(|e| e.maxt >= mint && e.mint <= maxt)
                    })
                };
                (in_head || in_blocks()).then(|| head.labels_of(s))
            })
            .collect();
        drop(head);
        out.sort();
        out
    }

    /// Label names (sorted) of series matching the sets in the range.
    pub fn label_names(
        &self,
        matcher_sets: &[Vec<LabelMatcher>],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        let mut names: Vec<String> =
            if matcher_sets.is_empty() && mint == i64::MIN && maxt == i64::MAX {
                self.head.read().label_names()
            } else {
                let mut set = std::collections::BTreeSet::new();
                for l in self.series(matcher_sets, mint, maxt) {
                    for (n, _) in l.0 {
                        set.insert(n);
                    }
                }
                set.into_iter().collect()
            };
        names.sort();
        names.dedup();
        names
    }

    /// Values (sorted) of one label over series matching the sets in the range.
    pub fn label_values(
        &self,
        name: &str,
        matcher_sets: &[Vec<LabelMatcher>],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        let mut values: Vec<String> =
            if matcher_sets.is_empty() && mint == i64::MIN && maxt == i64::MAX {
                self.head.read().label_values(name)
            } else {
                let mut set = std::collections::BTreeSet::new();
                for l in self.series(matcher_sets, mint, maxt) {
                    if let Some(v) = l.get(name) {
                        set.insert(v.to_string());
                    }
                }
                set.into_iter().collect()
            };
        values.sort();
        values.dedup();
        values
    }

    /// Series known, samples in the head, approximate bytes the head holds.
    pub fn head_stats(&self) -> (usize, u64, usize) {
        let h = self.head.read();
        (h.series.len(), h.samples, h.memory_bytes())
    }

    /// Blocks, their bytes on disk and samples.
    pub fn block_stats(&self) -> (usize, u64, u64) {
        let b = self.blocks.read();
        (
            b.len(),
            b.iter().map(|x| x.meta.bytes).sum(),
            b.iter().map(|x| x.meta.samples).sum(),
        )
    }

    pub fn shutdown(&self) {
        let _ = self.tx.send(Op::Shutdown);
        if let Some(h) = self.writer.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Resolves ids and filters one group of batches against the head. New
/// series get provisional ids from `next_id`; they enter the head only once
/// their frame is durable. Known series without a record in the current WAL
/// (loaded from blocks) get one again.
struct Planned {
    new_series: Vec<(SeriesId, Labels)>,
    relogged: Vec<SeriesId>,
    samples: Vec<(SeriesId, i64, f64)>,
    outcomes: Vec<AppendOutcome>,
}

fn plan(head: &Head, batches: &[Vec<SeriesSamples>]) -> Planned {
    let mut next_id = head.next_id;
    let mut new_series: Vec<(SeriesId, Labels)> = vec![];
    let mut relogged: Vec<SeriesId> = vec![];
    let mut new_ids: HashMap<u64, Vec<(SeriesId, usize)>> = HashMap::new();
    // Newest accepted time per series within this group.
    let mut last: HashMap<SeriesId, (i64, u64)> = HashMap::new();
    let mut samples = vec![];
    let mut outcomes = vec![];
    for batch in batches {
        let mut o = AppendOutcome::default();
        for s in batch {
            let hash = labels_hash(&s.labels.0);
            let id = match head.lookup(hash, &s.labels.0) {
                Some(id) => {
                    if !head.series[&id].logged && !relogged.contains(&id) {
                        relogged.push(id);
                    }
                    id
                }
                None => {
                    let known = new_ids.get(&hash).and_then(|v| {
                        v.iter()
                            .find(|(_, i)| new_series[*i].1 == s.labels)
                            .map(|(id, _)| *id)
                    });
                    match known {
                        Some(id) => id,
                        None => {
                            let id = next_id;
                            next_id += 1;
                            new_ids
                                .entry(hash)
                                .or_default()
                                .push((id, new_series.len()));
                            new_series.push((id, s.labels.clone()));
                            o.new_series += 1;
                            id
                        }
                    }
                }
            };
            let mut newest = match last.get(&id) {
                Some(&x) => Some(x),
                None => head.series.get(&id).and_then(|m| m.last),
            };
            for &(t, v) in &s.samples {
                match newest {
                    Some((lt, _)) if t < lt => o.out_of_order += 1,
                    Some((lt, lv)) if t == lt => {
                        if lv != v.to_bits() {
                            o.duplicate += 1;
                        }
                    }
                    _ => {
                        samples.push((id, t, v));
                        newest = Some((t, v.to_bits()));
                        o.appended += 1;
                    }
                }
            }
            if let Some(n) = newest {
                last.insert(id, n);
            }
        }
        outcomes.push(o);
    }
    Planned {
        new_series,
        relogged,
        samples,
        outcomes,
    }
}

struct Writer {
    root: PathBuf,
    seg: wal::SegmentWriter,
    head: Arc<RwLock<Head>>,
    blocks: Blocks,
    frames: Arc<Mutex<FrameCache>>,
    opts: TsdbOptions,
    stats: Arc<TsdbStats>,
    block_seq: u64,
    last_retention: Instant,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Writer {
    fn run(mut self, rx: Receiver<Op>) {
        let mut buf = Vec::new();
        let mut dirty = false;
        let mut last_sync = Instant::now();
        loop {
            let first = match rx.recv_timeout(TICK) {
                Ok(op) => Some(op),
                Err(RecvTimeoutError::Timeout) => {
                    if dirty && self.seg.sync().is_ok() {
                        dirty = false;
                    }
                    None
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut shutdown = false;
            if let Some(first) = first {
                let mut group = vec![first];
                let mut n = 0usize;
                while n < MAX_GROUP_BYTES / 16 {
                    match rx.try_recv() {
                        Ok(op) => {
                            if let Op::Append { batch, .. } = &op {
                                n += batch.iter().map(|s| s.samples.len()).sum::<usize>();
                            }
                            group.push(op);
                        }
                        Err(_) => break,
                    }
                }
                let mut batches = vec![];
                let mut dones = vec![];
                for op in group {
                    match op {
                        Op::Append { batch, done } => {
                            batches.push(batch);
                            dones.push(done);
                        }
                        Op::Shutdown => shutdown = true,
                    }
                }
                if !batches.is_empty() {
                    self.append(&batches, dones, &mut buf, &mut dirty, &mut last_sync);
                }
            }
            if self.seg.len() >= SEGMENT_BYTES && self.seg.sync().is_ok() {
                match wal::SegmentWriter::create(&self.root, self.seg.id + 1) {
                    Ok(next) => self.seg = next,
                    Err(e) => tracing::error!(error = %e, "metrics wal: cannot cut a new segment"),
                }
            }
            if !shutdown {
                self.maybe_cut_block();
                if self.last_retention.elapsed() >= Duration::from_secs(60) {
                    self.last_retention = Instant::now();
                    self.apply_retention(now_ms());
                }
            }
            if shutdown {
                break;
            }
        }
        let _ = self.seg.sync();
        while let Ok(op) = rx.try_recv() {
            if let Op::Append { done, .. } = op {
                done(Err(StoreError::Closed));
            }
        }
    }

    fn append(
        &mut self,
        batches: &[Vec<SeriesSamples>],
        dones: Vec<AppendDone>,
        buf: &mut Vec<u8>,
        dirty: &mut bool,
        last_sync: &mut Instant,
    ) {
        let planned = plan(&self.head.read(), batches);
        let result = if planned.samples.is_empty()
            && planned.new_series.is_empty()
            && planned.relogged.is_empty()
        {
            Ok(())
        } else {
            let head = self.head.read();
            let relabels: Vec<(SeriesId, Labels)> = planned
                .relogged
                .iter()
                .map(|id| (*id, head.labels_of(&head.series[id])))
                .collect();
            drop(head);
            let refs: Vec<(SeriesId, &Labels)> = planned
                .new_series
                .iter()
                .chain(relabels.iter())
                .map(|(id, l)| (*id, l))
                .collect();
            let payload = wal::compress(&encode_frame(&refs, &planned.samples));
            buf.clear();
            wal::frame_into(buf, &payload);
            let before = self.seg.len();
            let seg = &mut self.seg;
            seg.write(buf)
                .and_then(|_| match self.opts.fsync {
                    FsyncPolicy::Always => seg.sync().inspect_err(|_| {
                        let _ = seg.rollback(before);
                    }),
                    FsyncPolicy::Batch => {
                        *dirty = true;
                        if last_sync.elapsed() >= TICK {
                            *last_sync = Instant::now();
                            if seg.sync().is_ok() {
                                *dirty = false;
                            }
                        }
                        Ok(())
                    }
                })
                .map_err(StoreError::from_io)
        };
        match result {
            Ok(()) => {
                self.stats.wal_bytes.fetch_add(buf.len() as u64, Relaxed);
                let mut h = self.head.write();
                for (id, labels) in &planned.new_series {
                    h.insert(*id, &labels.0, true);
                }
                for id in &planned.relogged {
                    if let Some(s) = h.series.get_mut(id) {
                        s.logged = true;
                    }
                }
                for &(id, t, v) in &planned.samples {
                    if let Some(s) = h.series.get_mut(&id) {
                        s.push(t, v);
                    }
                    h.min_t = h.min_t.min(t);
                    h.max_t = h.max_t.max(t);
                }
                h.samples += planned.samples.len() as u64;
                drop(h);
                let total = planned
                    .outcomes
                    .iter()
                    .fold(AppendOutcome::default(), |a, o| AppendOutcome {
                        appended: a.appended + o.appended,
                        new_series: a.new_series + o.new_series,
                        out_of_order: a.out_of_order + o.out_of_order,
                        duplicate: a.duplicate + o.duplicate,
                    });
                let st = &self.stats;
                st.samples_appended.fetch_add(total.appended, Relaxed);
                st.series_created.fetch_add(total.new_series, Relaxed);
                st.samples_out_of_order
                    .fetch_add(total.out_of_order, Relaxed);
                st.samples_duplicate.fetch_add(total.duplicate, Relaxed);
                for (done, o) in dones.into_iter().zip(planned.outcomes) {
                    done(Ok(o));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics wal append failed");
                let msg = e.to_string();
                let disk_full = matches!(e, StoreError::DiskFull(_));
                for done in dones {
                    done(Err(if disk_full {
                        StoreError::DiskFull(msg.clone())
                    } else {
                        StoreError::Invalid(format!("metrics store: {msg}"))
                    }));
                }
            }
        }
    }

    /// When the head spans more than 1.5 block ranges, its samples before
    /// the last whole range boundary go into a block: a new WAL segment is
    /// started, the block written and loaded, the head cut, a checkpoint of
    /// what the head still holds written, and the older WAL deleted.
    fn maybe_cut_block(&mut self) {
        let range = self.opts.block_ms.max(1);
        let (min_t, max_t) = {
            let h = self.head.read();
            (h.min_t, h.max_t)
        };
        if min_t == i64::MAX || max_t.saturating_sub(min_t) <= range + range / 2 {
            return;
        }
        let cut_end = (max_t - range / 2).div_euclid(range) * range;
        if min_t >= cut_end {
            return;
        }
        match self.cut_block(cut_end) {
            Ok(()) => self.apply_retention(now_ms()),
            Err(e) => {
                tracing::error!(error = %e, "metrics block cut failed; the head keeps the samples");
                // Try again later rather than on every append.
                self.head.write().min_t = min_t.max(cut_end);
            }
        }
    }

    fn cut_block(&mut self, cut_end: i64) -> Result<(), StoreError> {
        let started = Instant::now();
        // 1. Everything written so far is in segments ≤ covered.
        self.seg.sync()?;
        let covered = self.seg.id;
        self.seg = wal::SegmentWriter::create(&self.root, covered + 1)?;
        // 2. The block, straight from the head (the writer is its only mutator).
        self.block_seq += 1;
        let seq = (now_ms() as u64) * 1000 + self.block_seq % 1000;
        let meta = {
            let head = self.head.read();
            let mut ids: Vec<SeriesId> = head.series.keys().copied().collect();
            ids.sort_unstable();
            let series = ids.into_iter().filter_map(|id| {
                let s = &head.series[&id];
                if s.min_time().is_none_or(|m| m >= cut_end) {
                    return None;
                }
                let samples: Vec<(i64, f64)> = s
                    .all_samples()
                    .into_iter()
                    .filter(|x| x.0 < cut_end)
                    .collect();
                Some((head.labels_of(s), samples))
            });
            block::write(&blocks_dir(&self.root), seq, cut_end, series)?
        };
        let (n_series, bytes, samples) = (meta.entries.len(), meta.bytes, meta.samples);
        // 3. Readers see the block before the head lets go of its samples.
        {
            let mut head = self.head.write();
            let loaded = load_block(&mut head, meta);
            let mut blocks = self.blocks.write();
            blocks.push(Arc::new(loaded));
            blocks.sort_by_key(|b| (b.meta.mint, b.meta.maxt));
            drop(blocks);
            let mut min_t = i64::MAX;
            let mut kept = 0u64;
            for s in head.series.values_mut() {
                s.truncate_before(cut_end);
                if let Some(m) = s.min_time() {
                    min_t = min_t.min(m);
                }
                kept += s.chunks.iter().map(|c| c.len() as u64).sum::<u64>();
            }
            head.min_t = min_t;
            head.samples = kept;
        }
        // 4. Checkpoint: the series and samples the head still holds.
        self.checkpoint(covered)?;
        tracing::info!(
            series = n_series,
            samples,
            bytes,
            cut_end,
            took_ms = started.elapsed().as_millis() as u64,
            "metrics block written"
        );
        Ok(())
    }

    fn checkpoint(&mut self, covered: u64) -> Result<(), StoreError> {
        let mut frames = vec![];
        {
            let mut head = self.head.write();
            let ids: Vec<SeriesId> = head.series.keys().copied().collect();
            let mut series: Vec<(SeriesId, Labels)> = vec![];
            let mut samples: Vec<(SeriesId, i64, f64)> = vec![];
            for id in ids {
                let s = &head.series[&id];
                let has_samples = !s.chunks.is_empty();
                if has_samples {
                    series.push((id, head.labels_of(s)));
                    samples.extend(s.all_samples().into_iter().map(|(t, v)| (id, t, v)));
                }
                head.series.get_mut(&id).expect("listed").logged = has_samples;
                if series.len() >= 10_000 || samples.len() >= 1_000_000 {
                    let refs: Vec<(SeriesId, &Labels)> =
                        series.iter().map(|(i, l)| (*i, l)).collect();
                    frames.push(encode_frame(&refs, &samples));
                    series.clear();
                    samples.clear();
                }
            }
            let refs: Vec<(SeriesId, &Labels)> = series.iter().map(|(i, l)| (*i, l)).collect();
            frames.push(encode_frame(&refs, &samples));
        }
        wal::write_file(&checkpoint_path(&self.root, covered), &frames)?;
        for (id, path) in wal::list_segments(&self.root)? {
            if id <= covered {
                let _ = std::fs::remove_file(path);
            }
        }
        for (id, path) in list_checkpoints(&self.root)? {
            if id < covered {
                let _ = std::fs::remove_file(path);
            }
        }
        let _ = files::sync_dir(&files::wal_dir(&self.root));
        Ok(())
    }

    /// Deletes blocks past retention and forgets series left with no samples.
    fn apply_retention(&mut self, now: i64) {
        let horizon = now.saturating_sub(self.opts.retention_ms);
        let expired: Vec<Arc<LoadedBlock>> = {
            let mut blocks = self.blocks.write();
            let (old, keep): (Vec<_>, Vec<_>) =
                blocks.drain(..).partition(|b| b.meta.maxt < horizon);
            *blocks = keep;
            old
        };
        if expired.is_empty() {
            return;
        }
        for b in &expired {
            self.frames.lock().forget_block(b.uid);
            if let Err(e) = std::fs::remove_file(&b.meta.path) {
                tracing::warn!(block = %b.meta.path.display(), error = %e, "cannot delete an expired metrics block");
            }
        }
        let _ = files::sync_dir(&blocks_dir(&self.root));
        let blocks = self.blocks.read().clone();
        let mut head = self.head.write();
        let gone: std::collections::HashSet<SeriesId> = head
            .series
            .iter()
            .filter(|(id, s)| {
                s.chunks.is_empty() && !blocks.iter().any(|b| b.entry(**id).is_some())
            })
            .map(|(id, _)| *id)
            .collect();
        tracing::info!(
            blocks = expired.len(),
            series = gone.len(),
            "metrics retention applied"
        );
        head.remove_series(&gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn batch(name: &str, path: &str, t: i64, v: f64) -> SeriesSamples {
        SeriesSamples {
            labels: l(&[("__name__", name), ("path", path), ("job", "api")]),
            samples: vec![(t, v)],
        }
    }

    #[test]
    fn frames_round_trip() {
        let a = l(&[("__name__", "up"), ("job", "x")]);
        let f = encode_frame(
            &[(7, &a)],
            &[(7, 1000, 1.5), (7, 900, f64::NAN), (3, -5, 0.0)],
        );
        let (s, x) = decode_frame(&f).unwrap();
        assert_eq!(s, vec![(7, a)]);
        assert_eq!(x.len(), 3);
        assert_eq!((x[1].0, x[1].1), (7, 900));
        assert!(x[1].2.is_nan());
        for cut in 0..f.len() {
            let _ = decode_frame(&f[..cut]);
        }
    }

    #[test]
    fn append_select_matchers_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
            for i in 0..10 {
                let o = db
                    .append_blocking(vec![
                        batch("http_requests_total", "/a", i * 15_000, i as f64),
                        batch("http_requests_total", "/b", i * 15_000, 2.0 * i as f64),
                        batch("up", "", i * 15_000, 1.0),
                    ])
                    .unwrap();
                assert_eq!(o.appended, 3);
                assert_eq!(o.new_series, if i == 0 { 3 } else { 0 });
            }
            // Out of order and duplicates are refused like Prometheus.
            let o = db
                .append_blocking(vec![
                    batch("up", "", 0, 1.0),
                    batch("up", "", 135_000, 0.0),
                    batch("up", "", 135_000, 1.0),
                ])
                .unwrap();
            assert_eq!((o.appended, o.out_of_order, o.duplicate), (0, 1, 1));
        }
        let db = Tsdb::open(dir.path(), TsdbOptions::default()).unwrap();
        assert_eq!(db.stats.replayed_samples.load(Relaxed), 30);
        let name = LabelMatcher::equal("__name__", "http_requests_total");
        let got = db.select(&[name.clone()], 30_000, 60_000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels.get("path"), Some("/a"));
        assert_eq!(
            got[1].samples,
            vec![(30_000, 4.0), (45_000, 6.0), (60_000, 8.0)]
        );
        let re = LabelMatcher::regex("path", "/b|/c", false).unwrap();
        assert_eq!(db.select(&[name.clone(), re], 0, i64::MAX).len(), 1);
        // A matcher matching "" also matches series without the label.
        let no_path = LabelMatcher::equal("path", "");
        let got = db.select(&[no_path], 0, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("__name__"), Some("up"));
        let ne = LabelMatcher {
            name: "path".into(),
            op: MatchOp::NotEqual("/a".into()),
        };
        assert_eq!(db.select(&[ne], 0, i64::MAX).len(), 2);
        assert_eq!(
            db.label_values("path", &[], i64::MIN, i64::MAX),
            vec!["/a", "/b"]
        );
        assert_eq!(
            db.label_names(&[], i64::MIN, i64::MAX),
            vec!["__name__", "job", "path"]
        );
        // New samples after replay go on from where the series stopped.
        let o = db
            .append_blocking(vec![batch("up", "", 150_000, 1.0)])
            .unwrap();
        assert_eq!((o.appended, o.new_series), (1, 0));
    }

    fn count_files(dir: &Path, prefix: &str) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(prefix)
            })
            .count()
    }

    #[test]
    fn blocks_checkpoints_restarts_and_retention() {
        let dir = tempfile::tempdir().unwrap();
        let opts = TsdbOptions {
            fsync: FsyncPolicy::Always,
            block_ms: 10_000,
            retention_ms: i64::MAX / 4,
        };
        let root = files::metrics_dir(dir.path());
        let expect = |db: &Tsdb, upto: i64| {
            let got = db.select(&[LabelMatcher::equal("__name__", "c")], 0, i64::MAX);
            assert_eq!(got.len(), 2);
            for (k, s) in got.iter().enumerate() {
                let want: Vec<(i64, f64)> = (0..upto)
                    .map(|i| (i * 1000, (i * (k as i64 + 1)) as f64))
                    .collect();
                assert_eq!(s.samples, want, "series {k}");
            }
        };
        {
            let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
            for i in 0..60i64 {
                db.append_blocking(vec![
                    batch("c", "/a", i * 1000, i as f64),
                    batch("c", "/b", i * 1000, (2 * i) as f64),
                ])
                .unwrap();
            }
            // A gauge that stops early lives on only in blocks.
            db.append_blocking(vec![batch("g", "", 0, 5.0), batch("g", "", 1000, 6.0)])
                .unwrap();
            // The writer cuts blocks after it acknowledges an append: one more
            // (empty) append returns once the last cut and its checkpoint are done.
            db.append_blocking(vec![]).unwrap();
            let (blocks, bytes, samples) = db.block_stats();
            assert!(blocks >= 3, "{blocks} blocks");
            assert!(samples >= 80, "{samples}");
            assert!(bytes > 0);
            expect(&db, 60);
            // Older WAL is gone, replaced by a checkpoint.
            assert_eq!(count_files(&files::wal_dir(&root), "checkpoint-"), 1);
            assert!(count_files(&files::wal_dir(&root), "0") <= 2);
            // Ranges spanning blocks and head; a range inside one block.
            let got = db.select(&[LabelMatcher::equal("path", "/a")], 8_500, 31_000);
            assert_eq!(got[0].samples.first(), Some(&(9_000, 9.0)));
            assert_eq!(got[0].samples.last(), Some(&(31_000, 31.0)));
            assert_eq!(
                db.series(&[vec![LabelMatcher::equal("__name__", "g")]], 0, 5_000)
                    .len(),
                1
            );
        }
        {
            let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
            expect(&db, 60);
            // Out of order against what only a block holds is still refused.
            let o = db.append_blocking(vec![batch("g", "", 500, 1.0)]).unwrap();
            assert_eq!(o.out_of_order, 1);
            // A block-only series takes new samples; they survive a restart.
            let o = db
                .append_blocking(vec![batch("g", "", 70_000, 7.0)])
                .unwrap();
            assert_eq!((o.appended, o.new_series), (1, 0));
        }
        {
            let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
            expect(&db, 60);
            let g = db.select(&[LabelMatcher::equal("__name__", "g")], 0, i64::MAX);
            assert_eq!(g[0].samples, vec![(0, 5.0), (1000, 6.0), (70_000, 7.0)]);
        }
        // Retention: everything in blocks is older than the horizon.
        let db = Tsdb::open(
            dir.path(),
            TsdbOptions {
                retention_ms: 1,
                ..opts
            },
        )
        .unwrap();
        db.append_blocking(vec![batch("c", "/a", 75_000, 75.0)])
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while db.block_stats().0 > 0 {
            assert!(Instant::now() < deadline, "retention never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The append cut the head's older samples into a block, which
        // retention deleted at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while count_files(&root.join("blocks"), "b-") > 0 {
            assert!(Instant::now() < deadline, "expired block files stay");
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = db.select(&[LabelMatcher::equal("path", "/a")], 0, i64::MAX);
        assert_eq!(got[0].samples, vec![(75_000, 75.0)]);
        let g = db.select(&[LabelMatcher::equal("__name__", "g")], 0, i64::MAX);
        assert_eq!(g[0].samples, vec![(70_000, 7.0)]);
        // /b had samples only in the expired blocks: forgotten.
        assert!(db
            .select(&[LabelMatcher::equal("path", "/b")], 0, i64::MAX)
            .is_empty());
        assert_eq!(db.label_values("path", &[], i64::MIN, i64::MAX), vec!["/a"]);
    }
}
