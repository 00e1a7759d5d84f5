//! The span store's row kind: span batches in WAL frames, and span parts —
//! Parquet files sorted by trace id then start time (a trace is a few adjacent
//! rows; row-group statistics on `trace_id` prune a lookup to one group), with
//! bloom filters on `trace_id` and `request_id`, one UTC day (of span start)
//! per part.

use crate::codec::{put_opt, put_str, put_varint, DecodeError, Reader, KIND_SPANS};
use crate::part::{self, Written};
use crate::{Kind, StoreError};
use arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use sightline_pipeline::Span;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};

pub const PART_FORMAT: &str = "spans";
pub const PART_VERSION: &str = "1";
/// Rows per row group. Smaller than log parts': a request-id lookup reads
/// every group whose bloom filter says maybe, and spans are wider than lines.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Rows per data page (at most).
pub const PAGE_ROWS: usize = 8 * 1024;
/// Columns with bloom filters.
pub const BLOOM_COLUMNS: [&str; 2] = ["trace_id", "request_id"];

/// Column order of a span part.
pub const COLUMNS: [&str; 18] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "op",
    "service",
    "kind",
    "start",
    "end",
    "duration_ns",
    "status",
    "status_message",
    "request_id",
    "environment",
    "attributes",
    "events",
    "resource",
    "source",
];

const NULLABLE: [&str; 6] = [
    "parent_span_id",
    "op",
    "status_message",
    "request_id",
    "environment",
    "events",
];

pub fn schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let fields: Vec<Field> = COLUMNS
            .iter()
            .map(|&c| match c {
                "start" | "end" => Field::new(c, ts.clone(), false),
                "duration_ns" => Field::new(c, DataType::Int64, false),
                _ => Field::new(c, DataType::Utf8, NULLABLE.contains(&c)),
            })
            .collect();
        Arc::new(Schema::new(fields))
    })
    .clone()
}

pub fn col_index(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("known span column")
}

/// Builds a record batch from spans, in the given order.
pub fn to_batch(rows: &[&Span]) -> RecordBatch {
    let req = |f: &dyn Fn(&Span) -> &str| part::str_column(rows, f);
    let opt = |f: &dyn Fn(&Span) -> Option<&str>| part::opt_str_column(rows, f);
    let ts = |f: &dyn Fn(&Span) -> i64| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| f(r)))
                .with_timezone("UTC"),
        )
    };
    let columns: Vec<ArrayRef> = COLUMNS
        .iter()
        .map(|c| match *c {
            "trace_id" => req(&|r| &r.trace_id),
            "span_id" => req(&|r| &r.span_id),
            "parent_span_id" => opt(&|r| r.parent_span_id.as_deref()),
            "name" => req(&|r| &r.name),
            "op" => opt(&|r| r.op.as_deref()),
            "service" => req(&|r| &r.service),
            "kind" => req(&|r| &r.kind),
            "start" => ts(&|r| r.start_ns),
            "end" => ts(&|r| r.end_ns),
            "duration_ns" => Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.duration_ns()),
            )) as ArrayRef,
            "status" => req(&|r| &r.status),
            "status_message" => opt(&|r| r.status_message.as_deref()),
            "request_id" => opt(&|r| r.request_id.as_deref()),
            "environment" => opt(&|r| r.environment.as_deref()),
            "attributes" => req(&|r| &r.attributes),
            "events" => opt(&|r| Some(r.events.as_str()).filter(|e| *e != "[]")),
            "resource" => req(&|r| &r.resource),
            "source" => req(&|r| &r.source),
            other => unreachable!("span column {other} has a builder"),
        })
        .collect();
    RecordBatch::try_new(schema(), columns).expect("columns match the span schema")
}

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    let i = batch
        .schema()
        .index_of(name)
        .unwrap_or_else(|_| panic!("span batch has column {name}"));
    batch
        .column(i)
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("span column {name} has the part schema's type"))
}

/// Appends the rows of a span batch (all columns) to `out`.
pub fn batch_to_spans(batch: &RecordBatch, out: &mut Vec<Span>) {
    let s = |name: &str| col::<StringArray>(batch, name);
    let start = col::<TimestampNanosecondArray>(batch, "start");
    let end = col::<TimestampNanosecondArray>(batch, "end");
    let o = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    let (trace, span, parent, name, op, service, kind) = (
        s("trace_id"),
        s("span_id"),
        s("parent_span_id"),
        s("name"),
        s("op"),
        s("service"),
        s("kind"),
    );
    let (status, msg, req, env, attrs, events, resource, source) = (
        s("status"),
        s("status_message"),
        s("request_id"),
        s("environment"),
        s("attributes"),
        s("events"),
        s("resource"),
        s("source"),
    );
    for i in 0..batch.num_rows() {
        out.push(Span {
            trace_id: trace.value(i).to_string(),
            span_id: span.value(i).to_string(),
            parent_span_id: o(parent, i),
            name: name.value(i).to_string(),
            op: o(op, i),
            service: service.value(i).to_string(),
            kind: kind.value(i).to_string(),
            start_ns: start.value(i),
            end_ns: end.value(i),
            status: status.value(i).to_string(),
            status_message: o(msg, i),
            request_id: o(req, i),
            environment: o(env, i),
            attributes: attrs.value(i).to_string(),
            events: o(events, i).unwrap_or_else(|| "[]".into()),
            resource: resource.value(i).to_string(),
            source: source.value(i).to_string(),
        });
    }
}

fn writer_props(rows: usize, zstd_level: i32) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(zstd_level).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Pages of at most 8k rows: with rows sorted by trace id, a lookup
        // decodes one page of `trace_id` per row group (the page index).
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(vec![
            KeyValue::new("sightline.format".into(), PART_FORMAT.to_string()),
            KeyValue::new("sightline.version".into(), PART_VERSION.to_string()),
        ]));
    for c in ["attributes", "events", "resource", "status_message"] {
        b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    for c in [
        "trace_id",
        "span_id",
        "parent_span_id",
        "request_id",
        "attributes",
        "events",
    ] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    let ndv = rows.clamp(1, ROW_GROUP_ROWS) as u64;
    for c in BLOOM_COLUMNS {
        b = b
            .set_column_bloom_filter_enabled(ColumnPath::from(c), true)
            .set_column_bloom_filter_fpp(ColumnPath::from(c), 0.01)
            .set_column_bloom_filter_max_ndv(ColumnPath::from(c), ndv);
    }
    b.build()
}

/// Min and max start of a span batch.
pub fn time_range(batch: &RecordBatch) -> (i64, i64) {
    let v = col::<TimestampNanosecondArray>(batch, "start").values();
    (
        v.iter().copied().min().unwrap_or(0),
        v.iter().copied().max().unwrap_or(0),
    )
}

/// Opens a span part and checks its format and version.
pub fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, StoreError> {
    let file = File::open(path)?;
    let b = ParquetRecordBatchReaderBuilder::try_new_with_options(file, ArrowReaderOptions::new())
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
    check(b.metadata(), path)?;
    Ok(b)
}

pub fn check(
    meta: &parquet::file::metadata::ParquetMetaData,
    path: &Path,
) -> Result<(), StoreError> {
    part::check_format(meta, path, PART_FORMAT, PART_VERSION, COLUMNS.len())
}

/// Encodes spans as one WAL frame payload.
pub fn encode(spans: &[Span]) -> Vec<u8> {
    let cap: usize = spans.iter().map(Span::approx_bytes).sum::<usize>() + 8;
    let mut out = Vec::with_capacity(cap);
    out.push(KIND_SPANS);
    put_varint(&mut out, spans.len() as u64);
    for s in spans {
        out.extend_from_slice(&s.start_ns.to_le_bytes());
        out.extend_from_slice(&s.end_ns.to_le_bytes());
        for v in [
            &s.trace_id,
            &s.span_id,
            &s.name,
            &s.service,
            &s.kind,
            &s.status,
            &s.attributes,
            &s.events,
            &s.resource,
            &s.source,
        ] {
            put_str(&mut out, v);
        }
        for o in [
            &s.parent_span_id,
            &s.op,
            &s.status_message,
            &s.request_id,
            &s.environment,
        ] {
            put_opt(&mut out, o);
        }
    }
    out
}

/// Decodes a payload written by [`encode`]; every length is checked.
pub fn decode(payload: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let mut r = Reader { b: payload };
    if r.take(1)?[0] != KIND_SPANS {
        return Err(DecodeError("not a span batch"));
    }
    let n = r.varint()?;
    // Each span needs at least 31 bytes: bound the allocation by the payload.
    if n > (payload.len() / 31 + 1) as u64 {
        return Err(DecodeError("span count exceeds payload"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let start_ns = r.i64()?;
        let end_ns = r.i64()?;
        out.push(Span {
            start_ns,
            end_ns,
            trace_id: r.str()?,
            span_id: r.str()?,
            name: r.str()?,
            service: r.str()?,
            kind: r.str()?,
            status: r.str()?,
            attributes: r.str()?,
            events: r.str()?,
            resource: r.str()?,
            source: r.str()?,
            parent_span_id: r.opt()?,
            op: r.opt()?,
            status_message: r.opt()?,
            request_id: r.opt()?,
            environment: r.opt()?,
        });
    }
    if !r.b.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(out)
}

/// Spans: the rows of the span store.
#[derive(Debug)]
pub struct Spans;

/// The span store.
pub type SpanStore = crate::Store<Spans>;

impl Kind for Spans {
    type Row = Span;
    const NAME: &'static str = crate::files::SPAN_PARTS;
    fn approx_bytes(row: &Span) -> usize {
        row.approx_bytes()
    }
    fn timestamp_ns(row: &Span) -> i64 {
        row.start_ns
    }
    fn encode(rows: &[Span]) -> Vec<u8> {
        encode(rows)
    }
    fn decode(payload: &[u8]) -> Result<Vec<Span>, String> {
        decode(payload).map_err(|e| e.to_string())
    }
    fn sort(rows: &mut [&Span]) {
        rows.sort_unstable_by(|a, b| {
            (a.trace_id.as_str(), a.start_ns).cmp(&(b.trace_id.as_str(), b.start_ns))
        });
    }
    fn to_batch(rows: &[&Span]) -> RecordBatch {
        to_batch(rows)
    }
    fn write_part(
        path: &Path,
        batches: &mut dyn Iterator<Item = Result<RecordBatch, StoreError>>,
        rows_hint: usize,
        zstd_level: i32,
    ) -> Result<Written, StoreError> {
        part::write_batches(
            path,
            schema(),
            writer_props(rows_hint, zstd_level),
            batches,
            time_range,
        )
    }
    fn check_part(path: &Path) -> Result<(), StoreError> {
        open(path).map(|_| ())
    }
    fn read_part(path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
        let reader = open(path)?.with_batch_size(64 * 1024).build()?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    }
    fn batch_rows(batch: &RecordBatch, out: &mut Vec<Span>) {
        batch_to_spans(batch, out)
    }
    fn merge_sorted<'a>(
        batches: &'a [RecordBatch],
        chunk_rows: usize,
    ) -> Box<dyn Iterator<Item = Result<RecordBatch, StoreError>> + 'a> {
        Box::new(part::merge_sorted_by(
            batches, chunk_rows, "trace_id", "start",
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::StoreConfig;

    pub fn span(i: usize) -> Span {
        Span {
            trace_id: format!("{:032x}", i / 4 + 1),
            span_id: format!("{:016x}", i + 1),
            parent_span_id: (i % 4 != 0).then(|| format!("{:016x}", i - i % 4 + 1)),
            name: format!("op-{}", i % 7),
            op: (i % 2 == 0).then(|| "db".to_string()),
            service: ["api", "worker"][i % 2].into(),
            kind: "server".into(),
            start_ns: 1_764_000_000_000_000_000 + i as i64 * 1_000,
            end_ns: 1_764_000_000_000_000_000 + i as i64 * 1_000 + 500,
            status: if i % 5 == 0 { "error" } else { "ok" }.into(),
            status_message: (i % 5 == 0).then(|| "boom".to_string()),
            request_id: (i % 4 == 0).then(|| format!("req-{}", i / 4)),
            environment: None,
            attributes: format!("{{\"i\":{i}}}"),
            events: if i % 3 == 0 {
                "[{\"name\":\"e\"}]".into()
            } else {
                "[]".into()
            },
            resource: "{\"service.name\":\"api\"}".into(),
            source: "otlp".into(),
        }
    }

    #[test]
    fn codec_roundtrips_and_truncation_is_an_error() {
        let spans: Vec<Span> = (0..50).map(span).collect();
        let buf = encode(&spans);
        assert_eq!(decode(&buf).unwrap(), spans);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn parts_roundtrip_sorted_by_trace_through_flush_reopen_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.retention = None;
        {
            let store = SpanStore::open(cfg.clone()).unwrap();
            for round in 0..3 {
                let batch: Vec<Span> = (round * 100..round * 100 + 100).rev().map(span).collect();
                store.append_blocking(batch).unwrap();
                store.flush().unwrap();
            }
            assert_eq!(store.parts().len(), 3);
            store.compact().unwrap();
            assert_eq!(store.parts().len(), 1);
        }
        let store = SpanStore::open(cfg).unwrap();
        let parts = store.parts();
        let rows = store.snapshot().rows().unwrap();
        assert_eq!(rows.len(), 300);
        let mut want: Vec<Span> = (0..300).map(span).collect();
        want.sort_by(|a, b| (&a.trace_id, a.start_ns).cmp(&(&b.trace_id, b.start_ns)));
        assert_eq!(rows, want);
        assert_eq!(parts[0].min_ts, span(0).start_ns);
        assert_eq!(parts[0].max_ts, span(299).start_ns);
        assert!(dir
            .path()
            .join(&parts[0].path)
            .starts_with(dir.path().join("parts/spans")));
    }
}
