//! Traces end to end: the recorded OTLP exports stored and read back as span
//! trees and through search; OTLP/JSON; spans refused one by one as a partial
//! success; bad bodies 400/413/415; 100k spans in one export with bounded
//! memory; the one-request view joining logs, Sentry errors and transactions,
//! OTLP spans and the route's RED series (also in PromQL and in `sightline
//! request`); a failed flow with its failing span; and `kill -9` keeping
//! every acknowledged span.

use crate::support::*;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");
const CONFIG: &str = "[traces]\nretention_days = 0\nred_interval_secs = 1\n\
    [[projects]]\nname = \"shop\"\nid = 42\nkeys = [\"0123456789abcdef0123456789abcdef\"]\n";
const SENTRY_AUTH: &str = "Sentry sentry_key=0123456789abcdef0123456789abcdef, sentry_version=7";

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A span of `trace` (16 bytes) with id `id` under `parent`.
#[allow(clippy::too_many_arguments)]
fn span_of(
    trace: &[u8],
    id: u64,
    parent: Option<u64>,
    name: &str,
    kind: span::SpanKind,
    start: u64,
    dur_ns: u64,
    error: bool,
    attrs: Vec<KeyValue>,
) -> Span {
    Span {
        trace_id: trace.to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur_ns,
        attributes: attrs,
        status: Some(Status {
            code: if error { 2 } else { 0 },
            message: if error { "boom".into() } else { String::new() },
        }),
        ..Default::default()
    }
}

fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", str_value(service))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// (status, content type, body bytes) of a POST to `/v1/traces`.
fn post(srv: &Server, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut req = agent().post(srv.url("/v1/traces"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.send(body).expect("request");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.body_mut().read_to_vec().unwrap();
    (status, ct, body)
}

/// `partialSuccess` of a 200 protobuf answer: (rejected spans, message).
fn partial(r: &(u16, String, Vec<u8>)) -> (i64, String) {
    assert_eq!(r.0, 200, "{}", String::from_utf8_lossy(&r.2));
    assert_eq!(r.1, "application/x-protobuf");
    let p = ExportTraceServiceResponse::decode(&r.2[..])
        .unwrap()
        .partial_success
        .unwrap_or_default();
    (p.rejected_spans, p.error_message)
}

fn traces(srv: &Server, query: &str) -> Vec<Value> {
    let r = srv.get(&format!("/api/v1/traces?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json()["traces"].as_array().unwrap().clone()
}

fn ids(v: &[Value]) -> HashSet<String> {
    v.iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect()
}

fn count_nodes(nodes: &Value) -> usize {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| 1 + count_nodes(&n["children"]))
        .sum()
}

#[test]
fn recorded_exports_search_json_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"), CONFIG);

    // The recorded exports, and what they hold (decoded here independently).
    let mut expect_traces: HashMap<String, (usize, bool, u64)> = HashMap::new();
    for f in ["otlp/17-traces.pb", "otlp/31-traces.pb"] {
        let body = fixture(f);
        let r = post(&srv, &[PB], &body);
        assert_eq!(partial(&r), (0, String::new()));
        assert!(r.2.is_empty(), "full success is an empty message");
        for rs in ExportTraceServiceRequest::decode(&body[..])
            .unwrap()
            .resource_spans
        {
            for sp in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                let e = expect_traces
                    .entry(hex::encode(&sp.trace_id))
                    .or_insert((0, false, 0));
                e.0 += 1;
                e.1 |= sp.status.is_some_and(|s| s.code == 2);
                e.2 = e.2.max(sp.end_time_unix_nano - sp.start_time_unix_nano);
            }
        }
    }
    let all = "start=2026-01-01T00:00:00Z&end=2027-06-01T00:00:00Z&limit=1000";
    let found = traces(&srv, all);
    assert_eq!(
        ids(&found),
        expect_traces.keys().cloned().collect::<HashSet<_>>()
    );
    for t in &found {
        let (n, err, _) = expect_traces[t["trace_id"].as_str().unwrap()];
        assert_eq!(t["spans"], n, "{t}");
        assert_eq!(t["status"] == "error", err, "{t}");
        assert_eq!(t["service"], "assessments");
    }
    // Newest first.
    let starts: Vec<i64> = found
        .iter()
        .map(|t| t["start_ns"].as_i64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");

    let errors = traces(&srv, &format!("{all}&status=error"));
    let want: HashSet<String> = expect_traces
        .iter()
        .filter(|(_, v)| v.1)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&errors), want);

    let slow = traces(&srv, &format!("{all}&min_duration=20ms"));
    let want: HashSet<String> = expect_traces
        .iter()
        .filter(|(_, v)| v.2 >= 20_000_000)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!want.is_empty() && want.len() < expect_traces.len());
    assert_eq!(ids(&slow), want);

    let health = traces(
        &srv,
        &format!("{all}&name=GET%20/health&service=assessments"),
    );
    assert!(!health.is_empty());
    assert!(health.iter().all(|t| t["root"] == "GET /health"));
    assert!(traces(&srv, &format!("{all}&service=nobody")).is_empty());
    let three = traces(&srv, "start=2026-01-01T00:00:00Z&limit=3");
    assert_eq!(three.len(), 3);
    assert_eq!(three[..], found[..3]);

    // One failing trace: its tree, error status and offsets.
    let failing = errors
        .iter()
        .find(|t| t["root"].as_str().unwrap().contains("submit"))
        .expect("a failed submission");
    let id = failing["trace_id"].as_str().unwrap();
    let r = srv.get(&format!("/api/v1/traces/{}", id.to_uppercase()));
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert_eq!(t["spans"].as_array().unwrap().len(), 1, "one root");
    let root = &t["spans"][0];
    assert_eq!(
        (root["kind"].as_str(), root["status"].as_str()),
        (Some("server"), Some("error"))
    );
    assert_eq!(root["offset_ms"], 0.0);
    assert_eq!(root["attributes"]["http.status_code"], 500);
    assert_eq!(count_nodes(&t["spans"]), expect_traces[id].0);
    for c in root["children"].as_array().unwrap() {
        assert_eq!(c["depth"], 1);
        assert!(c["offset_ms"].as_f64().unwrap() >= 0.0);
        assert!(c["duration_ms"].as_f64().unwrap() <= root["duration_ms"].as_f64().unwrap());
    }
    assert_eq!(t["summary"]["status"], "error");

    assert_eq!(
        srv.get(&format!("/api/v1/traces/{}", "0".repeat(31) + "1"))
            .status,
        404
    );
    assert_eq!(srv.get("/api/v1/traces/not-a-trace").status, 400);
    for bad in [
        "status=maybe",
        "min_duration=later",
        "limit=0",
        "start=yesterday",
    ] {
        assert_eq!(
            srv.get(&format!("/api/v1/traces?{bad}")).status,
            400,
            "{bad}"
        );
    }
    assert_eq!(srv.get_noauth("/api/v1/traces").status, 401);

    // OTLP/JSON (hex ids, string 64-bit ints), gzip too.
    let start = now_ns();
    let json_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
            {"traceId": json_trace, "spanId": "00f067aa0ba902b7", "name": "GET /json", "kind": 2,
             "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 5_000_000).to_string(),
             "attributes": [{"key": "request_id", "value": {"stringValue": "req-json"}}],
             "status": {"code": 1}},
            {"traceId": json_trace, "spanId": "00f067aa0ba902b8", "parentSpanId": "00f067aa0ba902b7",
             "name": "SELECT", "kind": 3, "startTimeUnixNano": (start + 1_000_000).to_string(),
             "endTimeUnixNano": (start + 2_000_000).to_string(),
             "events": [{"name": "exception", "timeUnixNano": (start + 1_500_000).to_string(),
               "attributes": [{"key": "exception.type", "value": {"stringValue": "OperationalError"}}]}]}
        ]}]
    }]})
    .to_string();
    let r = post(
        &srv,
        &[JSON, ("content-encoding", "gzip")],
        &gzip(body.as_bytes()),
    );
    assert_eq!(
        (r.0, r.1.as_str(), &r.2[..]),
        (200, "application/json", &b"{}"[..])
    );
    let t = srv.get(&format!("/api/v1/traces/{json_trace}")).json();
    let root = &t["spans"][0];
    assert_eq!(
        (root["name"].as_str(), root["service"].as_str()),
        (Some("GET /json"), Some("json-svc"))
    );
    assert_eq!(root["request_id"], "req-json");
    assert_eq!(root["children"][0]["kind"], "client");
    assert_eq!(
        root["children"][0]["events"][0]["attributes"]["exception.type"],
        "OperationalError"
    );
    assert_eq!(root["children"][0]["offset_ms"], 1.0);

    // Spans with bad ids are refused one by one; the rest of the export is stored.
    let trace = [7u8; 16];
    let good = span_of(
        &trace,
        1,
        None,
        "kept",
        span::SpanKind::Server,
        start,
        1000,
        false,
        vec![],
    );
    let mut zero = good.clone();
    zero.trace_id = vec![0; 16];
    let mut short = good.clone();
    short.span_id = vec![1, 2, 3];
    let r = post(
        &srv,
        &[PB],
        &export("ids", vec![zero, good, short]).encode_to_vec(),
    );
    let (rejected, msg) = partial(&r);
    assert_eq!(rejected, 2, "{msg}");
    assert!(msg.contains("trace_id") && msg.contains("span_id"), "{msg}");
    let t = srv
        .get(&format!("/api/v1/traces/{}", hex::encode(trace)))
        .json();
    assert_eq!(t["spans"][0]["name"], "kept");

    // An oversized span (2,001 attributes, one of 4 MiB) is stored bounded.
    let mut big = span_of(
        &[9u8; 16],
        1,
        None,
        "big",
        span::SpanKind::Server,
        start,
        1000,
        false,
        vec![],
    );
    big.attributes = (0..2000)
        .map(|i| kv(&format!("k{i}"), str_value("v")))
        .collect();
    big.attributes
        .insert(0, kv("blob", str_value(&"x".repeat(4 << 20))));
    let r = post(&srv, &[PB], &export("big", vec![big]).encode_to_vec());
    assert_eq!(partial(&r), (0, String::new()));
    let t = srv
        .get(&format!("/api/v1/traces/{}", hex::encode([9u8; 16])))
        .json();
    let attrs = t["spans"][0]["attributes"].as_object().unwrap();
    assert_eq!(attrs.len(), 129, "128 kept and the count of the dropped");
    assert_eq!(attrs["sightline.dropped"], 2001 - 128);
    let blob = attrs["blob"].as_str().unwrap();
    assert!(
        blob.len() < 20_000 && blob.ends_with("[truncated]"),
        "{}",
        blob.len()
    );

    // Bad bodies: a clear error, nothing stored, the server still serves.
    let body = fixture("otlp/31-traces.pb");
    let gz = gzip(&body);
    for (headers, b, status) in [
        (vec![PB], b"\xff\xff\xff\xff".to_vec(), 400),
        (vec![PB], body[..body.len() - 7].to_vec(), 400),
        (vec![JSON], b"not json".to_vec(), 400),
        (vec![JSON], br#"{"resourceSpans": 5}"#.to_vec(), 400),
        (
            vec![JSON],
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#.to_vec(),
            400,
        ),
        (vec![JSON], vec![0xc3, 0x28, b'{'], 400),
        (
            vec![PB, ("content-encoding", "gzip")],
            gz[..gz.len() / 2].to_vec(),
            400,
        ),
        (vec![PB, ("content-encoding", "snappy")], body.clone(), 415),
        (vec![("content-type", "text/plain")], body.clone(), 415),
        (vec![PB], vec![0x0a; 33 << 20], 413),
    ] {
        let r = post(&srv, &headers, &b);
        assert_eq!(
            r.0,
            status,
            "{headers:?}: {}",
            String::from_utf8_lossy(&r.2)
        );
        let v: Value = serde_json::from_slice(&r.2).unwrap();
        assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
    }
    // Every truncation of a recorded export: 200 or 400, never a crash.
    for cut in (0..body.len()).step_by(97) {
        let r = post(&srv, &[PB], &body[..cut]);
        assert!(r.0 == 200 || r.0 == 400, "cut {cut}: {}", r.0);
    }
    // Truncated exports store at most whole spans of the recorded traces:
    // the only new traces are the three posted above.
    let now = ids(&traces(&srv, all));
    let extra: Vec<&String> = now
        .iter()
        .filter(|t| !expect_traces.contains_key(*t))
        .collect();
    assert_eq!(extra.len(), 3, "{extra:?}");
}

#[test]
fn a_hundred_thousand_spans_in_one_export() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"), CONFIG);
    let base = now_ns() - 60_000_000_000;
    let attrs = || {
        vec![
            kv("http.method", str_value("GET")),
            kv("http.route", str_value("/items/{id}")),
            kv(
                "db.statement",
                str_value("SELECT * FROM items WHERE id = $1"),
            ),
        ]
    };
    let spans: Vec<Span> = (0..100_000u64)
        .map(|i| {
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(&(i / 10 + 1).to_be_bytes());
            t[8] = 0xab;
            span_of(
                &t,
                i + 1,
                (i % 10 != 0).then(|| i - i % 10 + 1),
                if i % 10 == 0 {
                    "GET /items/{id}"
                } else {
                    "SELECT items"
                },
                span::SpanKind::Server,
                base + i * 1000,
                500_000 + (i % 7) * 100_000,
                i % 1000 == 0,
                attrs(),
            )
        })
        .collect();
    let body = export("bulk", spans).encode_to_vec();
    assert!(body.len() > 10 << 20, "{} bytes", body.len());
    let rss_before = srv.peak_rss();
    let r = post(&srv, &[PB, ("content-encoding", "gzip")], &gzip(&body));
    assert_eq!(partial(&r), (0, String::new()));
    let peak = srv.peak_rss();
    // Decoding, normalizing and logging 100k spans (~15 MB of protobuf)
    // stays within a few hundred MB, then is released.
    assert!(
        peak - rss_before < 700 << 20,
        "peak RSS grew by {} MB",
        (peak - rss_before) >> 20
    );
    let all = "start=2026-01-01T00:00:00Z&end=2099-01-01T00:00:00Z&limit=1000&service=bulk";
    assert_eq!(traces(&srv, all).len(), 1000);
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&5000u64.to_be_bytes());
    t[8] = 0xab;
    let tr = srv
        .get(&format!("/api/v1/traces/{}", hex::encode(t)))
        .json();
    assert_eq!(tr["summary"]["spans"], 10);
    assert_eq!(count_nodes(&tr["spans"]), 10);
    let m = srv.get_noauth("/metrics").body;
    assert!(m.contains("sightline_span_store_spans_total 100000"), "{m}");
    // The RED series counted every span.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let q =
        srv.get("/api/v1/query?query=sum(sightline_span_calls_total%7Bservice%3D%22bulk%22%7D)");
    assert_eq!(
        q.json()["data"]["result"][0]["value"][1],
        "100000",
        "{}",
        q.body
    );
}

/// The app's three signals for one request: a structlog line, an OTLP span
/// tree, a Sentry error and a Sentry transaction, all with `req-e2e-1`.
#[test]
fn one_request_view_joins_logs_errors_spans_and_route() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("data"), CONFIG);
    let t0 = now_ns() - 2_000_000_000;
    let trace = [0x5bu8; 16];
    let trace_hex = hex::encode(trace);

    let logs = format!(
        "{{\"event\":\"checkout_started\",\"level\":\"info\",\"request_id\":\"req-e2e-1\",\"flow_id\":\"flow-e2e\",\"trace_id\":\"{trace_hex}\",\"timestamp\":\"{}\"}}\n\
         {{\"event\":\"checkout_failed\",\"level\":\"error\",\"request_id\":\"req-e2e-1\",\"flow_id\":\"flow-e2e\",\"step\":\"charge\",\"error\":\"card declined\",\"timestamp\":\"{}\"}}\n",
        rfc3339(t0 + 1_000_000),
        rfc3339(t0 + 40_000_000),
    );
    assert_eq!(srv.ndjson("checkout", logs.as_bytes()).status, 200);

    let mut spans = vec![span_of(
        &trace,
        1,
        None,
        "POST /checkout",
        span::SpanKind::Server,
        t0,
        50_000_000,
        true,
        vec![kv(
            "http.request.header.x-request-id",
            Any::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![AnyValue {
                    value: Some(str_value("req-e2e-1")),
                }],
            }),
        )],
    )];
    spans.push(span_of(
        &trace,
        2,
        Some(1),
        "SELECT cart",
        span::SpanKind::Client,
        t0 + 2_000_000,
        3_000_000,
        false,
        vec![],
    ));
    let mut charge = span_of(
        &trace,
        3,
        Some(1),
        "charge card",
        span::SpanKind::Client,
        t0 + 10_000_000,
        30_000_000,
        true,
        vec![],
    );
    charge
        .events
        .push(opentelemetry_proto::tonic::trace::v1::span::Event {
            time_unix_nano: t0 + 39_000_000,
            name: "exception".into(),
            attributes: vec![
                kv("exception.type", str_value("CardDeclined")),
                kv("exception.message", str_value("card declined")),
            ],
            ..Default::default()
        });
    spans.push(charge);
    assert_eq!(
        partial(&post(
            &srv,
            &[PB],
            &export("checkout", spans).encode_to_vec()
        ))
        .0,
        0
    );

    // Other requests of the same route, for its rate and latency.
    for i in 0..20u64 {
        let mut t = [0x11u8; 16];
        t[0] = i as u8;
        let sp = span_of(
            &t,
            100 + i,
            None,
            "POST /checkout",
            span::SpanKind::Server,
            t0 + i * 1000,
            (i + 1) * 2_000_000,
            i % 10 == 0,
            vec![],
        );
        assert_eq!(
            partial(&post(
                &srv,
                &[PB],
                &export("checkout", vec![sp]).encode_to_vec()
            ))
            .0,
            0
        );
    }

    // Sentry: an error event and a transaction (with a child span) of the same request.
    let event = json!({
        "event_id": "a".repeat(32), "timestamp": (t0 + 39_500_000) as f64 / 1e9, "platform": "python",
        "level": "error", "tags": {"request_id": "req-e2e-1"},
        "exception": {"values": [{"type": "CardDeclined", "value": "card declined",
            "stacktrace": {"frames": [{"function": "charge", "module": "shop.pay", "in_app": true}]}}]},
        "contexts": {"trace": {"trace_id": "c".repeat(32), "span_id": "d".repeat(16)}}
    });
    let tx = json!({
        "event_id": "b".repeat(32), "type": "transaction", "transaction": "/checkout",
        "start_timestamp": (t0 + 1_000_000) as f64 / 1e9, "timestamp": (t0 + 52_000_000) as f64 / 1e9,
        "tags": {"request_id": "req-e2e-1"},
        "contexts": {"trace": {"trace_id": "c".repeat(32), "span_id": "e".repeat(16), "op": "http.server", "status": "internal_error"}},
        "spans": [{"span_id": "f".repeat(16), "parent_span_id": "e".repeat(16), "trace_id": "c".repeat(32),
            "op": "db", "description": "SELECT cart", "start_timestamp": (t0 + 2_000_000) as f64 / 1e9,
            "timestamp": (t0 + 5_000_000) as f64 / 1e9, "status": "ok"}]
    });
    let env =
        format!("{{}}\n{{\"type\":\"event\"}}\n{event}\n{{\"type\":\"transaction\"}}\n{tx}\n");
    let r = srv.post(
        "/api/42/envelope/",
        &[("x-sentry-auth", SENTRY_AUTH)],
        env.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // The RED series are written every second.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let r = srv.get("/api/v1/requests/req-e2e-1");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["logs"].as_array().unwrap().len(), 2, "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert!(errors[0]["title"]
        .as_str()
        .unwrap()
        .contains("CardDeclined"));
    // Two trees: the OTLP trace (3 spans) and the Sentry transaction (2).
    let trees = v["spans"].as_array().unwrap();
    assert_eq!(
        trees.len(),
        2,
        "{}",
        serde_json::to_string_pretty(&v["spans"]).unwrap()
    );
    let otlp = trees.iter().find(|t| t["source"] == "otlp").unwrap();
    assert_eq!(otlp["name"], "POST /checkout");
    assert_eq!(count_nodes(&json!([otlp])), 3);
    let failing = otlp["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "error")
        .unwrap();
    assert_eq!(failing["name"], "charge card");
    assert_eq!(
        failing["events"][0]["attributes"]["exception.type"],
        "CardDeclined"
    );
    let sentry = trees.iter().find(|t| t["source"] == "sentry").unwrap();
    assert_eq!(
        (sentry["name"].as_str(), sentry["status"].as_str()),
        (Some("/checkout"), Some("error"))
    );
    assert_eq!(sentry["children"][0]["op"], "db");
    assert_eq!(v["traces"].as_array().unwrap().len(), 2);
    let route = &v["route"];
    assert_eq!(route["operation"], "POST /checkout");
    assert_eq!(route["service"], "checkout");
    assert!(route["rate_per_s"].as_f64().unwrap() > 0.0, "{route}");
    let ratio = route["error_ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{route}");
    let (p50, p99) = (
        route["p50_ms"].as_f64().unwrap(),
        route["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{route}");

    // The trace view has the trace's log line (joined on trace_id).
    let t = srv.get(&format!("/api/v1/traces/{trace_hex}")).json();
    assert_eq!(t["logs"].as_array().unwrap().len(), 1, "{t}");

    // RED in PromQL.
    let q = |expr: &str| {
        let r = srv.get(&format!("/api/v1/query?query={}", urlenc(expr)));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["data"]["result"].clone()
    };
    let calls = q(
        r#"sum by (status) (sightline_span_calls_total{service="checkout",operation="POST /checkout"})"#,
    );
    let by: HashMap<String, String> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["status"].as_str().unwrap().into(),
                s["value"][1].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(by.get("error").map(String::as_str), Some("3"), "{calls}");
    assert_eq!(by.get("unset").map(String::as_str), Some("18"), "{calls}");
    let buckets = q(
        r#"sightline_span_duration_seconds_bucket{service="checkout",operation="POST /checkout",le="+Inf"}"#,
    );
    assert_eq!(buckets[0]["value"][1], "21");

    // A failed flow shows its requests' spans (the failing one) and errors.
    let f = srv.get("/api/v1/flows/flow-e2e").json();
    assert_eq!(f["status"], "failed");
    assert!(f["spans"].to_string().contains("charge card"));
    assert_eq!(f["errors"].as_array().unwrap().len(), 1);

    // The CLI prints one timeline.
    let out = std::process::Command::new(bin())
        .args(["request", "req-e2e-1"])
        .env("SIGHTLINE_URL", srv.url(""))
        .env("SIGHTLINE_API_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "POST /checkout",
        "charge card",
        "█",
        "CardDeclined",
        "checkout_failed",
        "route",
        "✗ error",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    // Moments in time order: the request span before the failure log.
    assert!(
        text.find("POST /checkout").unwrap() < text.find("checkout_failed").unwrap(),
        "{text}"
    );
}

fn rfc3339(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ns % 1_000_000_000
    )
}

/// Clients keep exporting; the server is killed with SIGKILL; every span of
/// every acknowledged export is there after a restart, exactly once.
#[test]
fn kill9_keeps_every_acknowledged_span() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start(&data, CONFIG);
    let acked: Arc<Mutex<Vec<[u8; 16]>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let url = srv.url("/v1/traces");
    let base = now_ns();
    let workers: Vec<_> = (0..3u8)
        .map(|w| {
            let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let a = agent();
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut batch = Vec::new();
                    let mut traces = Vec::new();
                    for t in 0..20u64 {
                        let mut id = [0u8; 16];
                        id[0] = w + 1;
                        id[1..9].copy_from_slice(&round.to_be_bytes());
                        id[9] = t as u8;
                        traces.push(id);
                        for k in 0..5u64 {
                            batch.push(span_of(
                                &id,
                                k + 1,
                                (k > 0).then_some(1),
                                "work",
                                span::SpanKind::Internal,
                                base + round * 1000 + k,
                                1000,
                                false,
                                vec![],
                            ));
                        }
                    }
                    round += 1;
                    let body = export("crash", batch).encode_to_vec();
                    match a
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .send(&body[..])
                    {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(traces),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    srv.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 60,
        "only {} traces acknowledged",
        acked.len()
    );
    let srv = Server::start(&data, CONFIG);
    for id in &acked {
        let r = srv.get(&format!("/api/v1/traces/{}", hex::encode(id)));
        assert_eq!(r.status, 200, "{}: {}", hex::encode(id), r.body);
        let t = r.json();
        assert_eq!(t["summary"]["spans"], 5, "{}", hex::encode(id));
    }
}
