//! RED metrics from spans: every acknowledged span counts in
//! `sightline_span_calls_total{service,operation,status}` and in the
//! histogram `sightline_span_duration_seconds{service,operation}`. They are
//! kept as cumulative counters in memory and written to the metrics store
//! every `[traces] red_interval_secs`, like a scrape of an exporter: PromQL's
//! `rate()` and `histogram_quantile()` read them as any scraped series (a
//! restart is a counter reset, which `rate()` handles).

use parking_lot::Mutex;
use sightline_pipeline::Span;
use sightline_store::tsdb::{Labels, SeriesSamples};
use std::collections::HashMap;

pub const CALLS: &str = "sightline_span_calls_total";
pub const DURATION: &str = "sightline_span_duration_seconds";
/// Most (service, operation) pairs tracked; spans beyond count under
/// `operation="_other"` (span names holding ids would otherwise grow without bound).
pub const MAX_OPERATIONS: usize = 5_000;
pub const OTHER: &str = "_other";

/// When a series was first counted, and whether it has been written since.
/// Its first write is preceded by a 0 at that moment: the spans counted
/// before the first write are then an increase `rate()` sees, not the
/// series' starting value.
#[derive(Debug, Default, Clone, Copy)]
struct Born {
    ms: i64,
    written: bool,
}

#[derive(Debug, Default)]
struct Hist {
    /// Per bucket, not cumulative; the last is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
    born: Born,
}

#[derive(Debug, Default)]
struct State {
    calls: HashMap<(String, String, String), (u64, Born)>,
    hist: HashMap<(String, String), Hist>,
}

/// The counters behind the span RED series.
#[derive(Debug)]
pub struct Red {
    buckets: Vec<f64>,
    state: Mutex<State>,
}

/// Counts every chunk the span store acknowledges (its append hook, on the
/// store's WAL writer thread: a lock and a hash per span, no I/O).
pub fn hook(red: std::sync::Arc<Red>) -> sightline_store::AppendHook<Span> {
    Box::new(move |chunk| red.observe(chunk))
}

fn fmt_le(b: f64) -> String {
    sightline_promql::format_float(b)
}

impl Red {
    pub fn new(mut buckets: Vec<f64>) -> Red {
        buckets.retain(|b| b.is_finite());
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        Red {
            buckets,
            state: Mutex::new(State::default()),
        }
    }

    /// Counts acknowledged spans.
    pub fn observe(&self, spans: &[Span]) {
        let born = Born {
            ms: crate::scrape::now_ms(),
            written: false,
        };
        let mut st = self.state.lock();
        for s in spans {
            let key = (s.service.clone(), s.name.clone());
            let key = if st.hist.contains_key(&key) || st.hist.len() < MAX_OPERATIONS {
                key
            } else {
                (s.service.clone(), OTHER.to_string())
            };
            st.calls
                .entry((key.0.clone(), key.1.clone(), s.status.clone()))
                .or_insert((0, born))
                .0 += 1;
            let secs = s.duration_ns() as f64 / 1e9;
            let n = self.buckets.len();
            let h = st.hist.entry(key).or_insert_with(|| Hist {
                counts: vec![0; n + 1],
                born,
                ..Default::default()
            });
            let i = self.buckets.partition_point(|b| *b < secs);
            h.counts[i] += 1;
            h.sum += secs;
            h.count += 1;
        }
    }

    /// Every series at `ts_ms`, cumulative (a new series' first write also
    /// holds a 0 at the moment it was first counted).
    pub fn samples(&self, ts_ms: i64) -> Vec<SeriesSamples> {
        let mut st = self.state.lock();
        let mut out = Vec::with_capacity(st.calls.len() + st.hist.len() * (self.buckets.len() + 3));
        let series = |name: &str, mut extra: Vec<(String, String)>, v: f64, born: Born| {
            extra.push(("__name__".into(), name.into()));
            let mut samples = Vec::with_capacity(2);
            if !born.written && born.ms < ts_ms {
                samples.push((born.ms, 0.0));
            }
            samples.push((ts_ms, v));
            SeriesSamples {
                labels: Labels::new(extra),
                samples,
            }
        };
        for ((service, op, status), (n, born)) in &st.calls {
            out.push(series(
                CALLS,
                vec![
                    ("service".into(), service.clone()),
                    ("operation".into(), op.clone()),
                    ("status".into(), status.clone()),
                ],
                *n as f64,
                *born,
            ));
        }
        for ((service, op), h) in &st.hist {
            let base = vec![
                ("service".to_string(), service.clone()),
                ("operation".to_string(), op.clone()),
            ];
            let mut cum = 0u64;
            for (i, c) in h.counts.iter().enumerate() {
                cum += c;
                let le = self
                    .buckets
                    .get(i)
                    .map_or("+Inf".to_string(), |b| fmt_le(*b));
                let mut l = base.clone();
                l.push(("le".into(), le));
                out.push(series(&format!("{DURATION}_bucket"), l, cum as f64, h.born));
            }
            out.push(series(
                &format!("{DURATION}_sum"),
                base.clone(),
                h.sum,
                h.born,
            ));
            out.push(series(
                &format!("{DURATION}_count"),
                base,
                h.count as f64,
                h.born,
            ));
        }
        for (_, born) in st.calls.values_mut() {
            born.written = true;
        }
        for h in st.hist.values_mut() {
            h.born.written = true;
        }
        out
    }
}

/// Writes the RED series to the metrics store every `interval` (only once
/// any span was seen).
pub fn spawn(app: crate::AppState) {
    let interval = std::time::Duration::from_secs(app.config.traces.red_interval_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let batch = app.red.samples(crate::scrape::now_ms());
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = crate::scrape::append(&app.tsdb, batch).await {
                tracing::warn!(error = %e, "writing span RED series failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, ms: i64, status: &str) -> Span {
        Span {
            trace_id: "a".repeat(32),
            span_id: "b".repeat(16),
            parent_span_id: None,
            name: name.into(),
            op: None,
            service: "api".into(),
            kind: "server".into(),
            start_ns: 0,
            end_ns: ms * 1_000_000,
            status: status.into(),
            status_message: None,
            request_id: None,
            environment: None,
            attributes: "{}".into(),
            events: "[]".into(),
            resource: "{}".into(),
            source: "otlp".into(),
        }
    }

    #[test]
    fn counts_and_cumulative_buckets() {
        let red = Red::new(vec![0.1, 0.01]);
        red.observe(&[
            span("GET /a", 5, "ok"),
            span("GET /a", 50, "error"),
            span("GET /a", 500, "ok"),
        ]);
        let s = red.samples(i64::MAX);
        // The first write starts each series at 0 when it was first counted.
        assert!(s
            .iter()
            .all(|x| x.samples.len() == 2 && x.samples[0].1 == 0.0));
        assert!(red.samples(i64::MAX).iter().all(|x| x.samples.len() == 1));
        let get = |name: &str, le: Option<&str>, status: Option<&str>| -> f64 {
            s.iter()
                .find(|x| {
                    let l = &x.labels.0;
                    let has = |k: &str, v: &str| l.iter().any(|(a, b)| a == k && b == v);
                    has("__name__", name)
                        && le.is_none_or(|le| has("le", le))
                        && status.is_none_or(|st| has("status", st))
                })
                .map(|x| x.samples.last().unwrap().1)
                .unwrap()
        };
        assert_eq!(get(CALLS, None, Some("ok")), 2.0);
        assert_eq!(get(CALLS, None, Some("error")), 1.0);
        let b = "sightline_span_duration_seconds_bucket";
        assert_eq!(get(b, Some("0.01"), None), 1.0);
        assert_eq!(get(b, Some("0.1"), None), 2.0);
        assert_eq!(get(b, Some("+Inf"), None), 3.0);
        assert_eq!(
            get("sightline_span_duration_seconds_count", None, None),
            3.0
        );
    }

    #[test]
    fn operations_beyond_the_bound_count_as_other() {
        let red = Red::new(vec![1.0]);
        let spans: Vec<Span> = (0..MAX_OPERATIONS + 10)
            .map(|i| span(&format!("op {i}"), 1, "ok"))
            .collect();
        red.observe(&spans);
        let others = red
            .samples(0)
            .iter()
            .filter(|x| {
                x.labels
                    .0
                    .iter()
                    .any(|(k, v)| k == "__name__" && v == CALLS)
            })
            .filter(|x| {
                x.labels
                    .0
                    .iter()
                    .any(|(k, v)| k == "operation" && v == OTHER)
            })
            .map(|x| x.samples.last().unwrap().1)
            .sum::<f64>();
        assert_eq!(others, 10.0);
    }
}
