#![no_main]
//! Timestamp parsing must never panic or overflow.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sightline_pipeline::timefmt::parse_timestamp(s);
    }
});
