//! Hostile and broken input: each gets its documented status and reason, the
//! good lines of a batch are kept, and memory stays bounded.

use crate::support::*;
use serde_json::json;

#[test]
fn malformed_lines_are_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        "[limits]\nmax_reported_errors = 3\n",
    );
    let mut body = Vec::new();
    for i in 0..10_000 {
        match i {
            17 => body.extend_from_slice(b"{\"event\": \"broken\", \n"),
            18 => body.extend_from_slice(b"{\"event\": \"bad utf8 \xff\xfe\"}\n"),
            500 | 501 | 502 => body.extend_from_slice(b"{not json}\n"),
            _ => body.extend_from_slice(
                format!("{{\"event\":\"ok\",\"i\":{i},\"request_id\":\"req-{i}\"}}\n").as_bytes(),
            ),
        }
    }
    body.extend_from_slice(b"a plain line is fine\n");
    let r = s.ndjson("bad", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["accepted"], 9_996);
    assert_eq!(j["rejected"], 5);
    let errors = j["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "the error list is bounded");
    assert_eq!(errors[0]["line"], 18);
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1]["line"], 19);
    assert!(errors[1]["reason"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(errors[2]["line"], 501);
    assert_eq!(s.logs("request_id=req-16").len(), 1);
    assert_eq!(s.logs("request_id=req-19").len(), 1);
    assert_eq!(s.logs("request_id=req-503").len(), 1);

    // A batch with nothing good in it is a 400 with the same body shape.
    let r = s.ndjson("bad", b"{\"a\":\n{\"b\"\n");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["rejected"], 2);
    let m = s.get_noauth("/metrics").body;
    assert!(
        m.contains(
            "sightline_ingest_rejected_total{endpoint=\"ndjson\",reason=\"invalid_json\"} 6"
        ),
        "{m}"
    );
    assert!(
        m.contains(
            "sightline_ingest_rejected_total{endpoint=\"ndjson\",reason=\"invalid_utf8\"} 1"
        ),
        "{m}"
    );
}

#[test]
fn broken_bodies_get_their_status_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        "[limits]\nmax_body_bytes = 1048576\nmax_decompressed_bytes = 8388608\nmax_record_bytes = 4096\n",
    );
    let good = b"{\"event\":\"fine\",\"request_id\":\"good\"}\n".repeat(100);

    // gzip and zstd bodies work.
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-encoding", "gzip")],
        &gzip(&good),
    );
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(100)),
        "{}",
        r.body
    );
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-encoding", "zstd")],
        &zstd::encode_all(&good[..], 3).unwrap(),
    );
    assert_eq!(
        (r.status, r.json()["accepted"].as_u64()),
        (200, Some(100)),
        "{}",
        r.body
    );

    // Truncated gzip: 400, and nothing from it stored.
    let gz = gzip(&b"{\"event\":\"half\",\"request_id\":\"trunc\"}\n".repeat(1000));
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-encoding", "gzip")],
        &gz[..gz.len() / 2],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("truncated gzip"),
        "{}",
        r.body
    );
    assert_eq!(s.logs("request_id=trunc").len(), 0);

    // Gzip bomb: 1 GiB of zeros in ~1 MB. 413 with bounded memory.
    let bomb = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..1024 {
            e.write_all(&chunk).unwrap();
        }
        e.finish().unwrap()
    };
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("decompresses to more than"),
        "{}",
        r.body
    );

    // Too many lines in one request: 413 with the count.
    let many = "x\n".repeat(600_000);
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-encoding", "gzip")],
        &gzip(many.as_bytes()),
    );
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.json()["error"].as_str().unwrap().contains("600000 lines"),
        "{}",
        r.body
    );

    // Oversized body: 413.
    let big = vec![b'x'; 2 << 20];
    let r = s.ndjson("z", &big);
    assert_eq!(r.status, 413, "{}", r.body);

    // Unknown encoding: 415. A known encoding whose bytes are not that
    // encoding: 400 naming it. Wrong content type: 415.
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-encoding", "lz4")],
        &good,
    );
    assert_eq!(r.status, 415, "{}", r.body);
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-encoding", "br")],
        &good,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("brotli"), "{}", r.body);
    let r = s.post(
        "/api/v1/logs/ingest?service=z",
        &[("content-type", "application/x-protobuf")],
        &good,
    );
    assert_eq!(r.status, 415, "{}", r.body);
    let r = s.post("/v1/logs", &[("content-type", "text/plain")], &good);
    assert_eq!(r.status, 415, "{}", r.body);

    // OTLP garbage: 400 with a reason.
    let r = s.post(
        "/v1/logs",
        &[("content-type", "application/x-protobuf")],
        b"\x0a\xff\xff\xff\xff\x0f garbage",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalid OTLP protobuf"));
    let r = s.post(
        "/v1/logs",
        &[("content-type", "application/json")],
        b"{\"resourceLogs\": [{\"scopeLogs\": 7}]}",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let fixture_cut = fixture("otlp/19-logs.pb");
    let r = s.post(
        "/v1/logs",
        &[("content-type", "application/x-protobuf")],
        &fixture_cut[..fixture_cut.len() - 7],
    );
    assert_eq!(r.status, 400, "truncated protobuf: {}", r.body);

    // Oversized record: truncated and marked, not dropped.
    let huge =
        json!({"event": "big", "request_id": "huge", "blob": "y".repeat(100_000)}).to_string();
    let r = s.ndjson("z", huge.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let l = &s.logs("request_id=huge")[0];
    assert_eq!(l["truncated"], true);
    assert!(l.to_string().len() < 8192);

    // Deeply nested JSON is refused by the parser's recursion limit, not a stack overflow.
    let deep = format!("{}{}\n", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let r = s.ndjson("z", deep.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);

    // The good lines sent at the start are all there; the server is alive and bounded.
    assert_eq!(s.logs("request_id=good&limit=1000").len(), 200);
    let peak = s.peak_rss();
    assert!(peak < 256 << 20, "peak RSS {} MiB", peak >> 20);
}

#[test]
fn overload_answers_503_with_retry_after_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny memory budget for unflushed rows, flushed every second.
    let s = Server::start(
        &dir.path().join("data"),
        "[storage]\nmax_pending_bytes = 2048\nflush_interval_secs = 1\n",
    );
    let batch: String = (0..50)
        .map(|i| format!("{{\"event\":\"load\",\"request_id\":\"ov-{i}\"}}\n"))
        .collect();
    assert_eq!(
        s.ndjson("ov", batch.as_bytes()).status,
        200,
        "the first batch always fits"
    );
    let r = s.ndjson("ov", batch.as_bytes());
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["error"].as_str().unwrap().contains("retry later"));
    // Once the head is flushed to a part, ingest is accepted again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = s.ndjson("ov", b"{\"event\":\"after\",\"request_id\":\"ov-after\"}\n");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(
            std::time::Instant::now() < deadline,
            "ingest never recovered"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(s.logs("request_id=ov-after").len(), 1);
    let m = s.get_noauth("/metrics").body;
    assert!(
        m.contains("sightline_ingest_rejected_total{endpoint=\"ndjson\",reason=\"overloaded\"}"),
        "{m}"
    );
}
