//! Projects and DSNs: a default project on first start (its DSN in the
//! banner), declared projects with fixed ids and keys, the API and the CLI.

use crate::support::{bin, free_port, Server, TOKEN};
use std::process::Command;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn cli(s: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("SIGHTLINE_URL", s.url(""))
        .env("SIGHTLINE_API_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn default_and_declared_projects_with_their_dsns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let declared = format!("[[projects]]\nname = \"api\"\nid = 42\nkeys = [\"{KEY}\"]\n");
    let mut s = Server::start(&data, &declared);
    let r = s.get("/api/v1/projects");
    assert_eq!(r.status, 200, "{}", r.body);
    let ps = r.json()["projects"].as_array().unwrap().clone();
    let names: Vec<&str> = ps.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["api"],
        "a declared project replaces the default one"
    );
    assert_eq!(
        ps[0]["keys"][0]["dsn"],
        format!("http://{KEY}@127.0.0.1:{}/42", s.port)
    );

    // Create one; add a key; both through the CLI.
    let (ok, out, err) = cli(&s, &["projects", "create", "worker"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("worker (id 43)"), "{out}");
    assert!(out.contains(&format!("@127.0.0.1:{}/43", s.port)), "{out}");
    let (ok, out, _) = cli(&s, &["projects", "keys", "worker", "--new"]);
    assert!(ok);
    assert_eq!(out.matches("/43").count(), 2, "{out}");
    let (ok, _, err) = cli(&s, &["projects", "create", "Bad Name"]);
    assert!(!ok);
    assert!(err.contains("lowercase"), "{err}");
    let (ok, _, err) = cli(&s, &["projects", "create", "worker"]);
    assert!(!ok && err.contains("exists"), "{err}");
    assert_eq!(s.get_noauth("/api/v1/projects").status, 401);

    // Everything survives a restart.
    assert!(s.sigterm().success());
    let s = Server::start(&data, &declared);
    let (ok, out, _) = cli(&s, &["projects", "list", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<usize> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["keys"].as_array().unwrap().len())
        .collect();
    assert_eq!(keys, [1, 2]);
}

#[test]
fn a_fresh_data_dir_gets_a_default_project_in_the_banner() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("SIGHTLINE_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = out;
    let mut stdout = child.stdout.take().unwrap();
    let mut banner = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    use std::io::Read;
    while !banner.contains("health:") && std::time::Instant::now() < deadline {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    crate::support::signal(child.id(), 15);
    let _ = child.wait();
    let line = banner
        .lines()
        .find(|l| l.contains("Sentry DSN:"))
        .unwrap_or_else(|| panic!("no DSN in the banner:\n{banner}"));
    assert!(line.contains(&format!(":{port}/1")), "{line}");
    assert!(line.contains("(project default)"), "{line}");
    let key = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert!(sightline_store::projects::valid_key(key), "{key}");
}
