//! The log query parser and time parser on arbitrary text: no panic, and every
//! error names a column inside the query (or just past its end).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Err(e) = sightline_query::lang::parse(s) {
            assert!(e.column >= 1 && e.column <= s.chars().count() + 1);
        }
        let _ = sightline_query::time::parse_time(s, 0);
        let _ = sightline_query::time::parse_duration(s);
    }
});
