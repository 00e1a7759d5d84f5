//! The happy paths: recorded structlog and OTLP payloads in, the same records out.

use crate::support::*;
use serde_json::json;

#[test]
fn structlog_fixture_roundtrip_and_self_observability() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let r = s.post(
        "/api/v1/logs/ingest?service=assessments",
        &[
            ("content-type", "application/x-ndjson"),
            ("x-request-id", "my-req-1"),
        ],
        &fixture("structlog/app-stdout.log"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"accepted": 31, "rejected": 0, "errors": []})
    );
    assert_eq!(
        r.header("x-request-id"),
        Some("my-req-1"),
        "incoming request id is echoed"
    );

    // One request id, oldest last (newest first), typed fields and the rest kept.
    let logs = s.logs("request_id=req-retake-fail");
    let events: Vec<_> = logs
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "retake_flow_failed",
            "retake_flow_step",
            "retake_flow_step",
            "retake_flow_started"
        ]
    );
    assert_eq!(logs[0]["level"], "error");
    assert_eq!(logs[0]["flow_id"], "retake-17af0953");
    assert_eq!(logs[0]["fields"]["error_type"], "RuntimeError");
    assert_eq!(logs[1]["fields"]["step"], "clear_answers");
    assert_eq!(logs[0]["service"], "assessments");

    // Filters: level, service, time range, limit.
    assert_eq!(s.logs("level=error").len(), 2);
    assert_eq!(s.logs("level=%3E%3Dwarning").len(), 5);
    assert_eq!(s.logs("service=nope").len(), 0);
    assert_eq!(s.logs("limit=3").len(), 3);
    // Lines before .634: three structlog lines (plain lines carry their receive time).
    assert_eq!(
        s.logs("end=2026-11-25T16:43:06.634Z&service=assessments")
            .len(),
        3
    );
    let exc = &s.logs("request_id=req-fail-1&level=error")[0];
    assert!(exc["exception"]
        .as_str()
        .unwrap()
        .contains("ValueError: score out of range"));

    // Plain-text uvicorn lines are kept as messages with their level.
    let plain: Vec<_> = s
        .logs("service=assessments&limit=100")
        .into_iter()
        .filter(|l| l["message"].as_str().unwrap().starts_with("INFO:"))
        .collect();
    assert_eq!(plain.len(), 13);

    // Read APIs need the token.
    assert_eq!(s.get_noauth("/api/v1/logs").status, 401);
    let bad = s.agent_get_with_token("/api/v1/logs", "wrong");
    assert_eq!(bad, 401);
    assert_eq!(s.get("/api/v1/logs?level=loud").status, 400);
    assert_eq!(s.get("/api/v1/logs?start=yesterday").status, 400);

    // Still there after a flush to parts (restart flushes).
    let mut s = s;
    assert!(s.sigterm().success());
    let s = Server::start(&dir.path().join("data"), "");
    assert_eq!(s.logs("request_id=req-retake-fail").len(), 4);
    assert_eq!(s.logs("limit=1000").len(), 31);

    let m = s.get_noauth("/metrics");
    assert_eq!(m.status, 200);
    for series in [
        "sightline_wal_fsync_duration_seconds_bucket",
        "sightline_parts ",
        "sightline_query_duration_seconds_bucket",
        "sightline_http_requests_total{method=\"GET\",route=\"/api/v1/logs\",status=\"200\"}",
        "process_resident_memory_bytes",
    ] {
        assert!(
            m.body.contains(series),
            "missing {series} in /metrics:\n{}",
            m.body
        );
    }
}

#[test]
fn otlp_protobuf_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let r = s.post(
        "/v1/logs",
        &[("content-type", "application/x-protobuf")],
        &fixture("otlp/19-logs.pb"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    let logs = s.logs("service=worker");
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["message"], "job_failed");
    assert!(logs[0]["exception"]
        .as_str()
        .unwrap()
        .contains("ZeroDivisionError"));
    assert_eq!(logs[1]["request_id"], "req-job-1");
    assert_eq!(s.logs("trace_id=eeaf4ae00b9a2dfe8989bc02cbe11a90").len(), 2);

    let body = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeLogs": [{"scope": {"name": "app.log"}, "logRecords": [{"timeUnixNano": "1795625015562317056", "severityNumber": 13,
        "body": {"stringValue": "disk almost full"}, "attributes": [{"key": "request_id", "value": {"stringValue": "req-json"}},
        {"key": "password", "value": {"stringValue": "hunter2"}}]}]}]}]});
    let r = s.post(
        "/v1/logs",
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let l = &s.logs("request_id=req-json")[0];
    assert_eq!(
        (
            l["service"].as_str(),
            l["level"].as_str(),
            l["logger"].as_str()
        ),
        (Some("json-svc"), Some("warning"), Some("app.log"))
    );
    assert_eq!(l["fields"]["password"], "[REDACTED]");
}

#[test]
fn secrets_never_reach_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, "");
    let lines = [
        json!({"event": "login", "password": "hunter2-pw-secret", "request_id": "r1"}),
        json!({"event": "call", "headers": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.tokentoken"}, "request_id": "r2"}),
        json!({"event": "db connect postgres://app:dbpass-9f8e7d@db:5432/x failed", "request_id": "r3"}),
        json!({"event": "charge", "note": "card 4111 1111 1111 1111 declined", "request_id": "r4"}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect::<String>()
        + "login retry with api_key=sk_live_abcdef123456\n";
    let r = s.ndjson("auth", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let secrets = [
        "hunter2-pw-secret",
        "eyJhbGciOiJIUzI1NiJ9",
        "dbpass-9f8e7d",
        "4111 1111 1111 1111",
        "sk_live_abcdef123456",
    ];
    let m = s.get_noauth("/metrics").body;
    let scrubbed: u64 = m
        .lines()
        .find(|l| l.starts_with("sightline_scrubbed_values_total{endpoint=\"ndjson\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(scrubbed >= 5, "scrubbed values are counted: {scrubbed}");
    // Crash first: the rows live only in the WAL (LZ4 frames, decoded by the search).
    s.kill9();
    for secret in secrets {
        assert_eq!(
            data_dir_contains(&data, secret),
            Vec::<String>::new(),
            "{secret} reached the disk"
        );
    }
    let mut s = Server::start(&data, "");
    assert_eq!(s.logs("service=auth").len(), 5);
    assert!(s.sigterm().success());
    assert!(files_under(&data)
        .iter()
        .any(|f| f.extension().is_some_and(|e| e == "parquet")));
    for secret in secrets {
        assert_eq!(
            data_dir_contains(&data, secret),
            Vec::<String>::new(),
            "{secret} reached the disk"
        );
    }
    let s = Server::start(&data, "");
    let m = s.get_noauth("/metrics").body;
    assert!(
        m.contains("sightline_wal_replayed_records_total 0"),
        "a clean stop leaves nothing to replay"
    );
    drop(s);
}
