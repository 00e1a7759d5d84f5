//! Timestamp parsing and formatting without allocation: RFC 3339 / ISO 8601
//! with or without zone (naive means UTC), Python's `asctime` (`2026-11-25
//! 16:43:06,616`), and epoch seconds, milliseconds, microseconds or nanoseconds.

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of a nanosecond timestamp (UTC): the partition key.
/// Now, in nanoseconds since the epoch (0 if the clock is before it).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

pub fn day_of(ns: i64) -> String {
    let (y, m, d) = civil_from_days(ns.div_euclid(86_400_000_000_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Start of the UTC day of `ns`, in nanoseconds.
pub fn day_start(ns: i64) -> i64 {
    ns.div_euclid(86_400_000_000_000) * 86_400_000_000_000
}

/// RFC 3339 with nanoseconds and `Z`.
pub fn format_rfc3339_nanos(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Epoch number of unknown unit → nanoseconds, by magnitude.
pub fn epoch_to_ns(v: f64) -> Option<i64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ns = if v < 1e11 {
        v * 1e9
    } else if v < 1e14 {
        v * 1e6
    } else if v < 1e17 {
        v * 1e3
    } else {
        v
    };
    if ns > 9.2e18 {
        return None;
    }
    Some(ns as i64)
}

/// Integer epoch of unknown unit → nanoseconds, exactly.
pub fn epoch_int_to_ns(v: u64) -> Option<i64> {
    let ns = if v < 100_000_000_000 {
        v.checked_mul(1_000_000_000)?
    } else if v < 100_000_000_000_000 {
        v.checked_mul(1_000_000)?
    } else if v < 100_000_000_000_000_000 {
        v.checked_mul(1_000)?
    } else {
        v
    };
    i64::try_from(ns).ok()
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let c = *self.b.get(self.i)?;
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
            self.i += 1;
        }
        Some(v)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
}

/// Parses a timestamp string; `None` when it is not one we recognize.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit()) {
        return epoch_int_to_ns(s.parse::<u64>().ok()?);
    }
    if s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return epoch_to_ns(s.parse::<f64>().ok()?);
    }
    let mut c = Cur {
        b: s.as_bytes(),
        i: 0,
    };
    let year = c.digits(4)? as i64;
    if !c.eat(b'-') {
        return None;
    }
    let month = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let mut nanos: i64 = 0;
    if c.peek().is_none() {
        return secs.checked_mul(1_000_000_000);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let h = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let mi = c.digits(2)?;
    let mut sec = 0;
    if c.eat(b':') {
        sec = c.digits(2)?;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    secs += (h * 3600 + mi * 60 + sec) as i64;
    if c.eat(b'.') || c.eat(b',') {
        let mut scale = 100_000_000i64;
        let mut any = false;
        while let Some(d) = c.peek().filter(|d| d.is_ascii_digit()) {
            nanos += (d - b'0') as i64 * scale;
            scale /= 10;
            c.i += 1;
            any = true;
        }
        if !any {
            return None;
        }
    }
    // Zone: Z, ±HH:MM, ±HHMM, ±HH, or nothing (naive = UTC).
    match c.peek() {
        None => {}
        Some(b'Z') | Some(b'z') => {
            c.i += 1;
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2)? as i64;
            let mut om = 0i64;
            if c.eat(b':') {
                om = c.digits(2)? as i64;
            } else if c.peek().is_some_and(|d| d.is_ascii_digit()) {
                om = c.digits(2)? as i64;
            }
            let off = oh * 3600 + om * 60;
            secs -= if sign == b'+' { off } else { -off };
        }
        Some(b' ') if &s[c.i..] == " UTC" => c.i = s.len(),
        Some(_) => return None,
    }
    if c.i != s.len() {
        return None;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let z = parse_timestamp("2026-11-25T16:43:06.616854Z").unwrap();
        assert_eq!(format_rfc3339_nanos(z), "2026-11-25T16:43:06.616854000Z");
        assert_eq!(parse_timestamp("2026-11-25T16:43:06.616854").unwrap(), z);
        assert_eq!(
            parse_timestamp("2026-11-25T18:43:06.616854+02:00").unwrap(),
            z
        );
        assert_eq!(
            parse_timestamp("2026-11-25T11:43:06.616854-0500").unwrap(),
            z
        );
        assert_eq!(parse_timestamp("2026-11-25 16:43:06,616854").unwrap(), z);
        let s = parse_timestamp("1795624986").unwrap();
        assert_eq!(format_rfc3339_nanos(s), "2026-11-25T16:43:06.000000000Z");
        assert_eq!(parse_timestamp("1795624986616").unwrap(), s + 616_000_000);
        assert_eq!(
            parse_timestamp("1795624986616854").unwrap(),
            s + 616_854_000
        );
        assert_eq!(
            parse_timestamp("1795624986616854123").unwrap(),
            s + 616_854_123
        );
        assert_eq!(
            parse_timestamp("2026-11-25").unwrap(),
            parse_timestamp("2026-11-25T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-25T25:00:00Z",
            "2026-11-25T10:00:00Zjunk",
            "2026-11-25T10:00:00.",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn day_partition() {
        assert_eq!(
            day_of(parse_timestamp("2026-11-25T23:59:59.9Z").unwrap()),
            "2026-11-25"
        );
        assert_eq!(day_of(0), "1970-01-01");
    }
}
