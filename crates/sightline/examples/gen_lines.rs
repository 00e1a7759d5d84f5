//! Writes realistic structlog JSON lines (the shape of the recorded fixture:
//! request ids, flows, users, HTTP fields, warnings, tracebacks) for benchmarks.
//!
//! `cargo run --release --example gen_lines -- N OUT.ndjson [SPAN_SECS]`
//!
//! Lines start at 2026-11-25T00:00:00Z (or at `GEN_START_UNIX` seconds), about
//! 250 µs apart, or spread evenly over `SPAN_SECS` (at most one day) when given.

use std::io::Write;

/// A small deterministic PRNG so every run generates the same lines.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let out = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "lines.ndjson".into());
    let span_us: Option<u64> = args
        .get(3)
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| s.min(86_399) * 1_000_000);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let services = [
        "assessments",
        "assessments",
        "assessments",
        "worker",
        "gateway",
    ];
    let paths = [
        "/assessments/{}/submit",
        "/assessments/{}/retake",
        "/users/{}/profile",
        "/login",
        "/health/ready",
    ];
    let skills = ["python", "sql", "go", "rust", "js"];
    // 2026-11-25T00:00:00Z, or GEN_START_UNIX (seconds) when set.
    let mut ts_us: u64 = std::env::var("GEN_START_UNIX")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(1_795_564_800_000_000, |s| s * 1_000_000);
    let mut req = String::new();
    let mut flow = String::new();
    let mut user = 0;
    for i in 0..n {
        ts_us += match span_us {
            Some(span) => rng.below((2 * span / n.max(1)).max(1)),
            None => 50 + rng.below(400),
        };
        if i % 6 == 0 {
            req = format!("req-{:016x}", rng.next());
            user = rng.below(5000);
            flow = if rng.below(4) == 0 {
                format!("retake-{:08x}", rng.next() as u32)
            } else {
                String::new()
            };
        }
        let secs = ts_us / 1_000_000;
        let (h, m, s) = ((secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
        let (y, mo, d) = civil_date(secs / 86400);
        let ts = format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{:06}Z",
            ts_us % 1_000_000
        );
        let svc = services[(i / 6 % 5) as usize];
        let path = paths[rng.below(5) as usize].replace("{}", &format!("a-{}", rng.below(900)));
        let roll = rng.below(100);
        let line = if !flow.is_empty() && i % 6 < 4 {
            let step =
                ["load_completed", "clear_answers", "enable_retake", "notify"][(i % 6) as usize];
            let ev = if i % 6 == 0 {
                "retake_flow_started"
            } else {
                "retake_flow_step"
            };
            format!(
                r#"{{"flow_id": "{flow}", "step": "{step}", "user_id": "u-{user}", "event": "{ev}", "request_id": "{req}", "method": "POST", "path": "{path}", "service": "{svc}", "level": "debug", "timestamp": "{ts}"}}"#
            )
        } else if roll < 70 {
            format!(
                r#"{{"user_id": "u-{user}", "assessment_id": "a-{}", "skill_area": "{}", "duration_ms": {}, "status": {}, "event": "request_completed", "request_id": "{req}", "method": "GET", "path": "{path}", "service": "{svc}", "level": "info", "timestamp": "{ts}"}}"#,
                rng.below(900),
                skills[rng.below(5) as usize],
                rng.below(900),
                [200, 200, 200, 201, 204][rng.below(5) as usize]
            )
        } else if roll < 92 {
            format!(
                r#"{{"reason": "invalid_question", "user_id": "u-{user}", "question_id": "q-{}", "event": "save_answer_skipped", "request_id": "{req}", "method": "POST", "path": "{path}", "service": "{svc}", "level": "warning", "timestamp": "{ts}"}}"#,
                rng.below(10000)
            )
        } else if rng.below(50) == 0 {
            format!(
                r#"{{"user_id": "u-{user}", "error_type": "TimeoutError", "event": "payment_call_failed", "request_id": "{req}", "method": "POST", "path": "{path}", "service": "{svc}", "level": "error", "timestamp": "{ts}", "exception": "Traceback (most recent call last):\n  File \"/app/payments.py\", line 42, in charge\n    raise TimeoutError(\"payments upstream timed out\")\nTimeoutError: payments upstream timed out"}}"#
            )
        } else {
            let a = rng.below(900);
            format!(
                r#"{{"user_id": "u-{user}", "assessment_id": "a-{a}", "error_type": "ValueError", "error_message": "score out of range for assessment a-{a}", "event": "risky_operation_failed", "request_id": "{req}", "method": "POST", "path": "{path}", "service": "{svc}", "level": "error", "timestamp": "{ts}", "exception": "Traceback (most recent call last):\n  File \"/app/service.py\", line 148, in submit\n    raise ValueError(f\"score out of range for assessment {{assessment_id}}\")\nValueError: score out of range for assessment a-{a}"}}"#
            )
        };
        writeln!(w, "{line}").unwrap();
    }
    w.flush().unwrap();
}

/// (year, month, day) of a day number since 1970-01-01 (proleptic Gregorian).
fn civil_date(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
