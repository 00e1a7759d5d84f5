#![no_main]
//! WAL payload decoding must reject garbage without panicking or over-allocating,
//! and whatever it accepts must survive a re-encode unchanged.
use libfuzzer_sys::fuzz_target;
use sightline_store::codec::{decode_logs, encode_logs};

fuzz_target!(|data: &[u8]| {
    if let Ok(recs) = decode_logs(data) {
        assert_eq!(decode_logs(&encode_logs(&recs)).unwrap(), recs);
    }
});
