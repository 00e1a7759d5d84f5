//! Prometheus text / OpenMetrics exposition parsing on arbitrary bytes, in both
//! formats: no panic, at most one error and it names a line of the body,
//! everything yielded fits in the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sightline_protocol::exposition::{Entry, Format, Parser};

fuzz_target!(|data: &[u8]| {
    let last_line = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for format in [Format::Text, Format::OpenMetrics] {
        let mut errors = 0;
        for item in Parser::new(data, format) {
            match item {
                Ok(Entry::Sample(s)) => {
                    assert!(s.name.len() <= data.len());
                    for (k, v) in &s.labels {
                        assert!(k.len() + v.len() <= data.len());
                    }
                    if let Some(e) = &s.exemplar {
                        assert!(format == Format::OpenMetrics && e.labels.len() <= data.len());
                    }
                }
                Ok(Entry::Help { family, help }) => {
                    assert!(family.len() + help.len() <= data.len())
                }
                Ok(_) => {}
                Err(e) => {
                    errors += 1;
                    assert!(e.line >= 1 && e.line <= last_line, "{e}");
                }
            }
        }
        assert!(errors <= 1);
    }
});
