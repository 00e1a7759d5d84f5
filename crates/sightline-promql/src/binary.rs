//! Binary operators: arithmetic, comparisons (with and without `bool`), `atan2`, the set
//! operators `and`/`or`/`unless`, and vector matching (`on`/`ignoring`, `group_left`/`group_right`).

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
};
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::eval::{
    err_exec, merge_series, push_key, Collector, Cursors, Evaluator, Grid, Interner, Lbl, SSeries,
    Val, DUP_LABELSET,
};
use crate::labels::{Labels, METRIC_NAME};
use crate::value::QueryError;

type TokenId = u16;

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Whether the operator's result drops the metric name (arithmetic operators).
fn drops_metric_name(op: TokenId) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD)
}

fn btos(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn arith(op: TokenId, l: f64, r: f64) -> f64 {
    match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => l.powf(r),
        T_MOD => l % r,
        T_ATAN2 => l.atan2(r),
        _ => f64::NAN,
    }
}

fn compare(op: TokenId, l: f64, r: f64) -> bool {
    match op {
        T_EQLC => l == r,
        T_NEQ => l != r,
        T_GTR => l > r,
        T_LSS => l < r,
        T_GTE => l >= r,
        T_LTE => l <= r,
        _ => false,
    }
}

/// Scalar-scalar operation (comparisons yield 0/1).
fn scalar_binop(op: TokenId, l: f64, r: f64) -> f64 {
    if is_comparison(op) {
        btos(compare(op, l, r))
    } else {
        arith(op, l, r)
    }
}

/// Vector element operation: the value and whether the element is kept.
fn elem_binop(op: TokenId, l: f64, r: f64) -> (f64, bool) {
    if is_comparison(op) {
        (l, compare(op, l, r))
    } else {
        (arith(op, l, r), true)
    }
}

pub(crate) fn eval_binary(
    ev: &mut Evaluator<'_>,
    b: &BinaryExpr,
    g: Grid,
) -> Result<Val, QueryError> {
    let op = b.op.id();
    let return_bool = b.return_bool();
    let lhs = ev.eval(&b.lhs, g)?;
    let rhs = ev.eval(&b.rhs, g)?;
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.iter()
                .zip(r.iter())
                .map(|(a, b)| scalar_binop(op, *a, *b))
                .collect(),
        )),
        (Val::Vector(l), Val::Scalar(r)) => vector_scalar(l, &r, op, false, return_bool, g),
        (Val::Scalar(l), Val::Vector(r)) => vector_scalar(r, &l, op, true, return_bool, g),
        (Val::Vector(l), Val::Vector(r)) => {
            let default_mod = BinModifier::default();
            let m = b.modifier.as_ref().unwrap_or(&default_mod);
            let (on, names): (bool, Vec<String>) = match &m.matching {
                None => (false, Vec::new()),
                Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
                Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            };
            let out = match op {
                T_LAND | T_LOR | T_LUNLESS => set_op(op, l, r, on, &names, g)?,
                _ => vector_binop(op, l, r, m, on, &names, return_bool, g)?,
            };
            Ok(Val::Vector(out))
        }
        _ => Err(err_exec(
            "binary expression must contain only scalar and instant vector types",
        )),
    }
}

fn vector_scalar(
    v: Vec<SSeries>,
    scalar: &[f64],
    op: TokenId,
    swap: bool,
    return_bool: bool,
    g: Grid,
) -> Result<Val, QueryError> {
    let drop_name = drops_metric_name(op) || return_bool;
    let mut out = Vec::with_capacity(v.len());
    for mut s in v {
        let mut pts = Vec::with_capacity(s.points.len());
        for &(ts, x) in &s.points {
            let sv = scalar[((ts - g.start) / g.step) as usize];
            let (l, r) = if swap { (sv, x) } else { (x, sv) };
            let (mut value, mut keep) = elem_binop(op, l, r);
            if is_comparison(op) && swap {
                // The vector element's value is the result, whichever side it is on.
                value = r;
            }
            if return_bool {
                value = btos(keep);
                keep = true;
            }
            if keep {
                pts.push((ts, value));
            }
        }
        if drop_name && s.labels.name().is_some() {
            s.labels = Arc::new(s.labels.without_name());
        }
        s.points = pts;
        out.push(s);
    }
    Ok(Val::Vector(merge_series(out)?))
}

/// The matching signature of a label set.
fn signature(l: &Labels, on: bool, names: &[String]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (n, v) in l.iter() {
        let listed = names.iter().any(|x| x == n);
        let include = if on {
            listed
        } else {
            !listed && n != METRIC_NAME
        };
        if include {
            push_key(&mut buf, n, v);
        }
    }
    buf
}

fn signatures(v: &[SSeries], on: bool, names: &[String], interner: &mut Interner) -> Vec<usize> {
    v.iter()
        .map(|s| interner.id(signature(&s.labels, on, names)).0)
        .collect()
}

fn set_op(
    op: TokenId,
    lhs: Vec<SSeries>,
    rhs: Vec<SSeries>,
    on: bool,
    names: &[String],
    g: Grid,
) -> Result<Vec<SSeries>, QueryError> {
    let mut interner = Interner::new();
    let lsig = signatures(&lhs, on, names, &mut interner);
    let rsig = signatures(&rhs, on, names, &mut interner);
    let mut stamp_r = vec![i64::MIN; interner.len()];
    let mut stamp_l = vec![i64::MIN; interner.len()];
    let (mut lc, mut rc) = (Cursors::new(lhs.len()), Cursors::new(rhs.len()));
    let (mut ls, mut rs) = (Vec::new(), Vec::new());
    let mut col = Collector::new();
    let mut lslots: Vec<Option<usize>> = vec![None; lhs.len()];
    let mut rslots: Vec<Option<usize>> = vec![None; rhs.len()];
    for i in 0..g.len() {
        let ts = g.ts(i);
        lc.collect(&lhs, ts, &mut ls);
        rc.collect(&rhs, ts, &mut rs);
        let mut emit_l = |col: &mut Collector, idx: usize, v: f64| -> Result<(), QueryError> {
            let slot = *lslots[idx].get_or_insert_with(|| col.slot(lhs[idx].labels.clone()));
            col.push(slot, ts, v)
        };
        match op {
            T_LAND => {
                if ls.is_empty() || rs.is_empty() {
                    continue;
                }
                for &(j, _) in &rs {
                    stamp_r[rsig[j]] = ts;
                }
                for &(j, v) in &ls {
                    if stamp_r[lsig[j]] == ts {
                        emit_l(&mut col, j, v)?;
                    }
                }
            }
            T_LUNLESS => {
                for &(j, _) in &rs {
                    stamp_r[rsig[j]] = ts;
                }
                for &(j, v) in &ls {
                    if stamp_r[lsig[j]] != ts {
                        emit_l(&mut col, j, v)?;
                    }
                }
            }
            _ => {
                for &(j, v) in &ls {
                    stamp_l[lsig[j]] = ts;
                    emit_l(&mut col, j, v)?;
                }
                for &(j, v) in &rs {
                    if stamp_l[rsig[j]] != ts {
                        let slot =
                            *rslots[j].get_or_insert_with(|| col.slot(rhs[j].labels.clone()));
                        col.push(slot, ts, v)?;
                    }
                }
            }
        }
    }
    Ok(col.finish())
}

/// Output labels of a matched pair (Prometheus's `resultMetric`).
#[allow(clippy::too_many_arguments)]
fn result_labels(
    many: &Labels,
    one: &Labels,
    op: TokenId,
    one_to_one: bool,
    on: bool,
    names: &[String],
    include: &[String],
    return_bool: bool,
) -> Labels {
    let mut l = many.clone();
    if drops_metric_name(op) {
        l.remove(METRIC_NAME);
    }
    if one_to_one {
        l = if on {
            l.keep(names)
        } else {
            l.drop_labels(names)
        };
    }
    for ln in include {
        match one.get(ln) {
            Some(v) => l.set(ln, v),
            None => l.remove(ln),
        }
    }
    if return_bool {
        l.remove(METRIC_NAME);
    }
    l
}

#[allow(clippy::too_many_arguments)]
fn vector_binop(
    op: TokenId,
    lhs: Vec<SSeries>,
    rhs: Vec<SSeries>,
    m: &BinModifier,
    on: bool,
    names: &[String],
    return_bool: bool,
    g: Grid,
) -> Result<Vec<SSeries>, QueryError> {
    let (one_to_many, one_to_one, include): (bool, bool, Vec<String>) = match &m.card {
        VectorMatchCardinality::OneToMany(l) => (true, false, l.labels.clone()),
        VectorMatchCardinality::ManyToOne(l) => (false, false, l.labels.clone()),
        _ => (false, true, Vec::new()),
    };
    let mut interner = Interner::new();
    let lsig = signatures(&lhs, on, names, &mut interner);
    let rsig = signatures(&rhs, on, names, &mut interner);
    let nsig = interner.len();
    // The "many" side is walked; the "one" side is looked up by signature.
    let (many, one, many_sig, one_sig) = if one_to_many {
        (&rhs, &lhs, &rsig, &lsig)
    } else {
        (&lhs, &rhs, &lsig, &rsig)
    };
    let mut one_at: Vec<(i64, usize, f64)> = vec![(i64::MIN, 0, 0.0); nsig];
    let mut matched: Vec<i64> = vec![i64::MIN; nsig];
    let mut pair_slot: HashMap<(usize, usize), usize> = HashMap::new();
    let mut slot_writer: Vec<(i64, usize)> = Vec::new();
    let mut col = Collector::new();
    let (mut mc, mut oc) = (Cursors::new(many.len()), Cursors::new(one.len()));
    let (mut ms, mut os) = (Vec::new(), Vec::new());
    for i in 0..g.len() {
        let ts = g.ts(i);
        mc.collect(many, ts, &mut ms);
        oc.collect(one, ts, &mut os);
        if ms.is_empty() || os.is_empty() {
            continue;
        }
        for &(j, v) in &os {
            let sig = one_sig[j];
            if one_at[sig].0 == ts {
                let prev = one_at[sig].1;
                let side = if one_to_many { "left" } else { "right" };
                let matched_labels = one[j].labels.match_labels(on, names);
                return Err(err_exec(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the \
                     operation: [{}, {}];many-to-many matching not allowed: matching labels must \
                     be unique on one side",
                    matched_labels, side, one[j].labels, one[prev].labels
                )));
            }
            one_at[sig] = (ts, j, v);
        }
        let mut pending_dup = false;
        for &(j, mv) in &ms {
            let sig = many_sig[j];
            if one_at[sig].0 != ts {
                continue;
            }
            let (_, oj, ov) = one_at[sig];
            let (vl, vr) = if one_to_many { (ov, mv) } else { (mv, ov) };
            let (mut value, keep) = elem_binop(op, vl, vr);
            if return_bool {
                value = btos(keep);
            } else if !keep {
                continue;
            }
            let slot = match pair_slot.get(&(j, oj)) {
                Some(&s) => s,
                None => {
                    let l = result_labels(
                        &many[j].labels,
                        &one[oj].labels,
                        op,
                        one_to_one,
                        on,
                        names,
                        &include,
                        return_bool,
                    );
                    let s = col.slot(Lbl::new(l));
                    if s >= slot_writer.len() {
                        slot_writer.resize(s + 1, (i64::MIN, 0));
                    }
                    pair_slot.insert((j, oj), s);
                    s
                }
            };
            if one_to_one {
                if matched[sig] == ts {
                    return Err(err_exec(
                        "multiple matches for labels: many-to-one matching must be explicit \
                         (group_left/group_right)",
                    ));
                }
                matched[sig] = ts;
            } else if slot_writer[slot] == (ts, sig) {
                return Err(err_exec(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            if col.has(slot, ts) {
                pending_dup = true;
                continue;
            }
            slot_writer[slot] = (ts, sig);
            col.push(slot, ts, value)?;
        }
        if pending_dup {
            return Err(err_exec(DUP_LABELSET));
        }
    }
    Ok(col.finish())
}
