#![no_main]
//! OTLP trace decoding (both encodings) + normalization into stored spans
//! must never panic, and every stored span must be well formed and bounded:
//! valid hex ids, end not before start, attributes and events as JSON within
//! the per-span limits, and the span store's WAL codec round-trips it.
use libfuzzer_sys::fuzz_target;
use sightline_pipeline::span::{from_otlp, MAX_ATTRIBUTES, MAX_EVENTS};
use sightline_pipeline::{ScrubConfig, Scrubber};
use sightline_protocol::otlp_traces::decode_traces;
use sightline_protocol::OtlpEncoding;

fuzz_target!(|data: &[u8]| {
    let scrubber = Scrubber::new(&ScrubConfig::default());
    for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
        let Ok(spans) = decode_traces(data, enc) else {
            continue;
        };
        let mut stored = Vec::new();
        for s in spans {
            let Ok((span, _)) = from_otlp(s, &scrubber) else {
                continue;
            };
            assert_eq!(span.trace_id.len(), 32);
            assert_eq!(span.span_id.len(), 16);
            assert!(span.end_ns >= span.start_ns);
            let attrs: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&span.attributes).unwrap();
            // The cap, plus the `sightline.dropped` count.
            assert!(attrs.len() <= MAX_ATTRIBUTES + 1);
            let events: Vec<serde_json::Value> = serde_json::from_str(&span.events).unwrap();
            assert!(events.len() <= MAX_EVENTS);
            stored.push(span);
        }
        let buf = sightline_store::spans::encode(&stored);
        assert_eq!(sightline_store::spans::decode(&buf).unwrap(), stored);
    }
});
