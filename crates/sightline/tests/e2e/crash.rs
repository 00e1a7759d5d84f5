//! `kill -9` at random moments under sustained ingest from several clients:
//! every acknowledged line is present exactly once afterwards, nothing appears
//! twice, and every part opens.

use crate::support::*;
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 4;
const ROUNDS: usize = 10;
const BATCH: usize = 40;

#[test]
fn kill9_during_ingest_loses_no_acknowledged_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Small heads so that flushes and compactions happen while we crash.
    let cfg = "[storage]\nmax_head_rows = 1500\nflush_interval_secs = 1\n[limits]\nmax_query_limit = 1000000\n[query]\nmax_page_bytes = 1073741824\n";
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let maybe: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut rng = rand::rng();
    let mut seq = 0u64;
    for round in 0..ROUNDS {
        let mut server = Server::start(&data, cfg);
        let ready = server.get_noauth("/health/ready");
        assert_eq!(ready.status, 200, "round {round}: {}", ready.body);
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.url("/api/v1/logs/ingest?service=crash");
        let mut handles = Vec::new();
        for c in 0..CLIENTS {
            let (stop, acked, maybe, url) =
                (stop.clone(), acked.clone(), maybe.clone(), url.clone());
            let base = seq + (c as u64) * 1_000_000;
            handles.push(std::thread::spawn(move || {
                let agent = agent();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<String> = (0..BATCH).map(|i| format!("r{round}-c{c}-{}", base + n * BATCH as u64 + i as u64)).collect();
                    n += 1;
                    let body: String = ids
                        .iter()
                        .map(|id| format!("{{\"event\":\"tick\",\"request_id\":\"{id}\",\"level\":\"info\",\"pad\":\"{}\"}}\n", "p".repeat(64)))
                        .collect();
                    maybe.lock().unwrap().extend(ids.iter().cloned());
                    match agent.post(&url).header("content-type", "application/x-ndjson").send(body.as_bytes()) {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(ids),
                        Ok(r) if r.status() == 503 => std::thread::sleep(Duration::from_millis(20)),
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => break, // the server died under us
                    }
                }
            }));
        }
        seq += 10_000_000;
        std::thread::sleep(Duration::from_millis(rng.random_range(200..1200)));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
    }
    let mut server = Server::start(&data, cfg);
    assert_eq!(server.get_noauth("/health/ready").status, 200);
    let logs = server.logs("service=crash&limit=1000000");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in &logs {
        *seen
            .entry(l["request_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let acked = acked.lock().unwrap();
    let maybe = maybe.lock().unwrap();
    assert!(
        acked.len() > ROUNDS * CLIENTS * BATCH,
        "too little was acknowledged to prove anything: {}",
        acked.len()
    );
    let missing: Vec<_> = acked
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged lines missing, e.g. {missing:?}",
        acked.iter().filter(|id| !seen.contains_key(*id)).count()
    );
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "lines stored twice: {dups:?}");
    let unknown: Vec<_> = seen
        .keys()
        .filter(|id| !maybe.contains(*id))
        .take(5)
        .collect();
    assert!(unknown.is_empty(), "lines nobody sent: {unknown:?}");
    eprintln!(
        "crash test: {} acknowledged, {} stored, {} sent",
        acked.len(),
        seen.len(),
        maybe.len()
    );
    // And a clean stop after all that still exits 0 and reopens.
    assert!(server.sigterm().success());
    let server = Server::start(&data, cfg);
    assert_eq!(server.logs("service=crash&limit=1000000").len(), seen.len());
}
