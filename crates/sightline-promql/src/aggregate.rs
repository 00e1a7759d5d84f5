//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `quantile`, `count_values`) with `by`/`without` grouping.

use std::sync::Arc;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::eval::{
    err_exec, push_key, unwrap_parens, Collector, Cursors, Evaluator, Grid, Interner, Lbl, SSeries,
    Val,
};
use crate::format::{format_float, format_float_g};
use crate::labels::{go_quote, is_valid_label_name, Labels, METRIC_NAME};
use crate::quantile::quantile;
use crate::value::QueryError;

/// Grouping key of a label set.
fn group_key(l: &Labels, grouping: &[String], without: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    for (n, v) in l.iter() {
        let listed = grouping.iter().any(|g| g == n);
        let include = if without {
            !listed && n != METRIC_NAME
        } else {
            listed
        };
        if include {
            push_key(&mut buf, n, v);
        }
    }
    buf
}

/// Output labels of a group.
fn group_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        let mut out = l.drop_labels(grouping);
        out.remove(METRIC_NAME);
        out
    } else if grouping.is_empty() {
        Labels::empty()
    } else {
        l.keep(grouping)
    }
}

#[derive(Clone, Default)]
struct Acc {
    stamp: i64,
    value: f64,
    mean: f64,
    count: usize,
    values: Vec<f64>,
}

pub(crate) fn eval_aggregate(
    ev: &mut Evaluator<'_>,
    a: &AggregateExpr,
    g: Grid,
) -> Result<Val, QueryError> {
    let op = a.op.id();
    let (without, mut grouping): (bool, Vec<String>) = match &a.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    };
    grouping.sort();
    if op == T_COUNT_VALUES {
        let label = match a.param.as_deref().map(unwrap_parens) {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => return Err(err_exec("count_values requires a string parameter")),
        };
        let input = ev.eval(&a.expr, g)?.into_vector()?;
        return count_values(input, &label, grouping, without, g).map(Val::Vector);
    }
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, g)?.into_scalar()?),
        None => None,
    };
    let input = ev.eval(&a.expr, g)?.into_vector()?;
    if op == T_TOPK || op == T_BOTTOMK {
        let k = param.unwrap_or_else(|| vec![0.0; g.len()]);
        return topk(input, &k, op == T_TOPK, &grouping, without, g).map(Val::Vector);
    }

    // Group of every input series.
    let mut interner = Interner::new();
    let mut group_of = Vec::with_capacity(input.len());
    let mut labels_of: Vec<Lbl> = Vec::new();
    for s in &input {
        let (id, new) = interner.id(group_key(&s.labels, &grouping, without));
        if new {
            labels_of.push(Arc::new(group_labels(&s.labels, &grouping, without)));
        }
        group_of.push(id);
    }
    let ngroups = labels_of.len();
    let mut accs = vec![
        Acc {
            stamp: i64::MIN,
            ..Acc::default()
        };
        ngroups
    ];
    let mut slots: Vec<Option<usize>> = vec![None; ngroups];
    let mut col = Collector::new();
    let mut cur = Cursors::new(input.len());
    let mut samples = Vec::new();
    let mut touched = Vec::new();
    for i in 0..g.len() {
        if i % 64 == 0 {
            ev.check_deadline()?;
        }
        let ts = g.ts(i);
        cur.collect(&input, ts, &mut samples);
        touched.clear();
        for &(si, v) in &samples {
            let gi = group_of[si];
            let acc = &mut accs[gi];
            if acc.stamp != ts {
                acc.stamp = ts;
                acc.value = v;
                acc.mean = v;
                acc.count = 1;
                acc.values.clear();
                match op {
                    T_STDDEV | T_STDVAR => acc.value = 0.0,
                    T_GROUP => acc.value = 1.0,
                    T_QUANTILE => acc.values.push(v),
                    _ => {}
                }
                touched.push(gi);
                continue;
            }
            match op {
                T_SUM => acc.value += v,
                T_AVG => {
                    acc.count += 1;
                    let n = acc.count as f64;
                    if acc.mean.is_infinite() {
                        if v.is_infinite() && (acc.mean > 0.0) == (v > 0.0) {
                            continue;
                        }
                        if !v.is_infinite() && !v.is_nan() {
                            continue;
                        }
                    }
                    acc.mean += v / n - acc.mean / n;
                }
                T_MAX => {
                    if acc.value < v || acc.value.is_nan() {
                        acc.value = v;
                    }
                }
                T_MIN => {
                    if acc.value > v || acc.value.is_nan() {
                        acc.value = v;
                    }
                }
                T_COUNT => acc.count += 1,
                T_GROUP => {}
                T_STDDEV | T_STDVAR => {
                    acc.count += 1;
                    let delta = v - acc.mean;
                    acc.mean += delta / acc.count as f64;
                    acc.value += delta * (v - acc.mean);
                }
                T_QUANTILE => acc.values.push(v),
                _ => return Err(err_exec(format!("unsupported aggregation {}", a.op))),
            }
        }
        for &gi in &touched {
            let acc = &mut accs[gi];
            let value = match op {
                T_AVG => acc.mean,
                T_COUNT => acc.count as f64,
                T_STDVAR => acc.value / acc.count as f64,
                T_STDDEV => (acc.value / acc.count as f64).sqrt(),
                T_QUANTILE => {
                    let q = param.as_ref().map(|p| p[i]).unwrap_or(f64::NAN);
                    quantile(q, &mut acc.values)
                }
                _ => acc.value,
            };
            let slot = *slots[gi].get_or_insert_with(|| col.slot(labels_of[gi].clone()));
            col.push(slot, ts, value)?;
        }
    }
    Ok(Val::Vector(col.finish()))
}

/// Go's `convertibleToInt64`.
fn convertible_to_i64(v: f64) -> bool {
    (-9_223_372_036_854_775_808.0..=9_223_372_036_854_774_784.0).contains(&v)
}

/// A binary heap with Go's `container/heap` algorithms and a Prometheus value ordering.
struct GoHeap {
    items: Vec<(f64, usize)>,
    top: bool,
}

impl GoHeap {
    /// `vectorByValueHeap.Less` (topk) or `vectorByReverseValueHeap.Less` (bottomk).
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.items[i].0, self.items[j].0);
        if a.is_nan() {
            return true;
        }
        if self.top {
            a < b
        } else {
            a > b
        }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize, n: usize) {
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            let j2 = j1 + 1;
            if j2 < n && self.less(j2, j1) {
                j = j2;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
    }

    fn push(&mut self, x: (f64, usize)) {
        self.items.push(x);
        let n = self.items.len() - 1;
        self.up(n);
    }

    fn pop(&mut self) {
        let n = self.items.len() - 1;
        self.items.swap(0, n);
        self.down(0, n);
        self.items.pop();
    }
}

#[allow(clippy::needless_range_loop)]
fn topk(
    input: Vec<SSeries>,
    k_per_step: &[f64],
    top: bool,
    grouping: &[String],
    without: bool,
    g: Grid,
) -> Result<Vec<SSeries>, QueryError> {
    let mut interner = Interner::new();
    let group_of: Vec<usize> = input
        .iter()
        .map(|s| interner.id(group_key(&s.labels, grouping, without)).0)
        .collect();
    let mut heaps: Vec<(i64, GoHeap)> = (0..interner.len())
        .map(|_| {
            (
                i64::MIN,
                GoHeap {
                    items: Vec::new(),
                    top,
                },
            )
        })
        .collect();
    let mut slots: Vec<Option<usize>> = vec![None; input.len()];
    let mut col = Collector::new();
    let mut cur = Cursors::new(input.len());
    let mut samples = Vec::new();
    let mut touched = Vec::new();
    for i in 0..g.len() {
        let ts = g.ts(i);
        cur.collect(&input, ts, &mut samples);
        let f = k_per_step[i];
        if !convertible_to_i64(f) {
            return Err(err_exec(format!(
                "Scalar value {} overflows int64",
                format_float_g(f)
            )));
        }
        let k = f as i64;
        if k < 1 {
            continue;
        }
        touched.clear();
        for &(si, v) in &samples {
            let (stamp, heap) = &mut heaps[group_of[si]];
            if *stamp != ts {
                *stamp = ts;
                heap.items.clear();
                heap.items.push((v, si));
                touched.push(group_of[si]);
                continue;
            }
            let len = heap.items.len() as i64;
            let head = heap.items[0].0;
            let better = if top { head < v } else { head > v };
            if len < k || better || head.is_nan() {
                if len == k {
                    if k == 1 {
                        heap.items[0] = (v, si);
                        continue;
                    }
                    heap.pop();
                }
                heap.push((v, si));
            }
        }
        for &gi in &touched {
            let heap = &mut heaps[gi].1;
            let mut items = std::mem::take(&mut heap.items);
            // Descending for topk, ascending for bottomk; NaN last.
            items.sort_by(|a, b| match (a.0.is_nan(), b.0.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => {
                    if top {
                        b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal)
                    } else {
                        a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal)
                    }
                }
            });
            for &(v, si) in &items {
                let slot = *slots[si].get_or_insert_with(|| col.slot(input[si].labels.clone()));
                col.push(slot, ts, v)?;
            }
            heap.items = items;
        }
    }
    Ok(col.finish())
}

fn count_values(
    input: Vec<SSeries>,
    value_label: &str,
    mut grouping: Vec<String>,
    without: bool,
    g: Grid,
) -> Result<Vec<SSeries>, QueryError> {
    if !is_valid_label_name(value_label) {
        return Err(err_exec(format!(
            "invalid label name {}",
            go_quote(value_label)
        )));
    }
    if !without {
        grouping.push(value_label.to_string());
        grouping.sort();
    }
    let mut interner = Interner::new();
    let mut group_labels_of: Vec<Lbl> = Vec::new();
    let mut counts: Vec<(i64, usize)> = Vec::new();
    let mut slots: Vec<Option<usize>> = Vec::new();
    let mut col = Collector::new();
    let mut cur = Cursors::new(input.len());
    let mut samples = Vec::new();
    let mut touched = Vec::new();
    for i in 0..g.len() {
        let ts = g.ts(i);
        cur.collect(&input, ts, &mut samples);
        touched.clear();
        for &(si, v) in &samples {
            let mut l = (*input[si].labels).clone();
            l.set(value_label, &format_float(v));
            let (gi, new) = interner.id(group_key(&l, &grouping, without));
            if new {
                group_labels_of.push(Arc::new(group_labels(&l, &grouping, without)));
                counts.push((i64::MIN, 0));
                slots.push(None);
            }
            if counts[gi].0 != ts {
                counts[gi] = (ts, 1);
                touched.push(gi);
            } else {
                counts[gi].1 += 1;
            }
        }
        for &gi in &touched {
            let slot = *slots[gi].get_or_insert_with(|| col.slot(group_labels_of[gi].clone()));
            col.push(slot, ts, counts[gi].1 as f64)?;
        }
    }
    Ok(col.finish())
}
