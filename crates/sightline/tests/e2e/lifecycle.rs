//! Start-up, configuration, auth beyond loopback, and clean shutdown.

use crate::support::*;
use std::process::Command;

#[test]
fn config_show_prints_effective_config_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sightline.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:9999\"\n[storage]\nretention_days = 7\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["config", "show", "--config"])
        .arg(&cfg)
        .env("SIGHTLINE_DATA_DIR", "/tmp/elsewhere")
        .env_remove("SIGHTLINE_LISTEN")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:9999\""), "{text}");
    assert!(
        text.contains("data_dir = \"/tmp/elsewhere\""),
        "env overrides the file: {text}"
    );
    assert!(text.contains("retention_days = 7"), "{text}");
    assert!(
        text.contains("fsync = \"always\""),
        "defaults are shown: {text}"
    );

    std::fs::write(&cfg, "listen = \"127.0.0.1:9999\"\nretention_dayz = 7\n").unwrap();
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retention_dayz"), "{err}");
}

#[test]
fn sigterm_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, "");
    assert_eq!(
        s.ndjson("t", b"{\"event\":\"bye\",\"request_id\":\"term\"}\n")
            .status,
        200
    );
    let status = s.sigterm();
    assert!(status.success(), "{status}");
    let parts: Vec<_> = files_under(&data.join("parts"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(parts.len(), 1, "the head was flushed to a part");
    let s = Server::start(&data, "");
    assert_eq!(s.logs("request_id=term").len(), 1);
    // A second server on the same data dir is refused.
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&s.config)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another process holds"));
}

#[test]
fn ingest_needs_a_key_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let s = Server::start_on(
        &data,
        &format!("0.0.0.0:{port}"),
        port,
        "ingest_key = \"ik-123\"\n",
    );
    let body = b"{\"event\":\"x\"}\n";
    assert_eq!(s.ndjson("k", body).status, 401);
    let r = s.post(
        "/api/v1/logs/ingest?service=k",
        &[("authorization", "Bearer wrong")],
        body,
    );
    assert_eq!(r.status, 401);
    let r = s.post(
        "/api/v1/logs/ingest?service=k",
        &[("authorization", "Bearer ik-123")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.post("/api/v1/logs/ingest?service=k&key=ik-123", &[], body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.post("/v1/logs", &[("content-type", "application/json")], b"{}")
            .status,
        401
    );
}

#[test]
fn generated_token_is_printed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("SIGHTLINE_API_TOKEN")
        .env_remove("SIGHTLINE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let token = std::fs::read_to_string(data.join("api-token")).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let token = token.or_else(|| loop {
        if let Ok(t) = std::fs::read_to_string(data.join("api-token")) {
            break Some(t);
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    });
    let token = token.unwrap().trim().to_string();
    assert!(token.starts_with("slt_") && token.len() > 30);
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(child.id(), 2);
    let status = wait_timeout(&mut child, std::time::Duration::from_secs(30)).unwrap();
    assert!(status.success(), "SIGINT exits 0: {status}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains(&token), "the token is printed: {out}");
    assert!(
        out.contains("/api/v1/logs/ingest?service=NAME") && out.contains("/v1/logs"),
        "{out}"
    );
}
