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
//! durable. On start every segment is replayed into the head.

pub mod chunk;
pub mod head;

use crate::{files, wal, FsyncPolicy, StoreError};
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

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    let n = get_varint(b)? as usize;
    if n > b.len() {
        return None;
    }
    let (s, rest) = b.split_at(n);
    *b = rest;
    String::from_utf8(s.to_vec()).ok()
}

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

pub struct Tsdb {
    head: Arc<RwLock<Head>>,
    tx: Sender<Op>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub stats: Arc<TsdbStats>,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb").finish_non_exhaustive()
    }
}

impl Tsdb {
    /// Opens (creating) `DATA/metrics`, replays its WAL, starts the writer.
    pub fn open(data_dir: &Path, fsync: FsyncPolicy) -> Result<Tsdb, StoreError> {
        let root = files::metrics_dir(data_dir);
        std::fs::create_dir_all(files::wal_dir(&root))?;
        let stats = Arc::new(TsdbStats::default());
        let mut head = Head::default();
        let segments = wal::list_segments(&root)?;
        let mut replayed = 0u64;
        for (_, path) in &segments {
            let r = wal::replay_segment(path)?;
            if r.torn_bytes > 0 {
                tracing::warn!(segment = %path.display(), bytes = r.torn_bytes, "metrics wal: torn tail cut");
            }
            for frame in r.frames {
                let Some((series, samples)) = decode_frame(&frame) else {
                    tracing::warn!(segment = %path.display(), "metrics wal: undecodable frame skipped");
                    continue;
                };
                for (id, labels) in series {
                    if !head.series.contains_key(&id) {
                        head.insert(id, &labels.0);
                    }
                }
                for (id, t, v) in samples {
                    if let Some(s) = head.series.get_mut(&id) {
                        if s.max_time().is_none_or(|m| t > m) {
                            s.push(t, v);
                            replayed += 1;
                        }
                    }
                }
            }
        }
        head.samples = replayed;
        stats.replayed_samples.store(replayed, Relaxed);
        let next = segments.last().map(|(id, _)| id + 1).unwrap_or(1);
        let seg = wal::SegmentWriter::create(&root, next)?;
        let head = Arc::new(RwLock::new(head));
        let (tx, rx) = bounded(256);
        let writer = {
            let head = head.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("metrics-writer".into())
                .spawn(move || writer_loop(root, seg, rx, head, fsync, stats))?
        };
        Ok(Tsdb {
            head,
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

    /// Every series matching all `matchers`, with its samples in
    /// `[mint, maxt]` (series without samples there are left out), sorted by labels.
    pub fn select(&self, matchers: &[LabelMatcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        let head = self.head.read();
        let ids = head.matching(matchers);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let s = &head.series[&id];
            if s.max_time().is_none_or(|m| m < mint) || s.min_time().is_none_or(|m| m > maxt) {
                continue;
            }
            let mut samples = Vec::new();
            s.samples_into(mint, maxt, &mut samples);
            if samples.is_empty() {
                continue;
            }
            out.push(SeriesData {
                labels: head.labels_of(s),
                samples,
            });
        }
        drop(head);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Label sets of series matching any of the matcher sets (all series
    /// when none) with samples overlapping `[mint, maxt]`.
    pub fn series(&self, matcher_sets: &[Vec<LabelMatcher>], mint: i64, maxt: i64) -> Vec<Labels> {
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
                let overlaps = s.max_time().is_some_and(|m| m >= mint)
                    && s.min_time().is_some_and(|m| m <= maxt);
                overlaps.then(|| head.labels_of(s))
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

    /// Series in the head, samples in the head, approximate bytes held.
    pub fn head_stats(&self) -> (usize, u64, usize) {
        let h = self.head.read();
        (h.series.len(), h.samples, h.memory_bytes())
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
/// their frame is durable.
struct Planned {
    new_series: Vec<(SeriesId, Labels)>,
    samples: Vec<(SeriesId, i64, f64)>,
    outcomes: Vec<AppendOutcome>,
}

fn plan(head: &Head, batches: &[Vec<SeriesSamples>]) -> Planned {
    let mut next_id = head.next_id;
    let mut new_series: Vec<(SeriesId, Labels)> = vec![];
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
                Some(id) => id,
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
                None => head
                    .series
                    .get(&id)
                    .and_then(|m| m.last())
                    .map(|(t, v)| (t, v.to_bits())),
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
        samples,
        outcomes,
    }
}

fn writer_loop(
    root: PathBuf,
    mut seg: wal::SegmentWriter,
    rx: Receiver<Op>,
    head: Arc<RwLock<Head>>,
    fsync: FsyncPolicy,
    stats: Arc<TsdbStats>,
) {
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
        let mut shutdown = false;
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
            let planned = plan(&head.read(), &batches);
            let result = if planned.samples.is_empty() && planned.new_series.is_empty() {
                Ok(())
            } else {
                let refs: Vec<(SeriesId, &Labels)> =
                    planned.new_series.iter().map(|(id, l)| (*id, l)).collect();
                let payload = wal::compress(&encode_frame(&refs, &planned.samples));
                buf.clear();
                wal::frame_into(&mut buf, &payload);
                let before = seg.len();
                seg.write(&buf)
                    .and_then(|_| match fsync {
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
                    })
                    .map_err(StoreError::from_io)
            };
            match result {
                Ok(()) => {
                    stats.wal_bytes.fetch_add(buf.len() as u64, Relaxed);
                    let mut h = head.write();
                    for (id, labels) in &planned.new_series {
                        h.insert(*id, &labels.0);
                    }
                    for &(id, t, v) in &planned.samples {
                        if let Some(s) = h.series.get_mut(&id) {
                            s.push(t, v);
                        }
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
                    stats.samples_appended.fetch_add(total.appended, Relaxed);
                    stats.series_created.fetch_add(total.new_series, Relaxed);
                    stats
                        .samples_out_of_order
                        .fetch_add(total.out_of_order, Relaxed);
                    stats.samples_duplicate.fetch_add(total.duplicate, Relaxed);
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
        if seg.len() >= SEGMENT_BYTES && seg.sync().is_ok() {
            match wal::SegmentWriter::create(&root, seg.id + 1) {
                Ok(next) => seg = next,
                Err(e) => tracing::error!(error = %e, "metrics wal: cannot cut a new segment"),
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
            let db = Tsdb::open(dir.path(), FsyncPolicy::Always).unwrap();
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
        let db = Tsdb::open(dir.path(), FsyncPolicy::Always).unwrap();
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
}
