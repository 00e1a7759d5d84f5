//! The in-process ingest path alone (no HTTP): NDJSON lines → normalize →
//! scrub → WAL (fsync, group commit) → head, then flush and compact to parts.
//! Reports lines/s per CPU second and bytes on disk per line.
//!
//! `cargo run --release --example ingest_inprocess -- LINES.ndjson [THREADS]`

use sightline_pipeline::normalize::{Context, DEFAULT_MAX_RECORD_BYTES};
use sightline_pipeline::{Normalizer, ScrubConfig, Scrubber};
use sightline_store::{LogStore, StoreConfig};
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 1000;

/// The same allocator as the `sightline` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let tck = 100.0;
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tck
}

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: ingest_inprocess LINES.ndjson [THREADS]");
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let data = std::fs::read(path).unwrap();
    let raw_bytes = data.len();
    let lines: Vec<&[u8]> = sightline_protocol::lines(&data).map(|l| l.bytes).collect();
    let n = lines.len();
    let dir = tempfile::tempdir_in(".").unwrap();
    let mut cfg = StoreConfig::new(dir.path().join("data"));
    cfg.max_pending_bytes = 8 << 30;
    // Keep every row in the head during stage 2 so that its CPU is the WAL path
    // alone; stage 3 then measures writing the columnar parts.
    cfg.max_head_rows = usize::MAX;
    cfg.max_head_bytes = usize::MAX;
    cfg.flush_interval = std::time::Duration::from_secs(86_400);
    cfg.retention = None; // generated rows are dated 2026-11-25
    let store = Arc::new(LogStore::open(cfg).unwrap());
    let normalizer = Arc::new(Normalizer::new(
        Scrubber::new(&ScrubConfig::default()),
        DEFAULT_MAX_RECORD_BYTES,
    ));

    // Stage 1: parse + normalize + scrub only.
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let ctx = Context {
        service: Some("bench"),
        received_ns: 1,
    };
    let mut kept = 0usize;
    for l in &lines {
        kept += normalizer
            .line(l, ctx)
            .map(|(r, _)| r.attributes.len())
            .unwrap_or(0)
            & 1;
    }
    let (c1, t1) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    println!("normalize+scrub: {n} lines in {t1:.2}s wall, {c1:.2}s cpu → {:.0} lines/s per core ({kept})", n as f64 / c1);

    // Stage 2: the whole path into the store, `threads` producers.
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        for part in lines.chunks(chunk) {
            let (store, normalizer) = (store.clone(), normalizer.clone());
            s.spawn(move || {
                let (tx, rx) = std::sync::mpsc::sync_channel::<()>(0);
                let inflight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let _ = &rx;
                for batch in part.chunks(BATCH) {
                    let recs: Vec<_> = batch
                        .iter()
                        .filter_map(|l| {
                            normalizer
                                .line(
                                    l,
                                    Context {
                                        service: Some("bench"),
                                        received_ns: 1,
                                    },
                                )
                                .ok()
                                .map(|x| x.0)
                        })
                        .collect();
                    // Keep up to 4 batches in flight so fsync overlaps parsing.
                    while inflight.load(std::sync::atomic::Ordering::Acquire) >= 4 {
                        std::thread::yield_now();
                    }
                    inflight.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    let f = inflight.clone();
                    // The store's memory budget is raised above, so it never refuses.
                    store
                        .append(
                            recs,
                            Box::new(move |r| {
                                r.expect("append");
                                f.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                            }),
                        )
                        .expect("append accepted");
                }
                while inflight.load(std::sync::atomic::Ordering::Acquire) > 0 {
                    std::thread::yield_now();
                }
                drop(tx);
            });
        }
    });
    let (c2, t2) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    println!(
        "ingest (normalize+scrub+WAL fsync+head): {n} lines in {t2:.2}s wall ({:.0} lines/s), {c2:.2}s cpu → {:.0} lines/s per core",
        n as f64 / t2,
        n as f64 / c2
    );

    // Stage 3: the head to Parquet parts (one part per UTC day, as a server
    // flush does), then compaction (nothing to merge when one flush wrote it all).
    let (c0, t0) = (cpu_seconds(), Instant::now());
    store.flush().unwrap();
    let (c_flush, t_flush) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    let (c0, t0) = (cpu_seconds(), Instant::now());
    store.compact().unwrap();
    let (c_compact, t_compact) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    let parts = store.parts();
    let bytes: i64 = parts.iter().map(|p| p.bytes).sum();
    let rows: i64 = parts.iter().map(|p| p.rows).sum();
    println!(
        "flush to parts: {t_flush:.2}s wall, {c_flush:.2}s cpu → {:.0} lines/s per core; compaction: {t_compact:.2}s wall, {c_compact:.2}s cpu",
        n as f64 / c_flush
    );
    println!(
        "whole path (ingest + flush): {:.0} lines/s per core",
        n as f64 / (c2 + c_flush)
    );
    println!(
        "parts: {} parts, {rows} rows, {bytes} bytes → {:.1} B/line on disk vs {:.1} B/line raw = raw/{:.1}",
        parts.len(),
        bytes as f64 / rows as f64,
        raw_bytes as f64 / n as f64,
        raw_bytes as f64 / bytes as f64
    );
    println!("peak RSS: {:.0} MB", rss_mb());
}
