//! Log search over HTTP: `GET /api/v1/logs?q=&start=&end=&limit=&cursor=`
//! (a page newest first, or `{"series":…}` for `| count` / `| top`),
//! `GET /api/v1/logs/fields` (facets) and `GET /api/v1/logs/tail` (live, SSE).
//!
//! The older parameters (`service`, `request_id`, `flow_id`, `trace_id`,
//! `user_id`, `level` as a name, a comma list or `>=name`) still work: each is
//! ANDed to `q`. `start`/`end` take RFC 3339, epoch numbers, `now`, `-15m`.

use super::blocking;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sightline_pipeline::Level;
use sightline_query::eval::Filter;
use sightline_query::lang::{self, CmpOp, Column, Expr, Field, Match, Term};
use sightline_query::{now_ns, Range};
use sightline_store::Chunk;
use std::time::{Duration, Instant};

pub const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize, Default)]
pub struct Params {
    q: Option<String>,
    service: Option<String>,
    request_id: Option<String>,
    flow_id: Option<String>,
    trace_id: Option<String>,
    user_id: Option<String>,
    level: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    top: Option<String>,
}

fn term(c: Column, op: Match) -> Expr {
    Expr::Term(Term {
        field: Field::Column(c),
        op,
    })
}

fn level_expr(spec: &str) -> Result<Expr, ApiError> {
    let bad = |s: &str| {
        ApiError::BadRequest(format!(
            "unknown level {s:?} (use debug, info, warning, error, critical)"
        ))
    };
    if let Some(min) = spec.strip_prefix(">=") {
        Level::parse(min).ok_or_else(|| bad(min))?;
        return Ok(term(
            Column::Level,
            Match::Cmp(CmpOp::Ge, min.trim().into()),
        ));
    }
    let alts = spec
        .split(',')
        .map(|s| {
            Level::parse(s)
                .map(|_| term(Column::Level, Match::Eq(s.trim().into())))
                .ok_or_else(|| bad(s))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Expr::Or(alts))
}

/// The query of a request: `q` parsed, with the older parameters ANDed in.
/// Returns the parsed query and its text (for the engine).
fn query_of(p: &Params) -> Result<(lang::Query, Expr), ApiError> {
    let q = lang::parse(p.q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::Query(format!("q: {e}"), e.column))?;
    let mut all = vec![q.expr.clone()];
    let ne = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    for (c, v) in [
        (Column::Service, ne(&p.service)),
        (Column::RequestId, ne(&p.request_id)),
        (Column::FlowId, ne(&p.flow_id)),
        (Column::TraceId, ne(&p.trace_id)),
        (Column::UserId, ne(&p.user_id)),
    ] {
        if let Some(v) = v {
            all.push(term(c, Match::Eq(v)));
        }
    }
    if let Some(l) = ne(&p.level) {
        all.push(level_expr(&l)?);
    }
    all.retain(|e| *e != Expr::All);
    let expr = match all.len() {
        0 => Expr::All,
        1 => all.pop().expect("one"),
        _ => Expr::And(all),
    };
    Ok((q, expr))
}

pub fn range_of(
    start: &Option<String>,
    end: &Option<String>,
    default_start: Option<i64>,
) -> Result<Range, ApiError> {
    let now = now_ns();
    let t = |name: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => sightline_query::time::parse_time(s, now)
                .map(Some)
                .map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))),
        }
    };
    let start_ns = t("start", start)?.or(default_start).unwrap_or(i64::MIN);
    let end_ns = t("end", end)?.unwrap_or(i64::MAX);
    if start_ns >= end_ns {
        return Err(ApiError::BadRequest("start must be before end".into()));
    }
    Ok(Range { start_ns, end_ns })
}

fn limit_of(p: &Option<String>, default: usize) -> Result<usize, ApiError> {
    match p.as_deref() {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("limit={s:?} is not a number"))),
    }
}

/// Runs a query on a blocking thread, one of `query.max_concurrent` at a time.
pub async fn run_query<T: Send + 'static>(
    app: &AppState,
    kind: &'static str,
    f: impl FnOnce(&crate::App) -> Result<T, sightline_query::QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = app
        .query_slots
        .acquire()
        .await
        .map_err(|_| ApiError::Overloaded("shutting down".into()))?;
    let start = Instant::now();
    let a = app.clone();
    let out = blocking(move || f(&a)).await?;
    app.metrics.query_duration.observe(&[kind], start.elapsed());
    Ok(out?)
}

pub async fn query(State(app): State<AppState>, Query(p): Query<Params>) -> Response {
    async fn run(app: AppState, p: Params) -> Result<Response, ApiError> {
        let (q, expr) = query_of(&p)?;
        let range = range_of(&p.start, &p.end, None)?;
        let limit = limit_of(&p.limit, DEFAULT_LIMIT)?;
        let mut q = q;
        q.expr = expr;
        let cursor = p.cursor.clone().filter(|c| !c.is_empty());
        let ans = run_query(&app, "logs", move |a| {
            a.engine.run(&a.store, &q, range, limit, cursor.as_deref())
        })
        .await?;
        Ok(Json(ans).into_response())
    }
    run(app, p).await.unwrap_or_else(|e| e.into_response())
}

/// `GET /api/v1/logs/fields?q=&start=&end=&top=`.
pub async fn fields(State(app): State<AppState>, Query(p): Query<Params>) -> Response {
    async fn run(app: AppState, p: Params) -> Result<Response, ApiError> {
        let (_, expr) = query_of(&p)?;
        let range = range_of(&p.start, &p.end, None)?;
        let top = limit_of(&p.top, 10)?.clamp(1, 1000);
        let f = run_query(&app, "fields", move |a| {
            a.engine.facets_expr(&a.store, &expr, range, top)
        })
        .await?;
        Ok(Json(f).into_response())
    }
    run(app, p).await.unwrap_or_else(|e| e.into_response())
}

/// `GET /api/v1/logs/tail?q=`: every acknowledged record matching `q`, as
/// server-sent events (`event: log`), from now on. A client too slow to keep up
/// gets `event: dropped` with how many records it missed.
pub async fn tail(State(app): State<AppState>, Query(p): Query<Params>) -> Response {
    let (q, expr) = match query_of(&p) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if q.aggregation().is_some() {
        return ApiError::BadRequest(
            "tail streams records: remove the | count / | top pipe".into(),
        )
        .into_response();
    }
    let filter = Filter::new(&expr);
    let fields = q.fields().map(|f| f.to_vec());
    let rx = app.tail.subscribe();
    struct St {
        rx: tokio::sync::broadcast::Receiver<Chunk>,
        filter: Filter,
        fields: Option<Vec<String>>,
        pending: std::collections::VecDeque<Event>,
    }
    let st = St {
        rx,
        filter,
        fields,
        pending: Default::default(),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok::<_, std::convert::Infallible>(e), st));
            }
            match st.rx.recv().await {
                Ok(chunk) => {
                    for r in chunk.iter().filter(|r| st.filter.matches_record(r)) {
                        let v = match &st.fields {
                            Some(f) => sightline_query::project(r, f),
                            None => r.to_json(),
                        };
                        st.pending
                            .push_back(Event::default().event("log").data(v.to_string()));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    st.pending.push_back(
                        Event::default()
                            .event("dropped")
                            .data(serde_json::json!({ "dropped_chunks": n }).to_string()),
                    );
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
