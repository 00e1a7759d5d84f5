//! PromQL functions: range-vector functions (evaluated series by series, sliding a window over
//! each series' samples across all steps) and instant-vector / scalar functions.

use std::sync::Arc;

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use crate::eval::{
    call_is_step_invariant, check_unique_labels, err_exec, merge_series, range_seconds,
    unwrap_parens, Collector, Cursors, Evaluator, Grid, Interner, Lbl, SSeries, Val,
};
use crate::format::format_float_fixed6;
use crate::labels::{is_valid_label_name, Labels, BUCKET_LABEL, METRIC_NAME};
use crate::quantile::{bucket_quantile, quantile};
use crate::value::QueryError;

/// The functions of Prometheus 2.42 (anything else the parser knows is rejected).
pub(crate) const FUNCTIONS_2_42: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_sum",
    "histogram_fraction",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

const RANGE_FUNCTIONS: &[&str] = &[
    "absent_over_time",
    "avg_over_time",
    "changes",
    "count_over_time",
    "delta",
    "deriv",
    "holt_winters",
    "idelta",
    "increase",
    "irate",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rate",
    "resets",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
];

fn string_arg(e: &Expr) -> Result<String, QueryError> {
    match unwrap_parens(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(err_exec("expected a string literal argument")),
    }
}

fn drop_name(l: &Lbl) -> Lbl {
    if l.name().is_some() {
        Arc::new(l.without_name())
    } else {
        l.clone()
    }
}

/// Go's `math.Max`.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y {
        x
    } else {
        y
    }
}

/// Labels for `absent`/`absent_over_time`: the equality matchers of a selector argument, minus
/// any label matched more than once or by a non-equality matcher.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut l = Labels::empty();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            l.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            l.remove(&m.name);
        }
    }
    l
}

fn step_index(g: &Grid, ts: i64) -> usize {
    ((ts - g.start) / g.step) as usize
}

/// `absent`/`absent_over_time`: a series of 1 at every step where `present`
/// has no point, labelled from the argument's equality matchers.
fn absent_series(present: &[SSeries], g: &Grid, arg: &Expr) -> Vec<SSeries> {
    let n = g.len();
    let mut seen = vec![false; n];
    for s in present {
        for &(ts, _) in &s.points {
            seen[step_index(g, ts)] = true;
        }
    }
    let points: Vec<(i64, f64)> = (0..n)
        .filter(|&i| !seen[i])
        .map(|i| (g.ts(i), 1.0))
        .collect();
    if points.is_empty() {
        return vec![];
    }
    vec![SSeries {
        labels: Arc::new(absent_labels(arg)),
        points,
    }]
}

pub(crate) fn eval_call(ev: &mut Evaluator<'_>, c: &Call, g: Grid) -> Result<Val, QueryError> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|b| b.as_ref()).collect();
    let n = g.len();
    if RANGE_FUNCTIONS.contains(&name) {
        return eval_range_function(ev, call_is_step_invariant(c), name, &args, g);
    }
    match name {
        "time" => Ok(Val::Scalar(
            (0..n).map(|i| g.ts(i) as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "vector" => {
            let s = ev.eval(args[0], g)?.into_scalar()?;
            let points = (0..n).map(|i| (g.ts(i), s[i])).collect();
            Ok(Val::Vector(vec![SSeries {
                labels: Arc::new(Labels::empty()),
                points,
            }]))
        }
        "scalar" => {
            let v = ev.eval(args[0], g)?.into_vector()?;
            let mut count = vec![0usize; n];
            let mut value = vec![f64::NAN; n];
            for s in &v {
                for &(ts, x) in &s.points {
                    let i = step_index(&g, ts);
                    count[i] += 1;
                    value[i] = x;
                }
            }
            Ok(Val::Scalar(
                (0..n)
                    .map(|i| if count[i] == 1 { value[i] } else { f64::NAN })
                    .collect(),
            ))
        }
        "absent" => {
            let v = ev.eval(args[0], g)?.into_vector()?;
            Ok(Val::Vector(absent_series(&v, &g, args[0])))
        }
        "timestamp" => {
            let v = match unwrap_parens(args[0]) {
                Expr::VectorSelector(vs) => ev.eval_vector_selector(vs, g, true)?,
                other => {
                    let mut v = ev.eval(other, g)?.into_vector()?;
                    for s in v.iter_mut() {
                        for p in s.points.iter_mut() {
                            p.1 = p.0 as f64 / 1000.0;
                        }
                    }
                    v
                }
            };
            map_series(v, true, |_, x| Some(x))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.eval(args[0], g)?.into_vector()?;
            if g.is_instant() {
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    let (x, y) = (
                        a.points.first().map_or(f64::NAN, |p| p.1),
                        b.points.first().map_or(f64::NAN, |p| p.1),
                    );
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
            }
            Ok(Val::Vector(v))
        }
        "label_replace" => label_replace(ev, &args, g),
        "label_join" => label_join(ev, &args, g),
        "histogram_quantile" => histogram_quantile(ev, &args, g),
        "histogram_count" | "histogram_sum" | "histogram_fraction" => {
            // Only native histograms have these; float samples are skipped.
            for a in &args {
                ev.eval(a, g)?;
            }
            Ok(Val::Vector(Vec::new()))
        }
        "round" => {
            let v = ev.eval(args[0], g)?.into_vector()?;
            let to_nearest = match args.get(1) {
                Some(a) => ev.eval(a, g)?.into_scalar()?,
                None => vec![1.0; n],
            };
            map_series(v, true, |ts, x| {
                let inv = 1.0 / to_nearest[step_index(&g, ts)];
                Some((x * inv + 0.5).floor() / inv)
            })
        }
        "clamp" => {
            let v = ev.eval(args[0], g)?.into_vector()?;
            let lo = ev.eval(args[1], g)?.into_scalar()?;
            let hi = ev.eval(args[2], g)?.into_scalar()?;
            map_series(v, true, |ts, x| {
                let i = step_index(&g, ts);
                if hi[i] < lo[i] {
                    None
                } else {
                    Some(go_max(lo[i], go_min(hi[i], x)))
                }
            })
        }
        "clamp_min" | "clamp_max" => {
            let v = ev.eval(args[0], g)?.into_vector()?;
            let b = ev.eval(args[1], g)?.into_scalar()?;
            let is_min = name == "clamp_min";
            map_series(v, true, |ts, x| {
                let bound = b[step_index(&g, ts)];
                Some(if is_min {
                    go_max(bound, x)
                } else {
                    go_min(bound, x)
                })
            })
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute"
        | "month" | "year" => {
            let f = date_function(name);
            if args.is_empty() {
                let points = (0..n)
                    .map(|i| (g.ts(i), f(g.ts(i) / 1000)))
                    .collect::<Vec<_>>();
                return Ok(Val::Vector(vec![SSeries {
                    labels: Arc::new(Labels::empty()),
                    points,
                }]));
            }
            let v = ev.eval(args[0], g)?.into_vector()?;
            map_series(v, true, |_, x| {
                if !x.is_finite() || x.abs() > 1e15 {
                    return Some(f64::NAN);
                }
                Some(f(x.trunc() as i64))
            })
        }
        _ => {
            let f = math_function(name)
                .ok_or_else(|| err_exec(format!("unknown function with name \"{name}\"")))?;
            let v = ev.eval(args[0], g)?.into_vector()?;
            map_series(v, true, |_, x| Some(f(x)))
        }
    }
}

fn math_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Maps every point of every series (optionally dropping the metric name), then merges series
/// that end up with the same labels (an error if they overlap in time).
fn map_series(
    v: Vec<SSeries>,
    drop: bool,
    f: impl Fn(i64, f64) -> Option<f64>,
) -> Result<Val, QueryError> {
    let mut out = Vec::with_capacity(v.len());
    for s in v {
        let points: Vec<(i64, f64)> = s
            .points
            .iter()
            .filter_map(|&(ts, x)| f(ts, x).map(|y| (ts, y)))
            .collect();
        let labels = if drop { drop_name(&s.labels) } else { s.labels };
        out.push(SSeries { labels, points });
    }
    Ok(Val::Vector(merge_series(out)?))
}

// ---------------------------------------------------------------------------------------------
// Dates.

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

fn date_function(name: &str) -> fn(i64) -> f64 {
    match name {
        "days_in_month" => |s| {
            let (y, m, _) = civil_from_days(s.div_euclid(86_400));
            days_in_month(y, m) as f64
        },
        "day_of_month" => |s| civil_from_days(s.div_euclid(86_400)).2 as f64,
        "day_of_week" => |s| (s.div_euclid(86_400) + 4).rem_euclid(7) as f64,
        "day_of_year" => |s| {
            let (y, m, d) = civil_from_days(s.div_euclid(86_400));
            let mut yday = d;
            for mm in 1..m {
                yday += days_in_month(y, mm);
            }
            yday as f64
        },
        "hour" => |s| (s.rem_euclid(86_400) / 3600) as f64,
        "minute" => |s| (s.rem_euclid(3600) / 60) as f64,
        "month" => |s| civil_from_days(s.div_euclid(86_400)).1 as f64,
        _ => |s| civil_from_days(s.div_euclid(86_400)).0 as f64,
    }
}

// ---------------------------------------------------------------------------------------------
// Label functions.

fn label_replace(ev: &mut Evaluator<'_>, args: &[&Expr], g: Grid) -> Result<Val, QueryError> {
    let v = ev.eval(args[0], g)?.into_vector()?;
    let dst = string_arg(args[1])?;
    let repl = string_arg(args[2])?;
    let src = string_arg(args[3])?;
    let re_str = string_arg(args[4])?;
    let re = regex::Regex::new(&format!("^(?:{re_str})$")).map_err(|_| {
        err_exec(format!(
            "invalid regular expression in label_replace(): {re_str}"
        ))
    })?;
    if !is_valid_label_name(&dst) {
        return Err(err_exec(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let src_val = s.labels.get_or_empty(&src).to_string();
        if let Some(caps) = re.captures(&src_val) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            let mut l = (*s.labels).clone();
            l.remove(&dst);
            if !res.is_empty() {
                l.set(&dst, &res);
            }
            s.labels = Arc::new(l);
        }
        out.push(s);
    }
    Ok(Val::Vector(merge_series(out)?))
}

fn label_join(ev: &mut Evaluator<'_>, args: &[&Expr], g: Grid) -> Result<Val, QueryError> {
    let v = ev.eval(args[0], g)?.into_vector()?;
    let dst = string_arg(args[1])?;
    let sep = string_arg(args[2])?;
    let mut srcs = Vec::new();
    for a in &args[3..] {
        let s = string_arg(a)?;
        if !is_valid_label_name(&s) {
            return Err(err_exec(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return Err(err_exec(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let joined = srcs
            .iter()
            .map(|n| s.labels.get_or_empty(n))
            .collect::<Vec<_>>()
            .join(&sep);
        let mut l = (*s.labels).clone();
        l.set(&dst, &joined);
        s.labels = Arc::new(l);
        out.push(s);
    }
    Ok(Val::Vector(merge_series(out)?))
}

// ---------------------------------------------------------------------------------------------
// histogram_quantile over classic buckets.

#[allow(clippy::needless_range_loop)]
fn histogram_quantile(ev: &mut Evaluator<'_>, args: &[&Expr], g: Grid) -> Result<Val, QueryError> {
    let q = ev.eval(args[0], g)?.into_scalar()?;
    let v = ev.eval(args[1], g)?.into_vector()?;
    let mut interner = Interner::new();
    let mut out_labels: Vec<Lbl> = Vec::new();
    // Per input series: (group id, upper bound), or None when it has no valid `le`.
    let mut info: Vec<Option<(usize, f64)>> = Vec::with_capacity(v.len());
    for s in &v {
        let ub = s
            .labels
            .get(BUCKET_LABEL)
            .and_then(|le| le.parse::<f64>().ok());
        match ub {
            None => info.push(None),
            Some(ub) => {
                let key = s.labels.drop_labels(&[BUCKET_LABEL]);
                let mut buf = Vec::new();
                for (n, val) in key.iter() {
                    crate::eval::push_key(&mut buf, n, val);
                }
                let (id, new) = interner.id(buf);
                if new {
                    out_labels.push(Arc::new(key.drop_labels(&[METRIC_NAME])));
                }
                info.push(Some((id, ub)));
            }
        }
    }
    let mut buckets: Vec<(i64, Vec<(f64, f64)>)> = vec![(i64::MIN, Vec::new()); out_labels.len()];
    let mut col = Collector::new();
    let mut slots: Vec<Option<usize>> = vec![None; out_labels.len()];
    let mut cur = Cursors::new(v.len());
    let mut samples = Vec::new();
    let mut touched = Vec::new();
    for i in 0..g.len() {
        let ts = g.ts(i);
        cur.collect(&v, ts, &mut samples);
        touched.clear();
        for &(si, x) in &samples {
            if let Some((gid, ub)) = info[si] {
                let b = &mut buckets[gid];
                if b.0 != ts {
                    b.0 = ts;
                    b.1.clear();
                    touched.push(gid);
                }
                b.1.push((ub, x));
            }
        }
        for &gid in &touched {
            let value = bucket_quantile(q[i], &mut buckets[gid].1);
            let slot = *slots[gid].get_or_insert_with(|| col.slot(out_labels[gid].clone()));
            col.push(slot, ts, value)?;
        }
    }
    Ok(Val::Vector(col.finish()))
}

// ---------------------------------------------------------------------------------------------
// Range-vector functions.

/// The evaluation context of one window.
struct Window {
    ts: i64,
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    p0: f64,
    p1: f64,
}

fn eval_range_function(
    ev: &mut Evaluator<'_>,
    call_invariant: bool,
    name: &str,
    args: &[&Expr],
    g: Grid,
) -> Result<Val, QueryError> {
    let midx = if name == "quantile_over_time" { 1 } else { 0 };
    // Prometheus 2.42 evaluates a call that is not step invariant as a whole at every step, with
    // the `@` of its range argument turned into an offset relative to the evaluation start, so the
    // window moves with the step.
    let src = ev.eval_range_source(args[midx], g, !call_invariant)?;
    let mut params: Vec<Vec<f64>> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != midx {
            params.push(ev.eval(a, g)?.into_scalar()?);
        }
    }
    let keep_name = name == "last_over_time";
    let n = g.len();
    let mut out = Vec::new();
    for (labels, pts) in &src.series {
        ev.check_deadline()?;
        let mut res: Vec<(i64, f64)> = Vec::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        for i in 0..n {
            let ts = g.ts(i);
            let end = src.window_end(ts);
            let start = end.saturating_sub(src.range);
            while hi < pts.len() && pts[hi].0 <= end {
                hi += 1;
            }
            while lo < hi && pts[lo].0 < start {
                lo += 1;
            }
            if lo >= hi {
                continue;
            }
            let w = &pts[lo..hi];
            ev.check_room(w.len() + res.len())?;
            let win = Window {
                ts,
                range_start: start,
                range_end: end,
                range_ms: src.range,
                p0: params.first().map_or(0.0, |p| p[i]),
                p1: params.get(1).map_or(0.0, |p| p[i]),
            };
            if let Some(v) = range_kernel(name, w, &win)? {
                res.push((ts, v));
            }
        }
        if !res.is_empty() {
            ev.charge(res.len())?;
            out.push(SSeries {
                labels: if keep_name {
                    labels.clone()
                } else {
                    drop_name(labels)
                },
                points: res,
            });
        }
    }
    if name == "absent_over_time" {
        return Ok(Val::Vector(absent_series(&out, &g, args[0])));
    }
    check_unique_labels(&out)?;
    Ok(Val::Vector(out))
}

/// Neumaier-compensated summation step (Prometheus's `kahanSumInc`).
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Least-squares fit of `w` with x measured in seconds from `intercept_time`.
fn linear_regression(w: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut cxy, mut sum_x2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in w.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_time) as f64 / 1e3;
        (sum_x, cx) = kahan_inc(x, sum_x, cx);
        (sum_y, cy) = kahan_inc(v, sum_y, cy);
        (sum_xy, cxy) = kahan_inc(x * v, sum_xy, cxy);
        (sum_x2, cx2) = kahan_inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + cx, sum_y + cy, sum_xy + cxy, sum_x2 + cx2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn extrapolated_rate(
    w: &[(i64, f64)],
    win: &Window,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = first.1;
        for &(_, v) in &w[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut duration_to_start = (first.0 - win.range_start) as f64 / 1000.0;
    let duration_to_end = (win.range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let duration_to_zero = sampled * (first.1 / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = avg * 1.1;
    let mut extrapolate_to = sampled;
    if duration_to_start < threshold {
        extrapolate_to += duration_to_start;
    } else {
        extrapolate_to += avg / 2.0;
    }
    if duration_to_end < threshold {
        extrapolate_to += duration_to_end;
    } else {
        extrapolate_to += avg / 2.0;
    }
    let mut factor = extrapolate_to / sampled;
    if is_rate {
        factor /= range_seconds(win.range_ms);
    }
    Some(result * factor)
}

fn instant_value(w: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
    let mut result = if is_rate && last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    let interval = last.0 - prev.0;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

fn holt_winters(w: &[(i64, f64)], sf: f64, tf: f64) -> Result<Option<f64>, QueryError> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(err_exec(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            format_float_fixed6(sf)
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(err_exec(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            format_float_fixed6(tf)
        )));
    }
    if w.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, w[0].1);
    let mut b = w[1].1 - w[0].1;
    for (i, &(_, v)) in w.iter().enumerate().skip(1) {
        let x = sf * v;
        // Trend at the previous index.
        b = if i - 1 == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        };
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

fn range_kernel(name: &str, w: &[(i64, f64)], win: &Window) -> Result<Option<f64>, QueryError> {
    Ok(match name {
        "rate" => extrapolated_rate(w, win, true, true),
        "increase" => extrapolated_rate(w, win, true, false),
        "delta" => extrapolated_rate(w, win, false, false),
        "irate" => instant_value(w, true),
        "idelta" => instant_value(w, false),
        "resets" => {
            let mut n = 0;
            for p in w.windows(2) {
                if p[1].1 < p[0].1 {
                    n += 1;
                }
            }
            Some(n as f64)
        }
        "changes" => {
            let mut n = 0;
            for p in w.windows(2) {
                let (prev, cur) = (p[0].1, p[1].1);
                if cur != prev && !(cur.is_nan() && prev.is_nan()) {
                    n += 1;
                }
            }
            Some(n as f64)
        }
        "deriv" => {
            if w.len() < 2 {
                None
            } else {
                Some(linear_regression(w, w[0].0).0)
            }
        }
        "predict_linear" => {
            if w.len() < 2 {
                None
            } else {
                let (slope, intercept) = linear_regression(w, win.ts);
                Some(slope * win.p0 + intercept)
            }
        }
        "avg_over_time" => {
            let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
            for &(_, v) in w {
                count += 1.0;
                if mean.is_infinite() {
                    if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                (mean, c) = kahan_inc(v / count - mean / count, mean, c);
            }
            Some(if mean.is_infinite() { mean } else { mean + c })
        }
        "sum_over_time" => {
            let (mut sum, mut c) = (0.0f64, 0.0f64);
            for &(_, v) in w {
                (sum, c) = kahan_inc(v, sum, c);
            }
            Some(if sum.is_infinite() { sum } else { sum + c })
        }
        "count_over_time" => Some(w.len() as f64),
        "min_over_time" => {
            let mut m = w[0].1;
            for &(_, v) in w {
                if v < m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        "max_over_time" => {
            let mut m = w[0].1;
            for &(_, v) in w {
                if v > m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        "last_over_time" => Some(w[w.len() - 1].1),
        "present_over_time" | "absent_over_time" => Some(1.0),
        "quantile_over_time" => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            Some(quantile(win.p0, &mut vals))
        }
        "stddev_over_time" | "stdvar_over_time" => {
            let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &(_, v) in w {
                count += 1.0;
                let delta = v - (mean + c_mean);
                (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
                (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
            }
            let var = (aux + c_aux) / count;
            Some(if name == "stddev_over_time" {
                var.sqrt()
            } else {
                var
            })
        }
        "holt_winters" => return holt_winters(w, win.p0, win.p1),
        _ => return Err(err_exec(format!("unknown function with name \"{name}\""))),
    })
}
