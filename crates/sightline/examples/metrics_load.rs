//! Metrics load generator for `bench/metrics.sh`: a deterministic fleet of
//! FastAPI-like services, its series pushed by Prometheus remote write 1.0
//! (or written as an OpenMetrics file for `promtool tsdb
//! create-blocks-from openmetrics`).
//!
//! ```text
//! metrics_load --series 10000 --hours 24 --interval 15s --end UNIX_S \
//!     --url http://127.0.0.1:P/api/v1/write --token T --concurrency 4 --batch 2000
//! metrics_load --series 10000 --hours 24 --end UNIX_S --openmetrics data.om
//! metrics_load --series 10000 --describe      # the dataset's size, nothing sent
//! ```
//!
//! The dataset. Instances `10.0.X.Y:8000` of two jobs (every fifth instance is
//! `auth`, the others `api`), each exposing what prometheus_client +
//! a FastAPI middleware would:
//! - `http_requests_total{instance,job,method,path,status}` counters, one per
//!   route and status the route answers;
//! - `http_request_duration_seconds_bucket{instance,job,method,path,le}` with
//!   prometheus_client's 15 default buckets, `_sum` and `_count` per route
//!   (cumulative and consistent: `_count` = the `+Inf` bucket = the route's
//!   requests, the sum of the statuses' counters);
//! - gauges `process_resident_memory_bytes` and `http_requests_in_flight`.
//!
//! Requests per route and step are Poisson around a base rate × a daily
//! curve × a per-instance weight; each request gets a status and a log-normal
//! latency; every instance has one 20-minute incident (more 5xx, 4× slower)
//! and restarts now and then (every counter back to 0, RSS back to its base).
//! Everything comes from a seeded generator per instance, so the same
//! arguments give the same samples whatever `--concurrency` and `--batch`.
//! `--series N` picks the number of instances whose series count is closest
//! to N.
//!
//! Sending: steps in time order (every series at t, then t + interval, …).
//! Series are sharded over `--concurrency` connections by a hash of their
//! labels, so each series' samples go in order over one connection. A request
//! holds up to `--batch` samples: a shard's series for one step, split when
//! the shard has more series than that, or several consecutive steps per
//! series when it has fewer. 5xx, 429 and connection errors are retried with
//! backoff; any other non-2xx stops the run (exit 2) with the server's answer.
//! A JSON summary goes to stdout.

use sightline_protocol::remote_write::{encode, Label, Sample, TimeSeries, WriteRequest};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- the fleet

/// prometheus_client's default histogram buckets, as it renders `le`.
const LE: [&str; 15] = [
    "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0",
    "7.5", "10.0", "+Inf",
];
const LE_V: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

struct Route {
    method: &'static str,
    path: &'static str,
    /// Requests per second per instance at the daily mean.
    rps: f64,
    /// Status codes and their shares (sum 1).
    statuses: &'static [(&'static str, f64)],
    /// Median latency (s) and log-normal sigma.
    median: f64,
    sigma: f64,
}

const fn r(
    method: &'static str,
    path: &'static str,
    rps: f64,
    statuses: &'static [(&'static str, f64)],
    median: f64,
    sigma: f64,
) -> Route {
    Route {
        method,
        path,
        rps,
        statuses,
        median,
        sigma,
    }
}

#[rustfmt::skip]
const API: &[Route] = &[
    r("GET", "/api/v1/items", 8.0, &[("200", 0.97), ("404", 0.02), ("500", 0.01)], 0.030, 0.6),
    r("GET", "/api/v1/items/{item_id}", 12.0, &[("200", 0.93), ("404", 0.06), ("500", 0.01)], 0.012, 0.5),
    r("POST", "/api/v1/items", 2.0, &[("201", 0.90), ("422", 0.08), ("500", 0.02)], 0.060, 0.6),
    r("PUT", "/api/v1/items/{item_id}", 1.0, &[("200", 0.95), ("422", 0.04), ("500", 0.01)], 0.050, 0.6),
    r("DELETE", "/api/v1/items/{item_id}", 0.3, &[("204", 0.98), ("404", 0.02)], 0.040, 0.5),
    r("GET", "/api/v1/users/me", 6.0, &[("200", 0.96), ("401", 0.04)], 0.008, 0.4),
    r("POST", "/api/v1/login", 1.5, &[("200", 0.85), ("401", 0.15)], 0.180, 0.3),
    r("GET", "/api/v1/search", 3.0, &[("200", 0.98), ("500", 0.02)], 0.220, 0.9),
    r("POST", "/api/v1/orders", 0.8, &[("201", 0.92), ("422", 0.05), ("503", 0.03)], 0.350, 0.7),
    r("GET", "/health", 0.2, &[("200", 1.0)], 0.002, 0.3),
    r("GET", "/metrics", 0.0667, &[("200", 1.0)], 0.004, 0.3),
];
#[rustfmt::skip]
const AUTH: &[Route] = &[
    r("POST", "/token", 4.0, &[("200", 0.90), ("401", 0.09), ("500", 0.01)], 0.080, 0.5),
    r("GET", "/.well-known/jwks.json", 2.0, &[("200", 1.0)], 0.003, 0.4),
    r("GET", "/health", 0.2, &[("200", 1.0)], 0.002, 0.3),
];

fn job_of(instance: usize) -> (&'static str, &'static [Route]) {
    if instance % 5 == 4 {
        ("auth", AUTH)
    } else {
        ("api", API)
    }
}

fn series_per_instance(routes: &[Route]) -> usize {
    routes
        .iter()
        .map(|r| r.statuses.len() + LE.len() + 2)
        .sum::<usize>()
        + 2
}

/// Instances whose series count is closest to `target` (at least one).
fn fleet_size(target: usize) -> usize {
    let mut total = 0;
    let mut n = 0;
    loop {
        let next = total + series_per_instance(job_of(n).1);
        if next >= target {
            // n or n + 1 instances
            return if n > 0 && target - total <= next - target {
                n
            } else {
                n + 1
            };
        }
        total = next;
        n += 1;
    }
}

/// SplitMix64: small, fast, deterministic.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let u1 = self.f().max(1e-300);
        let u2 = self.f();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn poisson(&mut self, lam: f64) -> u64 {
        if lam <= 0.0 {
            0
        } else if lam < 30.0 {
            let l = (-lam).exp();
            let mut k = 0;
            let mut p = self.f();
            while p > l {
                k += 1;
                p *= self.f();
            }
            k
        } else {
            (lam + lam.sqrt() * self.gauss()).round().max(0.0) as u64
        }
    }
}

/// One series: its labels (sorted by name, `__name__` first) for remote
/// write and its OpenMetrics line prefix.
struct SeriesDef {
    labels: Vec<(String, String)>,
    hash: u64,
}

impl SeriesDef {
    fn new(name: &str, mut pairs: Vec<(&str, String)>) -> SeriesDef {
        pairs.push(("__name__", name.to_string()));
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let labels: Vec<(String, String)> =
            pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        // FNV-1a over the label pairs: the shard.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (k, v) in &labels {
            for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        }
        SeriesDef { labels, hash: h }
    }

    fn openmetrics_prefix(&self) -> String {
        let name = &self.labels[0].1;
        let rest: Vec<String> = self.labels[1..]
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        format!("{name}{{{}}} ", rest.join(","))
    }
}

struct RouteState {
    counters: Vec<f64>,
    buckets: [f64; 15],
    sum: f64,
    count: f64,
    /// exp(sigma × z) for a table of standard normals.
    mult: Vec<f64>,
}

struct Instance {
    rng: Rng,
    routes: &'static [Route],
    state: Vec<RouteState>,
    weight: f64,
    rss_base: f64,
    rss: f64,
    incident: (usize, usize),
    first: usize,
}

const NORMALS: usize = 4096;

impl Instance {
    fn new(
        i: usize,
        seed: u64,
        first: usize,
        steps: usize,
        interval_ms: i64,
        normals: &[f64],
    ) -> Instance {
        let mut rng = Rng(seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        let routes = job_of(i).1;
        let state = routes
            .iter()
            .map(|r| RouteState {
                counters: vec![0.0; r.statuses.len()],
                buckets: [0.0; 15],
                sum: 0.0,
                count: 0.0,
                mult: normals.iter().map(|z| (r.sigma * z).exp()).collect(),
            })
            .collect();
        let weight = 0.7 + 0.6 * rng.f();
        let rss_base = 70e6 + 30e6 * rng.f();
        let len = ((1_200_000 / interval_ms) as usize).clamp(1, steps); // 20 minutes
        let start = (rng.f() * (steps - len + 1) as f64) as usize;
        Instance {
            rng,
            routes,
            state,
            weight,
            rss_base,
            rss: rss_base,
            incident: (start, start + len),
            first,
        }
    }

    /// Advances one step and writes this instance's values into `out`.
    fn step(&mut self, step: usize, t_ms: i64, interval_s: f64, p_restart: f64, out: &mut [f64]) {
        let rng = &mut self.rng;
        if step > 0 && rng.f() < p_restart {
            for s in &mut self.state {
                s.counters.iter_mut().for_each(|c| *c = 0.0);
                s.buckets = [0.0; 15];
                s.sum = 0.0;
                s.count = 0.0;
            }
            self.rss = self.rss_base;
        }
        let hour = (t_ms.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
        let daily = 1.0 + 0.45 * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin();
        let incident = step >= self.incident.0 && step < self.incident.1;
        let mut o = self.first;
        let mut requests = 0u64;
        let mut busy = 0.0;
        for (r, s) in self.routes.iter().zip(self.state.iter_mut()) {
            let n = rng.poisson(r.rps * interval_s * daily * self.weight);
            let slow = if incident { 4.0 } else { 1.0 };
            let err = r.statuses.iter().position(|(c, _)| c.starts_with('5'));
            for _ in 0..n {
                let u = rng.f();
                let k = match err {
                    Some(e) if incident && u < 0.25 => e,
                    _ => {
                        let mut acc = 0.0;
                        let mut k = r.statuses.len() - 1;
                        let u = rng.f();
                        for (j, (_, w)) in r.statuses.iter().enumerate() {
                            acc += w;
                            if u < acc {
                                k = j;
                                break;
                            }
                        }
                        k
                    }
                };
                s.counters[k] += 1.0;
                let lat = r.median * slow * s.mult[(rng.next() >> 52) as usize];
                let b = LE_V.partition_point(|&le| le < lat);
                s.buckets[b] += 1.0;
                s.sum += lat;
                busy += lat;
            }
            s.count += n as f64;
            requests += n;
            for c in &s.counters {
                out[o] = *c;
                o += 1;
            }
            let mut cum = 0.0;
            for b in &s.buckets {
                cum += b;
                out[o] = cum;
                o += 1;
            }
            out[o] = s.sum;
            out[o + 1] = s.count;
            o += 2;
        }
        // ~2 KB kept per 1,000 requests, a little noise, pages given back now and then.
        self.rss += requests as f64 * 2.0 + 200e3 * (rng.f() - 0.5);
        if self.rss > self.rss_base * 1.8 {
            self.rss = self.rss_base * 1.3;
        }
        self.rss = self.rss.max(self.rss_base * 0.9);
        out[o] = (self.rss / 4096.0).round() * 4096.0;
        out[o + 1] = rng.poisson(busy / interval_s) as f64;
    }
}

fn build_series(instances: usize) -> Vec<SeriesDef> {
    let mut out = vec![];
    for i in 0..instances {
        let (job, routes) = job_of(i);
        let inst = format!("10.0.{}.{}:8000", i / 250, i % 250 + 1);
        let base = |r: &Route| {
            vec![
                ("instance", inst.clone()),
                ("job", job.to_string()),
                ("method", r.method.to_string()),
                ("path", r.path.to_string()),
            ]
        };
        for r in routes {
            for (status, _) in r.statuses {
                let mut l = base(r);
                l.push(("status", status.to_string()));
                out.push(SeriesDef::new("http_requests_total", l));
            }
            for le in LE {
                let mut l = base(r);
                l.push(("le", le.to_string()));
                out.push(SeriesDef::new("http_request_duration_seconds_bucket", l));
            }
            out.push(SeriesDef::new("http_request_duration_seconds_sum", base(r)));
            out.push(SeriesDef::new(
                "http_request_duration_seconds_count",
                base(r),
            ));
        }
        let g = || vec![("instance", inst.clone()), ("job", job.to_string())];
        out.push(SeriesDef::new("process_resident_memory_bytes", g()));
        out.push(SeriesDef::new("http_requests_in_flight", g()));
    }
    out
}

// ---------------------------------------------------------------- arguments

struct Args {
    series: usize,
    hours: f64,
    interval_ms: i64,
    end_ms: Option<i64>,
    urls: Vec<String>,
    token: Option<String>,
    batch: usize,
    concurrency: usize,
    seed: u64,
    openmetrics: Option<String>,
    describe: bool,
}

fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e3)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600e3)
    } else {
        (s, 1e3)
    };
    let v: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let ms = (v * mult).round() as i64;
    if ms <= 0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(ms)
}

fn usage(msg: &str) -> ! {
    eprintln!("metrics_load: {msg}");
    eprintln!(
        "usage: metrics_load [--series N] [--hours H] [--interval 15s] [--end UNIX_S] [--seed S]\n\
         \x20      [--url URL]... [--token T] [--concurrency N] [--batch N] [--openmetrics FILE] [--describe]"
    );
    std::process::exit(64)
}

fn parse_args() -> Args {
    let mut a = Args {
        series: 10_000,
        hours: 24.0,
        interval_ms: 15_000,
        end_ms: None,
        urls: vec![],
        token: None,
        batch: 2_000,
        concurrency: 4,
        seed: 42,
        openmetrics: None,
        describe: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{k} needs a value")))
        };
        let num = |s: String| -> f64 {
            s.parse()
                .unwrap_or_else(|_| usage(&format!("bad number {s:?}")))
        };
        match k.as_str() {
            "--series" => a.series = num(v()) as usize,
            "--hours" => a.hours = num(v()),
            "--interval" => a.interval_ms = parse_duration_ms(&v()).unwrap_or_else(|e| usage(&e)),
            "--end" => a.end_ms = Some((num(v()) * 1000.0).round() as i64),
            "--url" => a.urls.push(v()),
            "--token" => a.token = Some(v()),
            "--batch" => a.batch = (num(v()) as usize).max(1),
            "--concurrency" => a.concurrency = (num(v()) as usize).max(1),
            "--seed" => a.seed = num(v()) as u64,
            "--openmetrics" => a.openmetrics = Some(v()),
            "--describe" => a.describe = true,
            "-h" | "--help" => usage("help"),
            _ => usage(&format!("unknown argument {k:?}")),
        }
    }
    if a.series == 0 || a.hours <= 0.0 {
        usage("--series and --hours must be positive");
    }
    if a.urls.is_empty() && a.openmetrics.is_none() && !a.describe {
        usage("nothing to do: give --url, --openmetrics or --describe");
    }
    a
}

// ---------------------------------------------------------------- the run

struct Dataset {
    series: Vec<SeriesDef>,
    instances: usize,
    steps: usize,
    start_ms: i64,
    interval_ms: i64,
    seed: u64,
}

impl Dataset {
    fn new(a: &Args) -> Dataset {
        let instances = fleet_size(a.series);
        let series = build_series(instances);
        let steps = ((a.hours * 3_600_000.0) / a.interval_ms as f64)
            .round()
            .max(1.0) as usize;
        let end = a.end_ms.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        });
        let end = end.div_euclid(a.interval_ms) * a.interval_ms;
        Dataset {
            series,
            instances,
            steps,
            start_ms: end - (steps as i64 - 1) * a.interval_ms,
            interval_ms: a.interval_ms,
            seed: a.seed,
        }
    }

    fn end_ms(&self) -> i64 {
        self.start_ms + (self.steps as i64 - 1) * self.interval_ms
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "series": self.series.len(),
            "instances": self.instances,
            "steps": self.steps,
            "samples": self.series.len() as u64 * self.steps as u64,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms(),
            "interval_ms": self.interval_ms,
        })
    }

    /// Runs the simulation; `emit` gets (timestamp, every series' value) per step
    /// and returns false to stop.
    fn generate(&self, mut emit: impl FnMut(i64, Arc<Vec<f64>>) -> bool) {
        let mut rng = Rng(self.seed);
        let normals: Vec<f64> = (0..NORMALS).map(|_| rng.gauss()).collect();
        let mut insts = vec![];
        let mut first = 0;
        for i in 0..self.instances {
            insts.push(Instance::new(
                i,
                self.seed,
                first,
                self.steps,
                self.interval_ms,
                &normals,
            ));
            first += series_per_instance(job_of(i).1);
        }
        let interval_s = self.interval_ms as f64 / 1000.0;
        // One restart per instance every ~8 hours on average.
        let p_restart = interval_s / (8.0 * 3600.0);
        for step in 0..self.steps {
            let t = self.start_ms + step as i64 * self.interval_ms;
            let mut v = vec![0.0; self.series.len()];
            for inst in &mut insts {
                inst.step(step, t, interval_s, p_restart, &mut v);
            }
            if !emit(t, Arc::new(v)) {
                return;
            }
        }
    }
}

fn write_openmetrics(ds: &Dataset, path: &str) -> std::io::Result<u64> {
    let f = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let prefixes: Vec<String> = ds.series.iter().map(|s| s.openmetrics_prefix()).collect();
    let mut err = None;
    let mut n = 0u64;
    let whole_seconds = ds.interval_ms % 1000 == 0 && ds.start_ms % 1000 == 0;
    ds.generate(|t, v| {
        let ts = if whole_seconds {
            format!("{}", t / 1000)
        } else {
            format!("{}.{:03}", t.div_euclid(1000), t.rem_euclid(1000))
        };
        for (p, x) in prefixes.iter().zip(v.iter()) {
            if let Err(e) = writeln!(w, "{p}{x} {ts}") {
                err = Some(e);
                return false;
            }
        }
        n += v.len() as u64;
        true
    });
    if let Some(e) = err {
        return Err(e);
    }
    w.write_all(b"# EOF\n")?;
    w.flush()?;
    Ok(n)
}

#[derive(Default)]
struct Stats {
    samples: AtomicU64,
    requests: AtomicU64,
    non2xx: AtomicU64,
    transport_errors: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// Posts one body until a 2xx; retries 5xx, 429 and connection errors with
/// backoff for up to 10 minutes; exits the process on any other answer.
fn post(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &[u8], stats: &Stats) {
    let mut backoff = Duration::from_millis(50);
    let started = Instant::now();
    loop {
        let mut req = agent
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", "sightline-metrics-load/1");
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let why = match req.send(body) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp
                    .into_body()
                    .read_to_string()
                    .unwrap_or_else(|e| format!("(body unreadable: {e})"));
                if (200..300).contains(&status) {
                    stats.requests.fetch_add(1, Relaxed);
                    stats.bytes.fetch_add(body.len() as u64, Relaxed);
                    return;
                }
                stats.non2xx.fetch_add(1, Relaxed);
                if status != 429 && status < 500 {
                    eprintln!(
                        "metrics_load: FATAL: {url} answered {status} (not retried): {}",
                        text.chars().take(2000).collect::<String>()
                    );
                    std::process::exit(2);
                }
                format!("{status}: {}", text.chars().take(300).collect::<String>())
            }
            Err(e) => {
                stats.transport_errors.fetch_add(1, Relaxed);
                e.to_string()
            }
        };
        if started.elapsed() > Duration::from_secs(600) {
            eprintln!(
                "metrics_load: FATAL: {url} still failing after 10 minutes of retries: {why}"
            );
            std::process::exit(3);
        }
        if stats.retries.fetch_add(1, Relaxed) < 20 {
            eprintln!("metrics_load: retrying {url} in {backoff:?}: {why}");
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Steps per request: as many as fit in `batch` samples, but spanning at most
/// 15 minutes, so that connections stay well within the hour of history
/// Prometheus's head accepts behind its newest sample.
fn steps_per_request(batch: usize, series: usize, interval_ms: i64) -> usize {
    let by_time = ((15 * 60_000) / interval_ms).max(1) as usize;
    (batch / series.max(1)).clamp(1, by_time)
}

/// One connection's share: its series, cut into requests of ≤ batch samples.
fn sender(
    ds: Arc<Dataset>,
    ids: Vec<usize>,
    batch: usize,
    urls: Vec<String>,
    token: Option<String>,
    stats: Arc<Stats>,
    rx: Receiver<(i64, Arc<Vec<f64>>)>,
) {
    let agents: Vec<ureq::Agent> = urls.iter().map(|_| agent()).collect();
    // Steps per request, and the series of each request (persistent
    // WriteRequests: only the samples change).
    let steps_per_req = steps_per_request(batch, ids.len(), ds.interval_ms);
    let per_req = batch.min(ids.len()).max(1);
    let mut reqs: Vec<(usize, WriteRequest)> = ids
        .chunks(per_req)
        .enumerate()
        .map(|(c, chunk)| {
            let timeseries = chunk
                .iter()
                .map(|&i| TimeSeries {
                    labels: ds.series[i]
                        .labels
                        .iter()
                        .map(|(k, v)| Label {
                            name: k.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                    samples: Vec::with_capacity(steps_per_req),
                })
                .collect();
            (
                c * per_req,
                WriteRequest {
                    timeseries,
                    metadata: vec![],
                },
            )
        })
        .collect();
    let mut pending: Vec<(i64, Arc<Vec<f64>>)> = Vec::with_capacity(steps_per_req);
    let mut flush = |pending: &mut Vec<(i64, Arc<Vec<f64>>)>| {
        for (offset, req) in reqs.iter_mut() {
            for (j, ts) in req.timeseries.iter_mut().enumerate() {
                let i = ids[*offset + j];
                ts.samples.clear();
                ts.samples.extend(pending.iter().map(|(t, v)| Sample {
                    value: v[i],
                    timestamp: *t,
                }));
            }
            let body = encode(req);
            for (url, agent) in urls.iter().zip(&agents) {
                post(agent, url, token.as_deref(), &body, &stats);
            }
            stats
                .samples
                .fetch_add((req.timeseries.len() * pending.len()) as u64, Relaxed);
        }
        pending.clear();
    };
    while let Ok(m) = rx.recv() {
        pending.push(m);
        if pending.len() == steps_per_req {
            flush(&mut pending);
        }
    }
    if !pending.is_empty() {
        flush(&mut pending);
    }
}

/// utime + stime of this process, seconds (CLK_TCK 100).
fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() {
    let a = parse_args();
    let ds = Arc::new(Dataset::new(&a));
    if a.describe {
        println!("{}", ds.describe());
        return;
    }
    let mut summary = ds.describe();
    if let Some(path) = &a.openmetrics {
        let t0 = Instant::now();
        match write_openmetrics(&ds, path) {
            Ok(n) => {
                summary["openmetrics"] = serde_json::json!({
                    "file": path, "samples": n, "seconds": t0.elapsed().as_secs_f64(),
                    "bytes": std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                });
            }
            Err(e) => {
                eprintln!("metrics_load: FATAL: writing {path}: {e}");
                std::process::exit(1);
            }
        }
    }
    if !a.urls.is_empty() {
        let stats = Arc::new(Stats::default());
        let mut shards: Vec<Vec<usize>> = vec![vec![]; a.concurrency];
        for (i, s) in ds.series.iter().enumerate() {
            shards[(s.hash % a.concurrency as u64) as usize].push(i);
        }
        shards.retain(|s| !s.is_empty());
        let cpu0 = own_cpu_seconds();
        let t0 = Instant::now();
        let mut txs = vec![];
        let mut handles = vec![];
        for ids in shards {
            // A shard may run at most this many steps ahead of the generator's
            // slowest consumer: senders stay within a few steps of each other.
            let cap = steps_per_request(a.batch, ids.len(), ds.interval_ms) + 4;
            let (tx, rx) = sync_channel(cap);
            txs.push(tx);
            let (ds, urls, token, stats) =
                (ds.clone(), a.urls.clone(), a.token.clone(), stats.clone());
            let batch = a.batch;
            handles.push(
                std::thread::Builder::new()
                    .name("sender".into())
                    .spawn(move || sender(ds, ids, batch, urls, token, stats, rx))
                    .expect("spawn sender"),
            );
        }
        ds.generate(|t, v| txs.iter().all(|tx| tx.send((t, v.clone())).is_ok()));
        drop(txs);
        for h in handles {
            if h.join().is_err() {
                eprintln!("metrics_load: FATAL: a sender panicked");
                std::process::exit(1);
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let samples = stats.samples.load(Relaxed);
        summary["urls"] = serde_json::json!(a.urls);
        summary["concurrency"] = serde_json::json!(a.concurrency);
        summary["batch"] = serde_json::json!(a.batch);
        summary["samples_sent"] = serde_json::json!(samples);
        summary["requests"] = serde_json::json!(stats.requests.load(Relaxed));
        summary["bytes_sent"] = serde_json::json!(stats.bytes.load(Relaxed));
        summary["seconds"] = serde_json::json!(secs);
        summary["samples_per_s"] = serde_json::json!((samples as f64 / secs).round());
        summary["non2xx"] = serde_json::json!(stats.non2xx.load(Relaxed));
        summary["transport_errors"] = serde_json::json!(stats.transport_errors.load(Relaxed));
        summary["retries"] = serde_json::json!(stats.retries.load(Relaxed));
        summary["client_cpu_s"] = serde_json::json!(own_cpu_seconds() - cpu0);
    }
    println!("{summary}");
}
