//! Every envelope sentry-sdk 2.75 sent in the recorded fixtures parses into the
//! item types the recording lists; every truncation and byte flip of them is
//! an error or a parse, never a panic.

use sightline_protocol::envelope;
use std::io::Read;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/python-sdks")
}

fn recorded() -> Vec<(String, Vec<u8>, Vec<String>)> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("requests.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for r in index.as_array().unwrap() {
        let file = r["file"].as_str().unwrap();
        if !file.starts_with("sentry/") {
            continue;
        }
        let gz = std::fs::read(fixtures().join(file)).unwrap();
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut body)
            .unwrap();
        let kinds = r["item_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        out.push((file.to_string(), body, kinds));
    }
    out
}

#[test]
fn recorded_envelopes_parse() {
    let all = recorded();
    assert!(all.len() >= 25, "fixtures missing: {}", all.len());
    for (file, body, kinds) in &all {
        let e = envelope::parse(body).unwrap_or_else(|err| panic!("{file}: {err}"));
        let got: Vec<&str> = e.items.iter().map(|i| i.kind.as_str()).collect();
        assert_eq!(got, *kinds, "{file}");
        for item in &e.items {
            if item
                .header
                .get("content_type")
                .and_then(|c| c.as_str())
                .is_some_and(|c| c.contains("json"))
            {
                serde_json::from_slice::<serde_json::Value>(item.payload)
                    .unwrap_or_else(|err| panic!("{file}: {} payload: {err}", item.kind));
            }
        }
    }
}

#[test]
fn truncated_and_flipped_envelopes_never_panic() {
    for (_, body, _) in recorded().iter().take(6) {
        for cut in 0..body.len() {
            let _ = envelope::parse(&body[..cut]);
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut b = body.clone();
            let at = (seed % b.len() as u64) as usize;
            b[at] = (seed >> 32) as u8;
            let _ = envelope::parse(&b);
        }
    }
}
