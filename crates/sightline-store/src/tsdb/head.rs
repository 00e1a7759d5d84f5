//! The in-memory head of the metrics store: interned label sets, the series
//! index (label pair → postings), and each series' Gorilla chunks.

use super::chunk::{Chunk, CHUNK_SAMPLES};
use super::{LabelMatcher, Labels, STALE_NAN_BITS};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub type SeriesId = u32;
type Sym = u32;

/// Interned strings: every label name and value is held once.
#[derive(Debug, Default)]
pub struct Symbols {
    ids: HashMap<Arc<str>, Sym>,
    strs: Vec<Arc<str>>,
}

impl Symbols {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strs.len() as Sym;
        let a: Arc<str> = Arc::from(s);
        self.strs.push(a.clone());
        self.ids.insert(a, id);
        id
    }

    pub fn get(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    pub fn str(&self, id: Sym) -> &Arc<str> {
        &self.strs[id as usize]
    }

    fn bytes(&self) -> usize {
        self.strs.iter().map(|s| s.len() + 16 + 40).sum()
    }
}

#[derive(Debug)]
pub struct MemSeries {
    /// (name, value) symbols sorted by name.
    pub labels: Box<[(Sym, Sym)]>,
    pub chunks: Vec<Chunk>,
    /// Newest sample ever accepted (head or blocks): (time, value bits).
    pub last: Option<(i64, u64)>,
    /// A `Series` record for this id is in the current WAL (checkpoint or
    /// segments), so sample records may refer to it.
    pub logged: bool,
}

impl MemSeries {
    pub fn last(&self) -> Option<(i64, f64)> {
        self.last.map(|(t, v)| (t, f64::from_bits(v)))
    }

    pub fn max_time(&self) -> Option<i64> {
        self.chunks
            .last()
            .filter(|c| !c.is_empty())
            .map(|c| c.max_time())
    }

    pub fn min_time(&self) -> Option<i64> {
        self.chunks
            .first()
            .filter(|c| !c.is_empty())
            .map(|c| c.min_time())
    }

    pub fn push(&mut self, t: i64, v: f64) {
        if self
            .chunks
            .last()
            .is_none_or(|c| c.len() >= CHUNK_SAMPLES as usize)
        {
            if let Some(c) = self.chunks.last_mut() {
                c.shrink();
            }
            self.chunks.push(Chunk::new());
        }
        self.chunks.last_mut().unwrap().push(t, v);
        if self.last.is_none_or(|(lt, _)| t >= lt) {
            self.last = Some((t, v.to_bits()));
        }
    }

    /// Every sample in the head, oldest first.
    pub fn all_samples(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.chunks.iter().map(|c| c.len()).sum());
        for c in &self.chunks {
            out.extend(c.iter());
        }
        out
    }

    /// Drops samples before `t` from the head chunks (re-encoding the rest).
    pub fn truncate_before(&mut self, t: i64) {
        if self
            .chunks
            .iter()
            .all(|c| c.is_empty() || c.min_time() >= t)
        {
            return;
        }
        let keep: Vec<(i64, f64)> = self
            .all_samples()
            .into_iter()
            .filter(|s| s.0 >= t)
            .collect();
        let last = self.last;
        self.chunks.clear();
        for (t, v) in keep {
            self.push(t, v);
        }
        if let Some(c) = self.chunks.last_mut() {
            c.shrink();
        }
        self.chunks.shrink_to_fit();
        self.last = last;
    }

    /// Appends the samples in `[mint, maxt]` to `out`.
    pub fn samples_into(&self, mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
        for c in &self.chunks {
            if c.is_empty() || c.max_time() < mint || c.min_time() > maxt {
                continue;
            }
            out.extend(c.iter().filter(|&(t, _)| t >= mint && t <= maxt));
        }
    }
}

/// Hash of a label set given as strings (sorted by name).
pub fn labels_hash(labels: &[(impl AsRef<str>, impl AsRef<str>)]) -> u64 {
    let mut h = foldhash::quality::FixedState::with_seed(0x5117_11e5).build_hasher();
    for (n, v) in labels {
        n.as_ref().hash(&mut h);
        v.as_ref().hash(&mut h);
    }
    h.finish()
}

use std::hash::BuildHasher;

#[derive(Debug, Default)]
pub struct Head {
    pub symbols: Symbols,
    pub series: HashMap<SeriesId, MemSeries>,
    by_hash: HashMap<u64, Vec<SeriesId>>,
    /// (name, value) → series ids, ascending.
    postings: HashMap<(Sym, Sym), Vec<SeriesId>>,
    /// name → its values.
    values: HashMap<Sym, Vec<Sym>>,
    /// Every series id, ascending.
    all: Vec<SeriesId>,
    pub next_id: SeriesId,
    pub samples: u64,
    /// Oldest and newest sample time in the head (i64::MAX / MIN when empty).
    pub min_t: i64,
    pub max_t: i64,
}

impl Head {
    pub fn new() -> Head {
        Head {
            min_t: i64::MAX,
            max_t: i64::MIN,
            ..Head::default()
        }
    }

    /// The id of a series with exactly these labels, if any.
    pub fn lookup(&self, hash: u64, labels: &[(String, String)]) -> Option<SeriesId> {
        let ids = self.by_hash.get(&hash)?;
        ids.iter().copied().find(|id| {
            let s = &self.series[id];
            s.labels.len() == labels.len()
                && s.labels.iter().zip(labels).all(|(&(n, v), (ln, lv))| {
                    &**self.symbols.str(n) == ln.as_str() && &**self.symbols.str(v) == lv.as_str()
                })
        })
    }

    /// Adds a series under a given id (ids only grow).
    pub fn insert(&mut self, id: SeriesId, labels: &[(String, String)], logged: bool) {
        let hash = labels_hash(labels);
        let syms: Box<[(Sym, Sym)]> = labels
            .iter()
            .map(|(n, v)| (self.symbols.intern(n), self.symbols.intern(v)))
            .collect();
        for &(n, v) in syms.iter() {
            let p = self.postings.entry((n, v)).or_default();
            if p.is_empty() {
                self.values.entry(n).or_default().push(v);
            }
            push_sorted(p, id);
        }
        push_sorted(&mut self.all, id);
        self.by_hash.entry(hash).or_default().push(id);
        self.series.insert(
            id,
            MemSeries {
                labels: syms,
                chunks: Vec::new(),
                last: None,
                logged,
            },
        );
        self.next_id = self.next_id.max(id + 1);
    }

    pub fn labels_of(&self, s: &MemSeries) -> Labels {
        Labels(
            s.labels
                .iter()
                .map(|&(n, v)| {
                    (
                        self.symbols.str(n).to_string(),
                        self.symbols.str(v).to_string(),
                    )
                })
                .collect(),
        )
    }

    fn union_where(&self, name: &str, pred: impl Fn(&str) -> bool) -> Vec<SeriesId> {
        let Some(n) = self.symbols.get(name) else {
            return vec![];
        };
        let mut lists: Vec<&[SeriesId]> = vec![];
        for &v in self.values.get(&n).map(|v| v.as_slice()).unwrap_or(&[]) {
            if pred(self.symbols.str(v)) {
                if let Some(p) = self.postings.get(&(n, v)) {
                    lists.push(p);
                }
            }
        }
        merge_union(&lists)
    }

    /// Series ids matching every matcher (Prometheus semantics: a matcher
    /// that matches "" also matches series without the label), ascending.
    pub fn matching(&self, matchers: &[LabelMatcher]) -> Vec<SeriesId> {
        let mut result: Option<Vec<SeriesId>> = None;
        // Equality first: usually the most selective, cheapest postings.
        let mut positive: Vec<&LabelMatcher> = matchers.iter().filter(|m| !m.matches("")).collect();
        positive.sort_by_key(|m| !matches!(m.op, super::MatchOp::Equal(_)));
        for m in positive {
            let set = match &m.op {
                super::MatchOp::Equal(v) => {
                    match (self.symbols.get(&m.name), self.symbols.get(v)) {
                        (Some(n), Some(v)) => {
                            self.postings.get(&(n, v)).cloned().unwrap_or_default()
                        }
                        _ => vec![],
                    }
                }
                _ => self.union_where(&m.name, |v| m.matches(v)),
            };
            result = Some(match result {
                None => set,
                Some(r) => intersect(&r, &set),
            });
            if result.as_ref().is_some_and(|r| r.is_empty()) {
                return vec![];
            }
        }
        let mut r = result.unwrap_or_else(|| self.all.clone());
        for m in matchers.iter().filter(|m| m.matches("")) {
            let excl = self.union_where(&m.name, |v| !m.matches(v));
            if !excl.is_empty() {
                r = subtract(&r, &excl);
            }
        }
        r
    }

    /// Forgets series (no samples left anywhere): rebuilds the index without them.
    pub fn remove_series(&mut self, gone: &std::collections::HashSet<SeriesId>) {
        if gone.is_empty() {
            return;
        }
        for id in gone {
            self.series.remove(id);
        }
        self.postings.clear();
        self.values.clear();
        self.all.clear();
        self.by_hash.clear();
        let mut ids: Vec<SeriesId> = self.series.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let s = &self.series[&id];
            let mut h = foldhash::quality::FixedState::with_seed(0x5117_11e5).build_hasher();
            for &(n, v) in s.labels.iter() {
                self.symbols.str(n).hash(&mut h);
                self.symbols.str(v).hash(&mut h);
            }
            let hash = h.finish();
            for &(n, v) in s.labels.iter() {
                let p = self.postings.entry((n, v)).or_default();
                if p.is_empty() {
                    self.values.entry(n).or_default().push(v);
                }
                p.push(id);
            }
            self.all.push(id);
            self.by_hash.entry(hash).or_default().push(id);
        }
    }

    pub fn label_names(&self) -> Vec<String> {
        self.values
            .keys()
            .map(|&n| self.symbols.str(n).to_string())
            .collect()
    }

    pub fn label_values(&self, name: &str) -> Vec<String> {
        let Some(n) = self.symbols.get(name) else {
            return vec![];
        };
        self.values
            .get(&n)
            .map(|vs| {
                vs.iter()
                    .map(|&v| self.symbols.str(v).to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Approximate bytes held (series, chunks, index, symbols).
    pub fn memory_bytes(&self) -> usize {
        let mut b = self.symbols.bytes();
        for s in self.series.values() {
            b += 64 + s.labels.len() * 8 + s.chunks.capacity() * std::mem::size_of::<Chunk>();
            b += s.chunks.iter().map(|c| c.byte_len()).sum::<usize>();
        }
        b += self
            .postings
            .values()
            .map(|p| p.capacity() * 4 + 48)
            .sum::<usize>();
        b += self.by_hash.len() * 48 + self.all.capacity() * 4;
        b
    }

    pub fn is_stale(v: f64) -> bool {
        v.to_bits() == STALE_NAN_BITS
    }
}

fn push_sorted(v: &mut Vec<SeriesId>, id: SeriesId) {
    match v.last() {
        Some(&l) if l >= id => {
            if let Err(pos) = v.binary_search(&id) {
                v.insert(pos, id);
            }
        }
        _ => v.push(id),
    }
}

pub fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub fn subtract(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let mut j = 0;
    let mut out = Vec::with_capacity(a.len());
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

fn merge_union(lists: &[&[SeriesId]]) -> Vec<SeriesId> {
    match lists.len() {
        0 => vec![],
        1 => lists[0].to_vec(),
        _ => {
            let mut out: Vec<SeriesId> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}
