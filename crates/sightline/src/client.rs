//! The read commands (`sightline logs`, `request`, `flow`, `flows`, `issues`,
//! `issue`): call the
//! server's API and print for a person (aligned, colored on a terminal) or,
//! with `--json`, the API's JSON unchanged.

use clap::Args;
use serde_json::Value;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the server is and how to authenticate; shared by every read command.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "SIGHTLINE_URL", default_value = "http://127.0.0.1:4318")]
    server: String,
    /// API token [default: read from DATA_DIR/api-token].
    #[arg(long, env = "SIGHTLINE_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Data dir of a local server, to read its API token from.
    #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "./sightline-data")]
    data_dir: PathBuf,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Query, e.g. `service:api level:>=warning "timeout"` or `* | count by (level)`.
    #[arg(default_value = "")]
    query: String,
    /// How far back to look (`15m`, `1h`, `7d`), or an RFC 3339 start.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Most lines shown.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Keep printing new matching lines as they arrive.
    #[arg(short = 'f', long)]
    follow: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    /// The id.
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct FlowsArgs {
    /// Only flows of this name (e.g. retake_flow).
    #[arg(long)]
    name: Option<String>,
    /// completed, failed, running or stalled.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    service: Option<String>,
    /// How far back to look.
    #[arg(long, default_value = "24h")]
    since: String,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print counts by status and stopping step instead of the list.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args, Debug)]
pub struct IssuesArgs {
    /// unresolved (default), resolved, ignored or all.
    #[arg(long, default_value = "unresolved")]
    status: String,
    /// Only this project (name or id).
    #[arg(long)]
    project: Option<String>,
    /// Words in the title or culprit.
    #[arg(long, short = 'q')]
    query: Option<String>,
    /// last_seen, first_seen or count.
    #[arg(long, default_value = "last_seen")]
    sort: String,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[command(flatten)]
    server: ServerArgs,
}

pub(crate) struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    pub(crate) json: bool,
    color: bool,
}

/// The exit status of a read command: its error printed, if any.
pub fn exit(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("sightline: {msg}");
            ExitCode::FAILURE
        }
    }
}

impl Client {
    pub(crate) fn new(a: &ServerArgs) -> Result<Client, String> {
        let token = match &a.token {
            Some(t) if !t.is_empty() => t.clone(),
            _ => std::fs::read_to_string(a.data_dir.join("api-token"))
                .map(|t| t.trim().to_string())
                .map_err(|e| {
                    format!(
                        "no API token: set SIGHTLINE_API_TOKEN or --token (reading {}: {e})",
                        a.data_dir.join("api-token").display()
                    )
                })?,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Ok(Client {
            base: a.server.trim_end_matches('/').to_string(),
            token,
            agent,
            json: a.json,
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        })
    }

    pub(crate) fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let mut req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token));
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        let resp = req.call();
        self.answer(resp, &query_text(query))
    }

    /// An API answer as JSON; a non-2xx answer as its error message (a query
    /// error drawn under the query `q` with a caret at its column).
    fn answer(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        q: &str,
    ) -> Result<Value, String> {
        let mut resp = resp.map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| format!("reading the answer: {e}"))?;
        let v: Value = serde_json::from_str(&body).map_err(|_| {
            format!(
                "HTTP {status}: {}",
                body.chars().take(300).collect::<String>()
            )
        })?;
        if !(200..300).contains(&status) {
            let msg = v["error"].as_str().unwrap_or(&body);
            return Err(match v["column"].as_u64() {
                Some(c) => format!("{msg}\n  {q}\n  {}^", " ".repeat(c as usize - 1)),
                None => format!("HTTP {status}: {msg}"),
            });
        }
        Ok(v)
    }

    pub(crate) fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn level(&self, l: &str) -> String {
        let code = match l {
            "debug" => "2",
            "info" => "32",
            "warning" => "33",
            "error" => "31",
            "critical" => "1;31",
            _ => "0",
        };
        self.paint(code, &format!("{:<8}", l.to_uppercase()))
    }

    fn status(&self, s: &str) -> String {
        let code = match s {
            "completed" => "32",
            "failed" => "31",
            "stalled" => "33",
            _ => "36",
        };
        self.paint(code, s)
    }

    pub(crate) fn print_json(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }

    /// One log line: time, level, service, event, then key=value fields.
    fn log_line(&self, l: &Value, prefix: &str) -> String {
        let ts = l["timestamp"].as_str().unwrap_or("");
        let ts = ts.replace('T', " ");
        let ts = ts.get(..23).unwrap_or(&ts);
        let mut out = format!(
            "{prefix}{}  {} {}  {}",
            self.paint("2", ts),
            self.level(l["level"].as_str().unwrap_or("")),
            self.paint("36", l["service"].as_str().unwrap_or("")),
            self.paint("1", l["message"].as_str().unwrap_or("")),
        );
        for k in ["request_id", "flow_id", "trace_id", "user_id"] {
            if let Some(v) = l[k].as_str() {
                out.push_str(&format!(" {}={v}", self.paint("2", k)));
            }
        }
        if let Some(f) = l["fields"].as_object() {
            for (k, v) in f {
                let v = match v {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                };
                out.push_str(&format!(" {}={v}", self.paint("2", k)));
            }
        }
        if let Some(e) = l["exception"].as_str() {
            for line in e.lines() {
                out.push_str(&format!("\n{prefix}    {}", self.paint("31", line)));
            }
        }
        out
    }
}

fn query_text(q: &[(&str, &str)]) -> String {
    q.iter()
        .find(|(k, _)| *k == "q")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn since(s: &str) -> String {
    if s.starts_with('-') || s.contains('T') || s == "now" || s.starts_with("now") {
        s.to_string()
    } else {
        format!("-{s}")
    }
}

fn print_series(c: &Client, v: &Value) {
    for s in v["series"].as_array().into_iter().flatten() {
        let labels: Vec<String> = s["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        let labels = if labels.is_empty() {
            "(all)".to_string()
        } else {
            labels.join(" ")
        };
        if let Some(n) = s["value"].as_u64() {
            println!("{:>12}  {labels}", c.paint("1", &n.to_string()));
        } else {
            println!("{}", c.paint("1", &labels));
            for p in s["points"].as_array().into_iter().flatten() {
                println!(
                    "  {}  {:>10}",
                    p[0].as_str().unwrap_or(""),
                    p[1].as_u64().unwrap_or(0)
                );
            }
        }
    }
}

pub fn logs(a: LogsArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let start = since(&a.since);
    let limit = a.limit.to_string();
    let v = c.get(
        "/api/v1/logs",
        &[("q", &a.query), ("start", &start), ("limit", &limit)],
    )?;
    if c.json {
        c.print_json(&v);
    } else if v.get("series").is_some() {
        print_series(&c, &v);
    } else {
        // Pages come newest first; a terminal reads oldest first, like tail.
        let logs = v["logs"].as_array().cloned().unwrap_or_default();
        for l in logs.iter().rev() {
            println!("{}", c.log_line(l, ""));
        }
        if logs.is_empty() && !a.follow {
            eprintln!("(no logs match since {})", a.since);
        }
    }
    if a.follow {
        return follow(&c, &a.query);
    }
    Ok(())
}

/// Streams `GET /api/v1/logs/tail` (server-sent events) until interrupted.
fn follow(c: &Client, q: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .build()
        .into();
    let resp = agent
        .get(format!("{}/api/v1/logs/tail", c.base))
        .query("q", q)
        .header("Authorization", format!("Bearer {}", c.token))
        .header("Accept", "text/event-stream")
        .call();
    let mut resp = match resp {
        Ok(r) if r.status() == 200 => r,
        Ok(r) => return Err(format!("tail: HTTP {}", r.status())),
        Err(e) => return Err(format!("tail: {e}")),
    };
    let reader = BufReader::new(resp.body_mut().as_reader());
    let mut event = String::new();
    let out = std::io::stdout();
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if let Some(e) = line.strip_prefix("event:") {
            event = e.trim().to_string();
        } else if let Some(d) = line.strip_prefix("data:") {
            let v: Value = serde_json::from_str(d.trim()).unwrap_or(Value::Null);
            let mut o = out.lock();
            if c.json {
                let _ = writeln!(o, "{v}");
            } else if event == "dropped" {
                let _ = writeln!(
                    o,
                    "{}",
                    c.paint("33", &format!("… fell behind, dropped {v}"))
                );
            } else {
                let _ = writeln!(o, "{}", c.log_line(&v, ""));
            }
            let _ = o.flush();
        }
    }
    Ok(())
}

/// One thing on a request's timeline.
enum Moment<'a> {
    Span(&'a Value),
    Log(&'a Value),
    Error(&'a Value),
}

/// Spans depth-first, as the tree nests them.
fn flatten_spans<'a>(nodes: &'a Value, out: &mut Vec<&'a Value>) {
    for n in nodes.as_array().into_iter().flatten() {
        out.push(n);
        flatten_spans(&n["children"], out);
    }
}

/// Width of a span bar.
const BAR: usize = 32;

/// `▕  ████      ▏`: where a span sits in `[origin, origin + total]`.
fn bar(start: i64, end: i64, origin: i64, total: i64) -> String {
    let total = total.max(1) as f64;
    let from = (((start - origin) as f64 / total) * BAR as f64).floor() as usize;
    let to = (((end - origin) as f64 / total) * BAR as f64).ceil() as usize;
    let from = from.min(BAR - 1);
    let to = to.clamp(from + 1, BAR);
    format!(
        "▕{}{}{}▏",
        " ".repeat(from),
        "█".repeat(to - from),
        " ".repeat(BAR - to)
    )
}

fn ms(v: Option<f64>, unit: &str) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}{unit}"))
}

/// `sightline request ID`: one timeline of the request's spans (as bars),
/// logs and errors, each at its moment, then its route's rate and latency.
pub fn request(a: IdArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let v = c.get(&format!("/api/v1/requests/{}", enc(&a.id)), &[])?;
    if c.json {
        c.print_json(&v);
        return Ok(());
    }
    let mut spans = Vec::new();
    flatten_spans(&v["spans"], &mut spans);
    let mut moments: Vec<(i64, u8, Moment)> = Vec::new();
    for s in &spans {
        moments.push((s["start_ns"].as_i64().unwrap_or(0), 0, Moment::Span(s)));
    }
    for l in v["logs"].as_array().into_iter().flatten() {
        moments.push((l["timestamp_ns"].as_i64().unwrap_or(0), 1, Moment::Log(l)));
    }
    for e in v["errors"].as_array().into_iter().flatten() {
        let t = e["timestamp"]
            .as_str()
            .and_then(|s| sightline_query::time::parse_time(s, 0).ok())
            .unwrap_or(0);
        moments.push((t, 2, Moment::Error(e)));
    }
    moments.sort_by_key(|(t, k, _)| (*t, *k));
    let origin = moments.first().map_or(0, |m| m.0);
    let last = spans
        .iter()
        .filter_map(|s| s["end_ns"].as_i64())
        .chain(moments.iter().map(|m| m.0))
        .max()
        .unwrap_or(origin);
    let services: Vec<&str> = v["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .chain(spans.iter().filter_map(|s| s["service"].as_str()))
        .fold(Vec::new(), |mut acc, s| {
            if !acc.contains(&s) {
                acc.push(s);
            }
            acc
        });
    let levels: Vec<String> = v["levels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    let n_traces = v["traces"].as_array().map_or(0, Vec::len);
    println!(
        "{} {}  {}  {:.1} ms  {} spans in {} traces, {} logs, {} errors  {}",
        c.paint("1", "request"),
        c.paint("1", &a.id),
        services.join(", "),
        (last - origin) as f64 / 1e6,
        spans.len(),
        n_traces,
        v["logs"].as_array().map_or(0, Vec::len),
        v["errors"].as_array().map_or(0, Vec::len),
        levels.join(" ")
    );
    let r = &v["route"];
    if r.is_object() {
        println!(
            "  {} {} ({}): {} req/s, {} errors, p50 {}, p95 {}, p99 {}  ({} around {})",
            c.paint("2", "route"),
            c.paint("1", r["operation"].as_str().unwrap_or("")),
            r["service"].as_str().unwrap_or(""),
            r["rate_per_s"]
                .as_f64()
                .map_or("-".into(), |x| format!("{x:.2}")),
            r["error_ratio"]
                .as_f64()
                .map_or("-".into(), |x| format!("{:.1}%", x * 100.0)),
            ms(r["p50_ms"].as_f64(), " ms"),
            ms(r["p95_ms"].as_f64(), " ms"),
            ms(r["p99_ms"].as_f64(), " ms"),
            r["window"].as_str().unwrap_or(""),
            r["at"].as_str().unwrap_or(""),
        );
    }
    for (t, _, m) in &moments {
        let off = format!("{:>+10.1}ms  ", (t - origin) as f64 / 1e6);
        match m {
            Moment::Span(s) => {
                let failed = s["status"] == "error";
                let b = bar(
                    s["start_ns"].as_i64().unwrap_or(*t),
                    s["end_ns"].as_i64().unwrap_or(*t),
                    origin,
                    last - origin,
                );
                let depth = s["depth"].as_u64().unwrap_or(0) as usize;
                let name = format!(
                    "{}{}",
                    "  ".repeat(depth.min(12)),
                    s["name"].as_str().unwrap_or("")
                );
                let mut line = format!(
                    "{off}{} {}  {:.1} ms  {}",
                    c.paint(if failed { "31" } else { "34" }, &b),
                    c.paint("1", &name),
                    s["duration_ms"].as_f64().unwrap_or(0.0),
                    c.paint("2", s["service"].as_str().unwrap_or("")),
                );
                if failed {
                    line.push_str(&format!(
                        "  {} {}",
                        c.paint("31", "✗ error"),
                        s["status_message"].as_str().unwrap_or("")
                    ));
                }
                for e in s["events"].as_array().into_iter().flatten() {
                    if e["name"] == "exception" {
                        line.push_str(&format!(
                            "\n{}  {} {}: {}",
                            " ".repeat(14),
                            c.paint("31", "exception"),
                            e["attributes"]["exception.type"].as_str().unwrap_or(""),
                            e["attributes"]["exception.message"].as_str().unwrap_or("")
                        ));
                    }
                }
                println!("{line}");
            }
            Moment::Log(l) => println!("{}", c.log_line(l, &off)),
            Moment::Error(e) => println!(
                "{off}{} {}  (sightline issue {})",
                c.paint("1;31", "ERROR   "),
                c.paint("1", e["title"].as_str().unwrap_or("")),
                e["issue_id"].as_str().unwrap_or("?"),
            ),
        }
    }
    Ok(())
}

/// `sightline issues`: one line per issue, newest first.
pub fn issues(a: IssuesArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let limit = a.limit.to_string();
    let mut q = vec![
        ("status", a.status.as_str()),
        ("sort", a.sort.as_str()),
        ("limit", limit.as_str()),
    ];
    if let Some(p) = &a.project {
        q.push(("project", p));
    }
    if let Some(w) = &a.query {
        q.push(("q", w));
    }
    let v = c.get("/api/v1/issues", &q)?;
    if c.json {
        c.print_json(&v);
        return Ok(());
    }
    let list = v["issues"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no {} issues", a.status);
    }
    for i in &list {
        let regressed = if i["substatus"] == "regressed" {
            c.paint("33", " regressed")
        } else {
            String::new()
        };
        println!(
            "{:>6}  {} {:>6}×  {:>4} users  last {}  {}{}\n        {}",
            c.paint("1", i["id"].as_str().unwrap_or("?")),
            c.level(i["level"].as_str().unwrap_or("")),
            i["count"],
            i["users"],
            i["last_seen"]
                .as_str()
                .unwrap_or("")
                .get(..19)
                .unwrap_or(""),
            c.paint("1", i["title"].as_str().unwrap_or("")),
            regressed,
            c.paint("2", i["culprit"].as_str().unwrap_or("")),
        );
    }
    Ok(())
}

/// `sightline issue ID`: the issue, its latest event's stack trace (in-app
/// frames highlighted, with their code line), tags, user, and the logs of the
/// event's request.
pub fn issue(a: IdArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let v = c.get(&format!("/api/v1/issues/{}", enc(&a.id)), &[])?;
    if c.json {
        c.print_json(&v);
        return Ok(());
    }
    println!(
        "{} {}  {}  {}{}",
        c.paint("1", "issue"),
        c.paint("1", v["id"].as_str().unwrap_or("?")),
        c.level(v["level"].as_str().unwrap_or("")),
        c.status(v["status"].as_str().unwrap_or("")),
        if v["substatus"] == "regressed" {
            c.paint("33", " (regressed)")
        } else {
            String::new()
        },
    );
    println!("  {}", c.paint("1", v["title"].as_str().unwrap_or("")));
    println!("  {}", c.paint("2", v["culprit"].as_str().unwrap_or("")));
    println!(
        "  {} events, {} users, first seen {} ({}), last seen {} ({})",
        v["count"],
        v["users"],
        v["first_seen"].as_str().unwrap_or(""),
        v["first_release"].as_str().unwrap_or("-"),
        v["last_seen"].as_str().unwrap_or(""),
        v["last_release"].as_str().unwrap_or("-"),
    );
    let ev = &v["latest_event"];
    println!(
        "\n{} {}",
        c.paint("1", "latest event"),
        ev["event_id"].as_str().unwrap_or("")
    );
    for e in ev["exception"]["values"].as_array().into_iter().flatten() {
        println!(
            "\n  {}: {}",
            c.paint("1;31", e["type"].as_str().unwrap_or("Error")),
            e["value"].as_str().unwrap_or("")
        );
        for f in e["stacktrace"]["frames"].as_array().into_iter().flatten() {
            let in_app = f["in_app"] == true;
            let loc = format!(
                "{} in {} line {}",
                f["filename"]
                    .as_str()
                    .or(f["module"].as_str())
                    .unwrap_or("?"),
                f["function"].as_str().unwrap_or("?"),
                f["lineno"]
            );
            if in_app {
                println!("  {} {}", c.paint("1;33", "▶"), c.paint("1", &loc));
                if let Some(line) = f["context_line"].as_str() {
                    println!("      {}", c.paint("33", line.trim()));
                }
                if let Some(vars) = f["vars"].as_object() {
                    for (k, val) in vars.iter().take(12) {
                        let t = match val {
                            Value::String(s) => s.clone(),
                            o => o.to_string(),
                        };
                        println!(
                            "        {} = {}",
                            c.paint("2", k),
                            t.chars().take(120).collect::<String>()
                        );
                    }
                }
            } else {
                println!("    {}", c.paint("2", &loc));
            }
        }
    }
    if let Some(m) = ev["message"].as_str().filter(|_| ev["exception"].is_null()) {
        println!("  {m}");
    }
    if let Some(u) = ev["user"].as_object() {
        let parts: Vec<String> = u
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map(String::from).unwrap_or(v.to_string())
                )
            })
            .collect();
        println!("\n{} {}", c.paint("1", "user"), parts.join(" "));
    }
    println!("\n{}", c.paint("1", "tags"));
    for t in v["tags"].as_array().into_iter().flatten() {
        let vals: Vec<String> = t["values"]
            .as_array()
            .into_iter()
            .flatten()
            .take(5)
            .map(|x| format!("{} ({})", x["value"].as_str().unwrap_or(""), x["count"]))
            .collect();
        println!(
            "  {:<16} {}",
            t["key"].as_str().unwrap_or(""),
            vals.join(", ")
        );
    }
    let rid = ev["request_id"]
        .as_str()
        .or(ev["tags"]["request_id"].as_str());
    if let Some(rid) = rid {
        let req = c.get(&format!("/api/v1/requests/{}", enc(rid)), &[]);
        println!("\n{} {}", c.paint("1", "logs of request"), rid);
        match req {
            Ok(r) => {
                let logs = r["logs"].as_array().cloned().unwrap_or_default();
                if logs.is_empty() {
                    println!("  (no logs with this request id)");
                }
                for l in &logs {
                    println!("{}", c.log_line(l, "  "));
                }
            }
            Err(e) => println!("  ({e})"),
        }
    }
    Ok(())
}

use sightline_server::endpoints::urlencode as enc;

pub fn flow(a: IdArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let v = c.get(&format!("/api/v1/flows/{}", enc(&a.id)), &[])?;
    if c.json {
        c.print_json(&v);
        return Ok(());
    }
    let status = v["status"].as_str().unwrap_or("");
    println!(
        "{} {}  {}  {}  {}  started {}  {:.1} ms",
        c.paint("1", "flow"),
        c.paint("1", &a.id),
        v["name"].as_str().unwrap_or("?"),
        v["service"].as_str().unwrap_or(""),
        c.status(status),
        v["started_at"].as_str().unwrap_or(""),
        v["duration_ms"].as_f64().unwrap_or(0.0),
    );
    let failed_at = v["failed_at_step"].as_str();
    for s in v["steps"].as_array().into_iter().flatten() {
        let name = s["step"].as_str().unwrap_or("");
        let mark = if status == "failed" && Some(name) == failed_at {
            c.paint("31", "✗")
        } else {
            c.paint("32", "✓")
        };
        println!(
            "  {mark} {:<28} {}  {}",
            name,
            s["at"].as_str().unwrap_or(""),
            c.level(s["level"].as_str().unwrap_or(""))
        );
    }
    match status {
        "failed" => println!(
            "  {} failed at step {}: {}",
            c.paint("31", "✗"),
            c.paint("1", failed_at.unwrap_or("(before any step)")),
            v["error"].as_str().unwrap_or("")
        ),
        "stalled" => println!(
            "  {} stalled after step {} (last event {})",
            c.paint("33", "…"),
            v["last_step"].as_str().unwrap_or("(none)"),
            v["last_event_at"].as_str().unwrap_or("")
        ),
        "running" => println!("  {} running", c.paint("36", "…")),
        _ => println!(
            "  {} completed at {}",
            c.paint("32", "✓"),
            v["ended_at"].as_str().unwrap_or("")
        ),
    }
    Ok(())
}

pub fn flows(a: FlowsArgs) -> Result<(), String> {
    let c = Client::new(&a.server)?;
    let start = since(&a.since);
    let limit = a.limit.to_string();
    let mut q: Vec<(&str, &str)> = vec![("start", &start)];
    for (k, v) in [
        ("name", &a.name),
        ("status", &a.status),
        ("service", &a.service),
    ] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    let path = if a.stats {
        "/api/v1/flows/stats"
    } else {
        q.push(("limit", &limit));
        "/api/v1/flows"
    };
    let v = c.get(path, &q)?;
    if c.json {
        c.print_json(&v);
        return Ok(());
    }
    if a.stats {
        println!("{} flows", v["total"]);
        for (k, n) in v["by_status"].as_object().into_iter().flatten() {
            println!("  {:<12} {n}", c.status(k));
        }
        if let Some(m) = v["stopped_at_step"].as_object().filter(|m| !m.is_empty()) {
            println!("stopped at step:");
            for (k, n) in m {
                println!("  {k:<28} {n}");
            }
        }
        let d = &v["duration_ms"];
        println!(
            "duration ms: p50 {} p90 {} p99 {} max {}",
            d["p50"], d["p90"], d["p99"], d["max"]
        );
        return Ok(());
    }
    let flows = v["flows"].as_array().cloned().unwrap_or_default();
    if flows.is_empty() {
        eprintln!("(no flows match since {})", a.since);
    }
    for f in &flows {
        let status = f["status"].as_str().unwrap_or("");
        let at = f["failed_at_step"]
            .as_str()
            .or_else(|| f["last_step"].as_str())
            .unwrap_or("-");
        println!(
            "{:<24} {:<20} {:<10} {}  {:>10.1} ms  step {}  {}",
            f["flow_id"].as_str().unwrap_or(""),
            f["name"].as_str().unwrap_or("?"),
            c.status(status),
            f["started_at"].as_str().unwrap_or(""),
            f["duration_ms"].as_f64().unwrap_or(0.0),
            at,
            f["error"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}

#[derive(clap::Subcommand, Debug)]
pub enum ProjectsCommand {
    /// Every project with its DSNs.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create a project (with a new key) and print its DSN.
    Create {
        /// Lowercase letters, digits, '-' or '_'.
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// The DSNs of one project; `--new` adds a key first.
    Keys {
        name: String,
        #[arg(long)]
        new: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Client {
    pub(crate) fn delete(&self, path: &str) -> Result<Value, String> {
        let resp = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.answer(resp, "")
    }

    pub(crate) fn send(&self, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token));
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.send_empty(),
        };
        self.answer(resp, "")
    }

    fn print_project(&self, p: &Value) {
        println!(
            "{} {}",
            self.paint("1", p["name"].as_str().unwrap_or("")),
            self.paint("2", &format!("(id {})", p["id"]))
        );
        for k in p["keys"].as_array().into_iter().flatten() {
            println!("  {}", k["dsn"].as_str().unwrap_or(""));
        }
    }
}

/// One call against the server, chosen by the subcommand.
type Call<'a> = Box<dyn Fn(&Client) -> Result<Value, String> + 'a>;

pub fn projects(cmd: ProjectsCommand) -> Result<(), String> {
    let (server, run): (&ServerArgs, Call<'_>) = match &cmd {
        ProjectsCommand::List { server } => (
            server,
            Box::new(|c: &Client| c.get("/api/v1/projects", &[])),
        ),
        ProjectsCommand::Create { name, server } => {
            let body = serde_json::json!({ "name": name });
            (
                server,
                Box::new(move |c: &Client| c.send("/api/v1/projects", Some(&body))),
            )
        }
        ProjectsCommand::Keys { name, new, server } => {
            let (name, new) = (name.clone(), *new);
            (
                server,
                Box::new(move |c: &Client| {
                    if new {
                        return c.send(&format!("/api/v1/projects/{}/keys", enc(&name)), None);
                    }
                    let all = c.get("/api/v1/projects", &[])?;
                    all["projects"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| p["name"] == name.as_str())
                        .cloned()
                        .ok_or_else(|| format!("no project {name:?}"))
                }),
            )
        }
    };
    let c = Client::new(server)?;
    let v = run(&c)?;
    if c.json {
        c.print_json(&v);
    } else if let Some(ps) = v["projects"].as_array() {
        for p in ps {
            c.print_project(p);
        }
    } else {
        c.print_project(&v);
    }
    Ok(())
}
