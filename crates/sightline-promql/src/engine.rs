//! The public query engine: options, parsing (restricted to the Prometheus 2.42 language),
//! instant and range query execution, and shaping results like Prometheus does.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};

use crate::eval::{duration_ms, unwrap_parens, Evaluator, Grid, Val};
use crate::functions::FUNCTIONS_2_42;
use crate::labels::Labels;
use crate::value::{QueryError, Sample, Series, Storage, Value};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant vector selector looks for a sample (Prometheus default 5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once (Prometheus default 50,000,000).
    pub max_samples: usize,
    /// Longest a query may run (Prometheus default 2m).
    pub timeout: Duration,
    /// Step of subqueries written without one (`x[1h:]`): Prometheus uses the global
    /// evaluation interval, 1m by default.
    pub default_subquery_step: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
        }
    }
}

/// Evaluates PromQL queries against a [`Storage`].
#[derive(Debug, Clone)]
pub struct Engine {
    opts: EngineOptions,
}

/// Most points per series a range query may return (Prometheus's API limit).
const MAX_POINTS_PER_SERIES: i64 = 11_000;

static REGISTER: Once = Once::new();

/// Makes the parser accept `holt_winters`, a 2.42 function later renamed.
fn register_functions() {
    REGISTER.call_once(|| {
        let _ = parser::register_extra_functions(vec![parser::Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
}

/// Parses a query, rejecting constructs Prometheus 2.42 does not have.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    register_functions();
    let expr = parser::parse(query).map_err(QueryError::Parse)?;
    check_2_42(&expr).map_err(QueryError::Parse)?;
    Ok(expr)
}

fn check_2_42(e: &Expr) -> Result<(), String> {
    match e {
        Expr::Aggregate(a) => {
            let id = a.op.id();
            let known = [
                T_SUM,
                T_AVG,
                T_COUNT,
                T_MIN,
                T_MAX,
                T_GROUP,
                T_STDDEV,
                T_STDVAR,
                T_TOPK,
                T_BOTTOMK,
                T_COUNT_VALUES,
                T_QUANTILE,
            ];
            if !known.contains(&id) {
                return Err(format!("unknown aggregation operator \"{}\"", a.op));
            }
            if let Some(p) = &a.param {
                check_2_42(p)?;
            }
            check_2_42(&a.expr)
        }
        Expr::Unary(u) => check_2_42(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err("fill modifiers are not supported".to_string());
                }
            }
            check_2_42(&b.lhs)?;
            check_2_42(&b.rhs)
        }
        Expr::Paren(p) => check_2_42(&p.expr),
        Expr::Subquery(s) => check_2_42(&s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => {
            if !vs.matchers.or_matchers.is_empty() {
                return Err("unexpected \"or\" in label matching".to_string());
            }
            Ok(())
        }
        Expr::MatrixSelector(ms) => {
            if !ms.vs.matchers.or_matchers.is_empty() {
                return Err("unexpected \"or\" in label matching".to_string());
            }
            Ok(())
        }
        Expr::Call(c) => {
            if !FUNCTIONS_2_42.contains(&c.func.name) {
                return Err(format!("unknown function with name \"{}\"", c.func.name));
            }
            for a in &c.args.args {
                check_2_42(a)?;
            }
            Ok(())
        }
        Expr::Extension(_) => Err("unsupported expression".to_string()),
    }
}

fn documented_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    fn evaluator<'a>(&self, storage: &'a dyn Storage, start: i64, end: i64) -> Evaluator<'a> {
        Evaluator {
            storage,
            lookback: duration_ms(&self.opts.lookback_delta),
            query_start: start,
            query_end: end,
            default_subquery_step: duration_ms(&self.opts.default_subquery_step).max(1),
            deadline: Instant::now().checked_add(self.opts.timeout),
            max_samples: self.opts.max_samples,
            cur_samples: 0,
        }
    }

    /// A Prometheus instant query at `time_ms`.
    pub fn instant(
        &self,
        storage: &dyn Storage,
        query: &str,
        time_ms: i64,
    ) -> Result<Value, QueryError> {
        let expr = parse(query)?;
        let mut ev = self.evaluator(storage, time_ms, time_ms);
        let g = Grid {
            start: time_ms,
            end: time_ms,
            step: 1,
        };
        match expr.value_type() {
            ValueType::Matrix => {
                let src = ev.eval_range_source(&expr, g, false)?;
                let end = src.window_end(time_ms);
                let start = end - src.range;
                let keep_all = matches!(unwrap_parens(&expr), Expr::Subquery(_));
                let mut out = Vec::new();
                let mut total = 0usize;
                for (labels, pts) in src.series {
                    let samples: Vec<(i64, f64)> = pts
                        .into_iter()
                        .filter(|(t, _)| keep_all || (*t >= start && *t <= end))
                        .collect();
                    total += samples.len();
                    if total > self.opts.max_samples {
                        return Err(QueryError::TooManySamples);
                    }
                    if !samples.is_empty() {
                        out.push(Series {
                            labels: Arc::unwrap_or_clone(labels),
                            samples,
                        });
                    }
                }
                if keep_all {
                    out.sort_by(|a, b| a.labels.cmp(&b.labels));
                }
                Ok(Value::Matrix(out))
            }
            _ => match ev.eval(&expr, g)? {
                Val::Str(s) => Ok(Value::String(time_ms, s)),
                Val::Scalar(v) => Ok(Value::Scalar(time_ms, v[0])),
                Val::Vector(v) => Ok(Value::Vector(
                    v.into_iter()
                        .filter_map(|s| {
                            s.points.first().map(|p| Sample {
                                labels: Arc::unwrap_or_clone(s.labels),
                                t: time_ms,
                                v: p.1,
                            })
                        })
                        .collect(),
                )),
            },
        }
    }

    /// A Prometheus range query: evaluates at `start_ms`, `start_ms + step_ms`, … ≤ `end_ms`
    /// and returns a matrix sorted by labels.
    pub fn range(
        &self,
        storage: &dyn Storage,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        if end_ms < start_ms {
            return Err(QueryError::Parse(
                "end timestamp must not be before start time".to_string(),
            ));
        }
        if step_ms <= 0 {
            return Err(QueryError::Parse(
                "zero or negative query resolution step widths are not accepted. Try a positive \
                 integer"
                    .to_string(),
            ));
        }
        if (end_ms - start_ms) / step_ms > MAX_POINTS_PER_SERIES {
            return Err(QueryError::Parse(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the \
                 query resolution (?step=XX)"
                    .to_string(),
            ));
        }
        let expr = parse(query)?;
        let t = expr.value_type();
        if t != ValueType::Vector && t != ValueType::Scalar {
            return Err(QueryError::Parse(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                documented_type(t)
            )));
        }
        let mut ev = self.evaluator(storage, start_ms, end_ms);
        let g = Grid {
            start: start_ms,
            end: end_ms,
            step: step_ms,
        };
        match ev.eval(&expr, g)? {
            Val::Scalar(v) => Ok(Value::Matrix(vec![Series {
                labels: Labels::empty(),
                samples: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| (g.ts(i), x))
                    .collect(),
            }])),
            Val::Vector(v) => {
                let mut out: Vec<Series> = v
                    .into_iter()
                    .filter(|s| !s.points.is_empty())
                    .map(|s| Series {
                        labels: Arc::unwrap_or_clone(s.labels),
                        samples: s.points,
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(Value::Matrix(out))
            }
            Val::Str(_) => Err(QueryError::Parse(
                "invalid expression type \"string\" for range query, must be Scalar or instant \
                 Vector"
                    .to_string(),
            )),
        }
    }
}
