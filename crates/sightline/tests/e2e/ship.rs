//! `sightline run` and `sightline ship`: the shipper against a real server —
//! pass-through, exit codes, signal forwarding, retry while the server is
//! down, the bounded buffer, files, rotation and stdin.

use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `sightline <sub> --service <service> --server <url>`, isolated from the
/// caller's environment.
fn shipper_cmd(sub: &str, service: &str, server: &str) -> Command {
    let mut c = Command::new(bin());
    c.args([sub, "--service", service, "--server", server])
        .env_remove("SIGHTLINE_URL")
        .env_remove("SIGHTLINE_INGEST_KEY");
    c
}

/// The stored messages of a service, oldest first.
fn messages(s: &Server, service: &str) -> Vec<String> {
    let mut logs = s.logs(&format!("service={service}&limit=1000"));
    logs.reverse();
    logs.iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Polls until the service has at least `n` rows (or `within` passes), then
/// returns them sorted.
fn wait_for(s: &Server, service: &str, n: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let mut got = messages(s, service);
        if got.len() >= n || Instant::now() >= deadline {
            got.sort();
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn numbered(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

/// Appends lines (each with its `\n`) to `path`, creating it if needed.
fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn stop_with_sigterm(mut child: Child) -> (Option<i32>, String) {
    signal(child.id(), libc::SIGTERM);
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("sightline did not stop after SIGTERM; stderr: {err}")
    });
    (status.code(), err)
}

#[test]
fn run_passes_output_through_ships_both_streams_and_keeps_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let out = shipper_cmd("run", "t1", &s.url(""))
        .args([
            "--",
            "sh",
            "-c",
            r#"echo '{"event":"hello","level":"info","user_id":"u-1"}'; echo plain text line; echo to-stderr >&2; exit 3"#,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert_eq!(
        stdout,
        "{\"event\":\"hello\",\"level\":\"info\",\"user_id\":\"u-1\"}\nplain text line\n"
    );
    assert_eq!(stderr, "to-stderr\n", "nothing of ours when all went well");

    // Shipped before exit: acknowledged lines are queryable, no polling needed.
    let logs = s.logs("service=t1&limit=1000");
    let got: Vec<&str> = logs
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        sorted(got.iter().map(|m| m.to_string()).collect()),
        ["hello", "plain text line", "to-stderr"]
    );
    let hello = logs.iter().find(|l| l["message"] == "hello").unwrap();
    assert_eq!(hello["level"], "info");
    assert_eq!(hello["service"], "t1");
    assert_eq!(
        hello["user_id"], "u-1",
        "JSON lines are parsed, not wrapped"
    );
}

#[test]
fn run_reports_a_command_that_cannot_start() {
    let out = shipper_cmd("run", "t1", "http://127.0.0.1:9")
        .args(["--", "/nonexistent/definitely-not-here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run"));

    let dir = tempfile::tempdir().unwrap();
    let not_exec = dir.path().join("script.sh");
    std::fs::write(&not_exec, "#!/bin/sh\necho hi\n").unwrap();
    let out = shipper_cmd("run", "t1", "http://127.0.0.1:9")
        .arg("--")
        .arg(&not_exec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126));
}

#[test]
fn run_forwards_sigterm_to_the_child_and_exits_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let mut child = shipper_cmd("run", "t2", &s.url(""))
        .args([
            "--",
            "sh",
            "-c",
            r#"trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.1; done"#,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    signal(child.id(), libc::SIGTERM);
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("sightline exits");
    assert_eq!(status.code(), Some(7), "the child's exit code");
    assert_eq!(lines.next().unwrap().unwrap(), "got-term");
    assert_eq!(sorted(messages(&s, "t2")), ["got-term", "ready"]);
}

#[test]
fn run_retries_until_the_server_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = shipper_cmd("run", "t3", &url)
        .args([
            "--",
            "sh",
            "-c",
            "i=1; while [ $i -le 50 ]; do echo line-$i; i=$((i+1)); done; sleep 3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let s = Server::start_on(
        &dir.path().join("data"),
        &format!("127.0.0.1:{port}"),
        port,
        "",
    );
    let status = wait_timeout(&mut child, Duration::from_secs(15)).expect("sightline exits");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(
        err.contains("retrying"),
        "the outage is reported once: {err}"
    );
    assert!(!err.contains("dropped"), "{err}");
    assert_eq!(sorted(messages(&s, "t3")), sorted(numbered("line", 1..=50)));
}

#[test]
fn run_drops_the_oldest_lines_when_the_buffer_is_full() {
    let port = free_port(); // nothing listens there
    let out = shipper_cmd("run", "t4", &format!("http://127.0.0.1:{port}"))
        .args(["--buffer-lines", "10", "--flush-timeout", "1s", "--"])
        .args([
            "sh",
            "-c",
            "i=1; while [ $i -le 1000 ]; do echo line-$i; i=$((i+1)); done; exit 4",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(4), "stderr: {stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        1000,
        "every line still passed through"
    );
    assert!(
        stderr.contains("sightline: dropped 990 lines in total (buffer full; server unreachable?)"),
        "{stderr}"
    );
    assert!(stderr.contains("sightline: 10 lines not sent"), "{stderr}");
}

#[test]
fn ship_a_file_stores_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let file = dir.path().join("app.log");
    let mut text = String::new();
    for i in 1..=300 {
        text.push_str(&format!("{{\"event\":\"ev-{i}\",\"level\":\"warning\"}}\n"));
        if i % 100 == 0 {
            text.push_str("\r\n\n"); // blank lines are skipped
        }
    }
    text.push_str("last line without newline");
    std::fs::write(&file, text).unwrap();
    let out = shipper_cmd("ship", "t5", &s.url(""))
        .args(["--batch-lines", "64"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("shipped 301 lines"), "{stderr}");
    let mut want = numbered("ev", 1..=300);
    want.push("last line without newline".into());
    assert_eq!(sorted(messages(&s, "t5")), sorted(want));
    let logs = s.logs("service=t5&limit=1000&level=warning");
    assert_eq!(logs.len(), 300);

    let out = shipper_cmd("ship", "t5", &s.url(""))
        .arg(dir.path().join("missing.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn ship_a_file_fails_when_the_server_stays_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    std::fs::write(&file, "a\nb\nc\n").unwrap();
    let out = shipper_cmd("ship", "t5b", &format!("http://127.0.0.1:{}", free_port()))
        .args(["--flush-timeout", "500ms"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("3 lines not sent"), "{stderr}");
}

#[test]
fn ship_follow_survives_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let log = dir.path().join("app.log");
    // Started before the file exists.
    let child = shipper_cmd("ship", "t6", &s.url(""))
        .arg("-f")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    append(&log, &numbered("a", 1..=20));
    assert_eq!(wait_for(&s, "t6", 20, Duration::from_secs(10)).len(), 20);

    // A partial line is held until its newline comes.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    write!(f, "partial-").unwrap();
    drop(f);
    std::thread::sleep(Duration::from_millis(700));
    append(&log, &["line".to_string()]);

    // Rotation: renamed away, a new file in its place, then appended to.
    std::thread::sleep(Duration::from_millis(300));
    append(&log, &numbered("a", 21..=25));
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the name is missing for a while
    append(&log, &numbered("b", 1..=20));
    std::thread::sleep(Duration::from_millis(500));
    append(&log, &numbered("b", 21..=40));
    let mut want = numbered("a", 1..=25);
    want.extend(numbered("b", 1..=40));
    want.push("partial-line".into());
    let got = wait_for(&s, "t6", want.len(), Duration::from_secs(10));
    assert_eq!(got, sorted(want.clone()));

    // Truncation (copytruncate): read again from the start.
    std::fs::write(&log, "").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    append(&log, &numbered("c", 1..=5));
    want.extend(numbered("c", 1..=5));
    let got = wait_for(&s, "t6", want.len(), Duration::from_secs(10));
    assert_eq!(got, sorted(want.clone()));

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(messages(&s, "t6").len(), want.len(), "nothing twice");
    let (code, err) = stop_with_sigterm(child);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("waiting for"), "{err}");
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn ship_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    let mut child = shipper_cmd("ship", "t7", &s.url(""))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 1..=150 {
        writeln!(stdin, "stdin-{i}").unwrap();
    }
    drop(stdin);
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("exits at EOF");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        sorted(messages(&s, "t7")),
        sorted(numbered("stdin", 1..=150))
    );
}

#[test]
fn run_cuts_very_long_lines_and_passes_them_through_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    // 3 MiB of 'x' then a short line.
    let out = shipper_cmd("run", "t8", &s.url(""))
        .args([
            "--",
            "sh",
            "-c",
            "head -c 3145728 /dev/zero | tr '\\0' x; echo; echo after",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), 3 * 1024 * 1024 + 1 + 6);
    let logs = s.logs("service=t8&limit=1000");
    assert_eq!(logs.len(), 2, "the long line is one record");
    let long = logs.iter().find(|l| l["message"] != "after").unwrap();
    let msg = long["message"].as_str().unwrap();
    assert!(msg.len() >= 60_000 && msg.len() <= 1 << 20, "{}", msg.len());
    assert!(msg.bytes().all(|b| b == b'x'));
    assert_eq!(long["truncated"], true);
    assert!(logs.iter().any(|l| l["message"] == "after"));
}

#[test]
fn ship_sends_the_ingest_key_and_reports_rejected_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Beyond loopback, so the key is required.
    let s = Server::start_on(
        &dir.path().join("data"),
        &format!("0.0.0.0:{port}"),
        port,
        "ingest_key = \"ik-123\"\n",
    );
    let file = dir.path().join("app.log");

    // The key from the environment; a line that is not JSON is rejected alone.
    std::fs::write(&file, "one\n{not json\nthree\n").unwrap();
    let out = shipper_cmd("ship", "t9", &s.url(""))
        .env("SIGHTLINE_INGEST_KEY", "ik-123")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "not every line stored: {stderr}"
    );
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(
        stderr.contains("the server rejected 1 lines in total"),
        "{stderr}"
    );
    assert_eq!(sorted(messages(&s, "t9")), ["one", "three"]);

    // A wrong key: every request is refused (401, not retried), warned once.
    std::fs::write(&file, "a\nb\nc\nd\ne\n").unwrap();
    let started = Instant::now();
    let out = shipper_cmd("ship", "t10", &s.url(""))
        .args(["--ingest-key", "wrong", "--batch-lines", "1"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(4), "no retries");
    assert_eq!(stderr.matches("HTTP 401").count(), 1, "{stderr}");
    assert!(
        stderr.contains("the server rejected 5 lines in total"),
        "{stderr}"
    );
    assert!(messages(&s, "t10").is_empty());
}

#[test]
fn run_exit_codes_follow_the_shell_and_a_background_grandchild_does_not_hold_us() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), "");
    // Killed by a signal: 128 + N, like a shell.
    let out = shipper_cmd("run", "t11", &s.url(""))
        .args(["--", "sh", "-c", "echo before-kill; kill -9 $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128 + 9));

    // A grandchild keeps the pipes open: we still exit soon after the child.
    let started = Instant::now();
    let out = shipper_cmd("run", "t11", &s.url(""))
        .args(["--", "sh", "-c", "sleep 10 > /dev/null & echo bye; exit 0"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sorted(messages(&s, "t11")), ["before-kill", "bye"]);
}
