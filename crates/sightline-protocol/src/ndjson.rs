//! NDJSON framing: splits a body into numbered lines without copying.
//!
//! A line ends at `\n`; a trailing `\r` is dropped; blank lines are skipped but
//! still counted so that line numbers match what the client sent.

/// One non-blank line of a body, numbered from 1 as an editor would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub number: usize,
    pub bytes: &'a [u8],
}

/// Iterates the non-blank lines of `body`.
pub fn lines(body: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut rest = body;
    let mut number = 0usize;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        number += 1;
        let (mut line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        return Some(Line {
            number,
            bytes: line,
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_and_skips_blanks() {
        let body = b"a\r\n\n  \nb\nc";
        let got: Vec<_> = lines(body).map(|l| (l.number, l.bytes)).collect();
        assert_eq!(got, vec![(1, &b"a"[..]), (4, &b"b"[..]), (5, &b"c"[..])]);
    }

    #[test]
    fn empty_body_has_no_lines() {
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"\n\n").count(), 0);
    }
}
