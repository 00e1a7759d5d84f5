//! Scraping targets like Prometheus: one task per target on a jittered
//! schedule, OpenMetrics preferred with text 0.0.4 fallback, target labels
//! (`job`, `instance`, `service`, extras), the synthetic `up` and `scrape_*`
//! series, staleness markers for series that vanish, bounded concurrency and
//! timeouts. Also the metric metadata (TYPE/HELP/UNIT) seen in scrapes.

use crate::config::{MetricsConfig, TargetConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use parking_lot::{Mutex, RwLock};
use sightline_protocol::exposition::{Entry, Format, MetricType, Parser};
use sightline_store::tsdb::{stale_nan, Labels, SeriesSamples, Tsdb};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, Semaphore};

/// What Prometheus sends: OpenMetrics first, text 0.0.4 as fallback.
pub const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn http_client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(4)
        .build(c)
}

/// A target as scraped: its config resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub service: String,
    pub base_url: String,
    pub metrics_path: String,
    pub health_path: String,
    pub ready_path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub labels: BTreeMap<String, String>,
    /// `config` (sightline.toml) or `api` (added at runtime).
    pub source: &'static str,
}

fn duration(s: &str, what: &str) -> Result<Duration, String> {
    let ns = sightline_query::time::parse_duration(s).map_err(|e| format!("{what}: {e}"))?;
    if ns <= 0 {
        return Err(format!("{what}: must be positive"));
    }
    Ok(Duration::from_nanos(ns as u64))
}

impl Target {
    pub fn from_config(
        c: &TargetConfig,
        defaults: &MetricsConfig,
        source: &'static str,
    ) -> Result<Target, String> {
        if c.service.is_empty() {
            return Err("a target needs a service name".into());
        }
        let base = c.url.trim_end_matches('/').to_string();
        let uri: hyper::Uri = base
            .parse()
            .map_err(|e| format!("target {}: invalid url {:?}: {e}", c.service, c.url))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!(
                "target {}: url must be http://host:port (https is not supported)",
                c.service
            ));
        }
        let interval = duration(
            c.interval.as_deref().unwrap_or(&defaults.scrape_interval),
            "interval",
        )?;
        let mut timeout = duration(
            c.timeout.as_deref().unwrap_or(&defaults.scrape_timeout),
            "timeout",
        )?;
        timeout = timeout.min(interval);
        let path = |p: &Option<String>, d: &str| {
            let p = p.clone().unwrap_or_else(|| d.to_string());
            if p.is_empty() || p.starts_with('/') {
                p
            } else {
                format!("/{p}")
            }
        };
        for k in c.labels.keys() {
            if !valid_label_name(k) {
                return Err(format!("target {}: invalid label name {k:?}", c.service));
            }
        }
        Ok(Target {
            service: c.service.clone(),
            base_url: base,
            metrics_path: path(&c.metrics_path, "/metrics"),
            health_path: path(&c.health_path, "/health"),
            ready_path: path(&c.ready_path, "/health/ready"),
            interval,
            timeout,
            labels: c.labels.clone(),
            source,
        })
    }

    /// `host:port` of the target, its `instance` label.
    pub fn instance(&self) -> String {
        let uri: hyper::Uri = self.base_url.parse().expect("validated");
        let host = uri.host().unwrap_or("");
        format!("{}:{}", host, uri.port_u16().unwrap_or(80))
    }

    pub fn to_config(&self) -> TargetConfig {
        let show = |p: &str, d: &str| (p != d).then(|| p.to_string());
        TargetConfig {
            service: self.service.clone(),
            url: self.base_url.clone(),
            metrics_path: show(&self.metrics_path, "/metrics"),
            health_path: show(&self.health_path, "/health"),
            ready_path: show(&self.ready_path, "/health/ready"),
            interval: Some(format!("{}s", self.interval.as_secs_f64())),
            timeout: Some(format!("{}s", self.timeout.as_secs_f64())),
            labels: self.labels.clone(),
        }
    }

    /// The labels every series of this target carries.
    pub fn target_labels(&self) -> Vec<(String, String)> {
        let mut l: Vec<(String, String)> = vec![
            ("job".into(), self.service.clone()),
            ("instance".into(), self.instance()),
            ("service".into(), self.service.clone()),
        ];
        for (k, v) in &self.labels {
            l.retain(|(n, _)| n != k);
            l.push((k.clone(), v.clone()));
        }
        l
    }
}

pub fn valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// What the API shows about a target's scrapes.
#[derive(Debug, Clone, Default)]
pub struct ScrapeStatus {
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
    pub last_error: String,
    /// "up", "down" or "unknown" (not scraped yet).
    pub health: &'static str,
    pub samples: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

struct Running {
    target: Target,
    status: Arc<Mutex<ScrapeStatus>>,
    /// `true`: the target was removed (its series get staleness markers);
    /// `false`: shutting down (Prometheus writes no markers then either).
    stop: Option<oneshot::Sender<bool>>,
}

/// Every target being scraped, and what scrapes taught about metric families.
pub struct Scraper {
    tsdb: Arc<Tsdb>,
    client: HttpClient,
    slots: Arc<Semaphore>,
    max_body: usize,
    sample_limit: usize,
    running: Mutex<BTreeMap<String, Running>>,
    /// family name → metadata (newest scrape wins).
    pub metadata: Arc<RwLock<HashMap<String, Metadata>>>,
    probes: Option<Arc<crate::probe::Prober>>,
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraper").finish_non_exhaustive()
    }
}

/// A target with its status, as listed.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub target: Target,
    pub status: ScrapeStatus,
}

impl Scraper {
    pub fn new(
        tsdb: Arc<Tsdb>,
        cfg: &MetricsConfig,
        probes: Option<Arc<crate::probe::Prober>>,
    ) -> Scraper {
        Scraper {
            tsdb,
            client: http_client(),
            slots: Arc::new(Semaphore::new(cfg.max_concurrent_scrapes.max(1))),
            max_body: cfg.max_scrape_bytes,
            sample_limit: cfg.max_samples_per_scrape,
            running: Mutex::new(BTreeMap::new()),
            metadata: Arc::new(RwLock::new(HashMap::new())),
            probes,
        }
    }

    /// Starts scraping `t` (replacing a target with the same URL). Needs a
    /// Tokio runtime.
    pub fn add(&self, t: Target) {
        let key = t.base_url.clone();
        self.remove_url(&key);
        let status = Arc::new(Mutex::new(ScrapeStatus {
            health: "unknown",
            ..Default::default()
        }));
        let (stop_tx, stop_rx) = oneshot::channel();
        let ctx = ScrapeLoop {
            target: t.clone(),
            tsdb: self.tsdb.clone(),
            client: self.client.clone(),
            slots: self.slots.clone(),
            max_body: self.max_body,
            sample_limit: self.sample_limit,
            status: status.clone(),
            metadata: self.metadata.clone(),
            previous: HashSet::new(),
        };
        if t.metrics_path.is_empty() {
            // Probed only: nothing to scrape.
            status.lock().health = "unknown";
            drop(stop_rx);
            drop(ctx);
        } else {
            tokio::spawn(ctx.run(stop_rx));
        }
        if let Some(p) = &self.probes {
            p.add(&t);
        }
        self.running.lock().insert(
            key,
            Running {
                target: t,
                status,
                stop: Some(stop_tx),
            },
        );
    }

    fn remove_url(&self, url: &str) -> bool {
        self.stop_url(url, true)
    }

    fn stop_url(&self, url: &str, mark_stale: bool) -> bool {
        let removed = self.running.lock().remove(url);
        match removed {
            Some(mut r) => {
                if let Some(s) = r.stop.take() {
                    let _ = s.send(mark_stale);
                }
                if let Some(p) = &self.probes {
                    p.remove(&r.target, mark_stale);
                }
                true
            }
            None => false,
        }
    }

    /// Removes targets whose service name or URL is `key`; how many.
    pub fn remove(&self, key: &str) -> usize {
        let urls: Vec<String> = self
            .running
            .lock()
            .values()
            .filter(|r| r.target.service == key || r.target.base_url == key.trim_end_matches('/'))
            .map(|r| r.target.base_url.clone())
            .collect();
        urls.iter().filter(|u| self.remove_url(u)).count()
    }

    pub fn list(&self) -> Vec<TargetInfo> {
        self.running
            .lock()
            .values()
            .map(|r| TargetInfo {
                target: r.target.clone(),
                status: r.status.lock().clone(),
            })
            .collect()
    }

    /// Stops every scrape and probe (shutdown: no staleness markers).
    pub fn stop_all(&self) {
        let urls: Vec<String> = self.running.lock().keys().cloned().collect();
        for u in urls {
            self.stop_url(&u, false);
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Offset of a target inside its interval, stable per URL (spreads scrapes).
fn offset(url: &str, interval: Duration) -> Duration {
    let h = url.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

struct ScrapeLoop {
    target: Target,
    tsdb: Arc<Tsdb>,
    client: HttpClient,
    slots: Arc<Semaphore>,
    max_body: usize,
    sample_limit: usize,
    status: Arc<Mutex<ScrapeStatus>>,
    metadata: Arc<RwLock<HashMap<String, Metadata>>>,
    /// Series of the last successful scrape (for staleness markers).
    previous: HashSet<Labels>,
}

/// Outcome of fetching and parsing one scrape.
#[derive(Debug)]
pub struct Scraped {
    pub series: Vec<SeriesSamples>,
    /// The label sets of `series` (built while dropping repeats; the next
    /// scrape's staleness check compares against it).
    pub labels: HashSet<Labels>,
    pub metadata: Vec<(String, Metadata)>,
}

impl ScrapeLoop {
    async fn run(mut self, mut stop: oneshot::Receiver<bool>) {
        let interval = self.target.interval;
        // Align to the interval grid plus a per-target offset, like Prometheus.
        let now = now_ms();
        let iv = interval.as_millis().max(1) as i64;
        let off = offset(&self.target.base_url, interval).as_millis() as i64;
        let mut next = now - now.rem_euclid(iv) + off;
        if next < now {
            next += iv;
        }
        let mark_stale = loop {
            let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
            tokio::select! {
                r = &mut stop => break r.unwrap_or(false),
                _ = tokio::time::sleep(wait) => {}
            }
            let ts = next;
            self.scrape_once(ts).await;
            next += iv;
            // Missed ticks (a slow scrape, a suspended machine) are skipped.
            let now = now_ms();
            if next <= now {
                next += ((now - next) / iv + 1) * iv;
            }
        };
        if !mark_stale {
            return;
        }
        // Target removed: its series end now.
        let ts = now_ms();
        let stale: Vec<SeriesSamples> = self
            .previous
            .drain()
            .map(|labels| SeriesSamples {
                labels,
                samples: vec![(ts, stale_nan())],
            })
            .collect();
        let mut batch = stale;
        batch.extend(self.report(ts, false, 0.0, 0, 0, true));
        let _ = append(&self.tsdb, batch).await;
    }

    async fn scrape_once(&mut self, ts: i64) {
        let _slot = self.slots.clone().acquire_owned().await;
        let start = Instant::now();
        let result = tokio::time::timeout(self.target.timeout, self.fetch(ts)).await;
        let took = start.elapsed();
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(format!("scrape timed out after {:?}", self.target.timeout)),
        };
        let mut batch = Vec::new();
        let (ok, scraped, added) = match result {
            Ok(s) => {
                let n = s.series.len();
                let current = s.labels;
                let added = current.difference(&self.previous).count();
                for gone in self.previous.difference(&current) {
                    batch.push(SeriesSamples {
                        labels: gone.clone(),
                        samples: vec![(ts, stale_nan())],
                    });
                }
                self.previous = current;
                batch.extend(s.series);
                let mut md = self.metadata.write();
                for (k, m) in s.metadata {
                    md.insert(k, m);
                }
                drop(md);
                let mut st = self.status.lock();
                st.last_error.clear();
                st.health = "up";
                st.samples = n;
                (true, n, added)
            }
            Err(e) => {
                tracing::debug!(target_url = %self.target.base_url, error = %e, "scrape failed");
                // A failed scrape ends every series of the last one.
                for gone in self.previous.drain() {
                    batch.push(SeriesSamples {
                        labels: gone,
                        samples: vec![(ts, stale_nan())],
                    });
                }
                let mut st = self.status.lock();
                st.last_error = e;
                st.health = "down";
                st.samples = 0;
                (false, 0, 0)
            }
        };
        {
            let mut st = self.status.lock();
            st.last_scrape = Some(UNIX_EPOCH + Duration::from_millis(ts.max(0) as u64));
            st.last_duration = took;
        }
        batch.extend(self.report(ts, ok, took.as_secs_f64(), scraped, added, false));
        if let Err(e) = append(&self.tsdb, batch).await {
            tracing::warn!(target_url = %self.target.base_url, error = %e, "scraped samples not stored");
        }
    }

    /// The synthetic series Prometheus adds to every scrape.
    fn report(
        &self,
        ts: i64,
        ok: bool,
        secs: f64,
        scraped: usize,
        added: usize,
        stale: bool,
    ) -> Vec<SeriesSamples> {
        let base = self.target.target_labels();
        let mk = |name: &str, v: f64| {
            let mut l = base.clone();
            l.push(("__name__".into(), name.into()));
            SeriesSamples {
                labels: Labels::new(l),
                samples: vec![(ts, if stale { stale_nan() } else { v })],
            }
        };
        vec![
            mk("up", if ok { 1.0 } else { 0.0 }),
            mk("scrape_duration_seconds", secs),
            mk("scrape_samples_scraped", scraped as f64),
            mk("scrape_samples_post_metric_relabeling", scraped as f64),
            mk("scrape_series_added", added as f64),
        ]
    }

    async fn fetch(&self, ts: i64) -> Result<Scraped, String> {
        let url = format!("{}{}", self.target.base_url, self.target.metrics_path);
        let timeout_secs = format!("{}", self.target.timeout.as_secs_f64());
        let (url, resp) = get_following(
            &self.client,
            &url,
            &[
                ("accept", ACCEPT),
                ("x-prometheus-scrape-timeout-seconds", &timeout_secs),
            ],
        )
        .await?;
        if !resp.status().is_success() {
            return Err(format!(
                "GET {url}: server returned HTTP status {}",
                resp.status()
            ));
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = Limited::new(resp.into_body(), self.max_body)
            .collect()
            .await
            .map_err(|e| format!("reading {url}: {e} (limit {} bytes)", self.max_body))?
            .to_bytes();
        let target_labels = self.target.target_labels();
        let sample_limit = self.sample_limit;
        let format = Format::from_content_type(&ct);
        tokio::task::spawn_blocking(move || {
            parse_scrape(&body, format, &target_labels, ts, sample_limit)
        })
        .await
        .map_err(|e| format!("parser task failed: {e}"))?
    }
}

/// Most redirects followed (as Prometheus's HTTP client).
const MAX_REDIRECTS: usize = 10;

/// Where a `Location` header points, relative to `from`.
fn resolve(from: &hyper::Uri, location: &str) -> Option<String> {
    let loc: hyper::Uri = location.parse().ok()?;
    if loc.scheme().is_some() {
        return Some(location.to_string());
    }
    let authority = from.authority()?;
    let scheme = from.scheme_str().unwrap_or("http");
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    // A relative path: beside the last segment of the current path.
    let path = from.path();
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

/// GET following redirects (http only). Returns the final URL and response.
pub async fn get_following(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(String, hyper::Response<hyper::body::Incoming>), String> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = hyper::Request::get(&url).header(
            "user-agent",
            concat!("Sightline/", env!("CARGO_PKG_VERSION")),
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        let uri = req.uri().clone();
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
        if !resp.status().is_redirection() {
            return Ok((url, resp));
        }
        let next = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| resolve(&uri, l))
            .ok_or_else(|| format!("GET {url}: {} without a usable Location", resp.status()))?;
        if !next.starts_with("http://") {
            return Err(format!(
                "GET {url}: redirected to {next}, only http:// is supported"
            ));
        }
        url = next;
    }
    Err(format!("GET {url}: more than {MAX_REDIRECTS} redirects"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Turns an exposition body into series with target labels attached (a
/// scraped label that collides with a target label becomes `exported_<name>`,
/// as Prometheus does without honor_labels). Errors name the line.
pub fn parse_scrape(
    body: &[u8],
    format: Format,
    target_labels: &[(String, String)],
    ts: i64,
    sample_limit: usize,
) -> Result<Scraped, String> {
    let mut series = Vec::new();
    let mut metadata: HashMap<String, Metadata> = HashMap::new();
    let mut seen: HashSet<Labels> = HashSet::new();
    for entry in Parser::new(body, format) {
        match entry.map_err(|e| e.to_string())? {
            Entry::Help { family, help } => {
                metadata
                    .entry(family.to_string())
                    .or_insert_with(|| Metadata {
                        kind: MetricType::Unknown,
                        help: String::new(),
                        unit: String::new(),
                    })
                    .help = help.to_string();
            }
            Entry::Type { family, kind } => {
                metadata
                    .entry(family.to_string())
                    .or_insert_with(|| Metadata {
                        kind: MetricType::Unknown,
                        help: String::new(),
                        unit: String::new(),
                    })
                    .kind = kind;
            }
            Entry::Unit { family, unit } => {
                metadata
                    .entry(family.to_string())
                    .or_insert_with(|| Metadata {
                        kind: MetricType::Unknown,
                        help: String::new(),
                        unit: String::new(),
                    })
                    .unit = unit.to_string();
            }
            Entry::Sample(s) => {
                let mut l: Vec<(String, String)> =
                    Vec::with_capacity(s.labels.len() + 1 + target_labels.len());
                for (n, v) in &s.labels {
                    let name = if target_labels.iter().any(|(t, _)| t == n) {
                        format!("exported_{n}")
                    } else {
                        n.to_string()
                    };
                    l.push((name, v.to_string()));
                }
                l.push(("__name__".into(), s.name.to_string()));
                l.extend(target_labels.iter().cloned());
                let labels = Labels::new(l);
                if !seen.insert(labels.clone()) {
                    // Prometheus drops a repeated series within one scrape.
                    continue;
                }
                if sample_limit > 0 && series.len() >= sample_limit {
                    return Err(format!(
                        "sample limit exceeded: more than {sample_limit} samples in one scrape ([metrics] max_samples_per_scrape)"
                    ));
                }
                series.push(SeriesSamples {
                    labels,
                    samples: vec![(s.timestamp_ms.unwrap_or(ts), s.value)],
                });
            }
        }
    }
    Ok(Scraped {
        series,
        labels: seen,
        metadata: metadata.into_iter().collect(),
    })
}

/// Appends through the store's writer and waits for it, without blocking
/// the runtime.
pub async fn append(
    tsdb: &Tsdb,
    batch: Vec<SeriesSamples>,
) -> Result<sightline_store::tsdb::AppendOutcome, sightline_store::StoreError> {
    let (tx, rx) = oneshot::channel();
    tsdb.append(
        batch,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )?;
    rx.await.map_err(|_| sightline_store::StoreError::Closed)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_labels_and_collisions() {
        let body = b"# TYPE x counter\nx_total{job=\"inner\",a=\"1\"} 3\nx_total{job=\"inner\",a=\"1\"} 4\n";
        let t = Target::from_config(
            &TargetConfig {
                service: "api".into(),
                url: "http://127.0.0.1:8000/".into(),
                metrics_path: None,
                health_path: None,
                ready_path: None,
                interval: Some("10s".into()),
                timeout: Some("30s".into()),
                labels: [("env".to_string(), "prod".to_string())].into(),
            },
            &MetricsConfig::default(),
            "config",
        )
        .unwrap();
        assert_eq!(t.timeout, Duration::from_secs(10));
        assert_eq!(t.instance(), "127.0.0.1:8000");
        let s = parse_scrape(body, Format::Text, &t.target_labels(), 1000, 0).unwrap();
        assert_eq!(s.series.len(), 1);
        let l = &s.series[0].labels;
        assert_eq!(l.get("job"), Some("api"));
        assert_eq!(l.get("exported_job"), Some("inner"));
        assert_eq!(l.get("env"), Some("prod"));
        assert_eq!(l.get("service"), Some("api"));
        assert_eq!(s.series[0].samples, vec![(1000, 3.0)]);
        let many: String = (0..1000).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
        assert!(parse_scrape(many.as_bytes(), Format::Text, &[], 0, 999)
            .unwrap_err()
            .contains("sample limit"));
        assert_eq!(
            parse_scrape(many.as_bytes(), Format::Text, &[], 0, 1000)
                .unwrap()
                .series
                .len(),
            1000
        );
        assert!(parse_scrape(b"x{a=\"1} 3\n", Format::Text, &[], 0, 0)
            .err()
            .unwrap()
            .contains("line 1"));
    }

    #[test]
    fn redirect_locations_resolve() {
        let from: hyper::Uri = "http://h:1/a/metrics".parse().unwrap();
        assert_eq!(resolve(&from, "/metrics/").unwrap(), "http://h:1/metrics/");
        assert_eq!(resolve(&from, "x").unwrap(), "http://h:1/a/x");
        assert_eq!(resolve(&from, "http://o:2/m").unwrap(), "http://o:2/m");
    }

    #[test]
    fn bad_target_configs_are_refused() {
        let mk = |url: &str| TargetConfig {
            service: "s".into(),
            url: url.into(),
            metrics_path: None,
            health_path: None,
            ready_path: None,
            interval: None,
            timeout: None,
            labels: Default::default(),
        };
        let d = MetricsConfig::default();
        assert!(Target::from_config(&mk("https://x:1"), &d, "api").is_err());
        assert!(Target::from_config(&mk("not a url"), &d, "api").is_err());
        assert!(Target::from_config(&mk("http://x:1"), &d, "api").is_ok());
    }
}
