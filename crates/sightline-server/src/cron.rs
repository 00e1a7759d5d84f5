//! Cron monitor schedules as sentry-sdk declares them (`monitor_config.schedule`:
//! a five-field crontab or an interval), and when the next check-in is due.
//! Times are UTC; a `timezone` in the config is not applied.

use serde_json::Value;
use time::OffsetDateTime;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Bit sets of allowed minute, hour, day of month, month, day of week.
    Crontab {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        /// Both day fields restricted: either may match (cron's rule).
        dom_or_dow: bool,
    },
    Interval {
        seconds: i64,
    },
}

fn field(spec: &str, lo: u32, hi: u32) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {part:?}"));
        }
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                a.parse().map_err(|_| format!("bad number in {part:?}"))?,
                b.parse().map_err(|_| format!("bad number in {part:?}"))?,
            )
        } else {
            let a: u32 = range
                .parse()
                .map_err(|_| format!("bad number in {part:?}"))?;
            (a, if part.contains('/') { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("{part:?} is outside {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn macro_of(s: &str) -> Option<&'static str> {
    Some(match s {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

impl Schedule {
    pub fn parse_crontab(s: &str) -> Result<Schedule, String> {
        let s = macro_of(s.trim()).unwrap_or(s.trim());
        let f: Vec<&str> = s.split_whitespace().collect();
        let [mi, h, dom, mo, dow] = f.as_slice() else {
            return Err(format!("crontab {s:?} needs 5 fields"));
        };
        let mut dow_bits = field(&dow.replace('7', "0"), 0, 6)?;
        if dow.contains('7') {
            dow_bits |= 1;
        }
        Ok(Schedule::Crontab {
            minute: field(mi, 0, 59)?,
            hour: field(h, 0, 23)?,
            dom: field(dom, 1, 31)?,
            month: field(mo, 1, 12)?,
            dow: dow_bits,
            dom_or_dow: *dom != "*" && *dow != "*",
        })
    }

    /// From `monitor_config` (`{"schedule": {"type", "value", "unit"}}`).
    pub fn from_config(config: &Value) -> Option<Schedule> {
        let s = config.get("schedule")?;
        match s.get("type").and_then(Value::as_str)? {
            "crontab" => Schedule::parse_crontab(s.get("value")?.as_str()?).ok(),
            "interval" => {
                let n = s.get("value")?.as_i64()?;
                let unit = match s.get("unit").and_then(Value::as_str).unwrap_or("minute") {
                    "minute" => 60,
                    "hour" => 3600,
                    "day" => 86_400,
                    "week" => 7 * 86_400,
                    "month" => 30 * 86_400,
                    "year" => 365 * 86_400,
                    _ => return None,
                };
                (n > 0).then_some(Schedule::Interval { seconds: n * unit })
            }
            _ => None,
        }
    }

    /// The first scheduled run strictly after `after` (Unix seconds).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match *self {
            Schedule::Interval { seconds } => Some(after + seconds),
            Schedule::Crontab {
                minute,
                hour,
                dom,
                month,
                dow,
                dom_or_dow,
            } => {
                let mut t = (after / 60 + 1) * 60;
                let limit = after + 4 * 366 * 86_400;
                while t <= limit {
                    let d = OffsetDateTime::from_unix_timestamp(t).ok()?;
                    let day_ok = {
                        let a = dom >> d.day() & 1 == 1;
                        let b = dow >> d.weekday().number_days_from_sunday() & 1 == 1;
                        if dom_or_dow {
                            a || b
                        } else {
                            a && b
                        }
                    };
                    if month >> (d.month() as u8) & 1 == 0 || !day_ok {
                        // Next midnight.
                        t = (t / 86_400 + 1) * 86_400;
                        continue;
                    }
                    if hour >> d.hour() & 1 == 0 {
                        t = (t / 3600 + 1) * 3600;
                        continue;
                    }
                    if minute >> d.minute() & 1 == 0 {
                        t += 60;
                        continue;
                    }
                    return Some(t);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crontab_next_runs() {
        // 2026-11-25T16:43:37Z
        let t = 1_795_625_017;
        let every5 = Schedule::parse_crontab("*/5 * * * *").unwrap();
        assert_eq!(every5.next_after(t), Some(1_795_625_100)); // 16:45
        let nightly = Schedule::parse_crontab("0 2 * * *").unwrap();
        assert_eq!(nightly.next_after(t), Some(1_795_658_400)); // 11-26 02:00
        let mondays = Schedule::parse_crontab("30 9 * * 1").unwrap();
        assert_eq!(mondays.next_after(t), Some(1_796_031_000)); // Mon 11-30 09:30
        assert!(Schedule::parse_crontab("61 * * * *").is_err());
        assert!(Schedule::parse_crontab("* * *").is_err());
        assert_eq!(
            Schedule::parse_crontab("@daily").unwrap(),
            Schedule::parse_crontab("0 0 * * *").unwrap()
        );
    }

    #[test]
    fn interval_from_config() {
        let c = serde_json::json!({"schedule": {"type": "interval", "value": 2, "unit": "hour"}});
        assert_eq!(
            Schedule::from_config(&c),
            Some(Schedule::Interval { seconds: 7200 })
        );
        assert_eq!(Schedule::from_config(&serde_json::json!({})), None);
    }
}
