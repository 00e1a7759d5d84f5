//! Sentry envelope parsing on arbitrary bytes: no panic, payloads inside the body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = sightline_protocol::envelope::parse(data) {
        for i in e.items {
            assert!(i.payload.len() <= data.len());
        }
    }
});
