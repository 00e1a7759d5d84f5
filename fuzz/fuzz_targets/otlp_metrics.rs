#![no_main]
//! OTLP metrics decoding (both encodings) + conversion to Prometheus series
//! must never panic, and what it yields must be well formed: every point
//! counted once, series sorted with valid names and labels, the output
//! within its budget.
use libfuzzer_sys::fuzz_target;
use sightline_protocol::otlp_metrics::{convert, decode_metrics, Limits};
use sightline_protocol::OtlpEncoding;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_label_value_bytes: 64,
        max_output_bytes: 1 << 20,
    };
    for enc in [OtlpEncoding::Protobuf, OtlpEncoding::Json] {
        let Ok(req) = decode_metrics(data, enc) else {
            continue;
        };
        let c = convert(&req, &limits);
        assert_eq!(c.accepted_points + c.rejected_points, c.total_points);
        assert!(c.total_points <= sightline_protocol::otlp_metrics::data_points(&req));
        let mut bytes = 0usize;
        for (i, s) in c.series.iter().enumerate() {
            assert!(i == 0 || c.series[i - 1].labels < s.labels);
            assert!(s.labels.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(!s.samples.is_empty());
            let name = s.name().as_bytes();
            assert!(!name.is_empty() && !name[0].is_ascii_digit());
            assert!(name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':'));
            for (n, v) in &s.labels {
                // Names and values within the limit (`__name__` may carry a
                // suffix such as `_bucket` past it).
                assert!(!v.is_empty() && v.len() <= limits.max_label_value_bytes + 16);
                assert!(n.len() <= limits.max_label_value_bytes);
                assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
                bytes += n.len() + v.len();
            }
        }
        assert!(bytes <= limits.max_output_bytes);
    }
});
