//! Reading the span store: one trace by id, the spans of a request, trace
//! search, and the span tree (offsets, durations, depth) the APIs answer with.
//!
//! Lookups prune parts by row-group statistics (parts are sorted by trace id,
//! so a trace id falls in one group's min/max) and bloom filters (trace id and
//! request id), then push the equality into the Parquet reader as a row filter:
//! only the matching rows' wide columns are decoded.

use crate::exec::{with_retry, Budget, MetaCache};
use crate::QueryError;
use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;
use serde::Serialize;
use serde_json::{json, Value};
use sightline_pipeline::timefmt::format_rfc3339_nanos;
use sightline_pipeline::Span;
use sightline_store::spans::{self, SpanStore, Spans};
use sightline_store::Snapshot;
use std::collections::{HashMap, HashSet};

/// Most spans one lookup returns (a runaway trace is cut, and says so).
pub const MAX_TRACE_SPANS: usize = 50_000;
/// Most traces a request id expands to.
pub const MAX_REQUEST_TRACES: usize = 16;

/// What a trace search asks for; every condition holds for one span.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub name: Option<String>,
    /// Only spans with status `error`.
    pub error: bool,
    pub min_duration_ns: Option<i64>,
    pub start_ns: i64,
    pub end_ns: i64,
    pub limit: usize,
}

impl TraceQuery {
    fn matches(&self, service: &str, name: &str, start: i64, dur: i64, status: &str) -> bool {
        start >= self.start_ns
            && start < self.end_ns
            && self.service.as_deref().is_none_or(|s| s == service)
            && self.name.as_deref().is_none_or(|n| n == name)
            && (!self.error || status == "error")
            && self.min_duration_ns.is_none_or(|m| dur >= m)
    }
}

/// One trace in a search answer.
#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The root span's name (the earliest span without a parent in the trace).
    pub root: String,
    pub service: String,
    pub start: String,
    pub start_ns: i64,
    pub duration_ms: f64,
    /// `error` when any span failed, else the root's status.
    pub status: String,
    pub spans: usize,
    pub errors: usize,
    pub services: Vec<String>,
    pub request_ids: Vec<String>,
}

/// Reads the span store; holds its part footers and bloom filters between queries.
#[derive(Debug, Default)]
pub struct Traces {
    cache: MetaCache,
}

fn str_col<'a>(b: &'a RecordBatch, name: &str) -> &'a StringArray {
    b.column_by_name(name)
        .expect("projected column")
        .as_string::<i32>()
}

impl Traces {
    pub fn new() -> Traces {
        Traces::default()
    }

    /// Every span of a trace, in start order.
    pub fn trace(&self, store: &SpanStore, trace_id: &str) -> Result<Vec<Span>, QueryError> {
        let id = trace_id.to_ascii_lowercase();
        let mut spans = with_retry(|| self.lookup(&store.snapshot(), "trace_id", &id))?;
        spans.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
        spans.dedup_by(|a, b| a.span_id == b.span_id && a.start_ns == b.start_ns);
        Ok(spans)
    }

    /// The spans of a request: every trace holding a span with this request
    /// id, whole (child spans rarely carry the id themselves).
    pub fn request(&self, store: &SpanStore, request_id: &str) -> Result<Vec<Span>, QueryError> {
        let tagged = with_retry(|| self.lookup(&store.snapshot(), "request_id", request_id))?;
        let mut traces: Vec<&str> = Vec::new();
        for s in &tagged {
            if !traces.contains(&s.trace_id.as_str()) && traces.len() < MAX_REQUEST_TRACES {
                traces.push(&s.trace_id);
            }
        }
        let mut out = Vec::new();
        for t in traces {
            out.extend(self.trace(store, t)?);
        }
        Ok(out)
    }

    /// Spans whose `column` equals `value`: head rows, then the part row
    /// groups that statistics and bloom filters cannot rule out.
    fn lookup(
        &self,
        snap: &Snapshot<Spans>,
        column: &'static str,
        value: &str,
    ) -> Result<Vec<Span>, QueryError> {
        let field = |s: &Span| -> bool {
            match column {
                "trace_id" => s.trace_id == value,
                _ => s.request_id.as_deref() == Some(value),
            }
        };
        let mut out: Vec<Span> = snap
            .chunks
            .iter()
            .flat_map(|c| c.iter())
            .filter(|s| field(s))
            .cloned()
            .collect();
        let idx = spans::col_index(column);
        for p in &snap.parts {
            let (meta, file) =
                self.cache
                    .footer(&snap.data_dir, p, spans::schema(), spans::check, true)?;
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
            let mut groups = Vec::new();
            for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
                if let Some(Statistics::ByteArray(s)) = rg.column(idx).statistics() {
                    if let (Some(min), Some(max)) = (s.min_opt(), s.max_opt()) {
                        // Statistics may be truncated prefixes: compare as bytes,
                        // treating a prefix max as open-ended.
                        if !may_hold(value.as_bytes(), min.data(), max.data()) {
                            continue;
                        }
                    }
                }
                if let Some(b) = self.cache.bloom(&builder, p, i, idx)? {
                    if !b.check(&value) {
                        continue;
                    }
                }
                groups.push(i);
            }
            if groups.is_empty() {
                continue;
            }
            let selection = page_selection(meta.metadata(), &groups, idx, value.as_bytes());
            let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
            let want = value.to_string();
            let pred = ArrowPredicateFn::new(mask, move |b: RecordBatch| {
                let col = b.column(0).as_string::<i32>();
                arrow::compute::kernels::cmp::eq(col, &StringArray::new_scalar(want.as_str()))
            });
            let reader = builder
                .with_row_groups(groups)
                .with_row_selection(selection)
                .with_row_filter(RowFilter::new(vec![Box::new(pred)]))
                .with_batch_size(8192)
                .build()?;
            for b in reader {
                spans::batch_to_spans(&b?, &mut out);
                if out.len() > MAX_TRACE_SPANS {
                    out.truncate(MAX_TRACE_SPANS);
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Traces with a span matching `q`, newest first (by that span's start).
    pub fn search(
        &self,
        store: &SpanStore,
        q: &TraceQuery,
        budget: Budget,
    ) -> Result<Vec<TraceSummary>, QueryError> {
        let found = with_retry(|| self.find(&store.snapshot(), q, budget))?;
        let mut out = Vec::with_capacity(found.len());
        for (trace_id, _) in found {
            budget.check()?;
            let spans = self.trace(store, &trace_id)?;
            if let Some(s) = summarize(&trace_id, &spans) {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The newest `q.limit` trace ids with a matching span, with that span's start.
    fn find(
        &self,
        snap: &Snapshot<Spans>,
        q: &TraceQuery,
        budget: Budget,
    ) -> Result<Vec<(String, i64)>, QueryError> {
        let limit = q.limit.max(1);
        let mut best: HashMap<String, i64> = HashMap::new();
        let note = |best: &mut HashMap<String, i64>, trace: &str, start: i64| {
            match best.get_mut(trace) {
                Some(t) => *t = (*t).max(start),
                None => {
                    best.insert(trace.to_string(), start);
                }
            }
            if best.len() > limit * 8 {
                let mut v: Vec<(String, i64)> = best.drain().collect();
                v.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
                v.truncate(limit * 4);
                best.extend(v);
            }
        };
        for c in &snap.chunks {
            for s in c.iter() {
                if q.matches(&s.service, &s.name, s.start_ns, s.duration_ns(), &s.status) {
                    note(&mut best, &s.trace_id, s.start_ns);
                }
            }
        }
        let mut parts: Vec<_> = snap
            .parts
            .iter()
            .filter(|p| p.max_ts >= q.start_ns && p.min_ts < q.end_ns)
            .collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.max_ts));
        let cols = [
            "trace_id",
            "name",
            "service",
            "start",
            "duration_ns",
            "status",
        ];
        let start_idx = spans::col_index("start");
        let svc_idx = spans::col_index("service");
        for p in parts {
            budget.check()?;
            // Stop once `limit` traces are newer than anything this part holds.
            if best.len() >= limit {
                let mut starts: Vec<i64> = best.values().copied().collect();
                starts.sort_unstable_by(|a, b| b.cmp(a));
                if starts[limit - 1] > p.max_ts {
                    break;
                }
            }
            let (meta, file) =
                self.cache
                    .footer(&snap.data_dir, p, spans::schema(), spans::check, true)?;
            let mut groups = Vec::new();
            for (i, rg) in meta.metadata().row_groups().iter().enumerate() {
                if let Some(Statistics::Int64(s)) = rg.column(start_idx).statistics() {
                    if let (Some(lo), Some(hi)) = (s.min_opt(), s.max_opt()) {
                        if *hi < q.start_ns || *lo >= q.end_ns {
                            continue;
                        }
                    }
                }
                if let (Some(svc), Some(Statistics::ByteArray(s))) =
                    (&q.service, rg.column(svc_idx).statistics())
                {
                    if let (Some(min), Some(max)) = (s.min_opt(), s.max_opt()) {
                        if !may_hold(svc.as_bytes(), min.data(), max.data()) {
                            continue;
                        }
                    }
                }
                groups.push(i);
            }
            if groups.is_empty() {
                continue;
            }
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
            let mask = ProjectionMask::roots(
                builder.parquet_schema(),
                cols.iter().map(|c| spans::col_index(c)),
            );
            let reader = builder
                .with_row_groups(groups)
                .with_projection(mask)
                .with_batch_size(16 * 1024)
                .build()?;
            for b in reader {
                let b = b?;
                budget.check()?;
                let (trace, name, service, status) = (
                    str_col(&b, "trace_id"),
                    str_col(&b, "name"),
                    str_col(&b, "service"),
                    str_col(&b, "status"),
                );
                let start = b
                    .column_by_name("start")
                    .expect("projected")
                    .as_primitive::<TimestampNanosecondType>();
                let dur = b
                    .column_by_name("duration_ns")
                    .expect("projected")
                    .as_primitive::<Int64Type>();
                for i in 0..b.num_rows() {
                    if q.matches(
                        service.value(i),
                        name.value(i),
                        start.value(i),
                        dur.value(i),
                        status.value(i),
                    ) {
                        note(&mut best, trace.value(i), start.value(i));
                    }
                }
            }
        }
        let mut v: Vec<(String, i64)> = best.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(limit);
        Ok(v)
    }
}

/// Whether `v` may lie in [min, max] (statistics may be truncated prefixes:
/// a value past a prefix max still may).
fn may_hold(v: &[u8], min: &[u8], max: &[u8]) -> bool {
    v >= min && (v <= max || v.starts_with(max))
}

/// The rows of `groups` (in order) whose pages may hold `value` in column
/// `idx`, from the page index (pages' min/max and first rows): parts are
/// sorted by trace id, so a trace falls in one page of a row group. Groups
/// without a page index are read whole.
fn page_selection(
    meta: &parquet::file::metadata::ParquetMetaData,
    groups: &[usize],
    idx: usize,
    value: &[u8],
) -> RowSelection {
    let mut sel: Vec<RowSelector> = Vec::new();
    for &rg in groups {
        let rows = meta.row_group(rg).num_rows().max(0) as usize;
        let pi = meta.page_index_for_row_group(rg);
        let pages = match (pi.column_index(idx), pi.offset_index(idx)) {
            (Some(ColumnIndexMetaData::BYTE_ARRAY(ci)), Some(oi)) => {
                Some((ci, oi.page_locations()))
            }
            _ => None,
        };
        let Some((ci, locs)) = pages else {
            sel.push(RowSelector::select(rows));
            continue;
        };
        for (p, loc) in locs.iter().enumerate() {
            let start = loc.first_row_index.max(0) as usize;
            let end = locs
                .get(p + 1)
                .map_or(rows, |n| n.first_row_index.max(0) as usize);
            // A page without min/max (all nulls, or no statistics) is read.
            let hit = match (ci.min_value(p), ci.max_value(p)) {
                (Some(min), Some(max)) => may_hold(value, min, max),
                _ => true,
            };
            let n = end.saturating_sub(start);
            sel.push(if hit {
                RowSelector::select(n)
            } else {
                RowSelector::skip(n)
            });
        }
    }
    RowSelection::from(sel)
}

/// The root of a trace: the earliest span whose parent is not in the trace.
pub fn root_of(spans: &[Span]) -> Option<&Span> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    spans
        .iter()
        .filter(|s| s.parent_span_id.as_deref().is_none_or(|p| !ids.contains(p)))
        .min_by_key(|s| (s.parent_span_id.is_some(), s.start_ns))
}

/// A trace's summary line (`None` for no spans).
pub fn summarize(trace_id: &str, spans: &[Span]) -> Option<TraceSummary> {
    let root = root_of(spans)?;
    let start = spans.iter().map(|s| s.start_ns).min()?;
    let end = spans.iter().map(|s| s.end_ns).max()?;
    let errors = spans.iter().filter(|s| s.is_error()).count();
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    let mut request_ids: Vec<String> = spans.iter().filter_map(|s| s.request_id.clone()).collect();
    request_ids.sort();
    request_ids.dedup();
    Some(TraceSummary {
        trace_id: trace_id.to_string(),
        root: root.name.clone(),
        service: root.service.clone(),
        start: format_rfc3339_nanos(start),
        start_ns: start,
        duration_ms: (end - start) as f64 / 1e6,
        status: if errors > 0 {
            "error".into()
        } else {
            root.status.clone()
        },
        spans: spans.len(),
        errors,
        services,
        request_ids,
    })
}

fn parse_json(s: &str, empty: Value) -> Value {
    serde_json::from_str(s).unwrap_or(empty)
}

/// One span as the APIs show it, timed relative to `origin_ns`.
pub fn span_json(s: &Span, origin_ns: i64) -> Value {
    json!({
        "trace_id": s.trace_id,
        "span_id": s.span_id,
        "parent_span_id": s.parent_span_id,
        "name": s.name,
        "op": s.op,
        "service": s.service,
        "kind": s.kind,
        "start": format_rfc3339_nanos(s.start_ns),
        "start_ns": s.start_ns,
        "end_ns": s.end_ns,
        "offset_ms": (s.start_ns - origin_ns) as f64 / 1e6,
        "duration_ms": s.duration_ns() as f64 / 1e6,
        "status": s.status,
        "status_message": s.status_message,
        "request_id": s.request_id,
        "environment": s.environment,
        "attributes": parse_json(&s.attributes, json!({})),
        "events": parse_json(&s.events, json!([])),
        "resource": parse_json(&s.resource, json!({})),
        "source": s.source,
    })
}

/// Spans as trees: each root (a span whose parent is not among `spans`) with
/// its `children` nested in start order, offsets from the earliest span.
pub fn span_tree(spans: &[Span]) -> Vec<Value> {
    let Some(origin) = spans.iter().map(|s| s.start_ns).min() else {
        return Vec::new();
    };
    let mut order: Vec<&Span> = spans.iter().collect();
    order.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
    // Keyed by (trace, span): two traces of one request may reuse a span id.
    let ids: HashSet<(&str, &str)> = order
        .iter()
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    let mut children: HashMap<(&str, &str), Vec<&Span>> = HashMap::new();
    let mut roots = Vec::new();
    for s in &order {
        match s.parent_span_id.as_deref() {
            Some(p) if ids.contains(&(s.trace_id.as_str(), p)) => children
                .entry((s.trace_id.as_str(), p))
                .or_default()
                .push(s),
            _ => roots.push(*s),
        }
    }
    fn build(
        s: &Span,
        depth: usize,
        origin: i64,
        children: &HashMap<(&str, &str), Vec<&Span>>,
        seen: &mut HashSet<(String, String)>,
    ) -> Value {
        let mut v = span_json(s, origin);
        v["depth"] = json!(depth);
        let mut kids = Vec::new();
        // A cycle (a span listed as its own ancestor) is cut, not followed.
        if seen.insert((s.trace_id.clone(), s.span_id.clone())) && depth < 256 {
            for c in children
                .get(&(s.trace_id.as_str(), s.span_id.as_str()))
                .into_iter()
                .flatten()
            {
                kids.push(build(c, depth + 1, origin, children, seen));
            }
        }
        v["children"] = Value::Array(kids);
        v
    }
    let mut seen = HashSet::new();
    let mut out: Vec<Value> = roots
        .into_iter()
        .map(|r| build(r, 0, origin, &children, &mut seen))
        .collect();
    // Spans only reachable through a cycle are shown, as roots of their own.
    for s in &order {
        if !seen.contains(&(s.trace_id.clone(), s.span_id.clone())) {
            out.push(build(s, 0, origin, &children, &mut seen));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, id: &str, parent: Option<&str>, start: i64, end: i64) -> Span {
        Span {
            trace_id: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.map(String::from),
            name: format!("op-{id}"),
            op: None,
            service: "api".into(),
            kind: "internal".into(),
            start_ns: start,
            end_ns: end,
            status: "ok".into(),
            status_message: None,
            request_id: None,
            environment: None,
            attributes: "{}".into(),
            events: "[]".into(),
            resource: "{}".into(),
            source: "otlp".into(),
        }
    }

    /// Lookups over flushed parts (several row groups of many pages, pruned
    /// by statistics, bloom filters and the page index) and the head find
    /// exactly what a scan of every row finds.
    #[test]
    fn lookups_match_a_full_scan() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = sightline_store::StoreConfig::new(dir.path());
        cfg.retention = None;
        let store = SpanStore::open(cfg).unwrap();
        // 150k spans, 6 per trace, trace ids in a scrambled order; two parts
        // and a head.
        let span_of = |i: u64| {
            let t = (i / 6).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut s = span(
                &format!("{t:016x}{:016x}", i / 6),
                &format!("{:016x}", i + 1),
                (i % 6 != 0)
                    .then(|| format!("{:016x}", i - i % 6 + 1))
                    .as_deref(),
                1_000 + i as i64,
                2_000 + i as i64,
            );
            s.request_id = (i % 6 == 0).then(|| format!("req-{}", i / 6));
            s
        };
        for chunk in [0..70_000u64, 70_000..140_000, 140_000..150_000] {
            store
                .append_blocking(chunk.clone().map(span_of).collect())
                .unwrap();
            if chunk.end < 150_000 {
                store.flush().unwrap();
            }
        }
        assert_eq!(store.parts().len(), 2);
        let all = store.snapshot().rows().unwrap();
        let traces = Traces::new();
        for i in [
            0u64, 5, 6, 69_996, 70_002, 123_456, 139_999, 144_000, 149_999,
        ] {
            let want_trace = span_of(i).trace_id;
            let mut want: Vec<&Span> = all.iter().filter(|s| s.trace_id == want_trace).collect();
            want.sort_by_key(|s| s.start_ns);
            let got = traces.trace(&store, &want_trace).unwrap();
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "trace of span {i}");
            let rid = format!("req-{}", i / 6);
            let got = traces.request(&store, &rid).unwrap();
            assert_eq!(got.len(), 6, "request {rid}");
            assert!(got.iter().all(|s| s.trace_id == want_trace));
        }
        assert!(traces.trace(&store, &"f".repeat(32)).unwrap().is_empty());
        assert!(traces.request(&store, "req-none").unwrap().is_empty());
    }

    #[test]
    fn tree_nests_children_with_offsets_and_survives_cycles() {
        let t = "a".repeat(32);
        let spans = vec![
            span(&t, "2", Some("1"), 2_000_000, 5_000_000),
            span(&t, "1", None, 1_000_000, 9_000_000),
            span(&t, "3", Some("2"), 3_000_000, 4_000_000),
            // A cycle: x → y → x, with no root of their own.
            span(&t, "x", Some("y"), 6_000_000, 7_000_000),
            span(&t, "y", Some("x"), 6_500_000, 7_000_000),
        ];
        let tree = span_tree(&spans);
        assert_eq!(tree.len(), 2, "{tree:#?}");
        assert_eq!(tree[1]["span_id"], "x");
        assert_eq!(tree[0]["span_id"], "1");
        assert_eq!(tree[0]["duration_ms"], 8.0);
        let child = &tree[0]["children"][0];
        assert_eq!(child["span_id"], "2");
        assert_eq!(child["offset_ms"], 1.0);
        assert_eq!(child["children"][0]["depth"], 2);
        let s = summarize(&t, &spans).unwrap();
        assert_eq!((s.root.as_str(), s.spans, s.duration_ms), ("op-1", 5, 8.0));
    }
}
