//! Counters and histograms the store keeps about itself, read by the server's
//! `/metrics` and `/health/ready`. Lock-free; names of the exported series are
//! the server's business.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// A fixed-bucket histogram of seconds.
#[derive(Debug)]
pub struct Histogram {
    pub bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in self.bounds.iter().enumerate() {
            if secs <= *b {
                self.counts[i].fetch_add(1, Relaxed);
            }
        }
        self.sum_nanos.fetch_add(d.as_nanos() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Cumulative bucket counts, sum in seconds, count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| (*b, c.load(Relaxed)))
            .collect();
        (
            buckets,
            self.sum_nanos.load(Relaxed) as f64 / 1e9,
            self.count.load(Relaxed),
        )
    }
}

/// Latency buckets from 50 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

#[derive(Debug)]
pub struct StoreStats {
    pub records_appended: AtomicU64,
    pub wal_frames: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_fsync: Histogram,
    pub wal_write_errors: AtomicU64,
    pub wal_torn_tails: AtomicU64,
    pub wal_torn_bytes: AtomicU64,
    pub replayed_records: AtomicU64,
    pub parts_written: AtomicU64,
    pub part_bytes_written: AtomicU64,
    pub compactions: AtomicU64,
    pub flush_errors: AtomicU64,
    pub retention_deleted_parts: AtomicU64,
    pub wal_healthy: AtomicBool,
    pub flush_healthy: AtomicBool,
}

impl Default for StoreStats {
    fn default() -> Self {
        StoreStats {
            records_appended: AtomicU64::new(0),
            wal_frames: AtomicU64::new(0),
            wal_bytes: AtomicU64::new(0),
            wal_fsync: Histogram::new(LATENCY_BUCKETS),
            wal_write_errors: AtomicU64::new(0),
            wal_torn_tails: AtomicU64::new(0),
            wal_torn_bytes: AtomicU64::new(0),
            replayed_records: AtomicU64::new(0),
            parts_written: AtomicU64::new(0),
            part_bytes_written: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            flush_errors: AtomicU64::new(0),
            retention_deleted_parts: AtomicU64::new(0),
            wal_healthy: AtomicBool::new(true),
            flush_healthy: AtomicBool::new(true),
        }
    }
}
