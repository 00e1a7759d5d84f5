#![no_main]
//! WAL payload decoding must reject garbage without panicking or over-allocating.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(recs) = sightline_store::codec::decode_logs(data) {
        assert_eq!(sightline_store::codec::encode_logs(&recs), data);
    }
});
