//! What a scan feeds: a page of records newest first (with its cursor), counts
//! grouped by fields and time buckets, and field facets. Each keeps bounded
//! state while rows stream through; none materializes the rows it counts.

use crate::eval::{attr_value, json_text, raw_text};
use crate::exec::{all_columns, get, plain, Sink, Strings};
use crate::lang::{Column, Field, Key};
use crate::QueryError;
use arrow::array::{Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt8Array};
use serde::Serialize;
use serde_json::Value;
use sightline_pipeline::normalize::Members;
use sightline_pipeline::{Level, LogRecord};
use sightline_store::part;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

/// The order of a page: newest first, ties broken by content so pages are
/// stable.
pub fn newest_first(a: &LogRecord, b: &LogRecord) -> Ordering {
    b.timestamp_ns
        .cmp(&a.timestamp_ns)
        .then_with(|| b.received_ns.cmp(&a.received_ns))
        .then_with(|| a.service.cmp(&b.service))
        .then_with(|| a.message.cmp(&b.message))
        .then_with(|| a.request_id.cmp(&b.request_id))
        .then_with(|| a.attributes.cmp(&b.attributes))
        .then_with(|| a.level.cmp(&b.level))
        .then_with(|| a.host.cmp(&b.host))
        .then_with(|| a.logger.cmp(&b.logger))
        .then_with(|| a.environment.cmp(&b.environment))
        .then_with(|| a.trace_id.cmp(&b.trace_id))
        .then_with(|| a.span_id.cmp(&b.span_id))
        .then_with(|| a.user_id.cmp(&b.user_id))
        .then_with(|| a.flow_id.cmp(&b.flow_id))
        .then_with(|| a.exception.cmp(&b.exception))
        .then_with(|| a.truncated.cmp(&b.truncated))
}

/// Most rows sharing one timestamp a cursor may skip (plain-text lines of one
/// request share their receive time, so this can be large, but not unbounded).
const MAX_CURSOR_SKIP: usize = 1_000_000;

/// Where the next page starts: rows older than `ts`, and rows at `ts` after
/// the first `skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub ts: i64,
    pub skip: usize,
}

impl Cursor {
    pub fn parse(s: &str) -> Result<Cursor, QueryError> {
        let bad =
            || QueryError::BadRequest(format!("invalid cursor {s:?}: pass next_cursor unchanged"));
        let (ts, skip) = s.split_once('.').ok_or_else(bad)?;
        let skip: usize = skip.parse().map_err(|_| bad())?;
        if skip > MAX_CURSOR_SKIP {
            return Err(bad());
        }
        Ok(Cursor {
            ts: ts.parse().map_err(|_| bad())?,
            skip,
        })
    }
    pub fn render(&self) -> String {
        format!("{}.{}", self.ts, self.skip)
    }
}

/// The newest `limit` matching records after the cursor.
#[derive(Debug)]
pub struct LogsSink {
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub max_bytes: usize,
    rows: Vec<LogRecord>,
    bytes: usize,
}

impl LogsSink {
    pub fn new(limit: usize, cursor: Option<Cursor>, max_bytes: usize) -> LogsSink {
        LogsSink {
            limit,
            cursor,
            max_bytes,
            rows: Vec::new(),
            bytes: 0,
        }
    }

    /// Rows kept: the page, the cursor's skipped rows and one more (to know
    /// whether another page exists).
    fn keep(&self) -> usize {
        self.limit
            .saturating_add(self.cursor.map_or(0, |c| c.skip))
            .saturating_add(1)
    }

    fn trim(&mut self) {
        let keep = self.keep();
        if self.rows.len() > keep {
            self.rows.sort_by(newest_first);
            self.rows.truncate(keep);
            self.bytes = self.rows.iter().map(|r| r.approx_bytes()).sum();
        }
    }

    /// The page and the cursor of the next one.
    pub fn finish(mut self) -> (Vec<LogRecord>, Option<String>) {
        self.rows.sort_by(newest_first);
        let skip = self.cursor.map_or(0, |c| c.skip);
        let mut rows: Vec<LogRecord> = self.rows.into_iter().skip(skip).collect();
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        let next = match (more, rows.last()) {
            (true, Some(last)) => {
                let mut same = rows
                    .iter()
                    .filter(|r| r.timestamp_ns == last.timestamp_ns)
                    .count();
                if let Some(c) = self.cursor.filter(|c| c.ts == last.timestamp_ns) {
                    same += c.skip;
                }
                Some(
                    Cursor {
                        ts: last.timestamp_ns,
                        skip: same,
                    }
                    .render(),
                )
            }
            _ => None,
        };
        (rows, next)
    }
}

impl Sink for LogsSink {
    fn columns(&self) -> BTreeSet<&'static str> {
        all_columns()
    }

    fn ordered(&self) -> bool {
        true
    }

    fn wants(&self, max_ts: i64) -> bool {
        if self.rows.len() < self.keep() {
            return true;
        }
        let mut ts: Vec<i64> = self.rows.iter().map(|r| r.timestamp_ns).collect();
        let k = self.keep() - 1;
        ts.select_nth_unstable_by(k, |a, b| b.cmp(a));
        // The k-th newest is newer than anything left: nothing left can enter.
        ts[k] <= max_ts
    }

    fn push(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        let start = self.rows.len();
        part::batch_to_records(&plain(batch)?, &mut self.rows);
        self.bytes += self.rows[start..]
            .iter()
            .map(|r| r.approx_bytes())
            .sum::<usize>();
        if self.rows.len() > 2 * self.keep() + 1024 || self.bytes > self.max_bytes {
            self.trim();
        }
        self.check_bytes()
    }

    fn fork(&self) -> Option<Self> {
        Some(LogsSink::new(self.limit, self.cursor, self.max_bytes))
    }

    fn merge(&mut self, other: Self) -> Result<(), QueryError> {
        self.rows.extend(other.rows);
        self.bytes += other.bytes;
        self.trim();
        self.check_bytes()
    }
}

impl LogsSink {
    fn check_bytes(&self) -> Result<(), QueryError> {
        if self.bytes > self.max_bytes {
            return Err(QueryError::TooExpensive(format!(
                "the page is over {} MiB: lower limit or select fewer fields",
                self.max_bytes >> 20
            )));
        }
        Ok(())
    }
}

/// Most group-by keys (the parser allows 8).
const MAX_KEYS: usize = 8;

/// Fast hashing for per-row group lookups (keys are our own codes, not
/// attacker-chosen strings, so DoS resistance is not needed here).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Per-batch dictionary of one string key: each distinct value gets a code.
#[derive(Default)]
struct Dict<'a> {
    codes: FastMap<&'a str, i64>,
    values: Vec<&'a str>,
}

impl<'a> Dict<'a> {
    fn code(&mut self, v: &'a str) -> i64 {
        if let Some(c) = self.codes.get(v) {
            return *c;
        }
        let c = self.values.len() as i64;
        self.values.push(v);
        self.codes.insert(v, c);
        c
    }
}

/// Counts by group keys (fields and time buckets).
#[derive(Debug)]
pub struct AggSink {
    keys: Vec<Key>,
    groups: HashMap<Vec<GroupVal>, u64>,
    max_groups: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupVal {
    Time(i64),
    Str(String),
}

/// Counts per time bucket start (ns).
type Points = Vec<(i64, u64)>;

/// One result series: its labels and either a count or time-bucketed points.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    pub labels: serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    /// `[bucket start (RFC 3339), count]`, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<(String, u64)>>,
}

impl AggSink {
    pub fn new(keys: Vec<Key>, max_groups: usize) -> Result<AggSink, QueryError> {
        if keys.iter().any(|k| matches!(k, Key::Field(Field::Text, _))) {
            return Err(QueryError::BadRequest("cannot group by text".into()));
        }
        Ok(AggSink {
            keys,
            groups: HashMap::new(),
            max_groups,
        })
    }

    /// Counts as series: without a time key one value per group (largest
    /// first); with one, points per group.
    pub fn finish(self, top: Option<usize>) -> Vec<Series> {
        let label_names: Vec<&str> = self
            .keys
            .iter()
            .filter_map(|k| match k {
                Key::Field(_, label) => Some(label.as_str()),
                Key::Time(_) => None,
            })
            .collect();
        let time_at = self.keys.iter().position(|k| matches!(k, Key::Time(_)));
        let labels_of = |g: &[GroupVal]| {
            let mut m = serde_json::Map::new();
            let mut names = label_names.iter();
            for v in g {
                if let GroupVal::Str(s) = v {
                    m.insert(names.next().unwrap().to_string(), Value::from(s.clone()));
                }
            }
            m
        };
        match time_at {
            None => {
                let mut v: Vec<(Vec<GroupVal>, u64)> = self.groups.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                if let Some(n) = top {
                    v.truncate(n);
                }
                v.into_iter()
                    .map(|(g, c)| Series {
                        labels: labels_of(&g),
                        value: Some(c),
                        points: None,
                    })
                    .collect()
            }
            Some(ti) => {
                let mut by: HashMap<Vec<GroupVal>, Vec<(i64, u64)>> = HashMap::new();
                for (mut g, c) in self.groups {
                    let GroupVal::Time(t) = g.remove(ti) else {
                        unreachable!("time key position")
                    };
                    by.entry(g).or_default().push((t, c));
                }
                let mut v: Vec<(Vec<GroupVal>, Points)> = by.into_iter().collect();
                let total = |p: &Vec<(i64, u64)>| p.iter().map(|x| x.1).sum::<u64>();
                v.sort_by(|a, b| total(&b.1).cmp(&total(&a.1)).then_with(|| a.0.cmp(&b.0)));
                if let Some(n) = top {
                    v.truncate(n);
                }
                v.into_iter()
                    .map(|(g, mut pts)| {
                        pts.sort_unstable();
                        Series {
                            labels: labels_of(&g),
                            value: None,
                            points: Some(
                                pts.into_iter()
                                    .map(|(t, c)| {
                                        (sightline_pipeline::timefmt::format_rfc3339_nanos(t), c)
                                    })
                                    .collect(),
                            ),
                        }
                    })
                    .collect()
            }
        }
    }
}

fn level_name(sev: u8) -> &'static str {
    Level::from_u8(sev).map_or("", |l| l.as_str())
}

impl Sink for AggSink {
    fn columns(&self) -> BTreeSet<&'static str> {
        let mut c = BTreeSet::new();
        for k in &self.keys {
            match k {
                Key::Time(_) => c.insert("timestamp"),
                Key::Field(Field::Column(Column::Level), _) => c.insert("severity"),
                Key::Field(Field::Column(col), _) => c.insert(col.name()),
                Key::Field(Field::Attr(_), _) => c.insert("attributes"),
                Key::Field(Field::Text, _) => false,
            };
        }
        if c.is_empty() {
            // Counting needs some column to know how many rows matched.
            c.insert("severity");
        }
        c
    }

    fn push(&mut self, b: &RecordBatch) -> Result<(), QueryError> {
        let n = b.num_rows();
        // Every key of a row becomes an i64 code (time bucket, severity, or an
        // index into a per-batch dictionary of strings borrowed from the batch);
        // rows are counted by their fixed-size code array, so the hot loop
        // neither allocates nor hashes strings twice.
        enum Src<'a> {
            Time(&'a TimestampNanosecondArray, i64),
            Str(Strings<'a>),
            Sev(&'a UInt8Array),
            Attr(&'a StringArray, &'a str),
        }
        let mut srcs = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            srcs.push(match k {
                Key::Time(w) => Src::Time(get::<TimestampNanosecondArray>(b, "timestamp")?, *w),
                Key::Field(Field::Column(Column::Level), _) => {
                    Src::Sev(get::<UInt8Array>(b, "severity")?)
                }
                Key::Field(Field::Column(c), _) => Src::Str(Strings::of(b, c.name())?),
                Key::Field(Field::Attr(p), _) => Src::Attr(get::<StringArray>(b, "attributes")?, p),
                Key::Field(Field::Text, _) => unreachable!("refused in new()"),
            });
        }
        let nk = srcs.len();
        // One code column per key.
        let mut codes: Vec<Vec<i64>> = vec![Vec::with_capacity(n); nk];
        let mut dicts: Vec<Dict<'_>> = (0..nk).map(|_| Dict::default()).collect();
        let mut owned: Vec<Vec<String>> = vec![Vec::new(); nk];
        for (k, s) in srcs.iter().enumerate() {
            let out = &mut codes[k];
            match s {
                Src::Time(ts, w) => out.extend(
                    ts.values()
                        .iter()
                        .map(|t| t.div_euclid(*w).saturating_mul(*w)),
                ),
                Src::Sev(a) => out.extend(a.values().iter().map(|v| *v as i64)),
                Src::Str(Strings::Plain(a)) => {
                    let d = &mut dicts[k];
                    for i in 0..n {
                        out.push(d.code(if a.is_null(i) { "" } else { a.value(i) }));
                    }
                }
                Src::Str(Strings::Dict(keys, values)) => {
                    // One code per dictionary value, then per row by key.
                    let d = &mut dicts[k];
                    let by_key: Vec<i64> = (0..values.len())
                        .map(|j| {
                            d.code(if values.is_null(j) {
                                ""
                            } else {
                                values.value(j)
                            })
                        })
                        .collect();
                    let empty = d.code("");
                    for i in 0..n {
                        out.push(if keys.is_null(i) {
                            empty
                        } else {
                            by_key[keys.keys().value(i) as usize]
                        });
                    }
                }
                Src::Attr(a, p) => {
                    let mut seen: FastMap<String, i64> = FastMap::default();
                    for i in 0..n {
                        let v = attr_value(a.value(i), p)
                            .map(|v| json_text(&v))
                            .unwrap_or_default();
                        let next = seen.len() as i64;
                        out.push(*seen.entry(v.clone()).or_insert_with(|| {
                            owned[k].push(v);
                            next
                        }));
                    }
                }
            }
        }
        // Count rows by their codes: the narrowest key type that holds them.
        let mut local: Vec<([i64; MAX_KEYS], u64)> = Vec::new();
        match nk {
            0 => local.push(([0; MAX_KEYS], n as u64)),
            1 => {
                let mut m: FastMap<i64, u64> = FastMap::default();
                for c in &codes[0] {
                    *m.entry(*c).or_insert(0) += 1;
                }
                local.extend(m.into_iter().map(|(a, c)| {
                    let mut k = [0; MAX_KEYS];
                    k[0] = a;
                    (k, c)
                }));
            }
            2 => {
                let mut m: FastMap<(i64, i64), u64> = FastMap::default();
                for (a, b) in codes[0].iter().zip(&codes[1]) {
                    *m.entry((*a, *b)).or_insert(0) += 1;
                }
                local.extend(m.into_iter().map(|((a, b), c)| {
                    let mut k = [0; MAX_KEYS];
                    k[0] = a;
                    k[1] = b;
                    (k, c)
                }));
            }
            _ => {
                let mut m: FastMap<[i64; MAX_KEYS], u64> = FastMap::default();
                for i in 0..n {
                    let mut k = [0; MAX_KEYS];
                    for (j, col) in codes.iter().enumerate() {
                        k[j] = col[i];
                    }
                    *m.entry(k).or_insert(0) += 1;
                }
                local.extend(m);
            }
        }
        for (row, c) in local {
            let key: Vec<GroupVal> = (0..nk)
                .map(|k| match &srcs[k] {
                    Src::Time(..) => GroupVal::Time(row[k]),
                    Src::Sev(_) => GroupVal::Str(level_name(row[k] as u8).to_string()),
                    Src::Str(_) => GroupVal::Str(dicts[k].values[row[k] as usize].to_string()),
                    Src::Attr(..) => GroupVal::Str(owned[k][row[k] as usize].clone()),
                })
                .collect();
            *self.groups.entry(key).or_insert(0) += c;
        }
        self.check_groups()
    }

    fn fork(&self) -> Option<Self> {
        Some(AggSink {
            keys: self.keys.clone(),
            groups: HashMap::new(),
            max_groups: self.max_groups,
        })
    }

    fn merge(&mut self, other: Self) -> Result<(), QueryError> {
        for (k, c) in other.groups {
            *self.groups.entry(k).or_insert(0) += c;
        }
        self.check_groups()
    }
}

impl AggSink {
    fn check_groups(&self) -> Result<(), QueryError> {
        if self.groups.len() > self.max_groups {
            return Err(QueryError::TooExpensive(format!(
                "more than {} groups: group by fewer or coarser keys, or narrow the query",
                self.max_groups
            )));
        }
        Ok(())
    }
}

/// Values of one field and how often each was seen.
#[derive(Debug, Clone, Serialize)]
pub struct Facet {
    pub name: String,
    pub count: u64,
    pub values: Vec<FacetValue>,
    /// More distinct values were seen than were tracked.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Default)]
struct FieldCounts {
    count: u64,
    values: HashMap<String, u64>,
    truncated: bool,
}

/// The fields seen in the newest `max_rows` matching rows, with top values.
#[derive(Debug)]
pub struct FacetSink {
    pub max_rows: usize,
    pub rows: usize,
    fields: HashMap<String, FieldCounts>,
}

/// Distinct values tracked per field, fields tracked, value length kept.
const FACET_VALUES: usize = 1000;
const FACET_FIELDS: usize = 500;
const FACET_VALUE_CHARS: usize = 200;

impl FacetSink {
    pub fn new(max_rows: usize) -> FacetSink {
        FacetSink {
            max_rows,
            rows: 0,
            fields: HashMap::new(),
        }
    }

    fn add(&mut self, name: &str, value: &str) {
        if !self.fields.contains_key(name) && self.fields.len() >= FACET_FIELDS {
            return;
        }
        let f = self.fields.entry(name.to_string()).or_default();
        f.count += 1;
        let v: &str = match value.char_indices().nth(FACET_VALUE_CHARS) {
            Some((i, _)) => &value[..i],
            None => value,
        };
        if let Some(c) = f.values.get_mut(v) {
            *c += 1;
        } else if f.values.len() < FACET_VALUES {
            f.values.insert(v.to_string(), 1);
        } else {
            f.truncated = true;
        }
    }

    pub fn finish(self, top: usize) -> Vec<Facet> {
        let mut out: Vec<Facet> = self
            .fields
            .into_iter()
            .map(|(name, f)| {
                let mut values: Vec<FacetValue> = f
                    .values
                    .into_iter()
                    .map(|(value, count)| FacetValue { value, count })
                    .collect();
                values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
                values.truncate(top);
                Facet {
                    name,
                    count: f.count,
                    values,
                    truncated: f.truncated,
                }
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        out
    }
}

/// Columns summarized as facets (ids are too unique to be useful facets).
const FACET_COLUMNS: [&str; 5] = ["service", "environment", "logger", "host", "message"];

impl Sink for FacetSink {
    fn columns(&self) -> BTreeSet<&'static str> {
        let mut c: BTreeSet<&'static str> = FACET_COLUMNS.into_iter().collect();
        c.insert("severity");
        c.insert("attributes");
        c
    }

    fn ordered(&self) -> bool {
        true
    }

    fn wants(&self, _max_ts: i64) -> bool {
        self.rows < self.max_rows
    }

    fn push(&mut self, b: &RecordBatch) -> Result<(), QueryError> {
        let n = b.num_rows().min(self.max_rows.saturating_sub(self.rows));
        let sev = get::<UInt8Array>(b, "severity")?;
        let attrs = get::<StringArray>(b, "attributes")?;
        for i in 0..n {
            self.add("level", level_name(sev.value(i)));
        }
        for c in FACET_COLUMNS {
            let a = Strings::of(b, c)?;
            let name = if c == "message" { "event" } else { c };
            for i in 0..n {
                if let Some(v) = a.value(i) {
                    self.add(name, v);
                }
            }
        }
        for i in 0..n {
            if let Ok(m) = Members::parse(attrs.value(i)) {
                for (k, v) in &m.0 {
                    if let Some(t) = raw_text(v) {
                        self.add(k, &t);
                    }
                }
            }
        }
        self.rows += n;
        Ok(())
    }

    /// Facets are of the newest `max_rows` rows: one thread, newest first
    /// (forks would each count their own `max_rows`).
    fn fork(&self) -> Option<Self> {
        None
    }

    fn merge(&mut self, other: Self) -> Result<(), QueryError> {
        self.rows += other.rows;
        for (name, f) in other.fields {
            if !self.fields.contains_key(&name) && self.fields.len() >= FACET_FIELDS {
                continue;
            }
            let mine = self.fields.entry(name).or_default();
            mine.count += f.count;
            mine.truncated |= f.truncated;
            for (v, c) in f.values {
                if let Some(m) = mine.values.get_mut(&v) {
                    *m += c;
                } else if mine.values.len() < FACET_VALUES {
                    mine.values.insert(v, c);
                } else {
                    mine.truncated = true;
                }
            }
        }
        Ok(())
    }
}
