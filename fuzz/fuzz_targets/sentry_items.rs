//! Sentry item normalization on arbitrary bytes (events, transactions,
//! check-ins, sessions, client reports, logs): no panic; a stored event body
//! is valid JSON and its grouping hash is 32 hex digits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_pipeline::sentry::{event, items, ItemContext};
use sightline_pipeline::{Normalizer, ScrubConfig, Scrubber};

fuzz_target!(|data: &[u8]| {
    let ctx = ItemContext {
        project_id: 1,
        received_ns: 1_700_000_000_000_000_000,
        envelope_event_id: None,
        fallback_event_id: "00000000000000000000000000000001",
        client_ip: Some("127.0.0.1"),
        keep_ip: data.first() == Some(&b'k'),
        max_item_bytes: 1 << 20,
    };
    let n = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 64 * 1024);
    if let Ok((r, _)) = event::normalize_event(data, &ctx, &n.scrubber) {
        let _: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.fingerprint.len(), 32);
    }
    let _ = event::normalize_transaction(data, &ctx, &n.scrubber);
    let _ = items::check_in(data, &ctx);
    let _ = items::session(data, &ctx);
    let _ = items::sessions(data, &ctx);
    let _ = items::client_report(data, &ctx);
    let _ = items::logs(data, &ctx, "fuzz", &n);
});
