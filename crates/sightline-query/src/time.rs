//! Times and durations in queries: `start`/`end` as RFC 3339, epoch seconds or
//! relative to now (`-15m`, `now`, `now-1h`), durations as `500ms`, `1m`, `2h`, `7d`.

use sightline_pipeline::timefmt;

/// Parses a duration (`250ms`, `30s`, `15m`, `2h`, `7d`, `1w`, or a sum like
/// `1h30m`) into nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("expected a duration such as 30s, 15m, 1h or 7d".into());
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let n: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: bad number"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: i64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "w" => 7 * 86_400_000_000_000,
            "" => {
                return Err(format!(
                    "invalid duration {s:?}: missing unit (ms, s, m, h, d or w)"
                ))
            }
            u => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {u:?} (expected ms, s, m, h, d or w)"
                ))
            }
        };
        rest = &rest[unit_len..];
        let v = n * unit as f64;
        if !v.is_finite() || v > 1e18 {
            return Err(format!("duration {s:?} is too long"));
        }
        total = total.saturating_add(v as i64);
        if total > 1_000_000_000_000_000_000 {
            return Err(format!("duration {s:?} is too long"));
        }
    }
    Ok(total)
}

/// Parses a point in time relative to `now_ns`: `now`, `now-15m`, `-15m`,
/// `15m` (ago), RFC 3339 / ISO 8601, or epoch seconds/milliseconds/nanoseconds.
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() || s == "now" {
        return Ok(now_ns);
    }
    if let Some(rel) = s.strip_prefix("now") {
        let rel = rel.trim();
        if let Some(d) = rel.strip_prefix('-') {
            return Ok(now_ns.saturating_sub(parse_duration(d)?));
        }
        if let Some(d) = rel.strip_prefix('+') {
            return Ok(now_ns.saturating_add(parse_duration(d)?));
        }
        return Err(format!(
            "invalid time {s:?}: expected now, now-15m or now+1h"
        ));
    }
    if let Some(d) = s.strip_prefix('-') {
        return Ok(now_ns.saturating_sub(parse_duration(d)?));
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let v: f64 = s
            .parse()
            .map_err(|_| format!("invalid time {s:?}: bad number"))?;
        return timefmt::epoch_to_ns(v).ok_or_else(|| format!("time {s:?} is out of range"));
    }
    if let Some(ns) = timefmt::parse_timestamp(s) {
        return Ok(ns);
    }
    if let Ok(d) = parse_duration(s) {
        return Ok(now_ns.saturating_sub(d));
    }
    Err(format!(
        "invalid time {s:?}: expected RFC 3339 (2026-11-25T16:43:06Z), epoch seconds, now, or relative like -15m"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m").unwrap(), 60_000_000_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("1000000000s1000000000s1000000000s1000000000s1000000000s").is_err());
    }

    #[test]
    fn times() {
        let now = 1_795_625_000_000_000_000;
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("-15m", now).unwrap(), now - 900_000_000_000);
        assert_eq!(parse_time("now-1h", now).unwrap(), now - 3_600_000_000_000);
        assert_eq!(parse_time("1h", now).unwrap(), now - 3_600_000_000_000);
        assert_eq!(
            parse_time("2026-11-25T16:43:20Z", now).unwrap(),
            1_795_625_000_000_000_000
        );
        assert_eq!(
            parse_time("1795625000", now).unwrap(),
            1_795_625_000_000_000_000
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("now*2", now).is_err());
    }
}
