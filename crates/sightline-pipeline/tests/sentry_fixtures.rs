//! Every item of every envelope sentry-sdk 2.75 sent in the recorded fixtures,
//! normalized into the rows the event store keeps (snapshots): events with
//! their grouping, title, culprit, tags and normalized body; transactions;
//! check-ins; client reports; Sentry logs as log records. Hostile variations
//! of the recorded events never panic.

use serde_json::{json, Value};
use sightline_pipeline::sentry::{event, items, ItemContext};
use sightline_pipeline::{Normalizer, ScrubConfig, Scrubber};
use sightline_protocol::envelope;
use std::io::Read;
use std::path::PathBuf;

const RECEIVED: i64 = 1_796_000_000_000_000_000;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/python-sdks")
}

fn recorded() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("sentry"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".envelope.gz"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let gz = std::fs::read(&p).unwrap();
            let mut body = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut body)
                .unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), body)
        })
        .collect()
}

fn ctx<'a>(header_id: Option<&'a str>) -> ItemContext<'a> {
    ItemContext {
        project_id: 42,
        received_ns: RECEIVED,
        envelope_event_id: header_id,
        fallback_event_id: "00000000000000000000000000000001",
        client_ip: Some("192.0.2.1"),
        keep_ip: false,
        max_item_bytes: 1 << 20,
    }
}

/// One envelope → what would be stored, as JSON.
fn normalize(body: &[u8], n: &Normalizer) -> Value {
    let env = envelope::parse(body).unwrap();
    let header_id = env.event_id().map(String::from);
    let c = ctx(header_id.as_deref());
    let mut out = Vec::new();
    for it in &env.items {
        let v = match it.kind.as_str() {
            "event" => {
                let (r, scrubbed) = event::normalize_event(it.payload, &c, &n.scrubber).unwrap();
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                json!({"event": r, "scrubbed": scrubbed, "body": body})
            }
            "transaction" => {
                let (r, _) = event::normalize_transaction(it.payload, &c, &n.scrubber).unwrap();
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                json!({"transaction": r, "spans": body["spans"].as_array().map_or(0, Vec::len)})
            }
            "check_in" => json!({"check_in": items::check_in(it.payload, &c).unwrap()}),
            "client_report" => {
                json!({"client_report": items::client_report(it.payload, &c).unwrap()})
            }
            "log" => {
                let recs = items::logs(it.payload, &c, "shop", n).unwrap();
                json!({"logs": recs.iter().map(|(r, _)| r.to_json()).collect::<Vec<_>>()})
            }
            other => json!({"skipped": other}),
        };
        out.push(v);
    }
    Value::Array(out)
}

#[test]
fn recorded_envelopes_normalize_as_snapshotted() {
    let n = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 256 * 1024);
    let all = recorded();
    assert_eq!(all.len(), 26);
    for (name, body) in &all {
        let v = normalize(body, &n);
        insta::assert_json_snapshot!(name.trim_end_matches(".envelope.gz"), v);
    }
}

#[test]
fn recorded_events_group_as_expected() {
    let n = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 256 * 1024);
    let mut groups = Vec::new();
    for (name, body) in recorded() {
        let env = envelope::parse(&body).unwrap();
        for it in env.items.iter().filter(|i| i.kind == "event") {
            let (r, _) = event::normalize_event(it.payload, &ctx(None), &n.scrubber).unwrap();
            groups.push((
                name.clone(),
                r.grouping_variant.clone(),
                r.title.clone(),
                r.request_id.clone(),
            ));
        }
    }
    let titles: Vec<&str> = groups.iter().map(|g| g.2.as_str()).collect();
    assert_eq!(
        titles,
        [
            "ValueError: score out of range for assessment a-2",
            "HTTPException: internal error",
            "RuntimeError: deadlock detected while clearing answers",
            "ZeroDivisionError: division by zero",
            "cache warmup slow"
        ]
    );
    assert_eq!(groups[0].1, "in-app-stacktrace");
    assert_eq!(groups[0].3.as_deref(), Some("req-fail-1"));
    assert_eq!(groups[4].1, "message");
}

/// Cut, flipped and re-typed versions of every recorded event: an error or a
/// row, never a panic; the body stays valid JSON.
#[test]
fn hostile_variations_never_panic() {
    let scrubber = Scrubber::new(&ScrubConfig::default());
    let mut rows = 0;
    for (_, body) in recorded() {
        let env = envelope::parse(&body).unwrap();
        for it in env
            .items
            .iter()
            .filter(|i| i.kind == "event" || i.kind == "transaction")
        {
            let p = it.payload;
            for cut in (0..p.len()).step_by(97) {
                let _ = event::normalize_event(&p[..cut], &ctx(None), &scrubber);
            }
            let mut v: Value = serde_json::from_slice(p).unwrap();
            for (k, bad) in [
                ("exception", json!("not an object")),
                (
                    "exception",
                    json!([{"type": 1, "value": {"x": 1}, "stacktrace": {"frames": "no"}}]),
                ),
                ("tags", json!([["a", 1], ["b"], 3])),
                ("timestamp", json!("yesterday")),
                ("timestamp", json!(-1e300)),
                ("user", json!(5)),
                ("breadcrumbs", json!([{"data": {"password": "x"}}])),
                ("fingerprint", json!(["{{ default }}", 1, null])),
                ("message", json!({"formatted": 5})),
                ("contexts", json!([1, 2])),
                ("level", json!(7)),
                ("event_id", json!("zz")),
            ] {
                v[k] = bad;
                let bytes = serde_json::to_vec(&v).unwrap();
                if let Ok((r, _)) = event::normalize_event(&bytes, &ctx(None), &scrubber) {
                    let _: Value = serde_json::from_slice(&r.body).unwrap();
                    assert_eq!(r.event_id.len(), 32);
                    rows += 1;
                }
            }
        }
    }
    assert!(rows > 100, "{rows}");
    for bad in [&b"[]"[..], b"null", b"\"x\"", b"{", b"\xff\xfe", b""] {
        let e = event::normalize_event(bad, &ctx(None), &scrubber).unwrap_err();
        assert!(e.0.contains("event"), "{e}");
    }
    let big = format!("{{\"message\":\"{}\"}}", "x".repeat(2 << 20));
    let e = event::normalize_event(big.as_bytes(), &ctx(None), &scrubber).unwrap_err();
    assert!(e.0.contains("over the limit"), "{e}");
}
