#![no_main]
//! NDJSON framing + normalize + scrub must never panic.
use libfuzzer_sys::fuzz_target;
use sightline_pipeline::normalize::{Context, Normalizer};
use sightline_pipeline::{ScrubConfig, Scrubber};

fuzz_target!(|data: &[u8]| {
    let n = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 4096);
    for line in sightline_protocol::lines(data) {
        if let Ok((rec, _)) = n.line(line.bytes, Context { service: Some("f"), received_ns: 0 }) {
            assert!(rec.approx_bytes() <= 4096 + 2048);
        }
    }
});
