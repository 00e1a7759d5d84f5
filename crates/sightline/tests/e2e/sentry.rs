//! Sentry-compatible ingest through the real binary: every recorded sentry-sdk
//! envelope stored (and still there after a restart and a `kill -9`), grouping
//! and regression over HTTP, auth, CORS, encodings, limits, rate limits, the
//! bad-input matrix, and no acknowledged event lost under `kill -9`.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const OTHER_KEY: &str = "fedcba9876543210fedcba9876543210";
const PROJECTS: &str =
    "[[projects]]\nname = \"shop\"\nid = 42\nkeys = [\"0123456789abcdef0123456789abcdef\"]\n\
    [[projects]]\nname = \"other\"\nid = 43\nkeys = [\"fedcba9876543210fedcba9876543210\"]\n";

fn auth() -> String {
    format!("Sentry sentry_key={KEY}, sentry_version=7, sentry_client=sentry.python/2.75.0")
}

fn envelope(s: &Server, body: &[u8], extra: &[(&str, &str)]) -> Reply {
    let a = auth();
    let mut h = vec![
        ("x-sentry-auth", a.as_str()),
        ("content-type", "application/x-sentry-envelope"),
    ];
    h.extend_from_slice(extra);
    s.post("/api/42/envelope/", &h, body)
}

fn event_envelope(id: &str, event: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(event).unwrap();
    let mut b = format!(
        "{{\"event_id\":\"{id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n",
        payload.len()
    )
    .into_bytes();
    b.extend_from_slice(&payload);
    b.push(b'\n');
    b
}

fn new_id() -> String {
    (0..32)
        .map(|_| format!("{:x}", rand::random::<u8>() % 16))
        .collect()
}

fn error_event(ty: &str, value: &str, function: &str) -> Value {
    json!({
        "level": "error",
        "platform": "python",
        "release": "shop@1.0.0",
        "environment": "test",
        "exception": {"values": [{"type": ty, "value": value, "mechanism": {"type": "generic", "handled": true},
            "stacktrace": {"frames": [
                {"module": "starlette.routing", "function": "handle", "lineno": 10, "in_app": false},
                {"module": "shop.views", "function": function, "lineno": 42, "in_app": true,
                 "vars": {"password": "hunter2", "order": "o-1"}}]}}]},
        "tags": {"request_id": "req-grouping"},
        "user": {"id": "u-1", "ip_address": "10.1.2.3"},
    })
}

fn issues(s: &Server, q: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/v1/issues?{q}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["issues"].as_array().unwrap().clone()
}

fn metric(s: &Server, line_prefix: &str) -> u64 {
    let m = s.get_noauth("/metrics").body;
    m.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every recorded envelope is accepted as sent (gzip, X-Sentry-Auth), and what
/// it holds is stored: issues, transactions, check-ins, logs, client reports —
/// the same after a clean restart and after `kill -9`.
#[test]
fn recorded_envelopes_are_stored_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, PROJECTS);
    let requests: Value = serde_json::from_slice(&fixture("requests.json")).unwrap();
    let mut n = 0;
    for r in requests.as_array().unwrap() {
        let file = r["file"].as_str().unwrap();
        if !file.starts_with("sentry/") {
            continue;
        }
        n += 1;
        let body = fixture(file);
        let h = &r["headers"];
        let reply = s.post(
            r["path"].as_str().unwrap(),
            &[
                ("x-sentry-auth", h["X-Sentry-Auth"].as_str().unwrap()),
                ("content-encoding", h["Content-Encoding"].as_str().unwrap()),
                ("content-type", h["Content-Type"].as_str().unwrap()),
            ],
            &body,
        );
        assert_eq!(reply.status, 200, "{file}: {}", reply.body);
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        let id = reply.json()["id"].clone();
        if r["item_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "event")
        {
            assert!(id.as_str().is_some_and(|i| i.len() == 32), "{file}: {id}");
        }
    }
    assert_eq!(n, 26);
    let check = |s: &Server, when: &str| {
        let all = issues(s, "project=shop");
        let titles: Vec<&str> = all.iter().map(|i| i["title"].as_str().unwrap()).collect();
        assert_eq!(all.len(), 5, "{when}: {titles:?}");
        for t in [
            "ValueError: score out of range for assessment a-2",
            "ZeroDivisionError: division by zero",
            "HTTPException: internal error",
            "RuntimeError: deadlock detected while clearing answers",
            "cache warmup slow",
        ] {
            assert!(titles.contains(&t), "{when}: {t} not in {titles:?}");
        }
        let ve = all.iter().find(|i| i["type"] == "ValueError").unwrap();
        assert_eq!(ve["count"], 1);
        assert_eq!(ve["users"], 1);
        assert_eq!(ve["culprit"], "/assessments/{assessment_id}/submit");
        assert_eq!(ve["environments"], json!(["staging"]));
        let detail = s
            .get(&format!("/api/v1/issues/{}", ve["id"].as_str().unwrap()))
            .json();
        let ev = &detail["latest_event"];
        assert_eq!(ev["event_id"], "cb892e6629714493a993c2b8b32f8970");
        assert_eq!(
            ev["contexts"]["trace"]["trace_id"],
            "abc7ec4738af4485a96d93b1aee59de1"
        );
        assert_eq!(ev["user"], json!({"id": "u-8"}));
        assert_eq!(ev["links"]["request"], "/api/v1/requests/req-fail-1");
        let frame = &ev["exception"]["values"][0]["stacktrace"]["frames"][0];
        assert_eq!(frame["in_app"], true);
        assert_eq!(
            frame["context_line"],
            "            raise ValueError(f\"score out of range for assessment {assessment_id}\")"
        );
        assert_eq!(detail["grouping"]["variant"], "in-app-stacktrace");
        let tag = |k: &str| {
            detail["tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["key"] == k)
                .cloned()
        };
        assert_eq!(
            tag("request_id").unwrap()["values"][0]["value"],
            "req-fail-1"
        );
        assert_eq!(tag("user").unwrap()["values"][0]["value"], "id:u-8");
        // The request view joins the error to its request id.
        let req = s.get("/api/v1/requests/req-fail-1").json();
        let errs: Vec<&str> = req["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["title"].as_str().unwrap())
            .collect();
        assert!(
            errs.contains(&"ValueError: score out of range for assessment a-2"),
            "{when}: {errs:?}"
        );
        // Cron monitor: in_progress then ok under one check_in_id → one run, ok.
        let mons = s.get("/api/v1/monitors").json();
        let m = &mons["monitors"][0];
        assert_eq!(m["slug"], "nightly-report", "{when}: {mons}");
        assert_eq!(m["last_status"], "ok");
        assert_eq!(m["history"].as_array().unwrap().len(), 1);
        assert_eq!(m["history"][0]["duration"], 1.5);
        // Sentry logs are in the log store, attributes flattened, trace id kept.
        let logs = s.logs("q=service:worker%20Payment");
        assert_eq!(logs.len(), 1, "{when}: {logs:?}");
        assert_eq!(logs[0]["trace_id"], "ee5eff68a96449f8aee0743f4ef02098");
        assert_eq!(
            logs[0]["fields"]["sentry.message.parameter.order_id"],
            "o-17"
        );
        // Client report counted.
        assert!(
            metric(s, "sightline_sentry_client_discarded_events_total{") > 0,
            "{when}"
        );
    };
    check(&s, "after ingest");
    s.sigterm();
    let mut s = Server::start(&data, PROJECTS);
    check(&s, "after restart");
    s.kill9();
    let s = Server::start(&data, PROJECTS);
    check(&s, "after kill -9");
}

/// Same error twice → one issue (count 2, numbers in the value masked);
/// another function → another issue; a custom fingerprint groups different
/// errors; resolve then a new event → unresolved + regressed; the same
/// event id twice is stored once; server-side scrubbing applies.
#[test]
fn grouping_regression_and_scrubbing_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), PROJECTS);
    let send = |ev: &Value| {
        let id = new_id();
        let r = envelope(&s, &event_envelope(&id, ev), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["id"], id.as_str());
        id
    };
    let first = send(&error_event("ValueError", "order 17 failed", "checkout"));
    send(&error_event("ValueError", "order 18 failed", "checkout"));
    let other = send(&error_event("ValueError", "order 17 failed", "refund"));
    let mut fp = error_event("KeyError", "a", "one");
    fp["fingerprint"] = json!(["payments-down"]);
    send(&fp);
    let mut fp2 = error_event("TypeError", "b", "two");
    fp2["fingerprint"] = json!(["payments-down"]);
    send(&fp2);
    // Duplicate event id: stored once.
    let dup = envelope(
        &s,
        &event_envelope(
            &first,
            &error_event("ValueError", "order 17 failed", "checkout"),
        ),
        &[],
    );
    assert_eq!(dup.status, 200);

    let mut all = issues(&s, "sort=count");
    assert_eq!(all.len(), 3, "{all:?}");
    // The two ValueError issues both carry the first event's title; the one
    // from `checkout` has both of its events.
    let main = all
        .iter()
        .position(|i| i["title"] == "ValueError: order 17 failed" && i["count"] == 2);
    all.swap(0, main.expect("checkout issue with count 2"));
    assert_eq!(all[0]["users"], 1);
    let fp_issue = all
        .iter()
        .find(|i| i["grouping"]["variant"] == "fingerprint")
        .unwrap();
    assert_eq!(fp_issue["count"], 2);
    let ev = s.get(&format!("/api/v1/events/{first}")).json();
    let vars = &ev["exception"]["values"][0]["stacktrace"]["frames"][1]["vars"];
    assert_eq!(vars["password"], "[REDACTED]");
    assert_eq!(vars["order"], "o-1");
    assert!(ev["user"].get("ip_address").is_none(), "{}", ev["user"]);
    assert_eq!(ev["issue_id"], all[0]["id"]);
    let o = s.get(&format!("/api/v1/events/{other}")).json();
    assert_ne!(o["issue_id"], ev["issue_id"]);
    let evs = s
        .get(&format!(
            "/api/v1/issues/{}/events",
            all[0]["id"].as_str().unwrap()
        ))
        .json();
    assert_eq!(evs["events"].as_array().unwrap().len(), 2);

    // Resolve, then the same error again: reopened and marked regressed.
    let id = all[0]["id"].as_str().unwrap();
    let r = s.put_json(&format!("/api/v1/issues/{id}"), r#"{"status":"resolved"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "resolved");
    assert_eq!(issues(&s, "status=resolved").len(), 1);
    send(&error_event("ValueError", "order 99 failed", "checkout"));
    let i = s.get(&format!("/api/v1/issues/{id}")).json();
    assert_eq!(i["status"], "unresolved");
    assert_eq!(i["substatus"], "regressed");
    assert_eq!(i["count"], 3);
    // Ignored stays ignored.
    let fid = fp_issue["id"].as_str().unwrap();
    assert_eq!(
        s.put_json(&format!("/api/v1/issues/{fid}"), r#"{"status":"ignored"}"#)
            .status,
        200
    );
    send(&fp);
    assert_eq!(
        s.get(&format!("/api/v1/issues/{fid}")).json()["status"],
        "ignored"
    );
    // Bad status / unknown issue / bad sort.
    assert_eq!(
        s.put_json(&format!("/api/v1/issues/{id}"), r#"{"status":"gone"}"#)
            .status,
        400
    );
    assert_eq!(
        s.put_json("/api/v1/issues/999999", r#"{"status":"resolved"}"#)
            .status,
        404
    );
    assert_eq!(s.get("/api/v1/issues?sort=size").status, 400);
    assert_eq!(s.get("/api/v1/events/nothex").status, 400);
    assert_eq!(s.get(&format!("/api/v1/events/{}", new_id())).status, 404);
    // The read APIs need the token.
    assert_eq!(s.get_noauth("/api/v1/issues").status, 401);
    assert_eq!(s.get_noauth(&format!("/api/v1/events/{first}")).status, 401);
    // q filters on the title.
    assert_eq!(issues(&s, "q=order").len(), 2);
    assert_eq!(issues(&s, "q=keyerror").len(), 1);

    // The CLI: the list, and one issue with its in-app frame marked.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .env("SIGHTLINE_URL", s.url(""))
            .env("SIGHTLINE_API_TOKEN", TOKEN)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let list = cli(&["issues", "--status", "all"]);
    assert!(
        list.contains("ValueError: order 17 failed") && list.contains("regressed"),
        "{list}"
    );
    let one = cli(&["issue", id]);
    assert!(one.contains("▶ shop.views in checkout line 42"), "{one}");
    assert!(one.contains("password = [REDACTED]"), "{one}");
    assert!(
        one.contains("request_id") && one.contains("req-grouping"),
        "{one}"
    );
    let json: Value = serde_json::from_str(&cli(&["issue", id, "--json"])).unwrap();
    assert_eq!(json["id"], id);
}

/// Auth in every form the SDKs use, CORS preflight, path prefixes, the store
/// endpoint, and every Content-Encoding.
#[test]
fn auth_cors_prefixes_and_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), PROJECTS);
    let body = event_envelope(&new_id(), &json!({"message": "hello"}));
    let ct = ("content-type", "application/x-sentry-envelope");
    // Authorization: Sentry …, ?sentry_key=, and the envelope header's dsn.
    let a = format!("Sentry sentry_key={KEY}");
    assert_eq!(
        s.post("/api/42/envelope/", &[("authorization", &a), ct], &body)
            .status,
        200
    );
    assert_eq!(
        s.post(
            &format!("/api/42/envelope/?sentry_key={KEY}&sentry_version=7"),
            &[ct],
            &body
        )
        .status,
        200
    );
    let with_dsn = format!(
        "{{\"event_id\":\"{}\",\"dsn\":\"http://{KEY}@localhost/42\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"dsn auth\"}}\n",
        new_id()
    );
    assert_eq!(
        s.post("/api/42/envelope/", &[ct], with_dsn.as_bytes())
            .status,
        200
    );
    // Missing, unknown, and another project's key.
    let r = s.post("/api/42/envelope/", &[ct], &body);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.json()["detail"].as_str().unwrap().contains("sentry_key"));
    let r = s.post(
        "/api/42/envelope/",
        &[
            (
                "x-sentry-auth",
                "Sentry sentry_key=00000000000000000000000000000000",
            ),
            ct,
        ],
        &body,
    );
    assert_eq!(r.status, 401);
    let r = s.post(
        "/api/42/envelope/",
        &[
            ("x-sentry-auth", &format!("Sentry sentry_key={OTHER_KEY}")),
            ct,
        ],
        &body,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.json()["detail"].as_str().unwrap().contains("project 43"));
    // Path prefix and no trailing slash; non-numeric project id.
    assert_eq!(
        envelope_at(&s, "/sentry/api/42/envelope/", &body).status,
        200
    );
    assert_eq!(envelope_at(&s, "/api/42/envelope", &body).status, 200);
    assert_eq!(envelope_at(&s, "/api/shop/envelope/", &body).status, 400);
    // CORS preflight.
    let r = agent()
        .run(
            ureq::http::Request::builder()
                .method("OPTIONS")
                .uri(s.url("/api/42/envelope/"))
                .header("origin", "http://app.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "x-sentry-auth, content-type",
                )
                .body(())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("x-sentry-auth"));
    // /store/ with a bare event (and a transaction).
    let id = new_id();
    let r = s.post(
        "/api/42/store/",
        &[
            ("x-sentry-auth", &auth()),
            ("content-type", "application/json"),
        ],
        json!({"event_id": id, "message": "from store", "level": "warning"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["id"], id.as_str());
    assert_eq!(
        s.get(&format!("/api/v1/events/{id}")).json()["level"],
        "warning"
    );
    let r = s.post(
        "/api/42/store/",
        &[("x-sentry-auth", &auth())],
        b"eJzLSM3JyVcozy/KSQEAGgQEXQ==",
    );
    assert_eq!(r.status, 400);
    // Encodings: gzip, deflate (zlib), br, identity, and the ignored values.
    let gz = gzip(&body);
    assert_eq!(
        envelope(&s, &gz, &[("content-encoding", "gzip")]).status,
        200
    );
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &body).unwrap();
    assert_eq!(
        envelope(&s, &z.finish().unwrap(), &[("content-encoding", "deflate")]).status,
        200
    );
    let br = fixture("../hostile/message.envelope.br");
    let r = envelope(&s, &br, &[("content-encoding", "br")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["id"], "9ec79c33ec9942ab8353589fcb2e04dc");
    assert_eq!(
        envelope(&s, &body, &[("content-encoding", "identity")]).status,
        200
    );
    assert_eq!(
        envelope(&s, &body, &[("content-encoding", "UTF-8")]).status,
        200
    );
    assert_eq!(envelope(&s, &body, &[("content-encoding", "")]).status, 200);
    assert_eq!(
        envelope(&s, &body, &[("content-encoding", "lzma")]).status,
        415
    );
}

fn envelope_at(s: &Server, path: &str, body: &[u8]) -> Reply {
    s.post(
        path,
        &[
            ("x-sentry-auth", &auth()),
            ("content-type", "application/x-sentry-envelope"),
        ],
        body,
    )
}

/// The bad-input matrix: every answer documented in the README, memory
/// bounded, the valid items of a partly bad envelope stored.
#[test]
fn bad_envelopes_get_clear_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), PROJECTS);
    let detail = |r: &Reply| r.json()["detail"].as_str().unwrap_or("").to_string();
    let good = event_envelope(&new_id(), &error_event("ValueError", "x", "f"));

    // Truncated inside an item with a length: 400, nothing stored.
    let r = envelope(&s, &good[..good.len() - 20], &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(detail(&r).contains("item 1"), "{}", r.body);
    // Wrong length (longer than the payload).
    let wrong = b"{}\n{\"type\":\"event\",\"length\":500}\n{\"message\":\"short\"}\n";
    let r = envelope(&s, wrong, &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    // Invalid envelope header.
    assert_eq!(
        envelope(&s, b"not json\n{\"type\":\"event\"}\n{}\n", &[]).status,
        400
    );
    // Only item is invalid JSON: 400 naming it.
    let r = envelope(&s, b"{}\n{\"type\":\"event\"}\n{\"message\": nope}\n", &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        detail(&r).contains("item 1 (event)") && detail(&r).contains("not valid JSON"),
        "{}",
        r.body
    );
    // A partly bad envelope: the bad event dropped (listed), the check-in and
    // an unknown item type accepted, 200 like Sentry.
    let mixed = b"{}\n{\"type\":\"event\"}\n{oops}\n{\"type\":\"check_in\"}\n{\"check_in_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"monitor_slug\":\"mixed-job\",\"status\":\"error\"}\n{\"type\":\"whatever_new\",\"length\":3}\nabc\n{\"type\":\"attachment\",\"length\":4,\"filename\":\"a.bin\"}\n\x00\x01\x02\xff\n";
    let r = envelope(&s, mixed, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let dropped = r.json()["dropped"].clone();
    assert_eq!(dropped[0]["item"], 1, "{dropped}");
    let mons = s.get("/api/v1/monitors").json();
    let m = mons["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["slug"] == "mixed-job")
        .cloned();
    assert_eq!(
        m.expect("check-in of a partly bad envelope stored")["status"],
        "error"
    );
    assert!(
        metric(
            &s,
            "sightline_sentry_items_total{type=\"other\",outcome=\"skipped\"}"
        ) >= 1
    );
    // Bad gzip.
    let r = envelope(
        &s,
        b"\x1f\x8b\x08\x00garbage",
        &[("content-encoding", "gzip")],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // Brotli bomb: 200 MiB of zeros in 172 bytes → 413 at the 100 MiB limit.
    let r = envelope(
        &s,
        &fixture("../hostile/zeros-200MiB.br"),
        &[("content-encoding", "br")],
    );
    assert_eq!(r.status, 413, "{}", r.body);
    // Event over 1 MiB: 413 for the whole envelope.
    let big = event_envelope(&new_id(), &json!({"message": "x".repeat(1_100_000)}));
    let r = envelope(&s, &big, &[]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(detail(&r).contains("over the limit"), "{}", r.body);
    // Envelope over 20 MiB compressed.
    let huge = vec![b'x'; 21 * 1024 * 1024];
    assert_eq!(envelope(&s, &huge, &[]).status, 413);
    // 10,000 items is the most one envelope may hold.
    let mut many = b"{}\n".to_vec();
    for i in 0..10_000 {
        many.extend_from_slice(format!("{{\"type\":\"client_report\"}}\n{{\"discarded_events\":[{{\"reason\":\"queue_overflow\",\"category\":\"error\",\"quantity\":{}}}]}}\n", 1 + i % 2).as_bytes());
    }
    let r = envelope(&s, &many, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        metric(&s, "sightline_sentry_client_discarded_events_total{reason=\"queue_overflow\",category=\"error\"}"),
        15_000
    );
    many.extend_from_slice(b"{\"type\":\"client_report\"}\n{}\n");
    let r = envelope(&s, &many, &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        detail(&r).contains("10000") || detail(&r).contains("10,000"),
        "{}",
        r.body
    );
    // Check-in without a slug / with a bad status: dropped with a reason.
    let r = envelope(
        &s,
        b"{}\n{\"type\":\"check_in\"}\n{\"status\":\"ok\"}\n",
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(detail(&r).contains("monitor_slug"), "{}", r.body);
    // Nothing invalid was stored as an issue; the good envelope still works.
    assert_eq!(envelope(&s, &good, &[]).status, 200);
    assert_eq!(issues(&s, "").len(), 1);
    let rss = s.peak_rss();
    assert!(rss < 400 * 1024 * 1024, "peak RSS {} MiB", rss >> 20);
}

/// A per-project rate limit answers 429 with Sentry's headers.
#[test]
fn rate_limited_projects_get_429_with_retry_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &format!("[sentry]\nrate_limit_per_minute = 3\n{PROJECTS}"),
    );
    let body = event_envelope(&new_id(), &json!({"message": "hello"}));
    let mut codes = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let r = envelope(&s, &body, &[]);
        codes.push(r.status);
        last = Some(r);
    }
    // The minute may roll over between requests: at least one 429 in 5 when
    // 3 are allowed per minute, and never more than 3 accepted in a window.
    assert!(
        codes.iter().filter(|c| **c == 200).count() <= 4,
        "{codes:?}"
    );
    assert!(codes.contains(&429), "{codes:?}");
    let last = last.unwrap();
    if last.status == 429 {
        let rl = last.header("x-sentry-rate-limits").unwrap();
        assert!(rl.ends_with("::project:project_quota"), "{rl}");
        let secs: u64 = last.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&secs));
    }
}

/// `kill -9` under concurrent event ingest: every acknowledged event is there
/// afterwards, counted once.
#[test]
fn kill9_during_event_ingest_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..4 {
        let mut s = Server::start(&data, PROJECTS);
        let stop = Arc::new(AtomicBool::new(false));
        let url = s.url("/api/42/envelope/");
        let handles: Vec<_> = (0..4)
            .map(|c| {
                let (stop, acked, url) = (stop.clone(), acked.clone(), url.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    while !stop.load(Ordering::Relaxed) {
                        let id = new_id();
                        let ev = error_event(
                            "CrashError",
                            &format!("round {round} client {c}"),
                            "crashy",
                        );
                        let body = event_envelope(&id, &ev);
                        match agent
                            .post(&url)
                            .header("x-sentry-auth", &auth())
                            .send(&body[..])
                        {
                            Ok(r) if r.status() == 200 => acked.lock().unwrap().push(id),
                            Ok(r) if r.status() == 503 => {
                                std::thread::sleep(Duration::from_millis(10))
                            }
                            Ok(r) => panic!("status {}", r.status()),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 200 * round));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
    }
    let s = Server::start(&data, PROJECTS);
    let acked = acked.lock().unwrap();
    assert!(acked.len() > 50, "too little acknowledged: {}", acked.len());
    let unique: HashSet<&String> = acked.iter().collect();
    for id in &unique {
        let r = s.get(&format!("/api/v1/events/{id}"));
        assert_eq!(r.status, 200, "acknowledged event {id} lost");
    }
    let all = issues(&s, "q=CrashError");
    assert_eq!(all.len(), 1, "{all:?}");
    let count = all[0]["count"].as_u64().unwrap() as usize;
    assert!(
        count >= unique.len(),
        "count {count} < acknowledged {}",
        unique.len()
    );
    let evs = s
        .get(&format!(
            "/api/v1/issues/{}/events?limit=1000",
            all[0]["id"].as_str().unwrap()
        ))
        .json();
    let stored: Vec<&str> = evs["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let distinct: HashSet<&&str> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "an event stored twice");
    if count <= 1000 {
        assert_eq!(
            stored.len(),
            count,
            "issue count and stored events disagree"
        );
    }
}
