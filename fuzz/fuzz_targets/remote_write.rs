//! Remote-write bodies (snappy + protobuf) on arbitrary bytes: no panic, and
//! never more memory than the decompression limit allows.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = sightline_protocol::remote_write::decode(data, 1 << 20) {
        // A decoded request re-encodes into a body that decodes again
        // (values may be NaN, so compare shapes, not equality).
        let again = sightline_protocol::remote_write::encode(&req);
        let back = sightline_protocol::remote_write::decode(&again, 1 << 22).expect("re-encoded body decodes");
        assert_eq!(back.timeseries.len(), req.timeseries.len());
    }
});
