//! Health probes: each target's `/health` and `/health/ready` fetched on its
//! interval; the status code, latency, the body's `status` and every
//! `checks.<name>` become a service state (ok / degraded / down) and series
//! in the metrics store (`sightline_target_up`, `sightline_target_ready`,
//! `sightline_target_state`, `sightline_probe_duration_seconds`), so PromQL can
//! alert on them and uptime and transitions are computed from stored data.

use crate::scrape::{append, http_client, now_ms, HttpClient, Target};
use http_body_util::{BodyExt, Limited};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sightline_store::tsdb::{stale_nan, LabelMatcher, Labels, SeriesSamples, Tsdb};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const MAX_PROBE_BODY: usize = 1 << 20;

/// Result of one GET of a health endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeResult {
    pub status_code: Option<u16>,
    pub latency: Duration,
    /// The body's `status`, when it is JSON with one.
    pub body_status: Option<String>,
    /// `checks.<name>` → (ok?, value as written).
    pub checks: BTreeMap<String, (bool, String)>,
    /// Connection error, timeout or non-2xx.
    pub error: Option<String>,
}

impl ProbeResult {
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.status_code.is_some_and(|c| (200..300).contains(&c))
            && self.body_status.as_deref().is_none_or(status_ok)
            && self.checks.values().all(|(ok, _)| *ok)
    }

    fn to_json(&self) -> Value {
        json!({
            "status_code": self.status_code,
            "latency_ms": self.latency.as_secs_f64() * 1000.0,
            "status": self.body_status,
            "error": self.error,
        })
    }
}

fn status_ok(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "ok" | "healthy" | "up" | "pass" | "passing" | "ready" | "true"
    )
}

/// A check's value: `"ok"`, `true`, `{"status": "ok", …}` are healthy.
fn check_ok(v: &Value) -> (bool, String) {
    match v {
        Value::String(s) => (status_ok(s), s.clone()),
        Value::Bool(b) => (*b, b.to_string()),
        Value::Object(m) => match m.get("status").or_else(|| m.get("state")) {
            Some(Value::String(s)) => (status_ok(s), s.clone()),
            Some(Value::Bool(b)) => (*b, b.to_string()),
            _ => (false, v.to_string()),
        },
        _ => (false, v.to_string()),
    }
}

/// Reads a health body: `{"status": …, "checks": {name: value}}`.
pub fn parse_health_body(body: &[u8]) -> (Option<String>, BTreeMap<String, (bool, String)>) {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
        return (None, BTreeMap::new());
    };
    let status = m.get("status").map(|s| match s {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let mut checks = BTreeMap::new();
    if let Some(Value::Object(c)) = m.get("checks") {
        for (k, v) in c {
            checks.insert(k.clone(), check_ok(v));
        }
    }
    (status, checks)
}

/// ok / degraded / down from the two probes.
pub fn state_of(live: &ProbeResult, ready: Option<&ProbeResult>) -> &'static str {
    if !(live.error.is_none() && live.status_code.is_some_and(|c| (200..300).contains(&c))) {
        return "down";
    }
    match ready {
        Some(r) if !r.ok() => "degraded",
        _ if live.body_status.as_deref().is_some_and(|s| !status_ok(s)) => "degraded",
        _ => "ok",
    }
}

fn rfc3339_ms(ms: i64) -> String {
    sightline_pipeline::timefmt::format_rfc3339_nanos(ms.saturating_mul(1_000_000))
}

fn state_value(s: &str) -> f64 {
    match s {
        "ok" => 0.0,
        "degraded" => 1.0,
        _ => 2.0,
    }
}

pub fn state_name(v: f64) -> &'static str {
    match v as i64 {
        0 => "ok",
        1 => "degraded",
        _ => "down",
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProbeStatus {
    pub live: Option<ProbeResult>,
    pub ready: Option<ProbeResult>,
    pub state: &'static str,
    pub at_ms: i64,
}

struct Running {
    target: Target,
    status: Arc<Mutex<ProbeStatus>>,
    /// `true`: removed (its series get staleness markers); `false`: shutdown.
    stop: Option<oneshot::Sender<bool>>,
}

/// Probes of every target.
pub struct Prober {
    tsdb: Arc<Tsdb>,
    client: HttpClient,
    running: Mutex<BTreeMap<String, Running>>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").finish_non_exhaustive()
    }
}

impl Prober {
    pub fn new(tsdb: Arc<Tsdb>) -> Prober {
        Prober {
            tsdb,
            client: http_client(),
            running: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn add(&self, t: &Target) {
        if t.health_path.is_empty() && t.ready_path.is_empty() {
            return;
        }
        self.remove(t, false);
        let status = Arc::new(Mutex::new(ProbeStatus {
            state: "unknown",
            ..Default::default()
        }));
        let (tx, rx) = oneshot::channel();
        tokio::spawn(probe_loop(
            t.clone(),
            self.tsdb.clone(),
            self.client.clone(),
            status.clone(),
            rx,
        ));
        self.running.lock().insert(
            t.base_url.clone(),
            Running {
                target: t.clone(),
                status,
                stop: Some(tx),
            },
        );
    }

    /// Stops probing `t`; `mark_stale` ends its series (removal, not shutdown).
    pub fn remove(&self, t: &Target, mark_stale: bool) {
        if let Some(mut r) = self.running.lock().remove(&t.base_url) {
            if let Some(s) = r.stop.take() {
                let _ = s.send(mark_stale);
            }
        }
    }

    pub fn statuses(&self) -> Vec<(Target, ProbeStatus)> {
        self.running
            .lock()
            .values()
            .map(|r| (r.target.clone(), r.status.lock().clone()))
            .collect()
    }
}

async fn get(client: &HttpClient, url: &str, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let fut = async {
        let (_, resp) =
            crate::scrape::get_following(client, url, &[("accept", "application/json")]).await?;
        let code = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_PROBE_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, String>((code, body))
    };
    let r = tokio::time::timeout(timeout, fut).await;
    let latency = start.elapsed();
    match r {
        Ok(Ok((code, body))) => {
            let (body_status, checks) = parse_health_body(&body);
            ProbeResult {
                status_code: Some(code),
                latency,
                body_status,
                checks,
                error: (!(200..300).contains(&code)).then(|| format!("HTTP {code}")),
            }
        }
        Ok(Err(e)) => ProbeResult {
            latency,
            error: Some(e),
            ..Default::default()
        },
        Err(_) => ProbeResult {
            latency,
            error: Some(format!("timed out after {timeout:?}")),
            ..Default::default()
        },
    }
}

async fn probe_loop(
    t: Target,
    tsdb: Arc<Tsdb>,
    client: HttpClient,
    status: Arc<Mutex<ProbeStatus>>,
    mut stop: oneshot::Receiver<bool>,
) {
    let iv = t.interval.as_millis().max(1) as i64;
    let mut next = now_ms();
    let mut last_checks: Vec<String> = vec![];
    // Every series this probe has written, to end them on removal.
    let mut written: std::collections::HashSet<Labels> = std::collections::HashSet::new();
    let mark_stale = loop {
        let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
        tokio::select! {
            r = &mut stop => break r.unwrap_or(false),
            _ = tokio::time::sleep(wait) => {}
        }
        let ts = next;
        let live = if t.health_path.is_empty() {
            None
        } else {
            Some(
                get(
                    &client,
                    &format!("{}{}", t.base_url, t.health_path),
                    t.timeout,
                )
                .await,
            )
        };
        let ready = if t.ready_path.is_empty() {
            None
        } else {
            Some(
                get(
                    &client,
                    &format!("{}{}", t.base_url, t.ready_path),
                    t.timeout,
                )
                .await,
            )
        };
        // Without a liveness path the readiness probe decides up/down.
        let live_eff = live.clone().or_else(|| {
            ready.clone().map(|r| ProbeResult {
                error: r.error.clone().filter(|_| r.status_code.is_none()),
                status_code: r.status_code.map(|_| 200),
                ..r
            })
        });
        let state = live_eff
            .as_ref()
            .map(|l| state_of(l, ready.as_ref()))
            .unwrap_or("unknown");
        let base = t.target_labels();
        let mk = |name: &str, extra: &[(&str, &str)], v: f64| {
            let mut l = base.clone();
            l.push(("__name__".into(), name.into()));
            for (k, x) in extra {
                l.push((k.to_string(), x.to_string()));
            }
            SeriesSamples {
                labels: Labels::new(l),
                samples: vec![(ts, v)],
            }
        };
        let mut batch = vec![];
        if let Some(l) = &live_eff {
            let up = l.error.is_none() && l.status_code.is_some_and(|c| (200..300).contains(&c));
            batch.push(mk("sightline_target_up", &[], if up { 1.0 } else { 0.0 }));
            batch.push(mk("sightline_target_state", &[], state_value(state)));
        }
        if let Some(l) = &live {
            batch.push(mk(
                "sightline_probe_duration_seconds",
                &[("probe", "health")],
                l.latency.as_secs_f64(),
            ));
        }
        let mut checks_now = vec![];
        if let Some(r) = &ready {
            batch.push(mk(
                "sightline_target_ready",
                &[],
                if r.ok() { 1.0 } else { 0.0 },
            ));
            batch.push(mk(
                "sightline_probe_duration_seconds",
                &[("probe", "ready")],
                r.latency.as_secs_f64(),
            ));
            for (name, (ok, _)) in &r.checks {
                batch.push(mk(
                    "sightline_target_ready",
                    &[("check", name)],
                    if *ok { 1.0 } else { 0.0 },
                ));
                checks_now.push(name.clone());
            }
        }
        // A check that disappears from the body ends its series.
        for gone in last_checks.iter().filter(|c| !checks_now.contains(c)) {
            batch.push(mk(
                "sightline_target_ready",
                &[("check", gone)],
                stale_nan(),
            ));
        }
        last_checks = checks_now;
        for b in &batch {
            if !written.contains(&b.labels) {
                written.insert(b.labels.clone());
            }
        }
        if let Err(e) = append(&tsdb, batch).await {
            tracing::warn!(service = %t.service, error = %e, "probe results not stored");
        }
        *status.lock() = ProbeStatus {
            live,
            ready,
            state,
            at_ms: ts,
        };
        next += iv;
        let now = now_ms();
        if next <= now {
            next += ((now - next) / iv + 1) * iv;
        }
    };
    if mark_stale && !written.is_empty() {
        let ts = now_ms();
        let batch: Vec<SeriesSamples> = written
            .into_iter()
            .map(|labels| SeriesSamples {
                labels,
                samples: vec![(ts, stale_nan())],
            })
            .collect();
        if let Err(e) = append(&tsdb, batch).await {
            tracing::warn!(service = %t.service, error = %e, "probe staleness markers not stored");
        }
    }
}

/// Uptime (share of probes with the service up), transitions and since-when
/// for one service, from the stored `sightline_target_state` series.
pub fn history(tsdb: &Tsdb, t: &Target, now: i64) -> Value {
    let matchers = [
        LabelMatcher::equal("__name__", "sightline_target_state"),
        LabelMatcher::equal("instance", &t.instance()),
        LabelMatcher::equal("job", &t.service),
    ];
    let week = 7 * 86_400_000;
    let series = tsdb.select(&matchers, now - week, now);
    let mut samples: Vec<(i64, f64)> = series
        .into_iter()
        .flat_map(|s| s.samples)
        .filter(|(_, v)| !v.is_nan())
        .collect();
    samples.sort_by_key(|s| s.0);
    let uptime = |from: i64| {
        let w: Vec<&(i64, f64)> = samples.iter().filter(|(t, _)| *t >= from).collect();
        if w.is_empty() {
            return Value::Null;
        }
        let up = w.iter().filter(|(_, v)| *v < 2.0).count();
        json!((up as f64) * 100.0 / (w.len() as f64))
    };
    let mut transitions = vec![];
    let mut since = samples.first().map(|s| s.0);
    for pair in samples.windows(2) {
        if pair[0].1 != pair[1].1 {
            transitions.push(json!({
                "at": rfc3339_ms(pair[1].0),
                "from": state_name(pair[0].1),
                "to": state_name(pair[1].1),
            }));
            since = Some(pair[1].0);
        }
    }
    let recent: Vec<Value> = transitions.into_iter().rev().take(20).collect();
    json!({
        "since": since.map(rfc3339_ms),
        "uptime_24h": uptime(now - 86_400_000),
        "uptime_7d": uptime(now - week),
        "transitions": recent,
    })
}

/// One service's health as the API shows it.
pub fn status_json(tsdb: &Tsdb, t: &Target, s: &ProbeStatus) -> Value {
    let mut checks = serde_json::Map::new();
    if let Some(r) = &s.ready {
        for (name, (ok, v)) in &r.checks {
            checks.insert(
                name.clone(),
                json!({"state": if *ok { "ok" } else { "failing" }, "value": v}),
            );
        }
    }
    let mut v = json!({
        "service": t.service,
        "instance": t.instance(),
        "url": t.base_url,
        "state": s.state,
        "checked_at": (s.at_ms > 0).then(|| rfc3339_ms(s.at_ms)),
        "health": s.live.as_ref().map(|p| p.to_json()),
        "ready": s.ready.as_ref().map(|p| p.to_json()),
        "checks": checks,
    });
    if let (Value::Object(m), Value::Object(h)) = (&mut v, history(tsdb, t, now_ms())) {
        m.extend(h);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_health_bodies() {
        let (s, c) = parse_health_body(include_bytes!(
            "../../../tests/fixtures/python-sdks/health/ready-degraded.json"
        ));
        assert_eq!(s.as_deref(), Some("degraded"));
        assert_eq!(c["database"], (false, "error: connection refused".into()));
        assert_eq!(c["redis"], (true, "ok".into()));
        let ready = ProbeResult {
            status_code: Some(503),
            body_status: s,
            checks: c,
            error: Some("HTTP 503".into()),
            ..Default::default()
        };
        let live = ProbeResult {
            status_code: Some(200),
            body_status: Some("ok".into()),
            ..Default::default()
        };
        assert_eq!(state_of(&live, Some(&ready)), "degraded");
        let (s, c) = parse_health_body(include_bytes!(
            "../../../tests/fixtures/python-sdks/health/ready-ok.json"
        ));
        let ready = ProbeResult {
            status_code: Some(200),
            body_status: s,
            checks: c,
            ..Default::default()
        };
        assert_eq!(state_of(&live, Some(&ready)), "ok");
        let down = ProbeResult {
            error: Some("connection refused".into()),
            ..Default::default()
        };
        assert_eq!(state_of(&down, Some(&ready)), "down");
        assert_eq!(parse_health_body(b"not json"), (None, BTreeMap::new()));
        assert_eq!(
            check_ok(&json!({"status": "healthy", "latency_ms": 3})),
            (true, "healthy".into())
        );
    }
}
