//! Span load generator for `bench/traces.sh`: OTLP/HTTP protobuf export
//! bodies as the OpenTelemetry Python SDK's BatchSpanProcessor sends them
//! (one resource per service, up to 512 spans per export), written as files
//! `DIR/b00000`, `DIR/b00001`, … for `bench/wrk_bodies.lua`.
//!
//! ```text
//! spans_load --bodies 2000 --traces-per-body 64 --dir DIR [--start-body K] [--total-bodies N] [--end UNIX_S]
//! spans_load --bodies 19532 --url http://127.0.0.1:P/v1/traces --concurrency 3
//! ```
//!
//! With `--url` the bodies are POSTed (protobuf) instead of written, each
//! once, over `--concurrency` connections; 503/429 are retried with backoff,
//! any other non-200 stops the run. With `--clickhouse` the same spans are
//! written to stdout as JSONEachRow rows shaped like the OpenTelemetry
//! Collector ClickHouse exporter's `otel_traces`, as far as ClickHouse 18.16
//! can hold them (`bench/traces.sh`): seconds in `Timestamp` and nanoseconds
//! in `TimestampNs`, attribute maps as JSON text.
//!
//! Each trace is one request of a FastAPI-like service: a server span
//! `METHOD /route` with the semantic-convention HTTP attributes and a
//! `request_id` attribute, and 7 children (`fastapi.dependencies`,
//! `fastapi.endpoint`, two `SELECT …` client spans with `db.statement`, an
//! `httpx` client call, `render`, `serialize`): 8 spans per trace, so 64
//! traces make a 512-span export. 2% of the requests fail (error status and
//! an `exception` event with a stack trace on the failing child). Trace ids
//! are a function of (body, trace): trace `t` of body `b` is
//! `{b:016x}{t:08x}5eed5eed`, its request id `req-{b}-{t}`, so a benchmark
//! can look up any trace it sent. Times end at `--end` (default now), 10 ms
//! between requests.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as Any, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

fn kv(k: &str, v: Any) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> Any {
    Any::StringValue(v.into())
}

const ROUTES: [(&str, &str); 6] = [
    ("GET", "/assessments/{assessment_id}"),
    ("POST", "/assessments/{assessment_id}/submit"),
    ("POST", "/assessments/{assessment_id}/retake"),
    ("GET", "/users/{user_id}/results"),
    ("GET", "/health/ready"),
    ("POST", "/login"),
];
const SERVICES: [&str; 3] = ["assessments", "grading", "accounts"];

/// xorshift64*: deterministic per (body, trace).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

pub fn trace_id(body: u64, t: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&body.to_be_bytes());
    id[8..12].copy_from_slice(&(t as u32).to_be_bytes());
    id[12..].copy_from_slice(&[0x5e, 0xed, 0x5e, 0xed]);
    id
}

fn trace(body: u64, t: u64, start_ns: u64) -> (usize, Vec<Span>) {
    let mut rng = Rng((body << 20 | t) * 0x9e37_79b9_7f4a_7c15 + 1);
    let tid = trace_id(body, t).to_vec();
    let route = ROUTES[(rng.next() % ROUTES.len() as u64) as usize];
    let fails = rng.next() % 50 == 0;
    let sid = |k: u64| {
        ((body << 24) | (t << 4) | k | 1 << 63)
            .to_be_bytes()
            .to_vec()
    };
    let total = 5_000_000 + rng.next() % 80_000_000;
    let status = if fails { 500 } else { 200 };
    let root = Span {
        trace_id: tid.clone(),
        span_id: sid(0),
        name: format!("{} {}", route.0, route.1),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: start_ns + total,
        attributes: vec![
            kv("http.request.method", s(route.0)),
            kv("http.route", s(route.1)),
            kv(
                "url.path",
                s(&route
                    .1
                    .replace("{assessment_id}", "a-42")
                    .replace("{user_id}", "u-7")),
            ),
            kv("url.scheme", s("http")),
            kv("server.address", s("assessments.internal")),
            kv("server.port", Any::IntValue(8000)),
            kv("network.protocol.version", s("1.1")),
            kv("user_agent.original", s("python-httpx/0.28.1")),
            kv("http.response.status_code", Any::IntValue(status)),
            kv("request_id", s(&format!("req-{body}-{t}"))),
        ],
        status: Some(Status {
            code: if fails { 2 } else { 0 },
            message: String::new(),
        }),
        ..Default::default()
    };
    let mut spans = vec![root];
    let children = [
        ("fastapi.dependencies", span::SpanKind::Internal, vec![]),
        ("fastapi.endpoint", span::SpanKind::Internal, vec![]),
        (
            "SELECT assessments",
            span::SpanKind::Client,
            vec![
                kv("db.system", s("postgresql")),
                kv("db.statement", s("SELECT id, title, questions FROM assessments WHERE id = %(id)s")),
            ],
        ),
        (
            "SELECT answers",
            span::SpanKind::Client,
            vec![
                kv("db.system", s("postgresql")),
                kv("db.statement", s("SELECT question_id, option FROM answers WHERE user_id = %(user)s AND assessment_id = %(id)s")),
            ],
        ),
        (
            "GET",
            span::SpanKind::Client,
            vec![
                kv("http.request.method", s("GET")),
                kv("url.full", s("http://grading.internal:8000/rubrics/a-42")),
                kv("http.response.status_code", Any::IntValue(200)),
            ],
        ),
        ("render", span::SpanKind::Internal, vec![]),
        ("serialize", span::SpanKind::Internal, vec![]),
    ];
    let failing = (rng.next() % children.len() as u64) as usize;
    let mut at = start_ns + 200_000;
    for (k, (name, kind, attrs)) in children.into_iter().enumerate() {
        let dur = 100_000 + rng.next() % (total / 10);
        let err = fails && k == failing;
        let mut sp = Span {
            trace_id: tid.clone(),
            span_id: sid(k as u64 + 1),
            parent_span_id: sid(if k >= 2 { 1 } else { 0 }),
            name: name.into(),
            kind: kind as i32,
            start_time_unix_nano: at,
            end_time_unix_nano: at + dur,
            attributes: attrs,
            status: Some(Status {
                code: if err { 2 } else { 0 },
                message: if err {
                    "connection reset by peer".into()
                } else {
                    String::new()
                },
            }),
            ..Default::default()
        };
        if err {
            sp.events.push(span::Event {
                time_unix_nano: at + dur,
                name: "exception".into(),
                attributes: vec![
                    kv("exception.type", s("psycopg.OperationalError")),
                    kv("exception.message", s("connection reset by peer")),
                    kv("exception.stacktrace", s("Traceback (most recent call last):\n  File \"/app/app.py\", line 161, in submit\n    rows = await db.fetch(query, id)\npsycopg.OperationalError: connection reset by peer\n")),
                    kv("exception.escaped", Any::BoolValue(true)),
                ],
                ..Default::default()
            });
        }
        at += dur / 2;
        spans.push(sp);
    }
    let service = (rng.next() % SERVICES.len() as u64) as usize;
    (service, spans)
}

/// Export body `b`: its traces grouped by service, as the SDK batches them.
pub fn body(b: u64, traces: u64, end_ns: u64, total_bodies: u64) -> Vec<u8> {
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    for t in 0..traces {
        let n = b * traces + t;
        let start = end_ns - (total_bodies * traces - n) * 10_000_000;
        let (svc, spans) = trace(b, t, start);
        by_service[svc].extend(spans);
    }
    let req = ExportTraceServiceRequest {
        resource_spans: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(i, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s(SERVICES[i])),
                        kv(
                            "service.instance.id",
                            s("6e56625f-f99b-46e2-8e90-e9f6a7873555"),
                        ),
                        kv("telemetry.sdk.language", s("python")),
                        kv("telemetry.sdk.name", s("opentelemetry")),
                        kv("telemetry.sdk.version", s("1.45.2")),
                        kv("deployment.environment.name", s("production")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "opentelemetry.instrumentation.fastapi".into(),
                        version: "0.66b2".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    };
    req.encode_to_vec()
}

/// An attribute value as the ClickHouse exporter stores it (a string).
fn any_str(v: &Option<AnyValue>) -> serde_json::Value {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone().into(),
        Some(Any::IntValue(i)) => i.to_string().into(),
        Some(Any::BoolValue(b)) => b.to_string().into(),
        Some(Any::DoubleValue(d)) => d.to_string().into(),
        _ => "".into(),
    }
}

fn attrs(kvs: &[KeyValue]) -> serde_json::Value {
    serde_json::Value::Object(
        kvs.iter()
            .map(|kv| (kv.key.clone(), any_str(&kv.value)))
            .collect(),
    )
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) for a DateTime column.
fn ch_time(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    )
}

/// Body `b` as `otel_traces`-shaped rows (one JSON object per line).
fn clickhouse_rows(b: u64, traces: u64, end_ns: u64, total: u64, out: &mut impl std::io::Write) {
    let req = ExportTraceServiceRequest::decode(&body(b, traces, end_ns, total)[..]).unwrap();
    for rs in req.resource_spans {
        let resource = rs.resource.unwrap_or_default();
        let service = resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .map(|kv| any_str(&kv.value))
            .unwrap_or_default();
        let res = attrs(&resource.attributes).to_string();
        for ss in rs.scope_spans {
            let scope = ss.scope.unwrap_or_default();
            for sp in ss.spans {
                let status = sp.status.unwrap_or_default();
                let row = serde_json::json!({
                    "Timestamp": ch_time(sp.start_time_unix_nano),
                    "TimestampNs": sp.start_time_unix_nano,
                    "TraceId": hex::encode(&sp.trace_id),
                    "SpanId": hex::encode(&sp.span_id),
                    "ParentSpanId": hex::encode(&sp.parent_span_id),
                    "TraceState": "",
                    "SpanName": sp.name,
                    "SpanKind": match sp.kind { 2 => "Server", 3 => "Client", 1 => "Internal", _ => "Unspecified" },
                    "ServiceName": service,
                    "ResourceAttributes": res,
                    "ScopeName": scope.name,
                    "ScopeVersion": scope.version,
                    "SpanAttributes": attrs(&sp.attributes).to_string(),
                    "Duration": sp.end_time_unix_nano - sp.start_time_unix_nano,
                    "StatusCode": match status.code { 2 => "Error", 1 => "Ok", _ => "Unset" },
                    "StatusMessage": status.message,
                    "Events.Timestamp": sp.events.iter().map(|e| e.time_unix_nano).collect::<Vec<_>>(),
                    "Events.Name": sp.events.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
                    "Events.Attributes": sp.events.iter().map(|e| attrs(&e.attributes).to_string()).collect::<Vec<_>>(),
                });
                serde_json::to_writer(&mut *out, &row).unwrap();
                out.write_all(b"\n").unwrap();
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let bodies: u64 = get("--bodies").map_or(2000, |v| v.parse().unwrap());
    let traces: u64 = get("--traces-per-body").map_or(64, |v| v.parse().unwrap());
    let first: u64 = get("--start-body").map_or(0, |v| v.parse().unwrap());
    // Times are laid out over the whole dataset, so parts of it generated
    // separately do not overlap.
    let total: u64 = get("--total-bodies").map_or(first + bodies, |v| v.parse().unwrap());
    let end_ns: u64 = get("--end").map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |v| v.parse::<u64>().unwrap() * 1_000_000_000,
    );
    if args.iter().any(|a| a == "--clickhouse") {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        for k in 0..bodies {
            clickhouse_rows(first + k, traces, end_ns, total, &mut out);
        }
        return;
    }
    if let Some(url) = get("--url") {
        let conc: u64 = get("--concurrency").map_or(3, |v| v.parse().unwrap());
        let next = std::sync::atomic::AtomicU64::new(0);
        let retries = std::sync::atomic::AtomicU64::new(0);
        let t = std::time::Instant::now();
        std::thread::scope(|sc| {
            for _ in 0..conc {
                sc.spawn(|| {
                    let agent = ureq::Agent::new_with_defaults();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if k >= bodies {
                            break;
                        }
                        let b = body(first + k, traces, end_ns, total);
                        // 503 (the server's memory budget) is retried after a
                        // pause, as the OTLP exporters do.
                        let mut wait = std::time::Duration::from_millis(50);
                        loop {
                            let r = agent
                                .post(&url)
                                .header("content-type", "application/x-protobuf")
                                .send(&b[..]);
                            match r {
                                Ok(r) if r.status() == 200 => break,
                                Err(ureq::Error::StatusCode(503 | 429)) => {
                                    retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    std::thread::sleep(wait);
                                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                                }
                                Ok(r) => panic!("body {k}: HTTP {}", r.status()),
                                Err(e) => panic!("body {k}: {e}"),
                            }
                        }
                    }
                });
            }
        });
        println!(
            "{{\"bodies\":{bodies},\"spans\":{},\"seconds\":{:.1},\"retried_503\":{}}}",
            bodies * traces * 8,
            t.elapsed().as_secs_f64(),
            retries.load(std::sync::atomic::Ordering::Relaxed)
        );
        return;
    }
    let dir = std::path::PathBuf::from(get("--dir").expect("--dir DIR or --url URL"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = 0usize;
    for k in 0..bodies {
        let b = body(first + k, traces, end_ns, total);
        bytes += b.len();
        std::fs::write(dir.join(format!("b{k:05}")), b).unwrap();
    }
    println!(
        "{{\"bodies\":{bodies},\"spans_per_body\":{},\"bytes\":{bytes}}}",
        traces * 8
    );
}
