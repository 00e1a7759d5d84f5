//! Hostile input on every test run (the fuzz targets' entry points, fed random
//! and mutated bytes on the stable toolchain): no panic, bounded output.

use sightline_pipeline::normalize::{normalize_otlp, Context, Normalizer};
use sightline_pipeline::{ScrubConfig, Scrubber};
use sightline_protocol::{decode_logs, OtlpEncoding};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..(1 + rng.next() % 8) {
        if v.is_empty() {
            v.push(rng.next() as u8);
            continue;
        }
        let i = (rng.next() as usize) % v.len();
        match rng.next() % 4 {
            0 => v[i] = rng.next() as u8,
            1 => {
                v.remove(i);
            }
            2 => {
                let specials = b"{}[]\":,\\\xff\x00";
                v.insert(i, specials[(rng.next() as usize) % specials.len()])
            }
            _ => v.truncate(i),
        }
    }
    v
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/python-sdks")
            .join(rel),
    )
    .unwrap()
}

#[test]
fn mutated_structlog_lines_never_panic() {
    let n = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 2048);
    let body = fixture("structlog/app-stdout.log");
    let seeds: Vec<&[u8]> = sightline_protocol::lines(&body).map(|l| l.bytes).collect();
    let mut rng = Rng(42);
    let (mut ok, mut bad) = (0, 0);
    for i in 0..20_000 {
        let input = mutate(&mut rng, seeds[i % seeds.len()]);
        for line in sightline_protocol::lines(&input) {
            match n.line(
                line.bytes,
                Context {
                    service: Some("f"),
                    received_ns: 0,
                },
            ) {
                Ok((r, _)) => {
                    assert!(r.approx_bytes() <= 2048 + 2048, "{}", r.approx_bytes());
                    ok += 1;
                }
                Err(e) => {
                    assert!(!e.reason.is_empty());
                    bad += 1;
                }
            }
        }
    }
    assert!(
        ok > 1000 && bad > 1000,
        "mutations exercise both paths: {ok} ok, {bad} rejected"
    );
}

#[test]
fn mutated_otlp_bodies_never_panic() {
    let n = Normalizer::new(Scrubber::new(&ScrubConfig::default()), 2048);
    let seed = fixture("otlp/19-logs.pb");
    let mut rng = Rng(7);
    let mut decoded = 0;
    for _ in 0..5_000 {
        let input = mutate(&mut rng, &seed);
        for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
            if let Ok(logs) = decode_logs(&input, enc) {
                decoded += 1;
                for l in logs {
                    let _ = normalize_otlp(
                        &n,
                        l,
                        Context {
                            service: None,
                            received_ns: 0,
                        },
                    );
                }
            }
        }
    }
    assert!(decoded > 0);
}

#[test]
fn mutated_otlp_trace_bodies_never_panic() {
    let scrubber = Scrubber::new(&ScrubConfig::default());
    let seed = fixture("otlp/31-traces.pb");
    let mut rng = Rng(11);
    let (mut decoded, mut stored) = (0, 0);
    for _ in 0..3_000 {
        let input = mutate(&mut rng, &seed);
        for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
            if let Ok(spans) = sightline_protocol::otlp_traces::decode_traces(&input, enc) {
                decoded += 1;
                for s in spans {
                    if let Ok((span, _)) = sightline_pipeline::span::from_otlp(s, &scrubber) {
                        assert!(span.end_ns >= span.start_ns);
                        assert_eq!(span.trace_id.len(), 32);
                        stored += 1;
                    }
                }
            }
        }
    }
    assert!(decoded > 0 && stored > 0, "{decoded} {stored}");
}

#[test]
fn random_timestamps_never_panic() {
    let mut rng = Rng(3);
    for _ in 0..50_000 {
        let len = (rng.next() % 40) as usize;
        let s: String = (0..len)
            .map(|_| b"0123456789-:.TZ+ ,tz"[(rng.next() % 20) as usize] as char)
            .collect();
        let _ = sightline_pipeline::timefmt::parse_timestamp(&s);
    }
    for s in [
        "99999999999999999999",
        "9999-12-31T23:59:59.999999999+23:59",
        "0000-01-01T00:00:00Z",
        "18446744073709551615",
    ] {
        let _ = sightline_pipeline::timefmt::parse_timestamp(s);
    }
}
