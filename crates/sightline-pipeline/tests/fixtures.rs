//! Snapshot tests: every line of the recorded structlog stdout and every record
//! of the recorded OTLP log export, normalized (input beside expected output).

use sightline_pipeline::normalize::{normalize_otlp, Context, DEFAULT_MAX_RECORD_BYTES};
use sightline_pipeline::{Normalizer, ScrubConfig, Scrubber};
use std::path::PathBuf;

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/python-sdks")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn normalizer() -> Normalizer {
    Normalizer::new(
        Scrubber::new(&ScrubConfig::default()),
        DEFAULT_MAX_RECORD_BYTES,
    )
}

/// Receive time used for every record so snapshots are stable.
const RECEIVED: i64 = 1_795_625_000_000_000_000;

#[test]
fn structlog_app_stdout() {
    let n = normalizer();
    let body = fixture("structlog/app-stdout.log");
    let ctx = Context {
        service: Some("assessments"),
        received_ns: RECEIVED,
    };
    let out: Vec<_> = sightline_protocol::lines(&body)
        .map(|l| {
            let (rec, scrubbed) = n
                .line(l.bytes, ctx)
                .expect("every fixture line is accepted");
            serde_json::json!({"line": l.number, "scrubbed": scrubbed, "record": rec.to_json()})
        })
        .collect();
    assert_eq!(out.len(), 31);
    insta::assert_json_snapshot!("structlog_app_stdout", out);
}

#[test]
fn otlp_logs_export() {
    let n = normalizer();
    let body = fixture("otlp/19-logs.pb");
    let logs =
        sightline_protocol::decode_logs(&body, sightline_protocol::OtlpEncoding::Protobuf).unwrap();
    assert!(!logs.is_empty());
    let ctx = Context {
        service: None,
        received_ns: RECEIVED,
    };
    let out: Vec<_> = logs
        .into_iter()
        .map(|l| {
            let (rec, scrubbed) = normalize_otlp(&n, l, ctx);
            serde_json::json!({"scrubbed": scrubbed, "record": rec.to_json()})
        })
        .collect();
    insta::assert_json_snapshot!("otlp_logs_export", out);
}
