//! The exposition parser on what prometheus_client 0.26 served in the recorded
//! fixtures (both files parse, and agree on the series they share), and on
//! hostile bodies: huge values, invalid UTF-8, truncation at every byte,
//! duplicate labels, bad floats, a missing or followed `# EOF`, a million
//! lines. Never a panic; every error names a line of the body.

use sightline_protocol::exposition::{
    parse_all, Entry, Format, MetricType, ParseError, Parser, Sample,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/python-sdks/prometheus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const TEXT: &str = "metrics-text-0.0.4.txt";
const OPENMETRICS: &str = "metrics-openmetrics-1.0.txt";

#[derive(Debug, Default, PartialEq)]
struct Counts {
    help: usize,
    types: usize,
    units: usize,
    samples: usize,
}

fn count(entries: &[Entry<'_>]) -> Counts {
    let mut c = Counts::default();
    for e in entries {
        match e {
            Entry::Help { .. } => c.help += 1,
            Entry::Type { .. } => c.types += 1,
            Entry::Unit { .. } => c.units += 1,
            Entry::Sample(_) => c.samples += 1,
        }
    }
    c
}

fn samples<'e, 'a>(entries: &'e [Entry<'a>]) -> impl Iterator<Item = &'e Sample<'a>> {
    entries.iter().filter_map(|e| match e {
        Entry::Sample(s) => Some(s),
        _ => None,
    })
}

fn find<'e, 'a>(entries: &'e [Entry<'a>], name: &str, labels: &[(&str, &str)]) -> &'e Sample<'a> {
    samples(entries)
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|((k, v), (wk, wv))| k == wk && v == wv)
        })
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// Every entry before the first error, and that error.
fn until_error(body: &[u8], format: Format) -> (Vec<Entry<'_>>, Option<ParseError>) {
    let mut ok = Vec::new();
    for item in Parser::new(body, format) {
        match item {
            Ok(e) => ok.push(e),
            Err(e) => return (ok, Some(e)),
        }
    }
    (ok, None)
}

type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

fn series(entries: &[Entry<'_>]) -> Series {
    let mut out = Series::new();
    for s in samples(entries) {
        let labels = s
            .labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(
            out.insert((s.name.to_string(), labels), s.value).is_none(),
            "series {} twice",
            s.name
        );
    }
    out
}

#[test]
fn text_fixture_parses_fully() {
    let body = fixture(TEXT);
    let entries = parse_all(&body, Format::Text).unwrap();
    assert_eq!(
        count(&entries),
        Counts {
            help: 17,
            types: 17,
            units: 0,
            samples: 99
        }
    );

    let kinds: Vec<_> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Type { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == MetricType::Counter).count(),
        6
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == MetricType::Gauge).count(),
        10
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == MetricType::Histogram)
            .count(),
        1
    );
    assert_eq!(
        entries[0],
        Entry::Help {
            family: "python_gc_objects_collected_total",
            help: Cow::Borrowed("Objects collected during gc"),
        }
    );
    assert_eq!(
        entries[1],
        Entry::Type {
            family: "python_gc_objects_collected_total",
            kind: MetricType::Counter,
        }
    );

    // A counter's _total sample.
    let gc = find(
        &entries,
        "python_gc_objects_collected_total",
        &[("generation", "0")],
    );
    assert_eq!(gc.value, 644.0);
    assert_eq!((gc.timestamp_ms, &gc.exemplar), (None, &None));
    let posts = find(
        &entries,
        "http_requests_total",
        &[
            ("method", "POST"),
            ("path", "/assessments/{assessment_id}/submit"),
            ("status", "500"),
        ],
    );
    assert_eq!(posts.value, 1.0);

    // The +Inf bucket, labels in the order written, values borrowed.
    let inf = find(
        &entries,
        "http_request_duration_seconds_bucket",
        &[("le", "+Inf"), ("method", "GET"), ("path", "/health/ready")],
    );
    assert_eq!(inf.value, 2.0);
    assert!(inf
        .labels
        .iter()
        .all(|(k, v)| matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_)))));
    let sum = find(
        &entries,
        "http_request_duration_seconds_sum",
        &[
            ("method", "POST"),
            ("path", "/assessments/{assessment_id}/submit"),
        ],
    );
    assert_eq!(sum.value, 0.053629668000041875);

    // _created samples (prometheus_client exposes them as gauges in 0.0.4).
    let created = find(
        &entries,
        "http_requests_created",
        &[("method", "POST"), ("path", "/login"), ("status", "401")],
    );
    assert_eq!(created.value, 1.79562498676983e9);
    assert_eq!(
        samples(&entries)
            .filter(|s| s.name.ends_with("_created"))
            .count(),
        17
    );
    let info = find(
        &entries,
        "python_info",
        &[
            ("implementation", "CPython"),
            ("major", "3"),
            ("minor", "11"),
            ("patchlevel", "7"),
            ("version", "3.11.7"),
        ],
    );
    assert_eq!(info.value, 1.0);
    assert_eq!(
        find(&entries, "process_virtual_memory_bytes", &[]).value,
        383_938_560.0
    );
}

/// The file recorded as the OpenMetrics answer has no `# EOF` line (nor any
/// other OpenMetrics-only syntax): prometheus_client served the 0.0.4 text
/// format. As OpenMetrics it parses line for line and then fails on the
/// missing `# EOF`, exactly as Prometheus would refuse it; as text it parses.
#[test]
fn openmetrics_fixture_parses_until_the_missing_eof() {
    let body = fixture(OPENMETRICS);
    assert!(!body.windows(5).any(|w| w == b"# EOF"));
    let lines = body.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, 145);

    let (entries, err) = until_error(&body, Format::OpenMetrics);
    assert_eq!(
        err,
        Some(ParseError {
            line: 146,
            message: "missing # EOF".into()
        })
    );
    assert_eq!(err.unwrap().to_string(), "line 146: missing # EOF");
    assert_eq!(
        count(&entries),
        Counts {
            help: 17,
            types: 17,
            units: 0,
            samples: 111
        }
    );
    let inf = find(
        &entries,
        "http_request_duration_seconds_bucket",
        &[("le", "+Inf"), ("method", "GET"), ("path", "/metrics")],
    );
    assert_eq!(inf.value, 1.0);
    let created = find(
        &entries,
        "http_request_duration_seconds_created",
        &[("method", "GET"), ("path", "/metrics")],
    );
    assert_eq!(created.value, 1.7956249868393188e9);
    let total = find(
        &entries,
        "http_requests_total",
        &[("method", "GET"), ("path", "/metrics"), ("status", "200")],
    );
    assert_eq!(total.value, 1.0);
    assert_eq!(
        samples(&entries)
            .filter(|s| s.name.ends_with("_created"))
            .count(),
        19
    );

    // Read as what it really is, it parses whole, with the same entries.
    let as_text = parse_all(&body, Format::Text).unwrap();
    assert_eq!(as_text, entries);
}

#[test]
fn both_fixtures_agree_on_the_series_they_share() {
    let text_body = fixture(TEXT);
    let om_body = fixture(OPENMETRICS);
    let text = series(&parse_all(&text_body, Format::Text).unwrap());
    let (om_entries, _) = until_error(&om_body, Format::OpenMetrics);
    let om = series(&om_entries);
    assert_eq!((text.len(), om.len()), (99, 111));

    let mut shared = 0;
    for (key, value) in &text {
        let Some(other) = om.get(key) else {
            panic!("{key:?} only in the text exposition")
        };
        shared += 1;
        if !key.0.ends_with("_created") {
            assert_eq!(value.to_bits(), other.to_bits(), "{key:?}");
        }
    }
    assert_eq!(shared, 99);
    // The OpenMetrics scrape came later: the only new series are the ones the
    // first GET /metrics created.
    let only_om: Vec<_> = om.keys().filter(|k| !text.contains_key(*k)).collect();
    assert_eq!(only_om.len(), 12);
    assert!(only_om
        .iter()
        .all(|(_, labels)| labels.contains(&("path".to_string(), "/metrics".to_string()))));
}

#[test]
fn huge_label_value_parses_in_both_formats() {
    const MIB: usize = 1 << 20;
    let big = "x".repeat(10 * MIB);
    for format in [Format::Text, Format::OpenMetrics] {
        let body = format!("big{{v=\"{big}\",w=\"1\"}} 1 2\n# EOF\n");
        let entries = parse_all(body.as_bytes(), format).unwrap();
        let Entry::Sample(s) = &entries[0] else {
            panic!()
        };
        assert!(matches!(&s.labels[0].1, Cow::Borrowed(v) if v.len() == 10 * MIB));
        assert_eq!(s.labels[1].1, "1");
    }
    // Escaped: unescaped once, linearly.
    let escaped = "\\n".repeat(5 * MIB);
    let body = format!("big{{v=\"{escaped}\"}} 1\n");
    let entries = parse_all(body.as_bytes(), Format::Text).unwrap();
    let Entry::Sample(s) = &entries[0] else {
        panic!()
    };
    assert!(
        matches!(&s.labels[0].1, Cow::Owned(v) if v.len() == 5 * MIB && v.bytes().all(|b| b == b'\n'))
    );
    // Unterminated: an error, not a hang.
    let body = format!("big{{v=\"{big}");
    for format in [Format::Text, Format::OpenMetrics] {
        let e = parse_all(body.as_bytes(), format).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("unterminated"), "{e}");
        assert!(e.message.len() < 200);
    }
    // A huge bad value is named, but cut short in the message.
    let body = format!("m {big}\n");
    let e = parse_all(body.as_bytes(), Format::Text).unwrap_err();
    assert!(
        e.message.contains("invalid value \"xxx"),
        "{}",
        &e.message[..100]
    );
    assert!(e.message.len() < 200);
}

#[test]
fn invalid_utf8_is_refused_with_its_line() {
    for format in [Format::Text, Format::OpenMetrics] {
        let e = parse_all(b"ok 1\nbad{a=\"x\xff\xfey\"} 1\n# EOF\n", format).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not valid UTF-8"), "{e}");
        let e = parse_all(b"ok 1\nok 2\n# HELP m caf\xe9\n# EOF\n", format).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("UTF-8"), "{e}");
        // A stray byte where a name should be.
        let e = parse_all(b"\xc3\xa9t\xc3\xa9 1\n# EOF\n", format).unwrap_err();
        assert_eq!(e.line, 1);
    }
    // Valid multi-byte UTF-8 is fine.
    let e = parse_all("m{city=\"Zürich 東京\"} 1\n".as_bytes(), Format::Text).unwrap();
    let Entry::Sample(s) = &e[0] else { panic!() };
    assert_eq!(s.labels[0].1, "Zürich 東京");
}

const SMALL_TEXT: &str = "# HELP req_total Requests \\\\ served.\n\
# TYPE req_total counter\n\
req_total{code=\"200\",path=\"/a\\\"b\"} 3 1700000000000\n\
\n\
# a comment\n\
lat_bucket{le=\"+Inf\"} 7\n\
lat_sum 1.5e-3\n";

const SMALL_OM: &str = "# TYPE req counter\n\
# HELP req Requests \\\" served.\n\
# UNIT lat_seconds seconds\n\
req_total{code=\"200\",path=\"/a\\\"b\"} 3 1700000000.5 # {trace_id=\"abc\"} 1 1700000000\n\
req_created{code=\"200\"} 1700000000\n\
lat_seconds_bucket{le=\"+Inf\"} 7\n\
# EOF\n";

#[test]
fn truncation_at_every_byte_never_panics() {
    for (body, format) in [(SMALL_TEXT, Format::Text), (SMALL_OM, Format::OpenMetrics)] {
        let body = body.as_bytes();
        let full = parse_all(body, format).unwrap();
        assert!(full.len() >= 5);
        for cut in 0..=body.len() {
            let part = &body[..cut];
            let lines = part.iter().filter(|&&b| b == b'\n').count() + 1;
            match parse_all(part, format) {
                Ok(entries) => {
                    assert!(entries.len() <= full.len());
                    if format == Format::OpenMetrics {
                        assert!(cut + 1 >= body.len(), "accepted without # EOF at {cut}");
                    }
                }
                Err(e) => {
                    assert!(e.line >= 1 && e.line <= lines, "{cut}: {e}");
                    assert!(!e.message.is_empty());
                }
            }
        }
        // Every cut at a line boundary of the text format parses.
        if format == Format::Text {
            for (i, _) in body.iter().enumerate().filter(|(_, &b)| b == b'\n') {
                parse_all(&body[..=i], format).unwrap();
            }
        }
        // Any single byte replaced by a troublemaker: no panic either.
        for i in 0..body.len() {
            for bad in [b'"', b'\\', b'\n', b'{', b'}', b',', b' ', b'#', 0, 0xff] {
                let mut b = body.to_vec();
                b[i] = bad;
                let _ = parse_all(&b, format);
            }
        }
    }
}

#[test]
fn duplicate_label_names_are_refused() {
    for (body, format) in [
        ("m{a=\"1\",b=\"2\",a=\"3\"} 1\n", Format::Text),
        (
            "ok 1\nm{a=\"1\",b=\"2\",a=\"3\"} 1\n# EOF\n",
            Format::OpenMetrics,
        ),
    ] {
        let e = parse_all(body.as_bytes(), format).unwrap_err();
        assert!(e.message.contains("label a appears more than once"), "{e}");
    }
    let e = parse_all(
        b"c_total 1 # {t=\"1\",t=\"2\"} 1\n# EOF\n",
        Format::OpenMetrics,
    )
    .unwrap_err();
    assert!(e.message.contains("more than once"), "{e}");
    // Same value under different names is fine.
    assert!(parse_all(b"m{a=\"1\",b=\"1\"} 1\n", Format::Text).is_ok());
}

#[test]
fn bad_floats_are_named() {
    for (tok, format) in [
        ("1,5", Format::Text),
        ("0x1p3", Format::Text),
        ("1_000", Format::OpenMetrics),
        ("12abc", Format::OpenMetrics),
        ("1e999", Format::Text),
        ("+nan", Format::OpenMetrics),
    ] {
        let body = format!("ok 1\nm {tok}\n# EOF\n");
        let e = parse_all(body.as_bytes(), format).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains(&format!("{tok:?}")), "{e}");
    }
    // What Prometheus does accept.
    for (tok, want) in [
        ("NaN", f64::NAN),
        ("+Inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
        ("Inf", f64::INFINITY),
        ("1.5e+09", 1.5e9),
        ("-0.0", -0.0),
    ] {
        for format in [Format::Text, Format::OpenMetrics] {
            let body = format!("m {tok}\n# EOF\n");
            let e = parse_all(body.as_bytes(), format).unwrap();
            let Entry::Sample(s) = &e[0] else { panic!() };
            assert!(s.value.to_bits() == want.to_bits() || (want.is_nan() && s.value.is_nan()));
        }
    }
}

#[test]
fn openmetrics_eof_rules() {
    let e = parse_all(b"a 1\nb 2\n", Format::OpenMetrics).unwrap_err();
    assert_eq!(
        e,
        ParseError {
            line: 3,
            message: "missing # EOF".into()
        }
    );
    let e = parse_all(b"", Format::OpenMetrics).unwrap_err();
    assert_eq!(e.line, 1);
    // Cut inside the last line.
    let e = parse_all(b"a 1\nb 2", Format::OpenMetrics).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("missing # EOF"), "{e}");
    // `# EOF` with or without its newline, then nothing.
    assert_eq!(
        parse_all(b"a 1\n# EOF", Format::OpenMetrics).unwrap().len(),
        1
    );
    assert_eq!(parse_all(b"# EOF\n", Format::OpenMetrics).unwrap().len(), 0);
    for (body, line) in [
        (&b"a 1\n# EOF\nb 2\n"[..], 3),
        (b"a 1\n# EOF\n\n", 3),
        (b"# EOF\n# EOF\n", 2),
        (b"a 1\n# EOF extra\n", 2),
    ] {
        let e = parse_all(body, Format::OpenMetrics).unwrap_err();
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains("after # EOF"), "{e}");
    }
    // In the text format `# EOF` is only a comment.
    let e = parse_all(b"a 1\n# EOF\nb 2\n", Format::Text).unwrap();
    assert_eq!(e.len(), 2);
}

#[test]
fn a_million_lines_stream() {
    const N: usize = 1_000_000;
    let mut body = Vec::with_capacity(N * 32);
    for i in 0..N {
        body.extend_from_slice(format!("m{{i=\"{}\"}} {}.5\n", i % 1000, i).as_bytes());
    }
    let mut om = body.clone();
    om.extend_from_slice(b"# EOF\n");
    for (body, format) in [(&body, Format::Text), (&om, Format::OpenMetrics)] {
        let mut n = 0usize;
        let mut last = 0.0;
        for entry in Parser::new(body, format) {
            match entry.unwrap() {
                Entry::Sample(s) => {
                    n += 1;
                    last = s.value;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(n, N);
        assert_eq!(last, (N - 1) as f64 + 0.5);
    }
    // A million blank and comment lines, then an error: its line is counted.
    let mut body = b"# c\n\n".repeat(N / 2);
    body.extend_from_slice(b"m{\n");
    let e = parse_all(&body, Format::Text).unwrap_err();
    assert_eq!(e.line, N + 1);
}

#[test]
fn escapes_in_both_formats() {
    let text = "# HELP m a\\\\b\\nc\\\"d\n\
                m{v=\"q\\\"\\\\\\n\\tx\",plain=\"p\"} 1\n";
    let e = parse_all(text.as_bytes(), Format::Text).unwrap();
    // Text HELP knows only \\ and \n.
    assert_eq!(
        e[0],
        Entry::Help {
            family: "m",
            help: Cow::Owned("a\\b\nc\\\"d".into())
        }
    );
    let Entry::Sample(s) = &e[1] else { panic!() };
    assert_eq!(s.labels[0].1, "q\"\\\n\\tx");
    assert!(matches!(s.labels[0].1, Cow::Owned(_)));
    assert!(matches!(s.labels[1].1, Cow::Borrowed("p")));

    let om = "# HELP m a\\\\b\\nc\\\"d\n\
              m_total{v=\"q\\\"\\\\\\n\"} 1 # {e=\"x\\ny\"} 2\n\
              # EOF\n";
    let e = parse_all(om.as_bytes(), Format::OpenMetrics).unwrap();
    // OpenMetrics HELP uses the label-value escapes, \" included.
    assert_eq!(
        e[0],
        Entry::Help {
            family: "m",
            help: Cow::Owned("a\\b\nc\"d".into())
        }
    );
    let Entry::Sample(s) = &e[1] else { panic!() };
    assert_eq!(s.labels[0].1, "q\"\\\n");
    assert_eq!(
        s.exemplar.as_ref().unwrap().labels,
        vec![("e".to_string(), "x\ny".to_string())]
    );
}

#[test]
fn parser_ends_after_its_error() {
    let mut p = Parser::new(b"a 1\nb{\nc 3\n", Format::Text);
    assert!(matches!(p.next(), Some(Ok(Entry::Sample(_)))));
    assert_eq!(p.next().unwrap().unwrap_err().line, 2);
    assert!(p.next().is_none());
    assert!(p.next().is_none());
}

/// A stable-toolchain stand-in for the fuzz target: random edits of valid
/// bodies, parsed in both formats. No panic, at most one error, and it names a
/// line of the body.
#[test]
fn random_edits_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rand = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    const PIECES: &[&[u8]] = &[
        b"\"",
        b"\\",
        b"\n",
        b"{",
        b"}",
        b",",
        b"=",
        b" ",
        b"\t",
        b" # {",
        b"# EOF\n",
        b"# EOF",
        b"NaN",
        b"+Inf",
        b"_total",
        b"_bucket",
        b"1e400",
        b"0x1p3",
        b"\xff",
        b"\0",
        b"# HELP ",
        b"# TYPE x ",
        b"# UNIT ",
        b"\\n",
        b"\\\"",
    ];
    let fixture = fixture(TEXT);
    let bases: [&[u8]; 3] = [SMALL_TEXT.as_bytes(), SMALL_OM.as_bytes(), &fixture[..600]];
    for _ in 0..20_000 {
        let mut body = bases[rand(bases.len())].to_vec();
        for _ in 0..1 + rand(4) {
            let at = rand(body.len() + 1);
            match rand(4) {
                0 if at < body.len() => body[at] = rand(256) as u8,
                1 => {
                    let piece = PIECES[rand(PIECES.len())];
                    body.splice(at..at, piece.iter().copied());
                }
                2 => body.truncate(at),
                _ => {
                    let end = (at + rand(16)).min(body.len());
                    body.drain(at..end);
                }
            }
        }
        let last_line = body.iter().filter(|&&b| b == b'\n').count() + 1;
        for format in [Format::Text, Format::OpenMetrics] {
            let mut errors = 0;
            for item in Parser::new(&body, format) {
                match item {
                    Ok(Entry::Sample(s)) => {
                        assert!(s
                            .labels
                            .iter()
                            .all(|(k, v)| k.len() + v.len() <= body.len()));
                        assert!(format == Format::OpenMetrics || s.exemplar.is_none());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        errors += 1;
                        assert!(e.line >= 1 && e.line <= last_line, "{e} in {body:?}");
                    }
                }
            }
            assert!(errors <= 1);
        }
    }
}
