#![no_main]
//! OTLP logs decoding (both encodings) + normalization must never panic.
use libfuzzer_sys::fuzz_target;
use sightline_pipeline::normalize::{normalize_otlp, Context, Normalizer};
use sightline_pipeline::{ScrubConfig, Scrubber};
use sightline_protocol::{decode_logs, OtlpEncoding};

fuzz_target!(|data: &[u8]| {
    let n = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 4096);
    for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
        if let Ok(logs) = decode_logs(data, enc) {
            for l in logs {
                let _ = normalize_otlp(&n, l, Context { service: None, received_ns: 0 });
            }
        }
    }
});
