//! OTLP/HTTP metrics end to end: exports in protobuf, JSON and gzip become
//! Prometheus series read back through `/api/v1/query` (names with unit and
//! type suffixes, resource labels, histogram buckets usable by
//! `histogram_quantile`), refused points come back as an OTLP partial
//! success, bad bodies are 400/415/413, and what a 200 acknowledged survives
//! `kill -9`.

use crate::support::*;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};

const PB: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn number(t_ms: i64, v: Option<number_data_point::Value>, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: (t_ms as u64 - 60_000) * 1_000_000,
        time_unix_nano: t_ms as u64 * 1_000_000 + 123_456,
        value: v,
        ..Default::default()
    }
}

/// What the OTel SDK of service `svc` exports at `t_ms`: a counter, a
/// gauge, a histogram, and a delta counter Prometheus series cannot hold.
fn export(svc: &str, t_ms: i64, requests: i64) -> ExportMetricsServiceRequest {
    let route = || {
        vec![
            kv("http.route", str_value("/pay")),
            kv("http.response.status_code", Any::IntValue(200)),
        ]
    };
    let cumulative = AggregationTemporality::Cumulative as i32;
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", str_value(svc)),
                    kv("service.instance.id", str_value("pod-1")),
                    kv("deployment.environment", str_value("test")),
                    kv("telemetry.sdk.language", str_value("python")),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric(
                        "http.server.requests",
                        "{request}",
                        Data::Sum(Sum {
                            data_points: vec![number(
                                t_ms,
                                Some(number_data_point::Value::AsInt(requests)),
                                route(),
                            )],
                            aggregation_temporality: cumulative,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "process.memory.usage",
                        "By",
                        Data::Gauge(Gauge {
                            data_points: vec![number(
                                t_ms,
                                Some(number_data_point::Value::AsDouble(123456.0)),
                                vec![],
                            )],
                        }),
                    ),
                    metric(
                        "http.server.duration",
                        "ms",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: route(),
                                start_time_unix_nano: (t_ms as u64 - 60_000) * 1_000_000,
                                time_unix_nano: t_ms as u64 * 1_000_000,
                                count: 10,
                                sum: Some(1234.5),
                                bucket_counts: vec![5, 3, 1, 1, 0],
                                explicit_bounds: vec![10.0, 50.0, 100.0, 500.0],
                                ..Default::default()
                            }],
                            aggregation_temporality: cumulative,
                        }),
                    ),
                    metric(
                        "jobs.enqueued",
                        "{job}",
                        Data::Sum(Sum {
                            data_points: vec![number(
                                t_ms,
                                Some(number_data_point::Value::AsInt(3)),
                                vec![],
                            )],
                            aggregation_temporality: AggregationTemporality::Delta as i32,
                            is_monotonic: true,
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The instant vector `q` at `t_ms`.
fn query(s: &Server, q: &str, t_ms: i64) -> Vec<Value> {
    let r = s.get(&format!(
        "/api/v1/query?query={}&time={}",
        urlenc(q),
        t_ms as f64 / 1000.0
    ));
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    let v = r.json();
    assert_eq!(v["data"]["resultType"], "vector", "{q}: {v}");
    v["data"]["result"].as_array().unwrap().clone()
}

/// The samples of the one series of the range vector `q` at `t_ms`.
fn query_range_vector(s: &Server, q: &str, t_ms: i64) -> Value {
    let r = s.get(&format!(
        "/api/v1/query?query={}&time={}",
        urlenc(q),
        t_ms as f64 / 1000.0
    ));
    assert_eq!(r.status, 200, "{q}: {}", r.body);
    let v = r.json();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{q}: {v}");
    v["data"]["result"][0]["values"].clone()
}

/// The one value of `q` at `t_ms`.
fn value(s: &Server, q: &str, t_ms: i64) -> f64 {
    let r = query(s, q, t_ms);
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0]["value"][1].as_str().unwrap().parse().unwrap()
}

/// An answer with its body as bytes (protobuf answers are not text).
struct Raw {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn post(srv: &Server, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let mut req = agent().post(srv.url("/v1/metrics"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.send(body).expect("request");
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Raw {
        status,
        content_type,
        body,
    }
}

/// `partialSuccess` of an OTLP answer: (rejected points, message).
fn partial(r: &Raw) -> (i64, String) {
    assert_eq!(r.status, 200, "{}", r.text());
    match r.content_type.as_deref() {
        Some("application/x-protobuf") => {
            let p = ExportMetricsServiceResponse::decode(&r.body[..])
                .unwrap()
                .partial_success
                .unwrap_or_default();
            (p.rejected_data_points, p.error_message)
        }
        Some("application/json") => {
            let v = r.json();
            let p = &v["partialSuccess"];
            (
                p["rejectedDataPoints"].as_i64().unwrap_or(0),
                p["errorMessage"].as_str().unwrap_or("").to_string(),
            )
        }
        other => panic!("content type {other:?}"),
    }
}

#[test]
fn metrics_otlp_protobuf_json_gzip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start(&data, "[metrics]\nmax_write_bytes = 1048576\n");
    let t = now_ms() - 120_000;
    let at = t + 1000;

    // Protobuf: stored, the delta counter refused with its reason.
    let body = export("checkout", t, 42).encode_to_vec();
    let r = post(&srv, &[PB], &body);
    assert_eq!(r.content_type.as_deref(), Some("application/x-protobuf"));
    let (rejected, msg) = partial(&r);
    assert_eq!(rejected, 1, "{msg}");
    assert!(
        msg.starts_with("metric \"jobs.enqueued\": delta temporality"),
        "{msg}"
    );

    let req = query(&srv, "http_server_requests_total", at);
    assert_eq!(req.len(), 1, "{req:?}");
    assert_eq!(
        req[0]["metric"],
        json!({"__name__": "http_server_requests_total", "job": "checkout", "service": "checkout",
               "instance": "pod-1", "http_route": "/pay", "http_response_status_code": "200"})
    );
    assert_eq!(req[0]["value"][1], "42");
    // The point's time, ns → ms.
    let raw = query_range_vector(&srv, r#"http_server_requests_total[5m]"#, at);
    assert_eq!(raw, json!([[t as f64 / 1000.0, "42"]]));
    assert_eq!(
        value(&srv, r#"process_memory_usage_bytes{job="checkout"}"#, at),
        123456.0
    );
    let h = "http_server_duration_milliseconds";
    assert_eq!(
        value(
            &srv,
            &format!(r#"{h}_bucket{{le="+Inf",job="checkout"}}"#),
            at
        ),
        10.0
    );
    assert_eq!(value(&srv, &format!(r#"{h}_bucket{{le="50"}}"#), at), 8.0);
    assert_eq!(value(&srv, &format!(r#"{h}_bucket{{le="500"}}"#), at), 10.0);
    assert_eq!(value(&srv, &format!("{h}_count"), at), 10.0);
    assert_eq!(value(&srv, &format!("{h}_sum"), at), 1234.5);
    // Rank 7.5 of 10 falls in (10, 50] holding 3: 10 + 40 × 2.5/3.
    let p75 = value(
        &srv,
        &format!("histogram_quantile(0.75, sum by (le) ({h}_bucket))"),
        at,
    );
    assert!((p75 - (10.0 + 40.0 * 2.5 / 3.0)).abs() < 1e-9, "{p75}");
    assert!(query(&srv, r#"{__name__=~"jobs.*"}"#, at).is_empty());
    let info = query(&srv, "target_info", at);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0]["metric"]["deployment_environment"], "test");
    assert_eq!(info[0]["metric"]["job"], "checkout");

    // A retry of the same export stores nothing twice and refuses nothing
    // new; an older export is refused as out of order.
    let r = post(&srv, &[PB], &body);
    assert_eq!(partial(&r).0, 1);
    let r = post(
        &srv,
        &[PB],
        &export("checkout", t - 30_000, 41).encode_to_vec(),
    );
    let (rejected, msg) = partial(&r);
    // The delta point, and 10 samples: counter, gauge, 7 histogram series,
    // target_info.
    assert_eq!(rejected, 1 + 10, "{msg}");
    assert!(msg.contains("10 samples out of order"), "{msg}");

    // JSON (the OTLP JSON encoding: camelCase, 64-bit integers as strings).
    let j = serde_json::to_vec(&export("checkout-json", t, 7)).unwrap();
    assert!(String::from_utf8_lossy(&j).contains(r#""asInt":"7""#));
    let r = post(&srv, &[JSON], &j);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.json()["partialSuccess"]["rejectedDataPoints"], 1);
    assert_eq!(
        value(
            &srv,
            r#"http_server_requests_total{job="checkout-json"}"#,
            at
        ),
        7.0
    );
    // Everything accepted: an empty answer.
    let ok = json!({"resourceMetrics": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "hand"}}]},
        "scopeMetrics": [{"metrics": [{"name": "queue.depth", "unit": "{item}",
        "gauge": {"dataPoints": [{"timeUnixNano": (t as u64 * 1_000_000).to_string(), "asDouble": 3.5}]}}]}]}]});
    let r = post(&srv, &[JSON], ok.to_string().as_bytes());
    assert_eq!((r.status, r.text().as_str()), (200, "{}"));
    assert_eq!(value(&srv, r#"queue_depth{service="hand"}"#, at), 3.5);

    // gzip.
    let gz = gzip(&export("checkout-gz", t, 9).encode_to_vec());
    let r = post(&srv, &[PB, ("content-encoding", "gzip")], &gz);
    assert_eq!(partial(&r).0, 1);
    assert_eq!(
        value(&srv, r#"http_server_requests_total{job="checkout-gz"}"#, at),
        9.0
    );

    // The recorded Python SDK export: all accepted (empty answer). Its
    // timestamps are from the recording, so it is read back from a copy
    // moved to now.
    let fixture = fixture("otlp/18-metrics.pb");
    let r = post(&srv, &[PB], &fixture);
    assert_eq!((r.status, r.body.len()), (200, 0), "{}", r.text());
    let mut moved = ExportMetricsServiceRequest::decode(&fixture[..]).unwrap();
    let shift = (t as u64 * 1_000_000).saturating_sub(1_795_625_016_064_744_402);
    for m in moved
        .resource_metrics
        .iter_mut()
        .flat_map(|r| &mut r.scope_metrics)
        .flat_map(|s| &mut s.metrics)
    {
        match &mut m.data {
            Some(Data::Sum(x)) => x
                .data_points
                .iter_mut()
                .for_each(|p| p.time_unix_nano += shift),
            Some(Data::Histogram(x)) => x
                .data_points
                .iter_mut()
                .for_each(|p| p.time_unix_nano += shift),
            _ => panic!("unexpected metric in the fixture: {m:?}"),
        }
    }
    let r = post(&srv, &[PB], &moved.encode_to_vec());
    assert_eq!((r.status, r.body.len()), (200, 0), "{}", r.text());
    assert_eq!(
        value(
            &srv,
            r#"jobs_processed_total{job="worker",queue="default"}"#,
            at
        ),
        3.0
    );
    assert_eq!(
        value(
            &srv,
            r#"job_duration_seconds_bucket{service="worker",le="5"}"#,
            at
        ),
        1.0
    );

    // Bad bodies.
    for (headers, body, status) in [
        (vec![PB], b"\xff\xff\xff\xff".to_vec(), 400),
        (vec![PB], body[..body.len() - 7].to_vec(), 400),
        (vec![JSON], b"not json".to_vec(), 400),
        (vec![JSON], br#"{"resourceMetrics": 5}"#.to_vec(), 400),
        (
            vec![PB, ("content-encoding", "gzip")],
            gz[..gz.len() / 2].to_vec(),
            400,
        ),
        (vec![PB, ("content-encoding", "snappy")], body.clone(), 415),
        (vec![("content-type", "text/plain")], body.clone(), 415),
        (vec![PB], vec![0x0a; 2 << 20], 413),
    ] {
        let r = post(&srv, &headers, &body);
        assert_eq!(r.status, status, "{headers:?}: {}", r.text());
        assert!(r.json()["error"].as_str().is_some(), "{}", r.text());
    }
    let r = post(&srv, &[PB], b"\x0a\x05\x0a\x03\x0a\x01");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid OTLP protobuf"),
        "{}",
        r.text()
    );

    // kill -9 right after a 200: the acknowledged samples are there after
    // a restart.
    let t2 = t + 30_000;
    let r = post(&srv, &[PB], &export("checkout", t2, 77).encode_to_vec());
    assert_eq!(partial(&r).0, 1);
    srv.kill9();
    let srv = Server::start(&data, "");
    let at2 = t2 + 1000;
    assert_eq!(
        value(&srv, r#"http_server_requests_total{job="checkout"}"#, at2),
        77.0
    );
    assert_eq!(
        value(
            &srv,
            r#"http_server_duration_milliseconds_bucket{job="checkout",le="+Inf"}"#,
            at2
        ),
        10.0
    );
    assert_eq!(
        value(
            &srv,
            r#"http_server_requests_total{job="checkout-json"}"#,
            at
        ),
        7.0
    );
    assert_eq!(
        query_range_vector(
            &srv,
            r#"http_server_requests_total{job="checkout"}[10m]"#,
            at2
        ),
        json!([[t as f64 / 1000.0, "42"], [t2 as f64 / 1000.0, "77"]])
    );
}
