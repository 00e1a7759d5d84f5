//! Log search: the query language (`lang`), its evaluation over Arrow batches
//! and records (`eval`), the executor over a store snapshot (`exec`), what
//! scans feed (`sinks`), and the request and flow views (`views`). `Engine`
//! is the entry point the server and benchmarks use. Span reads (trace
//! lookups, trace search, span trees) are in `traces`.

pub mod eval;
pub mod exec;
pub mod lang;
pub mod sinks;
pub mod time;
pub mod traces;
pub mod views;

use exec::{scan, with_retry, Budget, MetaCache, Plan, ScanStats};
use lang::{Column, Expr, Field, Match, Pipe, Term};
use serde::Serialize;
use serde_json::Value;
use sightline_pipeline::LogRecord;
use sightline_store::LogStore;
use sinks::{AggSink, Cursor, FacetSink, LogsSink, Series};
use std::time::{Duration, Instant};
use views::{Flow, FlowSink, FlowStats, FlowStatus, RequestTimeline};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Parse(#[from] lang::ParseError),
    #[error("{0}")]
    BadRequest(String),
    #[error("query exceeded its time limit: narrow the time range or the query")]
    Timeout,
    #[error("{0}")]
    TooExpensive(String),
    #[error("store: {0}")]
    Store(#[from] sightline_store::StoreError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    Internal(String),
}

/// Bounds on one query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest page (`limit`).
    pub max_limit: usize,
    pub timeout: Duration,
    pub max_groups: usize,
    pub max_page_bytes: usize,
    /// Rows sampled (newest first) for facets.
    pub facet_rows: usize,
    pub max_flows: usize,
    /// A flow with no terminal event and no event for this long is stalled.
    pub stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_limit: 10_000,
            timeout: Duration::from_secs(30),
            max_groups: 100_000,
            max_page_bytes: 64 << 20,
            facet_rows: 20_000,
            max_flows: 200_000,
            stall_timeout: Duration::from_secs(300),
        }
    }
}

/// What a search answers: a page of logs, or series for an aggregation.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Logs {
        logs: Vec<Value>,
        next_cursor: Option<String>,
        took_ms: f64,
        stats: ScanStats,
    },
    Series {
        series: Vec<Series>,
        took_ms: f64,
        stats: ScanStats,
    },
}

#[derive(Debug, Serialize)]
pub struct Facets {
    pub fields: Vec<sinks::Facet>,
    /// Rows the facets were computed from (the newest matching ones).
    pub rows: usize,
    pub sampled: bool,
    pub took_ms: f64,
}

/// A time range, `[start_ns, end_ns)`.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Range {
    pub const ALL: Range = Range {
        start_ns: i64::MIN,
        end_ns: i64::MAX,
    };
}

pub use sightline_pipeline::timefmt::now_ns;

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// Picks `names` out of a record's JSON (typed columns by name or alias,
/// other keys from `fields`); the timestamp is always kept.
pub fn project(r: &LogRecord, names: &[String]) -> Value {
    let full = r.to_json();
    let mut out = serde_json::Map::new();
    out.insert("timestamp".into(), full["timestamp"].clone());
    for n in names {
        let v = match Column::from_name(n) {
            Some(c) => full.get(c.name()).cloned(),
            None => eval::attr_value(&r.attributes, n),
        };
        out.insert(n.clone(), v.unwrap_or(Value::Null));
    }
    Value::Object(out)
}

/// Runs queries against a store; keeps part footers cached between them.
#[derive(Debug, Default)]
pub struct Engine {
    cache: MetaCache,
    pub limits: Limits,
}

impl Engine {
    pub fn new(limits: Limits) -> Engine {
        Engine {
            cache: MetaCache::default(),
            limits,
        }
    }

    pub fn budget(&self) -> Budget {
        Budget {
            deadline: Instant::now() + self.limits.timeout,
        }
    }

    fn check_limit(&self, limit: usize) -> Result<usize, QueryError> {
        if limit == 0 || limit > self.limits.max_limit {
            return Err(QueryError::BadRequest(format!(
                "limit must be between 1 and {}",
                self.limits.max_limit
            )));
        }
        Ok(limit)
    }

    /// Records matching `expr` in `range`, newest first.
    pub fn records(
        &self,
        store: &LogStore,
        expr: &Expr,
        range: Range,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<LogRecord>, Option<String>, ScanStats), QueryError> {
        let end = match cursor {
            Some(c) => range.end_ns.min(c.ts.saturating_add(1)),
            None => range.end_ns,
        };
        let plan = Plan::new(expr, range.start_ns, end);
        let budget = self.budget();
        with_retry(|| {
            let mut sink = LogsSink::new(limit, cursor, self.limits.max_page_bytes);
            let stats = scan(&store.snapshot(), &self.cache, &plan, budget, &mut sink)?;
            let (rows, next) = sink.finish();
            Ok((rows, next, stats))
        })
    }

    /// `GET /api/v1/logs`: a query with optional pipes, as text.
    pub fn search(
        &self,
        store: &LogStore,
        q: &str,
        range: Range,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Answer, QueryError> {
        self.run(store, &lang::parse(q)?, range, limit, cursor)
    }

    /// A parsed query: a page of records, or series when it ends in an aggregation.
    pub fn run(
        &self,
        store: &LogStore,
        query: &lang::Query,
        range: Range,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Answer, QueryError> {
        let t = Instant::now();
        match query.aggregation() {
            Some(Pipe::Count { by }) | Some(Pipe::Top { by, .. }) => {
                let top = match query.aggregation() {
                    Some(Pipe::Top { n, .. }) => Some(*n),
                    _ => None,
                };
                let plan = Plan::new(&query.expr, range.start_ns, range.end_ns);
                let budget = self.budget();
                let (series, stats) = with_retry(|| {
                    let mut sink = AggSink::new(by.clone(), self.limits.max_groups)?;
                    let stats = scan(&store.snapshot(), &self.cache, &plan, budget, &mut sink)?;
                    Ok((sink.finish(top), stats))
                })?;
                Ok(Answer::Series {
                    series,
                    took_ms: ms(t),
                    stats,
                })
            }
            _ => {
                let limit = self.check_limit(limit)?;
                let cursor = cursor.map(Cursor::parse).transpose()?;
                let (rows, next_cursor, stats) =
                    self.records(store, &query.expr, range, limit, cursor)?;
                let logs = match query.fields() {
                    Some(f) => rows.iter().map(|r| project(r, f)).collect(),
                    None => rows.iter().map(|r| r.to_json()).collect(),
                };
                Ok(Answer::Logs {
                    logs,
                    next_cursor,
                    took_ms: ms(t),
                    stats,
                })
            }
        }
    }

    /// `GET /api/v1/logs/fields`: fields of the newest matching rows with
    /// their top values.
    pub fn facets(
        &self,
        store: &LogStore,
        q: &str,
        range: Range,
        top: usize,
    ) -> Result<Facets, QueryError> {
        self.facets_expr(store, &lang::parse(q)?.expr, range, top)
    }

    pub fn facets_expr(
        &self,
        store: &LogStore,
        expr: &Expr,
        range: Range,
        top: usize,
    ) -> Result<Facets, QueryError> {
        let t = Instant::now();
        let plan = Plan::new(expr, range.start_ns, range.end_ns);
        let budget = self.budget();
        let (fields, rows) = with_retry(|| {
            let mut sink = FacetSink::new(self.limits.facet_rows);
            scan(&store.snapshot(), &self.cache, &plan, budget, &mut sink)?;
            let rows = sink.rows;
            Ok((sink.finish(top), rows))
        })?;
        Ok(Facets {
            fields,
            rows,
            sampled: rows >= self.limits.facet_rows,
            took_ms: ms(t),
        })
    }

    fn eq(c: Column, v: &str) -> Expr {
        Expr::Term(Term {
            field: Field::Column(c),
            op: Match::Eq(v.to_string()),
        })
    }

    /// `GET /api/v1/requests/{id}`.
    pub fn request(
        &self,
        store: &LogStore,
        request_id: &str,
    ) -> Result<RequestTimeline, QueryError> {
        self.timeline(store, Column::RequestId, request_id)
    }

    /// The logs of one trace, oldest first (`GET /api/v1/traces/{id}`).
    pub fn trace_logs(
        &self,
        store: &LogStore,
        trace_id: &str,
    ) -> Result<RequestTimeline, QueryError> {
        self.timeline(store, Column::TraceId, trace_id)
    }

    fn timeline(
        &self,
        store: &LogStore,
        column: Column,
        id: &str,
    ) -> Result<RequestTimeline, QueryError> {
        let (rows, next, _) = self.records(
            store,
            &Engine::eq(column, id),
            Range::ALL,
            views::MAX_TIMELINE_LOGS,
            None,
        )?;
        Ok(views::request_timeline(id, rows, next.is_some()))
    }

    /// `GET /api/v1/flows/{id}`: `None` when no row has the flow id.
    pub fn flow(&self, store: &LogStore, flow_id: &str) -> Result<Option<Flow>, QueryError> {
        let (rows, _, _) = self.records(
            store,
            &Engine::eq(Column::FlowId, flow_id),
            Range::ALL,
            views::MAX_TIMELINE_LOGS,
            None,
        )?;
        Ok(views::flow_from_records(
            flow_id,
            &rows,
            now_ns(),
            self.limits.stall_timeout.as_nanos() as i64,
        ))
    }

    /// Flows with events in `range`, filtered, newest started first.
    pub fn flows(
        &self,
        store: &LogStore,
        filter: &FlowFilter,
        range: Range,
    ) -> Result<Vec<Flow>, QueryError> {
        let mut conj = vec![Expr::Term(Term {
            field: Field::Column(Column::FlowId),
            op: Match::Exists,
        })];
        if let Some(s) = &filter.service {
            conj.push(Engine::eq(Column::Service, s));
        }
        let plan = Plan::new(&Expr::And(conj), range.start_ns, range.end_ns);
        let budget = self.budget();
        let mut flows = with_retry(|| {
            let mut sink = FlowSink::new(self.limits.max_flows);
            scan(&store.snapshot(), &self.cache, &plan, budget, &mut sink)?;
            Ok(sink.finish(now_ns(), self.limits.stall_timeout.as_nanos() as i64))
        })?;
        flows.retain(|f| {
            filter
                .name
                .as_deref()
                .is_none_or(|n| f.name.as_deref() == Some(n))
                && filter.status.is_none_or(|s| f.status == s)
        });
        flows.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| a.flow_id.cmp(&b.flow_id))
        });
        Ok(flows)
    }

    pub fn flow_stats(
        &self,
        store: &LogStore,
        filter: &FlowFilter,
        range: Range,
    ) -> Result<FlowStats, QueryError> {
        let flows = self.flows(store, filter, range)?;
        Ok(views::flow_stats(filter.name.as_deref(), &flows))
    }
}

#[derive(Debug, Default, Clone)]
pub struct FlowFilter {
    pub name: Option<String>,
    pub service: Option<String>,
    pub status: Option<FlowStatus>,
}
