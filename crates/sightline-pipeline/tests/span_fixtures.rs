//! The recorded OTLP trace exports (opentelemetry-sdk 1.45.2 with the FastAPI
//! instrumentation) and the recorded Sentry transactions (sentry-sdk 2.75.0),
//! as the spans the span store keeps (snapshots); the same exports in OTLP's
//! JSON encoding decode to the same spans.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{json, Value};
use sightline_pipeline::sentry::{event, ItemContext};
use sightline_pipeline::span::{from_otlp, from_sentry};
use sightline_pipeline::{ScrubConfig, Scrubber, Span};
use sightline_protocol::otlp_traces::decode_traces;
use sightline_protocol::{envelope, OtlpEncoding};
use std::io::Read;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/python-sdks")
}

fn spans_of(body: &[u8], enc: OtlpEncoding) -> Vec<Span> {
    let s = Scrubber::new(&ScrubConfig::default());
    decode_traces(body, enc)
        .unwrap()
        .into_iter()
        .map(|o| from_otlp(o, &s).expect("every recorded span is valid").0)
        .collect()
}

fn as_json(spans: &[Span]) -> Vec<Value> {
    spans
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap();
            for k in ["attributes", "events", "resource"] {
                v[k] = serde_json::from_str(v[k].as_str().unwrap()).unwrap();
            }
            v
        })
        .collect()
}

#[test]
fn otlp_trace_exports() {
    for f in ["17-traces.pb", "31-traces.pb"] {
        let body = std::fs::read(fixtures().join("otlp").join(f)).unwrap();
        let spans = spans_of(&body, OtlpEncoding::Protobuf);
        assert!(!spans.is_empty());
        // Every span id is unique and every parent is in the export.
        let ids: std::collections::HashSet<_> = spans.iter().map(|s| &s.span_id).collect();
        assert_eq!(ids.len(), spans.len());
        assert!(spans
            .iter()
            .filter_map(|s| s.parent_span_id.as_ref())
            .all(|p| ids.contains(p)));
        insta::assert_json_snapshot!(f.replace('.', "_"), as_json(&spans));

        // The same export in OTLP/JSON (hex ids, string 64-bit ints).
        let req = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        let json_body = serde_json::to_vec(&req).unwrap();
        let text = String::from_utf8_lossy(&json_body);
        assert!(text.contains("\"traceId\":\"") && text.contains("\"startTimeUnixNano\":\""));
        assert_eq!(spans_of(&json_body, OtlpEncoding::Json), spans);
    }
}

#[test]
fn sentry_transactions_become_span_trees() {
    let scrubber = Scrubber::new(&ScrubConfig::default());
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("sentry"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-transaction.envelope.gz"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut out = Vec::new();
    for p in files {
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(&std::fs::read(&p).unwrap()[..])
            .read_to_end(&mut body)
            .unwrap();
        let env = envelope::parse(&body).unwrap();
        let header_id = env.event_id().map(String::from);
        let ctx = ItemContext {
            project_id: 42,
            received_ns: 1_796_000_000_000_000_000,
            envelope_event_id: header_id.as_deref(),
            fallback_event_id: "00000000000000000000000000000001",
            client_ip: None,
            keep_ip: false,
            max_item_bytes: 1 << 20,
        };
        for it in env.items.iter().filter(|i| i.kind == "transaction") {
            let (row, _) = event::normalize_transaction(it.payload, &ctx, &scrubber).unwrap();
            let spans = from_sentry(&row, &row.body, "assessments");
            // The transaction is the root; every child's parent is in it.
            assert_eq!(spans[0].span_id, row.span_id.clone().unwrap());
            let ids: Vec<&String> = spans.iter().map(|s| &s.span_id).collect();
            for s in &spans[1..] {
                assert!(ids.contains(&s.parent_span_id.as_ref().unwrap()), "{s:?}");
                assert_eq!(s.trace_id, spans[0].trace_id);
            }
            out.push(json!({
                "file": p.file_name().unwrap().to_string_lossy(),
                "spans": spans.iter().map(|s| json!({
                    "name": s.name, "op": s.op, "kind": s.kind, "service": s.service,
                    "status": s.status, "request_id": s.request_id,
                    "parent": s.parent_span_id.is_some(),
                    "duration_ns": s.duration_ns(),
                })).collect::<Vec<_>>(),
            }));
        }
    }
    insta::assert_json_snapshot!("sentry_transactions_as_spans", out);
}
