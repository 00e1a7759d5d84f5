//! The metrics store end to end: remote write from several clients with
//! `kill -9` at random moments (every acknowledged sample is there after a
//! restart, nothing twice), and blocks cut, checkpointed and read back across
//! restarts through the Prometheus API.

use crate::support::*;
use rand::Rng;
use serde_json::Value;
use sightline_protocol::remote_write::{encode, Label, Sample, TimeSeries, WriteRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn series(name: &str, client: usize, samples: Vec<(i64, f64)>) -> TimeSeries {
    TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: name.into(),
            },
            Label {
                name: "client".into(),
                value: client.to_string(),
            },
        ],
        samples: samples
            .into_iter()
            .map(|(timestamp, value)| Sample { value, timestamp })
            .collect(),
    }
}

fn write(agent: &ureq::Agent, url: &str, req: &WriteRequest) -> Result<u16, ureq::Error> {
    agent
        .post(url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .send(&encode(req)[..])
        .map(|r| r.status().as_u16())
}

fn query(s: &Server, q: &str, time: f64) -> Value {
    let r = s.get(&format!(
        "/api/v1/query?query={}&time={time}",
        q.replace('+', "%2B")
            .replace(' ', "%20")
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
    ));
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    r.json()
}

#[test]
fn kill9_during_remote_write_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    const CLIENTS: usize = 3;
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 600_000;
    // (client, first timestamp) of every acknowledged request of 50 samples.
    let acked: Arc<Mutex<Vec<(usize, i64)>>> = Arc::default();
    let mut rng = rand::rng();
    let mut next_t: Vec<i64> = vec![base; CLIENTS];
    for round in 0..6 {
        let mut server = Server::start(&data, "");
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.url("/api/v1/write");
        let mut handles = vec![];
        for (c, start) in next_t.iter().copied().enumerate() {
            let (stop, acked, url) = (stop.clone(), acked.clone(), url.clone());
            handles.push(std::thread::spawn(move || {
                let agent = agent();
                let mut t = start;
                while !stop.load(Ordering::Relaxed) {
                    // 50 samples per request, value = timestamp: easy to check.
                    let samples: Vec<(i64, f64)> =
                        (0..50).map(|i| (t + i, (t + i) as f64)).collect();
                    let req = WriteRequest {
                        timeseries: vec![series("rw_counter", c, samples)],
                        metadata: vec![],
                    };
                    let r = write(&agent, &url, &req);
                    // Whatever happened, these timestamps are used up.
                    t += 50;
                    match r {
                        Ok(204) => acked.lock().unwrap().push((c, t - 50)),
                        Ok(503) => std::thread::sleep(Duration::from_millis(10)),
                        Ok(code) => panic!("round {round}: unexpected status {code}"),
                        Err(_) => break,
                    }
                }
                t
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(200..900)));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for (c, h) in handles.into_iter().enumerate() {
            next_t[c] = h.join().unwrap() + 50;
        }
    }
    let server = Server::start(&data, "");
    let acked = acked.lock().unwrap().clone();
    let end = (*next_t.iter().max().unwrap() as f64) / 1000.0;
    for c in 0..CLIENTS {
        let mine: Vec<i64> = acked.iter().filter(|a| a.0 == c).map(|a| a.1).collect();
        assert!(
            mine.len() > 5,
            "client {c}: only {} acknowledged writes",
            mine.len()
        );
        let raw = server.get(&format!(
            "/api/v1/query?query=rw_counter%7Bclient%3D%22{c}%22%7D%5B1h%5D&time={end}"
        ));
        assert_eq!(raw.status, 200, "{}", raw.body);
        let values = raw.json()["data"]["result"][0]["values"]
            .as_array()
            .unwrap()
            .clone();
        let mut stored = std::collections::HashSet::new();
        for p in &values {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            let v: f64 = p[1].as_str().unwrap().parse().unwrap();
            assert_eq!(t as f64, v, "client {c}: value and timestamp disagree");
            assert!(stored.insert(t), "client {c}: sample {t} stored twice");
        }
        for start in mine {
            for t in start..start + 50 {
                assert!(
                    stored.contains(&t),
                    "client {c}: acknowledged sample {t} lost"
                );
            }
        }
    }
}

#[test]
fn blocks_are_cut_and_read_back_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = "[metrics]\nblock_duration = \"10s\"\n";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now - 120_000;
    let mut server = Server::start(&data, cfg);
    let agent = agent();
    // Two minutes of 1 s samples for 20 series, sent in order.
    for step in 0..12 {
        let ts: Vec<TimeSeries> = (0..20)
            .map(|c| {
                series(
                    "blk_gauge",
                    c,
                    (0..10)
                        .map(|i| {
                            let t = t0 + (step * 10 + i) * 1000;
                            (t, (c as i64 * 1000 + step * 10 + i) as f64)
                        })
                        .collect(),
                )
            })
            .collect();
        let code = write(
            &agent,
            &server.url("/api/v1/write"),
            &WriteRequest {
                timeseries: ts,
                metadata: vec![],
            },
        )
        .unwrap();
        assert_eq!(code, 204);
    }
    let check = |s: &Server| {
        let v = query(s, "count_over_time(blk_gauge[5m])", (now as f64) / 1000.0);
        let r = v["data"]["result"].as_array().unwrap().clone();
        assert_eq!(r.len(), 20);
        for x in &r {
            assert_eq!(x["value"][1], "120", "{x}");
        }
        let v = query(
            s,
            "sum(sum_over_time(blk_gauge[5m]))",
            (now as f64) / 1000.0,
        );
        // Σ_c Σ_k (1000c + k), k = 0..119, c = 0..19
        let want: i64 = (0..20)
            .map(|c| (0..120).map(|k| 1000 * c + k).sum::<i64>())
            .sum();
        assert_eq!(
            v["data"]["result"][0]["value"][1],
            want.to_string().as_str()
        );
    };
    check(&server);
    let m = server.get_noauth("/metrics").body;
    let blocks: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("sightline_tsdb_blocks "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(blocks >= 5.0, "{blocks} blocks:\n{m}");
    server.sigterm();
    drop(server);
    let server = Server::start(&data, cfg);
    check(&server);
    let blocks_dir = data.join("metrics").join("blocks");
    let n = std::fs::read_dir(&blocks_dir).unwrap().count();
    assert!(n >= 5, "{n} block files");
}
