//! The executor: plans a filter against a store snapshot (time pruning from
//! the manifest and row-group statistics, service/severity statistics, bloom
//! filters on the id columns), reads only the row groups and columns needed
//! with the filter pushed into the Parquet reader (late materialization), and
//! streams the surviving batches into a sink (logs page, aggregation, facets,
//! flows) under a deadline.

use crate::eval::Filter;
use crate::lang::{CmpOp, Column, Expr, Field, Match};
use crate::QueryError;
use arrow::array::{Array, BooleanArray, RecordBatch, StringArray, TimestampNanosecondArray};
use parking_lot::Mutex;
use parquet::arrow::arrow_reader::{
    ArrowPredicate, ArrowPredicateFn, ArrowReaderMetadata, ArrowReaderOptions,
    ParquetRecordBatchReaderBuilder, RowFilter,
};
use parquet::arrow::ProjectionMask;
use parquet::bloom_filter::Sbbf;
use parquet::file::statistics::Statistics;
use sightline_pipeline::LogRecord;
use sightline_store::{part, Snapshot};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Rows per batch read from a part.
pub const READ_BATCH_ROWS: usize = 8192;

/// What a scan reports about the work it did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ScanStats {
    pub parts_total: usize,
    pub parts_read: usize,
    pub row_groups_total: usize,
    pub row_groups_read: usize,
    pub head_rows: usize,
    pub rows_matched: usize,
}

/// Where matching rows go. Batches hold the part schema's columns named by
/// `columns()` (or all of them), and only rows that matched.
pub trait Sink {
    /// Part columns the sink reads from matching rows.
    fn columns(&self) -> BTreeSet<&'static str>;
    /// Whether rows at or before `max_ts` can still change the answer
    /// (newest-first sinks stop once they are full).
    fn wants(&self, _max_ts: i64) -> bool {
        true
    }
    /// Whether batches must come newest first (else the head is not sorted).
    fn ordered(&self) -> bool {
        false
    }
    fn push(&mut self, batch: &RecordBatch) -> Result<(), QueryError>;
    /// An empty sink of the same kind for another scanning thread, or `None`
    /// when the sink must see every row on one thread.
    fn fork(&self) -> Option<Self>
    where
        Self: Sized;
    /// Takes in what a forked sink gathered.
    fn merge(&mut self, other: Self) -> Result<(), QueryError>
    where
        Self: Sized;
}

/// The filter split for the reader: conjuncts ordered cheapest first, and
/// what statistics and bloom filters can prune.
#[derive(Debug)]
pub struct Plan {
    pub filter: Filter,
    conjuncts: Vec<(Filter, BTreeSet<&'static str>, Expr)>,
    pub start_ns: i64,
    pub end_ns: i64,
    service: Option<String>,
    ids: Vec<(&'static str, String)>,
    min_severity: Option<u8>,
    max_severity: Option<u8>,
}

fn cost(cols: &BTreeSet<&'static str>) -> u8 {
    if cols.contains("attributes") {
        4
    } else if cols.contains("message") || cols.contains("exception") {
        3
    } else if cols.contains("severity") {
        1
    } else {
        2
    }
}

impl Plan {
    pub fn new(expr: &Expr, start_ns: i64, end_ns: i64) -> Plan {
        let parts: Vec<&Expr> = match expr {
            Expr::And(v) => v.iter().collect(),
            Expr::All => vec![],
            e => vec![e],
        };
        let (mut service, mut ids, mut min_sev, mut max_sev) = (None, Vec::new(), None, None);
        for e in &parts {
            let Expr::Term(t) = e else { continue };
            match (&t.field, &t.op) {
                (Field::Column(Column::Service), Match::Eq(v)) => service = Some(v.clone()),
                (Field::Column(c), Match::Eq(v)) if c.has_bloom() => {
                    ids.push((c.name(), v.clone()))
                }
                (Field::Column(Column::Level), Match::Cmp(_, v) | Match::Eq(v)) => {
                    let Some(s) = sightline_pipeline::Level::parse(v).map(|l| l.severity()) else {
                        continue;
                    };
                    match &t.op {
                        Match::Eq(_) => {
                            min_sev = Some(s);
                            max_sev = Some(s);
                        }
                        Match::Cmp(CmpOp::Ge | CmpOp::Gt, _) => min_sev = Some(s),
                        Match::Cmp(CmpOp::Le | CmpOp::Lt, _) => max_sev = Some(s),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        let mut conjuncts: Vec<(Filter, BTreeSet<&'static str>, Expr)> = parts
            .iter()
            .map(|e| {
                let f = Filter::new(e);
                let mut cols = BTreeSet::new();
                f.columns(&mut cols);
                (f, cols, (*e).clone())
            })
            .collect();
        conjuncts.sort_by_key(|(_, c, _)| cost(c));
        Plan {
            filter: Filter::new(expr),
            conjuncts,
            start_ns,
            end_ns,
            service,
            ids,
            min_severity: min_sev,
            max_severity: max_sev,
        }
    }

    fn head_candidate(&self, r: &LogRecord) -> bool {
        r.timestamp_ns >= self.start_ns
            && r.timestamp_ns < self.end_ns
            && self.service.as_ref().is_none_or(|s| *s == r.service)
            && self.ids.iter().all(|(c, v)| {
                let got = match *c {
                    "request_id" => r.request_id.as_deref(),
                    "flow_id" => r.flow_id.as_deref(),
                    "trace_id" => r.trace_id.as_deref(),
                    _ => r.user_id.as_deref(),
                };
                got == Some(v.as_str())
            })
    }
}

/// Footers of parts already opened (parts are immutable: a part id and size
/// name the same bytes for its whole life).
#[derive(Debug, Default)]
pub struct MetaCache {
    map: Mutex<HashMap<(i64, i64, String), ArrowReaderMetadata>>,
    /// Bloom filters read so far, by (part id, part bytes, row group, column);
    /// `None` when the column chunk has none. Bounded by `BLOOM_CACHE_BYTES`.
    blooms: Mutex<BloomCache>,
}

#[derive(Debug, Default)]
struct BloomCache {
    map: HashMap<(i64, i64, usize, usize), Option<std::sync::Arc<Sbbf>>>,
    bytes: usize,
}

/// Memory kept for cached bloom filters (an id lookup then reads no filter
/// from disk: at 100M lines that is ~750 filters per lookup).
pub const BLOOM_CACHE_BYTES: usize = 64 << 20;

impl MetaCache {
    /// A row group's bloom filter for a column, from memory when seen before.
    pub(crate) fn bloom(
        &self,
        builder: &ParquetRecordBatchReaderBuilder<File>,
        p: &sightline_store::manifest::PartMeta,
        rg: usize,
        col: usize,
    ) -> Result<Option<std::sync::Arc<Sbbf>>, QueryError> {
        let key = (p.id, p.bytes, rg, col);
        if let Some(b) = self.blooms.lock().map.get(&key) {
            return Ok(b.clone());
        }
        let b = builder
            .get_row_group_column_bloom_filter(rg, col)?
            .map(std::sync::Arc::new);
        let size = b.as_ref().map_or(0, |b| b.num_blocks() * 32) + 64;
        let mut c = self.blooms.lock();
        if c.bytes + size > BLOOM_CACHE_BYTES {
            // Full: start over rather than track recency (parts are read
            // newest first, so the recent ones come back first).
            c.map.clear();
            c.bytes = 0;
        }
        c.bytes += size;
        c.map.insert(key, b.clone());
        Ok(b)
    }
}

/// Low-cardinality string columns, read from parts as dictionaries: filters
/// run once per distinct value and group-bys count by key, instead of per row.
pub const DICT_COLUMNS: [&str; 5] = ["service", "environment", "message", "logger", "host"];

/// The part schema as the executor reads it (`DICT_COLUMNS` as dictionaries).
pub fn read_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field as ArrowField, Schema};
    static S: std::sync::OnceLock<arrow::datatypes::SchemaRef> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let fields: Vec<ArrowField> = part::schema()
            .fields()
            .iter()
            .map(|f| {
                if DICT_COLUMNS.contains(&f.name().as_str()) {
                    ArrowField::new(
                        f.name(),
                        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                        f.is_nullable(),
                    )
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        std::sync::Arc::new(Schema::new_with_metadata(
            fields,
            part::schema().metadata().clone(),
        ))
    })
    .clone()
}

/// A batch with dictionary columns turned back into plain strings (for
/// code that builds records).
pub fn plain(b: &RecordBatch) -> Result<RecordBatch, QueryError> {
    use arrow::datatypes::DataType;
    if !b
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::Dictionary(..)))
    {
        return Ok(b.clone());
    }
    let mut fields = Vec::with_capacity(b.num_columns());
    let mut cols = Vec::with_capacity(b.num_columns());
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        if matches!(c.data_type(), DataType::Dictionary(..)) {
            cols.push(arrow::compute::cast(c, &DataType::Utf8)?);
            fields.push(arrow::datatypes::Field::new(
                f.name(),
                DataType::Utf8,
                f.is_nullable(),
            ));
        } else {
            cols.push(c.clone());
            fields.push(f.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        cols,
    )?)
}

/// A string column of a scanned batch, plain or dictionary encoded.
#[derive(Debug, Clone, Copy)]
pub enum Strings<'a> {
    Plain(&'a StringArray),
    Dict(&'a arrow::array::Int32DictionaryArray, &'a StringArray),
}

impl<'a> Strings<'a> {
    pub fn of(b: &'a RecordBatch, name: &str) -> Result<Strings<'a>, QueryError> {
        let a = b
            .column_by_name(name)
            .ok_or_else(|| QueryError::Internal(format!("scanned batch lacks column {name}")))?;
        if let Some(p) = a.as_any().downcast_ref::<StringArray>() {
            return Ok(Strings::Plain(p));
        }
        if let Some(d) = a
            .as_any()
            .downcast_ref::<arrow::array::Int32DictionaryArray>()
        {
            if let Some(v) = d.values().as_any().downcast_ref::<StringArray>() {
                return Ok(Strings::Dict(d, v));
            }
        }
        Err(QueryError::Internal(format!(
            "{name} is not a string column"
        )))
    }

    pub fn value(&self, i: usize) -> Option<&'a str> {
        match self {
            Strings::Plain(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::Dict(d, v) => {
                if d.is_null(i) {
                    return None;
                }
                let k = d.keys().value(i) as usize;
                (!v.is_null(k)).then(|| v.value(k))
            }
        }
    }
}

/// Most part footers kept.
const META_CACHE_ENTRIES: usize = 4096;

impl MetaCache {
    fn get(
        &self,
        snap: &Snapshot,
        p: &sightline_store::manifest::PartMeta,
    ) -> Result<(ArrowReaderMetadata, File), QueryError> {
        self.footer(&snap.data_dir, p, read_schema(), part::check, false)
    }

    /// A part's footer read with `schema`, checked by `check`, from memory
    /// when seen before; `column_index`: also the pages' min/max (for page
    /// pruning). One cache serves one store (part ids are per store).
    pub(crate) fn footer(
        &self,
        data_dir: &std::path::Path,
        p: &sightline_store::manifest::PartMeta,
        schema: arrow::datatypes::SchemaRef,
        check: fn(
            &parquet::file::metadata::ParquetMetaData,
            &std::path::Path,
        ) -> Result<(), sightline_store::StoreError>,
        column_index: bool,
    ) -> Result<(ArrowReaderMetadata, File), QueryError> {
        let path = data_dir.join(&p.path);
        let key = (p.id, p.bytes, p.path.clone());
        if let Some(m) = self.map.lock().get(&key) {
            return Ok((m.clone(), File::open(&path)?));
        }
        // The offset index (page locations) lets the reader skip, without
        // decompressing, every page holding none of the rows a filter kept.
        let optional = parquet::file::metadata::PageIndexPolicy::Optional;
        let options = ArrowReaderOptions::new()
            .with_schema(schema)
            .with_offset_index_policy(optional);
        let options = if column_index {
            options.with_column_index_policy(optional)
        } else {
            options
        };
        let meta = ArrowReaderMetadata::load(&File::open(&path)?, options).map_err(|e| {
            sightline_store::StoreError::Corrupt(format!("{}: {e}", path.display()))
        })?;
        check(meta.metadata(), &path)?;
        let mut map = self.map.lock();
        if map.len() >= META_CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key, meta.clone());
        Ok((meta, File::open(&path)?))
    }
}

/// One query's budget.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
}

impl Budget {
    pub fn check(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            Err(QueryError::Timeout)
        } else {
            Ok(())
        }
    }
}

struct Group {
    part: usize,
    rg: usize,
    max_ts: i64,
    /// Every row of the group is inside the time range.
    inside: bool,
}

fn i64_stats(s: Option<&Statistics>) -> Option<(i64, i64)> {
    match s {
        Some(Statistics::Int64(s)) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

/// Runs the plan over the snapshot in newest-first order, feeding `sink`.
pub fn scan<S: Sink + Send>(
    snap: &Snapshot,
    cache: &MetaCache,
    plan: &Plan,
    budget: Budget,
    sink: &mut S,
) -> Result<ScanStats, QueryError> {
    let mut stats = ScanStats::default();
    // The head: records in memory, filtered row by row, then handed over as
    // one batch per chunk.
    let mut head: Vec<&LogRecord> = Vec::new();
    for c in &snap.chunks {
        for r in c.iter() {
            if plan.head_candidate(r) && plan.filter.matches_record(r) {
                head.push(r);
            }
        }
        stats.head_rows += c.len();
    }
    if sink.ordered() {
        head.sort_by_key(|r| std::cmp::Reverse(r.timestamp_ns));
    }
    let wanted: Vec<&str> = sink.columns().into_iter().collect();
    for rows in head.chunks(READ_BATCH_ROWS) {
        budget.check()?;
        if sink.ordered() && !sink.wants(rows[0].timestamp_ns) {
            break;
        }
        stats.rows_matched += rows.len();
        sink.push(&part::to_batch_of(rows, &wanted))?;
    }

    // Parts: prune by the manifest's time range, then row groups by statistics
    // and bloom filters; read newest groups first.
    let parts: Vec<_> = snap
        .parts
        .iter()
        .filter(|p| p.max_ts >= plan.start_ns && p.min_ts < plan.end_ns)
        .collect();
    stats.parts_total = snap.parts.len();
    let mut metas = Vec::with_capacity(parts.len());
    let mut groups: Vec<Group> = Vec::new();
    let sev_idx = part::col_index("severity");
    let svc_idx = part::col_index("service");
    for (pi, p) in parts.iter().enumerate() {
        let (meta, file) = cache.get(snap, p)?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
        'rg: for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
            stats.row_groups_total += 1;
            let (lo, hi) = i64_stats(rg.column(0).statistics()).unwrap_or((i64::MIN, i64::MAX));
            if hi < plan.start_ns || lo >= plan.end_ns {
                continue;
            }
            if let Some(svc) = &plan.service {
                if let Some(Statistics::ByteArray(s)) = rg.column(svc_idx).statistics() {
                    if let (Some(min), Some(max)) = (s.min_opt(), s.max_opt()) {
                        let svc = svc.as_bytes();
                        if svc < min.data() || svc > max.data() {
                            continue;
                        }
                    }
                }
            }
            if plan.min_severity.is_some() || plan.max_severity.is_some() {
                if let Some(Statistics::Int32(s)) = rg.column(sev_idx).statistics() {
                    if let (Some(min), Some(max)) = (s.min_opt(), s.max_opt()) {
                        if plan.min_severity.is_some_and(|m| (*max as u8) < m)
                            || plan.max_severity.is_some_and(|m| (*min as u8) > m)
                        {
                            continue;
                        }
                    }
                }
            }
            for (name, want) in &plan.ids {
                if let Some(sbbf) = cache.bloom(&builder, p, i, part::col_index(name))? {
                    if !sbbf.check(&want.as_str()) {
                        continue 'rg;
                    }
                }
            }
            groups.push(Group {
                part: pi,
                rg: i,
                max_ts: hi,
                inside: lo >= plan.start_ns && hi < plan.end_ns,
            });
        }
        metas.push(meta);
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.max_ts));
    let out_cols = sink.columns();
    // Row groups are read by up to one thread per core, each into its own fork
    // of the sink, taking the next-newest group from a shared counter.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_SCAN_THREADS)
        .min(groups.len());
    let next = AtomicUsize::new(0);
    let ctx = GroupReader {
        snap,
        plan,
        parts: &parts,
        metas: &metas,
        out_cols: &out_cols,
        budget,
    };
    let forks: Vec<S> = if threads > 1 {
        (1..threads).filter_map(|_| sink.fork()).collect()
    } else {
        Vec::new()
    };
    let parts_read: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());
    let results: Vec<Result<(S, WorkerStats), QueryError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = forks
            .into_iter()
            .map(|mut f| {
                let (ctx, groups, next) = (&ctx, &groups, &next);
                let parts_read = &parts_read;
                sc.spawn(move || {
                    let w = ctx.drain(groups, next, &mut f)?;
                    parts_read.lock().extend(w.parts.iter().copied());
                    Ok((f, w))
                })
            })
            .collect();
        let mine = ctx.drain(&groups, &next, sink);
        let mut out: Vec<Result<(S, WorkerStats), QueryError>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(QueryError::Internal("a scan thread panicked".into())))
            })
            .collect();
        match mine {
            Ok(w) => {
                stats.merge(&w);
                parts_read.lock().extend(w.parts.iter().copied());
            }
            Err(e) => out.push(Err(e)),
        }
        out
    });
    for r in results {
        let (f, w) = r?;
        stats.merge(&w);
        sink.merge(f)?;
    }
    stats.parts_read = parts_read.into_inner().len();
    Ok(stats)
}

/// Whether a row group's statistics make a conjunct true for every row (then
/// it is not evaluated): `service:x` where the group holds only `x`, level
/// bounds every row satisfies.
fn implied(e: &Expr, rg: &parquet::file::metadata::RowGroupMetaData) -> bool {
    let Expr::Term(t) = e else { return false };
    match (&t.field, &t.op) {
        (Field::Column(Column::Service), Match::Eq(v)) => {
            match rg.column(part::col_index("service")).statistics() {
                Some(Statistics::ByteArray(s)) => {
                    matches!((s.min_opt(), s.max_opt()), (Some(a), Some(b))
                        if a.data() == v.as_bytes() && b.data() == v.as_bytes())
                        && s.null_count_opt() == Some(0)
                }
                _ => false,
            }
        }
        (Field::Column(Column::Level), Match::Eq(v) | Match::Cmp(_, v)) => {
            let Some(want) = sightline_pipeline::Level::parse(v).map(|l| l.severity() as i32)
            else {
                return false;
            };
            let Some(Statistics::Int32(s)) = rg.column(part::col_index("severity")).statistics()
            else {
                return false;
            };
            let (Some(&lo), Some(&hi)) = (s.min_opt(), s.max_opt()) else {
                return false;
            };
            match &t.op {
                Match::Eq(_) => lo == want && hi == want,
                Match::Cmp(CmpOp::Ge, _) => lo >= want,
                Match::Cmp(CmpOp::Gt, _) => lo > want,
                Match::Cmp(CmpOp::Le, _) => hi <= want,
                Match::Cmp(CmpOp::Lt, _) => hi < want,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Most threads one scan uses.
pub const MAX_SCAN_THREADS: usize = 4;

#[derive(Debug, Default)]
struct WorkerStats {
    row_groups_read: usize,
    rows_matched: usize,
    parts: BTreeSet<usize>,
}

impl ScanStats {
    fn merge(&mut self, w: &WorkerStats) {
        self.row_groups_read += w.row_groups_read;
        self.rows_matched += w.rows_matched;
    }
}

/// What every scanning thread shares.
struct GroupReader<'a> {
    snap: &'a Snapshot,
    plan: &'a Plan,
    parts: &'a [&'a std::sync::Arc<sightline_store::manifest::PartMeta>],
    metas: &'a [ArrowReaderMetadata],
    out_cols: &'a BTreeSet<&'static str>,
    budget: Budget,
}

impl GroupReader<'_> {
    /// Reads groups (newest first, shared with other threads) into `sink`
    /// until none is left or the sink wants no older rows.
    fn drain<S: Sink>(
        &self,
        groups: &[Group],
        next: &AtomicUsize,
        sink: &mut S,
    ) -> Result<WorkerStats, QueryError> {
        let mut w = WorkerStats::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(g) = groups.get(i) else { break };
            self.budget.check()?;
            if !sink.wants(g.max_ts) {
                // Groups are sorted newest first: nothing after this one either.
                break;
            }
            w.parts.insert(g.part);
            w.row_groups_read += 1;
            self.read(g, sink, &mut w)?;
        }
        Ok(w)
    }

    fn read<S: Sink>(
        &self,
        g: &Group,
        sink: &mut S,
        w: &mut WorkerStats,
    ) -> Result<(), QueryError> {
        let (plan, out_cols) = (self.plan, self.out_cols);
        let p = self.parts[g.part];
        let file = File::open(self.snap.data_dir.join(&p.path))?;
        let meta = &self.metas[g.part];
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
        let schema = meta.parquet_schema();
        let mask = |cols: &BTreeSet<&'static str>| {
            ProjectionMask::roots(schema, cols.iter().map(|c| part::col_index(c)))
        };
        let mut preds: Vec<Box<dyn ArrowPredicate>> = Vec::new();
        if !g.inside {
            let (st, en) = (plan.start_ns, plan.end_ns);
            preds.push(Box::new(ArrowPredicateFn::new(
                mask(&BTreeSet::from(["timestamp"])),
                move |b: RecordBatch| {
                    let ts = b
                        .column(0)
                        .as_any()
                        .downcast_ref::<TimestampNanosecondArray>()
                        .expect("timestamp column");
                    Ok(ts
                        .values()
                        .iter()
                        .map(|t| Some(*t >= st && *t < en))
                        .collect::<BooleanArray>())
                },
            )));
        }
        let rg = meta.metadata().row_group(g.rg);
        for (f, cols, e) in &plan.conjuncts {
            if matches!(f, Filter::All) || implied(e, rg) {
                continue;
            }
            // A conjunct that reads no column (`NOT *`) still needs rows to
            // count: give it the narrowest one.
            let cols = if cols.is_empty() {
                &BTreeSet::from(["severity"])
            } else {
                cols
            };
            let f = f.clone();
            preds.push(Box::new(ArrowPredicateFn::new(
                mask(cols),
                move |b: RecordBatch| f.eval(&b),
            )));
        }
        let mut builder = builder
            .with_row_groups(vec![g.rg])
            .with_batch_size(READ_BATCH_ROWS)
            .with_projection(mask(out_cols));
        if !preds.is_empty() {
            builder = builder.with_row_filter(RowFilter::new(preds));
        }
        for batch in builder.build()? {
            let batch = batch?;
            self.budget.check()?;
            if batch.num_rows() == 0 {
                continue;
            }
            w.rows_matched += batch.num_rows();
            sink.push(&batch)?;
        }
        Ok(())
    }
}

/// Retries a scan when a part was compacted away between the snapshot and
/// opening it.
pub fn with_retry<T>(mut f: impl FnMut() -> Result<T, QueryError>) -> Result<T, QueryError> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(QueryError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && attempt < 3 => {
                attempt += 1
            }
            Err(QueryError::Store(sightline_store::StoreError::Io(e)))
                if e.kind() == std::io::ErrorKind::NotFound && attempt < 3 =>
            {
                attempt += 1
            }
            other => return other,
        }
    }
}

/// Every part column: what a sink that returns whole records reads.
pub fn all_columns() -> BTreeSet<&'static str> {
    part::COLUMNS.iter().copied().collect()
}

/// A column of a scanned batch by name and type.
pub fn get<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, QueryError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| QueryError::Internal(format!("scanned batch lacks column {name}")))
}
