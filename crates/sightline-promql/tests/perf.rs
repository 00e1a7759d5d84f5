//! Opt-in performance smoke test (`cargo test --release -- --ignored perf`): a 24h dashboard
//! range query over 10k series.

mod common;
use common::*;
use sightline_promql::{Labels, Series};

#[test]
#[ignore]
fn dashboard_query_over_10k_series() {
    let mut st = MemStorage::new();
    let n_series = 10_000;
    let scrape = 60 * S;
    let points = (24 * H / scrape) as usize;
    for i in 0..n_series {
        let samples: Vec<(i64, f64)> = (0..points)
            .map(|k| (k as i64 * scrape, (k * (i % 7 + 1)) as f64))
            .collect();
        st.series.push(Series {
            labels: Labels::new([
                ("__name__".to_string(), "req_total".to_string()),
                ("job".to_string(), format!("job{}", i % 10)),
                ("instance".to_string(), format!("i{i}")),
            ]),
            samples,
        });
    }
    for q in [
        "sum(rate(req_total[5m]))",
        "sum by (job) (rate(req_total[5m]))",
        "topk(5, rate(req_total[5m]))",
        "histogram_quantile(0.9, sum by (job, le) (rate(req_total[5m])))",
        "sum(req_total) / count(req_total)",
        "rate(req_total[5m]) > 0",
    ] {
        let t0 = std::time::Instant::now();
        let r = range(&st, q, 0, 24 * H, 60 * S);
        eprintln!("{q}: {} series in {:?}", r.len(), t0.elapsed());
    }
}
