//! Log search, facets, live tail, request timeline and flows over HTTP, on
//! the real fixture, from the head and (after a restart) from parts.

use crate::support::{fixture, urlenc, Server, TOKEN};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

fn search(s: &Server, q: &str, extra: &str) -> Value {
    let r = s.get(&format!("/api/v1/logs?q={}{extra}", urlenc(q)));
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    r.json()
}

fn fixture_lines() -> Vec<Value> {
    let raw = fixture("structlog/app-stdout.log");
    String::from_utf8(raw)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

fn check_views(s: &Server) {
    let lines = fixture_lines();
    let total = lines.len() as u64;
    // Warnings and worse, only.
    let warn = search(s, "level:>=warning", "");
    let logs = warn["logs"].as_array().unwrap();
    let want = lines
        .iter()
        .filter(|l| matches!(l["level"].as_str(), Some("warning" | "error")))
        .count();
    assert_eq!(logs.len(), want);
    assert!(logs
        .iter()
        .all(|l| matches!(l["level"].as_str(), Some("warning" | "error"))));
    assert!(warn["took_ms"].as_f64().is_some());

    // Counting by level adds up to every stored line.
    let series = search(s, "* | count by (level)", "");
    let sum: u64 = series["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["value"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total);

    // Field terms, nested fields, words, negation.
    let r = search(s, "reason:invalid_question", "");
    assert_eq!(r["logs"][0]["message"], "save_answer_skipped");
    let r = search(s, "\"score out of range\" -level:info", "");
    assert!(!r["logs"].as_array().unwrap().is_empty());
    assert!(r["logs"].as_array().unwrap().iter().all(|l| l["exception"]
        .as_str()
        .unwrap_or("")
        .contains("score out of range")
        || l["fields"].to_string().contains("score out of range")
        || l["message"]
            .as_str()
            .unwrap()
            .contains("score out of range")));

    // `| fields` keeps the timestamp and the named fields (typed or not).
    let r = search(s, "request_id:req-retake-fail | fields event, step", "");
    let logs = r["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 4);
    for l in logs {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["timestamp", "event", "step"], "{l}");
    }
    let steps: Vec<&serde_json::Value> = logs.iter().map(|l| &l["step"]).collect();
    assert_eq!(
        steps,
        [
            &serde_json::Value::Null,
            &serde_json::json!("clear_answers"),
            &serde_json::json!("load_completed"),
            &serde_json::Value::Null
        ]
    );

    // Pages walk every row once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    for _ in 0..20 {
        let r = search(s, "*", &format!("&limit=7&cursor={}", urlenc(&cursor)));
        for l in r["logs"].as_array().unwrap() {
            assert!(seen.insert(l.to_string()), "row returned twice");
        }
        match r["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total);

    // Facets.
    let f = s.get("/api/v1/logs/fields?q=service:assessments");
    assert_eq!(f.status, 200, "{}", f.body);
    let f = f.json();
    let level = f["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "level")
        .expect("level facet");
    assert_eq!(level["count"].as_u64(), Some(total));

    // One request, oldest first.
    let r = s.get("/api/v1/requests/req-retake-fail");
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    let events: Vec<&str> = t["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "retake_flow_started",
            "retake_flow_step",
            "retake_flow_step",
            "retake_flow_failed"
        ]
    );
    assert_eq!(t["services"], serde_json::json!(["assessments"]));
    assert_eq!(t["levels"]["error"], 1);
    assert_eq!(t["first_seen"], "2026-11-25T16:43:06.722982000Z");
    assert_eq!(s.get("/api/v1/requests/no-such-request").status, 404);

    // Flows.
    let f = s.get("/api/v1/flows/retake-17af0953").json();
    assert_eq!(f["status"], "failed");
    assert_eq!(f["name"], "retake_flow");
    assert_eq!(f["failed_at_step"], "clear_answers");
    assert_eq!(f["error"], "deadlock detected while clearing answers");
    assert_eq!(f["steps"].as_array().unwrap().len(), 2);
    let f = s.get("/api/v1/flows/retake-758357ec").json();
    assert_eq!(f["status"], "completed");
    assert_eq!(f["steps"].as_array().unwrap().len(), 3);
    let list = s
        .get("/api/v1/flows?name=retake_flow&status=failed&start=2026-11-25T00:00:00Z")
        .json();
    let ids: Vec<&str> = list["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flow_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["retake-17af0953"]);
    let st = s
        .get("/api/v1/flows/stats?name=retake_flow&start=2026-11-25T00:00:00Z")
        .json();
    assert_eq!(st["total"], 2);
    assert_eq!(st["by_status"]["failed"], 1);
    assert_eq!(st["by_status"]["completed"], 1);
    assert_eq!(st["stopped_at_step"]["clear_answers"], 1);
    assert_eq!(st["by_name"]["retake_flow"]["failed"], 1);
    assert_eq!(st["by_name"]["retake_flow"]["completed"], 1);
    assert_eq!(st["by_name"].as_object().unwrap().len(), 1);
    // The default window is the last 24 h: the fixture's flows are older.
    assert_eq!(s.get("/api/v1/flows/stats").json()["total"], 0);
}

#[test]
fn search_and_views_from_head_and_parts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, "");
    let r = s.ndjson("assessments", &fixture("structlog/app-stdout.log"));
    assert_eq!(r.status, 200, "{}", r.body);
    check_views(&s);
    // A clean stop writes the head to parts: the same answers from Parquet.
    assert!(s.sigterm().success());
    let s = Server::start(&data, "");
    assert!(!crate::support::files_under(&data.join("parts")).is_empty());
    check_views(&s);
    let r = search(&s, "request_id:req-retake-fail", "");
    assert_eq!(r["stats"]["head_rows"], 0, "read from parts");
    assert_eq!(r["logs"].as_array().unwrap().len(), 4);
}

#[test]
fn bad_queries_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "[query]\nmax_groups = 5\n");
    s.ndjson("assessments", &fixture("structlog/app-stdout.log"));
    let err = |q: &str, extra: &str, status: u16| -> Value {
        let r = s.get(&format!("/api/v1/logs?q={}{extra}", urlenc(q)));
        assert_eq!(r.status, status, "{q}: {}", r.body);
        r.json()
    };
    let e = err("service:api (level:error", "", 400);
    assert_eq!(e["column"], 25);
    assert!(e["error"].as_str().unwrap().contains("expected ')'"));
    let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = err(&deep, "", 400);
    assert!(e["error"].as_str().unwrap().contains("nested too deeply"));
    err("*", "&limit=100000000", 400);
    err("*", "&start=yesterday", 400);
    err("*", "&cursor=garbage", 400);
    err("*", "&cursor=1.18446744073709551615", 400);
    let e = err("* | count by (_time:1ms, request_id)", "", 422);
    assert!(e["error"].as_str().unwrap().contains("more than 5 groups"));
    assert_eq!(s.get("/api/v1/flows?status=sideways").status, 400);
    // Read APIs need the token.
    for p in [
        "/api/v1/logs?q=*",
        "/api/v1/logs/fields",
        "/api/v1/logs/tail",
        "/api/v1/requests/x",
        "/api/v1/flows",
        "/api/v1/flows/x",
        "/api/v1/flows/stats",
    ] {
        assert_eq!(s.get_noauth(p).status, 401, "{p}");
    }
    // A relative range that excludes the fixture's 2026-11-25 rows.
    let r = search(&s, "*", "&start=-1m");
    assert!(
        r["logs"].as_array().unwrap().is_empty() || {
            // Rows whose timestamps are receive times (plain lines) are recent.
            r["logs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["fields"] == serde_json::json!({}))
        }
    );
}

#[test]
fn tail_streams_new_matching_lines() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut resp = agent
        .get(s.url("/api/v1/logs/tail?q=level%3A%3E%3Dwarning"))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let reader = BufReader::new(resp.body_mut().as_reader());
    let url = s.url("/api/v1/logs/ingest?service=tailtest");
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let a = crate::support::agent();
        let body =
            "{\"event\":\"quiet\",\"level\":\"info\"}\n{\"event\":\"loud\",\"level\":\"error\"}\n";
        a.post(&url).send(body.as_bytes()).unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("data:") {
            let v: Value = serde_json::from_str(d.trim()).unwrap();
            got.push(v["message"].as_str().unwrap().to_string());
            break;
        }
        assert!(Instant::now() < deadline, "no tail event");
    }
    sender.join().unwrap();
    assert_eq!(got, ["loud"]);
}

#[test]
fn cli_logs_follow_prints_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let mut child = std::process::Command::new(crate::support::bin())
        .args(["logs", "level:error", "--since", "1h", "-f"])
        .env("SIGHTLINE_URL", s.url(""))
        .env("SIGHTLINE_API_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let url = s.url("/api/v1/logs/ingest?service=cli");
    let sender = std::thread::spawn(move || {
        let a = crate::support::agent();
        // Until the follower is attached, lines may be missed: keep sending.
        for i in 0..40 {
            let body = format!(
                "{{\"event\":\"quiet-{i}\",\"level\":\"info\"}}\n{{\"event\":\"boom-{i}\",\"level\":\"error\",\"request_id\":\"r-{i}\"}}\n"
            );
            a.post(&url).send(body.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let mut lines = BufReader::new(out).lines();
    let first = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    sender.join().unwrap();
    assert!(
        first.contains("ERROR") && first.contains("boom-"),
        "{first}"
    );
    assert!(
        first.contains("service") || first.contains("cli"),
        "{first}"
    );
    assert!(!first.contains("quiet"), "{first}");
}
