//! Quantile estimation: `quantile`/`quantile_over_time` over values and `histogram_quantile` over
//! classic `le` buckets.

use std::cmp::Ordering;

/// NaN-first ascending order (Prometheus's `vectorByValueHeap` used with `sort.Sort`).
fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// The `q`-quantile of `values` (sorted in place), interpolating between the two nearest ranks.
/// Empty input or NaN `q` yields NaN; `q < 0` yields -Inf and `q > 1` +Inf.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Go's `sort.Search`: the smallest index in `[0, n)` for which `f` is true, or `n`.
fn go_search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut i, mut j) = (0usize, n);
    while i < j {
        let h = (i + j) / 2;
        if !f(h) {
            i = h + 1;
        } else {
            j = h;
        }
    }
    i
}

/// The `q`-quantile of classic histogram buckets `(upper bound, cumulative count)`, following
/// Prometheus: buckets are sorted, must end with +Inf, equal bounds are merged, counts are made
/// monotonic, and the value is interpolated linearly inside the bucket holding the rank (from 0
/// for the lowest bucket when its bound is positive).
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce equal upper bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Ensure monotonic counts.
    let mut max = merged[0].1;
    for b in merged.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    let buckets = merged;
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = go_search(buckets.len() - 1, |i| buckets[i].1 >= rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_basics() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(0.75, &mut [0.0, 1.0]), 0.75);
        assert!(quantile(0.5, &mut []).is_nan());
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
    }

    #[test]
    fn bucket_quantile_interpolates() {
        let mut b = vec![
            (f64::INFINITY, 3.0),
            (2.0, 1.0),
            (4.0, 2.0),
            (6.0, 3.0),
            (0.0, 0.0),
        ];
        assert!((bucket_quantile(0.5, &mut b) - 3.0).abs() < 1e-12);
        let mut b = vec![(1.0, 1.0)];
        assert!(bucket_quantile(0.5, &mut b).is_nan());
    }
}
