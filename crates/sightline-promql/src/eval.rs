//! The expression evaluator: evaluates an AST node over a grid of evaluation steps, selecting
//! from storage once per selector, and the shared step-series helpers used by every operator.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use crate::labels::{Labels, METRIC_NAME};
use crate::value::{is_stale_nan, QueryError, Storage};

/// Shared label set.
pub(crate) type Lbl = Arc<Labels>;

/// A series of evaluation results: one point per evaluation step at which it has a value.
#[derive(Debug, Clone)]
pub(crate) struct SSeries {
    pub labels: Lbl,
    /// `(step timestamp ms, value)`, strictly increasing timestamps.
    pub points: Vec<(i64, f64)>,
}

/// The value of a node over all steps of a grid.
#[derive(Debug)]
pub(crate) enum Val {
    Vector(Vec<SSeries>),
    /// One value per step.
    Scalar(Vec<f64>),
    Str(String),
}

impl Val {
    fn num_points(&self) -> usize {
        match self {
            Val::Vector(v) => v.iter().map(|s| s.points.len()).sum(),
            Val::Scalar(v) => v.len(),
            Val::Str(_) => 0,
        }
    }

    pub fn into_vector(self) -> Result<Vec<SSeries>, QueryError> {
        match self {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::Execution(
                "expected instant vector operand".to_string(),
            )),
        }
    }

    pub fn into_scalar(self) -> Result<Vec<f64>, QueryError> {
        match self {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::Execution("expected scalar operand".to_string())),
        }
    }
}

/// Evaluation timestamps `start, start+step, …, ≤ end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            ((self.end as i128 - self.start as i128) / self.step as i128) as usize + 1
        }
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub fn is_instant(&self) -> bool {
        self.len() == 1
    }
}

/// A range-vector source (matrix selector or subquery) resolved for a grid.
pub(crate) struct RangeSource {
    /// Series with their samples (stale markers removed), sorted by time.
    pub series: Vec<(Lbl, Vec<(i64, f64)>)>,
    pub range: i64,
    pub at: Option<i64>,
    pub offset: i64,
    /// Set when Prometheus 2.42 turns the `@` into an offset relative to the evaluation start
    /// `grid_start` (a call that is not step invariant as a whole): the window then moves with
    /// the step.
    pub moving_from: Option<i64>,
}

impl RangeSource {
    /// The end of the window evaluated at step time `ts`.
    pub fn window_end(&self, ts: i64) -> i64 {
        match (self.at, self.moving_from) {
            (Some(at), Some(start)) => at
                .saturating_sub(self.offset)
                .saturating_add(ts.saturating_sub(start)),
            (Some(at), None) => at.saturating_sub(self.offset),
            (None, _) => ts.saturating_sub(self.offset),
        }
    }
}

pub(crate) struct Evaluator<'a> {
    pub storage: &'a dyn Storage,
    pub lookback: i64,
    pub query_start: i64,
    pub query_end: i64,
    pub default_subquery_step: i64,
    pub deadline: Option<Instant>,
    pub max_samples: usize,
    pub cur_samples: usize,
}

pub(crate) fn err_exec(msg: impl Into<String>) -> QueryError {
    QueryError::Execution(msg.into())
}

pub(crate) const DUP_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// Functions whose result depends on the evaluation time even when their arguments do not
/// (Prometheus's `AtModifierUnsafeFunctions`).
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Whether Prometheus 2.42 treats `e` as step invariant (evaluated once and repeated), as its
/// `preprocessExprHelper` decides.
pub(crate) fn is_step_invariant(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Aggregate(a) => is_step_invariant(&a.expr),
        Expr::Binary(b) => is_step_invariant(&b.lhs) && is_step_invariant(&b.rhs),
        Expr::Call(c) => call_is_step_invariant(c),
        Expr::Paren(p) => is_step_invariant(&p.expr),
        Expr::Unary(u) => is_step_invariant(&u.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::Extension(_) => false,
    }
}

/// Step invariance of a function call (see [`is_step_invariant`]).
pub(crate) fn call_is_step_invariant(c: &promql_parser::parser::Call) -> bool {
    let mut inv = !AT_UNSAFE_FUNCTIONS.contains(&c.func.name);
    for a in &c.args.args {
        inv &= is_step_invariant(a);
    }
    inv
}

/// Strips any number of enclosing parentheses.
pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    d.as_millis() as i64
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Go's `Duration.Seconds()` for a duration given in milliseconds.
pub(crate) fn range_seconds(ms: i64) -> f64 {
    (ms / 1000) as f64 + ((ms % 1000) * 1_000_000) as f64 / 1e9
}

impl Evaluator<'_> {
    pub fn check_deadline(&self) -> Result<(), QueryError> {
        if let Some(d) = self.deadline {
            if Instant::now() > d {
                return Err(QueryError::Timeout);
            }
        }
        Ok(())
    }

    /// Accounts `n` more samples held in memory.
    pub fn charge(&mut self, n: usize) -> Result<(), QueryError> {
        self.cur_samples += n;
        if self.cur_samples > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    /// Checks that `n` more samples could be held right now without keeping them.
    pub fn check_room(&self, n: usize) -> Result<(), QueryError> {
        if self.cur_samples + n > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    pub fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    /// Evaluates `e` at every step of `g`.
    pub fn eval(&mut self, e: &Expr, g: Grid) -> Result<Val, QueryError> {
        self.check_deadline()?;
        let base = self.cur_samples;
        let v = self.eval_inner(e, g)?;
        self.cur_samples = base;
        self.charge(v.num_points())?;
        Ok(v)
    }

    fn eval_inner(&mut self, e: &Expr, g: Grid) -> Result<Val, QueryError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; g.len()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, g),
            Expr::Unary(u) => match self.eval(&u.expr, g)? {
                Val::Scalar(mut v) => {
                    for x in v.iter_mut() {
                        *x = -*x;
                    }
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut v) => {
                    for s in v.iter_mut() {
                        if s.labels.name().is_some() {
                            s.labels = Arc::new(s.labels.without_name());
                        }
                        for p in s.points.iter_mut() {
                            p.1 = -p.1;
                        }
                    }
                    check_unique_labels(&v)?;
                    Ok(Val::Vector(v))
                }
                Val::Str(_) => Err(err_exec("unary minus on a string")),
            },
            Expr::Binary(b) => crate::binary::eval_binary(self, b, g),
            Expr::Aggregate(a) => crate::aggregate::eval_aggregate(self, a, g),
            Expr::Call(c) => crate::functions::eval_call(self, c, g),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs, g, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => Err(err_exec(
                "range vector can only be evaluated as a function argument or query result",
            )),
            Expr::Extension(_) => Err(err_exec("extension expressions are not supported")),
        }
    }

    /// All matchers of a selector, including the metric name.
    fn selector_matchers(vs: &VectorSelector) -> Vec<Matcher> {
        let mut m = vs.matchers.matchers.clone();
        if let Some(name) = &vs.name {
            m.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
        }
        m
    }

    /// Selects from storage, sorted by labels.
    fn select(
        &mut self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<crate::value::Series>, QueryError> {
        let matchers = Self::selector_matchers(vs);
        let mut series = self
            .storage
            .select(&matchers, mint, maxt)
            .map_err(QueryError::Storage)?;
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.check_deadline()?;
        Ok(series)
    }

    /// Evaluates an instant vector selector at every step. With `timestamps`, the value of each
    /// point is the selected sample's timestamp in seconds (for `timestamp()`).
    pub fn eval_vector_selector(
        &mut self,
        vs: &VectorSelector,
        g: Grid,
        timestamps: bool,
    ) -> Result<Vec<SSeries>, QueryError> {
        let at = self.at_ms(&vs.at);
        // Prometheus 2.42's timestamp() recomputes the offset of an `@` selector per step as
        // `ts - @`, dropping any `offset`.
        let off = if timestamps && at.is_some() {
            0
        } else {
            offset_ms(&vs.offset)
        };
        let eff = |ts: i64| at.unwrap_or(ts).saturating_sub(off);
        let n = g.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let mint = eff(g.start).saturating_sub(self.lookback);
        let maxt = eff(g.ts(n - 1));
        let series = self.select(vs, mint, maxt)?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            self.check_deadline()?;
            let samples = &s.samples;
            let mut pts = Vec::new();
            let mut j = 0usize;
            for i in 0..n {
                let ts = g.ts(i);
                let r = eff(ts);
                while j < samples.len() && samples[j].0 <= r {
                    j += 1;
                }
                if j == 0 {
                    continue;
                }
                let (t, v) = samples[j - 1];
                if t < r.saturating_sub(self.lookback) || is_stale_nan(v) {
                    continue;
                }
                pts.push((ts, if timestamps { t as f64 / 1000.0 } else { v }));
            }
            self.charge(pts.len())?;
            if !pts.is_empty() {
                out.push(SSeries {
                    labels: Arc::new(s.labels),
                    points: pts,
                });
            }
        }
        Ok(out)
    }

    /// Resolves a matrix-typed expression (matrix selector or subquery, possibly parenthesised)
    /// for evaluation at the steps of `g`.
    pub fn eval_range_source(
        &mut self,
        e: &Expr,
        g: Grid,
        moving_at: bool,
    ) -> Result<RangeSource, QueryError> {
        let n = g.len();
        let moving_from = if moving_at { Some(g.start) } else { None };
        match unwrap_parens(e) {
            Expr::MatrixSelector(ms) => {
                let at = self.at_ms(&ms.vs.at);
                let offset = offset_ms(&ms.vs.offset);
                let range = duration_ms(&ms.range);
                let src = RangeSource {
                    series: Vec::new(),
                    range,
                    at,
                    offset,
                    moving_from,
                };
                if n == 0 {
                    return Ok(src);
                }
                let mint = src.window_end(g.start).saturating_sub(range);
                let maxt = src.window_end(g.ts(n - 1));
                let selected = self.select(&ms.vs, mint, maxt)?;
                let mut series = Vec::with_capacity(selected.len());
                for s in selected {
                    let pts: Vec<(i64, f64)> = s
                        .samples
                        .into_iter()
                        .filter(|(t, v)| *t >= mint && *t <= maxt && !is_stale_nan(*v))
                        .collect();
                    series.push((Arc::new(s.labels), pts));
                }
                Ok(RangeSource { series, ..src })
            }
            Expr::Subquery(sq) => {
                let at = self.at_ms(&sq.at);
                let offset = offset_ms(&sq.offset);
                let range = duration_ms(&sq.range);
                let step = match &sq.step {
                    Some(s) if duration_ms(s) > 0 => duration_ms(s),
                    _ => self.default_subquery_step,
                };
                let mut src = RangeSource {
                    series: Vec::new(),
                    range,
                    at,
                    offset,
                    moving_from,
                };
                if n == 0 {
                    return Ok(src);
                }
                let first = src.window_end(g.start).saturating_sub(range);
                // First timestamp at or after `first` that is a multiple of the step (Go's
                // truncating division, then one step forward if below).
                let mut inner_start = step * (first / step);
                if inner_start < first {
                    inner_start += step;
                }
                let inner_end = src.window_end(g.ts(n - 1));
                let inner = Grid {
                    start: inner_start,
                    end: inner_end,
                    step,
                };
                if inner.len() == 0 {
                    return Ok(src);
                }
                if inner.len() > self.max_samples {
                    return Err(QueryError::TooManySamples);
                }
                let v = self.eval(&sq.expr, inner)?.into_vector()?;
                src.series = v.into_iter().map(|s| (s.labels, s.points)).collect();
                Ok(src)
            }
            _ => Err(err_exec("expected a range vector")),
        }
    }
}

/// Per-series read positions for walking several step series in step order.
pub(crate) struct Cursors {
    pos: Vec<usize>,
}

impl Cursors {
    pub fn new(n: usize) -> Self {
        Cursors { pos: vec![0; n] }
    }

    /// Collects `(series index, value)` of every series with a point at `ts`, in series order.
    pub fn collect(&mut self, series: &[SSeries], ts: i64, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (i, s) in series.iter().enumerate() {
            let p = self.pos[i];
            if p < s.points.len() && s.points[p].0 == ts {
                out.push((i, s.points[p].1));
                self.pos[i] = p + 1;
            }
        }
    }
}

/// Accumulates output series step by step; a label set written twice at one step is an error.
pub(crate) struct Collector {
    index: HashMap<Lbl, usize>,
    pub out: Vec<SSeries>,
}

impl Collector {
    pub fn new() -> Self {
        Collector {
            index: HashMap::new(),
            out: Vec::new(),
        }
    }

    /// The output slot for a label set, created on first use.
    pub fn slot(&mut self, labels: Lbl) -> usize {
        if let Some(&i) = self.index.get(&labels) {
            return i;
        }
        let i = self.out.len();
        self.index.insert(labels.clone(), i);
        self.out.push(SSeries {
            labels,
            points: Vec::new(),
        });
        i
    }

    /// Whether `slot` already has a point at `ts`.
    pub fn has(&self, slot: usize, ts: i64) -> bool {
        self.out[slot].points.last().is_some_and(|p| p.0 == ts)
    }

    /// Appends a point; `Err` if the slot already has one at `ts`.
    pub fn push(&mut self, slot: usize, ts: i64, v: f64) -> Result<(), QueryError> {
        if self.has(slot, ts) {
            return Err(err_exec(DUP_LABELSET));
        }
        self.out[slot].points.push((ts, v));
        Ok(())
    }

    pub fn finish(self) -> Vec<SSeries> {
        self.out
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect()
    }
}

/// Merges series with equal label sets (which must not have points at the same step), keeping
/// first-appearance order — the result of Prometheus's per-step evaluation for operators that map
/// each input series to one output series.
pub(crate) fn merge_series(v: Vec<SSeries>) -> Result<Vec<SSeries>, QueryError> {
    let mut index: HashMap<Lbl, usize> = HashMap::with_capacity(v.len());
    let mut out: Vec<SSeries> = Vec::with_capacity(v.len());
    for s in v {
        if s.points.is_empty() {
            continue;
        }
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&k) => {
                let a = std::mem::take(&mut out[k].points);
                let b = s.points;
                let mut merged = Vec::with_capacity(a.len() + b.len());
                let (mut i, mut j) = (0, 0);
                while i < a.len() || j < b.len() {
                    if j >= b.len() || (i < a.len() && a[i].0 < b[j].0) {
                        merged.push(a[i]);
                        i += 1;
                    } else if i >= a.len() || b[j].0 < a[i].0 {
                        merged.push(b[j]);
                        j += 1;
                    } else {
                        return Err(err_exec(DUP_LABELSET));
                    }
                }
                out[k].points = merged;
            }
        }
    }
    Ok(out)
}

/// Errors when two series share a label set (Prometheus's `Matrix.ContainsSameLabelset`).
pub(crate) fn check_unique_labels(v: &[SSeries]) -> Result<(), QueryError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen: std::collections::HashSet<&Labels> =
        std::collections::HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&s.labels) {
            return Err(err_exec(DUP_LABELSET));
        }
    }
    Ok(())
}

/// Label-set key bytes used for grouping and vector matching.
pub(crate) fn push_key(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.extend_from_slice(name.as_bytes());
    buf.push(0xfe);
    buf.extend_from_slice(value.as_bytes());
    buf.push(0xff);
}

/// Interns byte keys into dense ids.
pub(crate) struct Interner {
    map: HashMap<Vec<u8>, usize>,
}

impl Interner {
    pub fn new() -> Self {
        Interner {
            map: HashMap::new(),
        }
    }

    pub fn id(&mut self, key: Vec<u8>) -> (usize, bool) {
        let n = self.map.len();
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(n);
                (n, true)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}
