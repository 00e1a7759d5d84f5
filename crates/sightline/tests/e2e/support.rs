//! Starting, stopping and talking to a real server.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token-0123456789";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sightline")
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/python-sdks")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub struct Server {
    pub child: Child,
    pub port: u16,

    pub config: PathBuf,
    agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Starts a server on a free port with `data_dir` and extra TOML config.
    pub fn start(data_dir: &Path, extra_toml: &str) -> Server {
        let port = free_port();
        Server::start_on(data_dir, &format!("127.0.0.1:{port}"), port, extra_toml)
    }

    pub fn start_on(data_dir: &Path, listen: &str, port: u16, extra_toml: &str) -> Server {
        let config = data_dir.with_extension("toml");
        // The fixtures' rows are from 2026-11-25: keep retention from dropping them.
        let extra = if extra_toml.contains("[storage]") {
            extra_toml.replace("[storage]\n", "[storage]\nretention_days = 0\n")
        } else {
            format!("{extra_toml}\n[storage]\nretention_days = 0\n")
        };
        let extra_toml = extra.as_str();
        std::fs::write(
            &config,
            format!(
                "listen = \"{listen}\"\ndata_dir = \"{}\"\napi_token = \"{TOKEN}\"\n{extra_toml}\n",
                data_dir.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("SIGHTLINE_LISTEN")
            .env_remove("SIGHTLINE_DATA_DIR")
            .env("SIGHTLINE_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sightline");
        let mut s = Server {
            child,
            port,
            config,
            agent: agent(),
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sightline exited during start: {status}");
            }
            if let Ok(r) = self.agent.get(self.url("/health")).call() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sightline did not become healthy");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = self.agent.post(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        to_reply(req.send(body).expect("request"))
    }

    pub fn ndjson(&self, service: &str, body: &[u8]) -> Reply {
        self.post(
            &format!("/api/v1/logs/ingest?service={service}"),
            &[("content-type", "application/x-ndjson")],
            body,
        )
    }

    pub fn get(&self, path: &str) -> Reply {
        let r = self
            .agent
            .get(self.url(path))
            .header("authorization", &format!("Bearer {TOKEN}"))
            .call()
            .expect("request");
        to_reply(r)
    }

    pub fn put_json(&self, path: &str, body: &str) -> Reply {
        let r = self
            .agent
            .put(self.url(path))
            .header("authorization", &format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .expect("request");
        to_reply(r)
    }

    pub fn get_noauth(&self, path: &str) -> Reply {
        to_reply(self.agent.get(self.url(path)).call().expect("request"))
    }

    /// All logs matching a query string (e.g. `service=x`), newest first.
    pub fn logs(&self, query: &str) -> Vec<Value> {
        let r = self.get(&format!("/api/v1/logs?{query}"));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["logs"].as_array().unwrap().clone()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) -> ExitStatus {
        signal(self.child.id(), 15);
        wait_timeout(&mut self.child, Duration::from_secs(60))
            .expect("sightline did not stop after SIGTERM")
    }

    /// Peak resident memory of the server process, bytes.
    pub fn peak_rss(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn to_reply(mut r: ureq::http::Response<ureq::Body>) -> Reply {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap_or_default();
    Reply {
        status,
        body,
        headers,
    }
}

#[allow(unsafe_code)]
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a child we spawned.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

pub fn wait_timeout(child: &mut Child, d: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Where `needle` occurs in the data dir: in the raw bytes of any file, or in
/// any stored row decoded from the WAL (LZ4) and the parts (zstd), so that
/// compression cannot hide a leak.
pub fn data_dir_contains(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(format!("raw bytes of {}", f.display()));
        }
    }
    let mut rows = 0;
    sightline_store::inspect::for_each_row(dir, |source, row| {
        rows += 1;
        if format!("{row:?}").contains(needle) {
            hits.push(format!("decoded row in {source:?}"));
        }
    })
    .expect("data dir decodes");
    assert!(rows > 0, "nothing decoded: the search would prove nothing");
    hits
}

impl Server {
    pub fn agent_get_with_token(&self, path: &str, token: &str) -> u16 {
        self.agent
            .get(self.url(path))
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    }
}

/// Percent-encodes a query parameter value.
pub fn urlenc(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An OTLP attribute.
pub fn kv(
    k: &str,
    v: opentelemetry_proto::tonic::common::v1::any_value::Value,
) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    opentelemetry_proto::tonic::common::v1::KeyValue {
        key: k.into(),
        value: Some(opentelemetry_proto::tonic::common::v1::AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// An OTLP string value.
pub fn str_value(v: &str) -> opentelemetry_proto::tonic::common::v1::any_value::Value {
    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(v.into())
}
