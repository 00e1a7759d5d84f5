//! `sightline run` and `sightline ship`: the log shipper (client of `/api/v1/logs/ingest`).
//!
//! It owns one bounded line buffer drained by a background sender thread
//! ([`Shipper`]), the command runner that passes a child's output through and
//! ships it, and the file/stdin reader that can follow a file across rotation.
//!
//! Plain std threads and blocking `ureq`; no tokio. Nothing that reads lines
//! ever waits on the network: readers only push into the buffer (a mutex held
//! for a `VecDeque` push), and only the sender thread talks HTTP.
//!
//! Signals use `signal-hook`: its handlers are async-signal-safe and hand each
//! signal to an ordinary thread through a self-pipe, so this module has no
//! signal-handler code of its own, and its siginfo support lets us tell a
//! terminal's Ctrl-C (which the kernel already delivered to the child, our
//! process group) from a `kill` aimed at us alone (see [`supervise`]). `libc`
//! is used only for `kill(2)` to forward a signal to the child.

use clap::Args;
use signal_hook::consts::signal::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Signals, SignalsInfo};
use signal_hook::low_level::siginfo::Cause;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longer lines are cut to this many bytes (the server cuts records over
/// 256 KiB anyway); the rest of the line is still passed through.
const MAX_LINE_BYTES: usize = 1 << 20;
/// Most bytes of lines buffered, whatever `--buffer-lines` says (100,000 long
/// lines would otherwise be gigabytes).
const MAX_BUFFER_BYTES: usize = 256 << 20;
/// Most bytes in one request body (the server's default limit is 32 MiB).
const MAX_BATCH_BYTES: usize = 4 << 20;
/// A batch is sent this long after its first line at the latest.
const LINGER: Duration = Duration::from_millis(200);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Longest `Retry-After` we honor.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Warnings that can repeat (dropped lines, rejected lines) come at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// How often a followed file is checked for growth and rotation.
const POLL: Duration = Duration::from_millis(200);
/// After the child exits (or a follow is stopped), how long the readers may
/// take to reach the end of their input (a background grandchild can keep a
/// pipe open forever).
const READER_GRACE: Duration = Duration::from_secs(1);

/// Where and how to ship; shared by `run` and `ship`.
#[derive(Args, Debug, Clone)]
pub struct ShipOpts {
    /// Service name stored with every line (1 to 256 bytes).
    #[arg(long, value_parser = parse_service)]
    service: String,
    /// Sightline server URL.
    #[arg(long, env = "SIGHTLINE_URL", default_value = "http://127.0.0.1:4318")]
    server: String,
    /// Ingest key, sent as `Authorization: Bearer KEY` (a server on loopback needs none).
    #[arg(long, env = "SIGHTLINE_INGEST_KEY", hide_env_values = true)]
    ingest_key: Option<String>,
    /// Most lines per request; a batch is sent at the latest 200 ms after its first line.
    #[arg(long, default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    batch_lines: usize,
    /// Most lines kept while the server is slow or unreachable (and at most 256 MiB).
    #[arg(long, default_value_t = 100_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000_000))]
    buffer_lines: usize,
    /// At the end, how long to keep trying to send what is buffered (e.g. 5, 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    flush_timeout: Duration,
}

/// Run a command, pass its output through, and ship every line to Sightline.
///
/// The command's stdout and stderr are passed through unchanged, and each line
/// (a JSON object or plain text) is shipped to the server's
/// `/api/v1/logs/ingest`. Lines are sent in batches (`--batch-lines`, or 200 ms),
/// retried with backoff while the server is unreachable or overloaded, and held
/// in a bounded buffer (`--buffer-lines`) that drops its oldest lines when full:
/// the command is never slowed down or blocked by the network.
///
/// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to the
/// command, which decides when to exit (a Ctrl-C typed at a terminal already
/// reaches it and is not sent twice). When it exits, what is buffered is sent
/// within `--flush-timeout`. The exit code is the command's (128+N if signal N
/// ended it; 127 if it was not found, 126 if it could not be started).
///
/// `PYTHONUNBUFFERED=1` is set for the command unless already set, so that
/// Python writes each line when it logs it rather than in 8 KiB blocks.
#[derive(Args, Debug)]
#[command(after_help = "Example: sightline run --service api -- gunicorn app:app")]
pub struct RunArgs {
    #[command(flatten)]
    opts: ShipOpts,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND",
        value_parser = clap::value_parser!(OsString)
    )]
    command: Vec<OsString>,
}

/// Ship the lines of a file, or of stdin (`-`), to Sightline.
///
/// Without `--follow`: ships every line, waits until the server has stored
/// them, and exits 0; 1 if some line was not stored (not sent within
/// `--flush-timeout`, or rejected by the server, e.g. a line that starts with
/// `{` but is not JSON). Reading waits while the buffer is full, so no line of
/// the file is dropped however slow the server is.
///
/// With `--follow`: like `tail -F`, starting at the BEGINNING of the file (every
/// start ships the whole file again; no position is kept). The file may not
/// exist yet or disappear for a while; when it is replaced (a new inode, e.g.
/// renamed away by logrotate) the old file is read to its end and the new one
/// from its start; when it shrinks (truncated, e.g. copytruncate) it is read
/// again from its start. A last line without its newline is held until it is
/// complete. Runs until SIGINT, SIGTERM or SIGHUP, then sends what is
/// buffered and exits 0 (1 as above).
#[derive(Args, Debug)]
#[command(after_help = "Example: sightline ship --service worker -f /var/log/worker.log")]
pub struct ShipArgs {
    #[command(flatten)]
    opts: ShipOpts,
    /// Keep reading as the file grows, across rotation and truncation.
    #[arg(short = 'f', long)]
    follow: bool,
    /// The file to ship, or `-` for stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn parse_service(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 256 {
        Err("a service name has 1 to 256 bytes".into())
    } else {
        Ok(s.to_string())
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale <= 86_400.0 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "{s:?} is not a duration (seconds, e.g. 5, 2.5s, 500ms)"
        )),
    }
}

/// Where the lines go.
#[derive(Debug, Clone)]
struct Target {
    /// `{server}/api/v1/logs/ingest`
    url: String,
    service: String,
    key: Option<String>,
}

impl ShipOpts {
    fn target(&self) -> Result<Target, String> {
        let base = self.server.trim_end_matches('/');
        let uri: ureq::http::Uri = base
            .parse()
            .map_err(|e| format!("--server {:?} is not a URL: {e}", self.server))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "--server {:?} must be an http:// or https:// URL",
                self.server
            ));
        }
        Ok(Target {
            url: format!("{base}/api/v1/logs/ingest"),
            service: self.service.clone(),
            key: self.ingest_key.clone().filter(|k| !k.is_empty()),
        })
    }
}

/// What the threads of one command tell its main thread.
enum Event {
    ChildExited(ExitStatus),
    /// A signal for us (in `run`: only those that arrive after the child exited).
    Signal(i32),
    ReaderDone(Result<(), String>),
    SenderDone,
}

// ---------------------------------------------------------------------------
// The shipper: bounded buffer + sender thread
// ---------------------------------------------------------------------------

/// What a push does when the buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Drop the oldest line (and count it): for a live process that must never block.
    DropOldest,
    /// Wait for room: for a file, which can wait without losing anything.
    Wait,
}

/// A bounded line buffer drained by one background sender thread. Cloning
/// gives another handle to the same buffer.
#[derive(Clone)]
struct Shipper {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the sender: new lines, closing, abort.
    wake: Condvar,
    /// Wakes pushers waiting for room ([`Overflow::Wait`]).
    space: Condvar,
    capacity: usize,
    batch_lines: usize,
}

struct Pending {
    line: Arc<str>,
    at: Instant,
}

/// Lines are numbered in push order; the queue holds `front_seq..` and the
/// lines `front_seq..inflight_end` are in the request being sent. A line
/// dropped for room while in flight is counted only if that request fails.
#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    /// Bytes of the lines in `queue`.
    queued_bytes: usize,
    front_seq: u64,
    inflight_end: u64,
    dropped_inflight: u64,
    dropped: u64,
    dropped_reported: u64,
    last_drop_warning: Option<Instant>,
    accepted: u64,
    rejected: u64,
    closing: bool,
    deadline: Option<Instant>,
    aborted: bool,
}

impl State {
    /// Removes the lines before `end` that are still queued.
    fn remove_before(&mut self, end: u64) {
        while self.front_seq < end {
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= p.line.len();
            self.front_seq += 1;
        }
    }

    /// The periodic "dropped" warning, if one is due.
    fn drop_warning(&mut self) -> Option<String> {
        let new = self.dropped - self.dropped_reported;
        if new == 0
            || self
                .last_drop_warning
                .is_some_and(|t| t.elapsed() < WARN_EVERY)
        {
            return None;
        }
        self.dropped_reported = self.dropped;
        self.last_drop_warning = Some(Instant::now());
        Some(format!(
            "sightline: dropped {new} lines (buffer full; server unreachable?)"
        ))
    }
}

/// Counts at the end.
#[derive(Debug, Default)]
struct Summary {
    accepted: u64,
    rejected: u64,
    dropped: u64,
    unsent: u64,
    /// A second signal cut the final flush short.
    aborted: bool,
}

impl Shipper {
    fn start(target: Target, opts: &ShipOpts, events: Sender<Event>) -> Shipper {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            space: Condvar::new(),
            capacity: opts.buffer_lines,
            batch_lines: opts.batch_lines.min(opts.buffer_lines),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sightline-ship".into())
            .spawn(move || {
                sender(&s, &target);
                let _ = events.send(Event::SenderDone);
            })
            .expect("spawn the sender thread");
        Shipper { shared }
    }

    /// Queues one line (without its `\n`). Never touches the network.
    ///
    /// Returns false once the shipper is closed: the line was not taken, and
    /// the reader should stop.
    fn push(&self, raw: &[u8], overflow: Overflow) -> bool {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return true; // the server skips blank lines too
        }
        // The server rejects a line that is not UTF-8: send it with U+FFFD instead.
        let line: Arc<str> = Arc::from(String::from_utf8_lossy(raw).as_ref());
        let sh = &*self.shared;
        let mut st = sh.lock();
        if st.closing || st.aborted {
            return false;
        }
        let full = |st: &State| {
            !st.queue.is_empty()
                && (st.queue.len() >= sh.capacity
                    || st.queued_bytes + line.len() > MAX_BUFFER_BYTES)
        };
        if overflow == Overflow::Wait {
            while full(&st) {
                if st.closing || st.aborted {
                    return false;
                }
                st = sh.space.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
        while full(&st) {
            let old = st.queue.pop_front().expect("not empty");
            st.queued_bytes -= old.line.len();
            if st.front_seq < st.inflight_end {
                st.dropped_inflight += 1;
            } else {
                st.dropped += 1;
            }
            st.front_seq += 1;
        }
        st.queued_bytes += line.len();
        st.queue.push_back(Pending {
            line,
            at: Instant::now(),
        });
        let n = st.queue.len();
        drop(st);
        if n == 1 || n >= sh.batch_lines {
            sh.wake.notify_one();
        }
        true
    }

    /// Stops waiting for more lines: the sender sends what is queued now and
    /// gives up at the returned deadline.
    fn close(&self, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        st.closing = true;
        st.deadline = Some(deadline);
        drop(st);
        self.shared.wake.notify_all();
        self.shared.space.notify_all();
        deadline
    }

    fn abort(&self) {
        self.shared.lock().aborted = true;
        self.shared.wake.notify_all();
        self.shared.space.notify_all();
    }

    fn summary(&self) -> Summary {
        let st = self.shared.lock();
        Summary {
            accepted: st.accepted,
            rejected: st.rejected,
            dropped: st.dropped + st.dropped_inflight,
            unsent: st.queue.len() as u64,
            aborted: st.aborted,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>, d: Duration) -> MutexGuard<'a, State> {
        self.wake
            .wait_timeout(st, d)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }
}

/// Prints `msg` (if any) without holding the lock, and takes it again.
fn print_unlocked<'a>(
    sh: &'a Shared,
    st: MutexGuard<'a, State>,
    msg: Option<String>,
) -> MutexGuard<'a, State> {
    match msg {
        None => st,
        Some(m) => {
            drop(st);
            eprintln!("{m}");
            sh.lock()
        }
    }
}

/// Rate-limited warnings about lines the server would not store (the final
/// summary has the total).
#[derive(Default)]
struct RejectWarnings {
    unreported: u64,
    last: Option<Instant>,
}

impl RejectWarnings {
    fn add(&mut self, n: u64, why: &str) -> Option<String> {
        self.unreported += n;
        if self.unreported == 0 || self.last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return None;
        }
        let msg = format!(
            "sightline: the server rejected {} lines and they were dropped ({why})",
            self.unreported
        );
        self.unreported = 0;
        self.last = Some(Instant::now());
        Some(msg)
    }
}

enum Outcome {
    /// 2xx: some lines may still have been rejected one by one.
    Accepted {
        accepted: u64,
        rejected: u64,
        example: Option<String>,
    },
    /// Connection error, timeout, 408, 429, 5xx.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// 413: a smaller batch may pass.
    TooLarge { reason: String },
    /// Any other answer: retrying cannot help.
    Refused { status: u16, reason: String },
}

/// The sender thread: takes batches from the front of the queue and sends
/// them until closed and empty, aborted, or past the deadline.
fn sender(sh: &Shared, target: &Target) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(5)))
        .user_agent(concat!("sightline-ship/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut backoff = BACKOFF_MIN;
    let mut limit = sh.batch_lines;
    let mut in_outage = false;
    let mut rejections = RejectWarnings::default();
    loop {
        // Wait until a batch is due: full, lingered long enough, or closing.
        let (start, lines, deadline) = {
            let mut st = sh.lock();
            loop {
                let msg = st.drop_warning();
                st = print_unlocked(sh, st, msg);
                if st.aborted || st.deadline.is_some_and(|d| Instant::now() >= d) {
                    return;
                }
                let Some(front) = st.queue.front() else {
                    if st.closing {
                        return;
                    }
                    st = sh.wait(st, WARN_EVERY);
                    continue;
                };
                let due = front.at + LINGER;
                let now = Instant::now();
                if st.closing || st.queue.len() >= limit || now >= due {
                    break;
                }
                st = sh.wait(st, due - now);
            }
            let mut bytes = 0;
            let mut lines = Vec::new();
            for p in st.queue.iter().take(limit) {
                if !lines.is_empty() && bytes + p.line.len() + 1 > MAX_BATCH_BYTES {
                    break;
                }
                bytes += p.line.len() + 1;
                lines.push(p.line.clone());
            }
            st.inflight_end = st.front_seq + lines.len() as u64;
            st.dropped_inflight = 0;
            (st.front_seq, lines, st.deadline)
        };
        let n = lines.len();
        let mut body = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in &lines {
            body.extend_from_slice(l.as_bytes());
            body.push(b'\n');
        }
        drop(lines);
        let timeout = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(REQUEST_TIMEOUT)
            .clamp(Duration::from_millis(1), REQUEST_TIMEOUT);
        let outcome = post(&agent, target, body, timeout);

        let end = start + n as u64;
        let mut st = sh.lock();
        let mut msg = None;
        let mut retry_after = None;
        match outcome {
            Outcome::Accepted {
                accepted,
                rejected,
                example,
            } => {
                st.remove_before(end);
                st.dropped_inflight = 0; // they were delivered after all
                st.accepted += accepted;
                st.rejected += rejected;
                backoff = BACKOFF_MIN;
                limit = sh.batch_lines;
                in_outage = false;
                if rejected > 0 {
                    let why = example.unwrap_or_else(|| "no reason given".into());
                    msg = rejections.add(rejected, &format!("e.g. {why}"));
                }
            }
            Outcome::TooLarge { .. } if n > 1 => {
                st.dropped += std::mem::take(&mut st.dropped_inflight);
                limit = (n / 2).max(1);
            }
            Outcome::TooLarge { reason } => {
                st.remove_before(end);
                st.dropped_inflight = 0;
                st.rejected += n as u64;
                msg = rejections.add(n as u64, &format!("HTTP 413: {reason}"));
            }
            Outcome::Refused { status, reason } => {
                st.remove_before(end);
                st.dropped_inflight = 0;
                st.rejected += n as u64;
                msg = rejections.add(n as u64, &format!("HTTP {status}: {reason}"));
            }
            Outcome::Retry { after, reason } => {
                st.dropped += std::mem::take(&mut st.dropped_inflight);
                if !in_outage {
                    in_outage = true;
                    msg = Some(format!(
                        "sightline: cannot ship to {}: {reason}; retrying",
                        target.url
                    ));
                }
                let jittered = backoff.mul_f64(rand::random_range(0.5..=1.0));
                retry_after = Some(after.unwrap_or(jittered));
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        st.inflight_end = st.front_seq;
        sh.space.notify_all();
        st = print_unlocked(sh, st, msg);

        // Back off; closing cuts the wait short (one more try right away).
        if let Some(delay) = retry_after {
            let until = Instant::now() + delay;
            let was_closing = st.closing;
            loop {
                let msg = st.drop_warning();
                st = print_unlocked(sh, st, msg);
                if st.aborted || st.closing != was_closing {
                    backoff = BACKOFF_MIN;
                    break;
                }
                let stop = st.deadline.map_or(until, |d| d.min(until));
                let now = Instant::now();
                if now >= stop {
                    break;
                }
                st = sh.wait(st, stop - now);
            }
        }
    }
}

/// One request. Never panics; every failure is an [`Outcome`].
fn post(agent: &ureq::Agent, target: &Target, body: Vec<u8>, timeout: Duration) -> Outcome {
    let mut req = agent
        .post(&target.url)
        .query("service", &target.service)
        .header("content-type", "application/x-ndjson")
        .config()
        .timeout_global(Some(timeout))
        .build();
    if let Some(k) = &target.key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let mut resp = match req.send(body) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                after: None,
                reason: e.to_string(),
            }
        }
    };
    let status = resp.status().as_u16();
    let after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(RETRY_AFTER_MAX));
    let text = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    let reason = || {
        let t = text.trim();
        let json: Option<serde_json::Value> = serde_json::from_str(t).ok();
        let r = json
            .as_ref()
            .and_then(|v| v["error"].as_str().or(v["message"].as_str()))
            .unwrap_or(t);
        r.chars().take(300).collect::<String>()
    };
    match status {
        200..=299 => {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let rejected = v["rejected"].as_u64().unwrap_or(0);
            let example = v["errors"].get(0).map(|e| {
                format!(
                    "line {}: {}",
                    e["line"],
                    e["reason"].as_str().unwrap_or("rejected")
                )
            });
            Outcome::Accepted {
                accepted: v["accepted"].as_u64().unwrap_or(0),
                rejected,
                example,
            }
        }
        // 408 too: a timeout on the server's side is worth another try.
        408 | 429 | 500..=599 => Outcome::Retry {
            after,
            reason: format!("HTTP {status}: {}", reason()),
        },
        413 => Outcome::TooLarge { reason: reason() },
        _ => Outcome::Refused {
            status,
            reason: reason(),
        },
    }
}

/// Closes the shipper and waits for it to send what is buffered, until the
/// flush deadline; a SIGINT/SIGTERM/SIGQUIT/SIGHUP meanwhile gives up at once.
fn finish(shipper: &Shipper, events: &Receiver<Event>, timeout: Duration) -> Summary {
    let deadline = shipper.close(timeout);
    // The request in flight is bounded by the deadline; a little slack for it.
    let give_up = deadline + Duration::from_millis(500);
    loop {
        let now = Instant::now();
        if now >= give_up {
            break;
        }
        match events.recv_timeout(give_up - now) {
            Ok(Event::SenderDone) | Err(_) => break,
            Ok(Event::Signal(SIGINT | SIGTERM | SIGQUIT | SIGHUP)) => {
                shipper.abort();
                break;
            }
            Ok(_) => {}
        }
    }
    shipper.summary()
}

/// The lines at the end that a user must know about.
fn report(s: &Summary, timeout: Duration) {
    if s.dropped > 0 {
        eprintln!(
            "sightline: dropped {} lines in total (buffer full; server unreachable?)",
            s.dropped
        );
    }
    if s.unsent > 0 && s.aborted {
        eprintln!(
            "sightline: {} lines not sent: interrupted while sending",
            s.unsent
        );
    } else if s.unsent > 0 {
        eprintln!(
            "sightline: {} lines not sent: the server did not take them within the flush timeout ({timeout:?})",
            s.unsent
        );
    }
    if s.rejected > 0 {
        eprintln!(
            "sightline: the server rejected {} lines in total",
            s.rejected
        );
    }
}

// ---------------------------------------------------------------------------
// Reading lines
// ---------------------------------------------------------------------------

/// Cuts a byte stream into lines; a line longer than [`MAX_LINE_BYTES`] keeps
/// its first [`MAX_LINE_BYTES`] bytes. The last line is held until its `\n`.
#[derive(Default)]
struct LineSplitter {
    line: Vec<u8>,
}

impl LineSplitter {
    /// Calls `emit` for each complete line; stops (returning false) as soon
    /// as `emit` returns false.
    fn feed(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8]) -> bool) -> bool {
        while let Some(i) = memchr::memchr(b'\n', data) {
            let go_on = if self.line.is_empty() {
                emit(&data[..i.min(MAX_LINE_BYTES)])
            } else {
                self.append(&data[..i]);
                let go_on = emit(&self.line);
                self.line.clear();
                go_on
            };
            if !go_on {
                return false;
            }
            data = &data[i + 1..];
        }
        self.append(data);
        true
    }

    fn append(&mut self, b: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
        self.line.extend_from_slice(&b[..b.len().min(room)]);
    }

    /// The incomplete last line, if any.
    fn take_partial(&mut self) -> Option<Vec<u8>> {
        (!self.line.is_empty()).then(|| std::mem::take(&mut self.line))
    }
}

/// Reads `src` to its end, writing every chunk through to `out` (if any) as
/// soon as it is read, and pushing each line to the shipper. Without `out`,
/// stops early once the shipper is closed; with it, keeps passing through.
fn pump(
    mut src: impl Read,
    mut out: Option<Box<dyn Write + Send>>,
    shipper: &Shipper,
    overflow: Overflow,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut split = LineSplitter::default();
    let result = loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        if let Some(w) = out.as_mut() {
            // Our own stdout/stderr went away (e.g. `| head`): keep shipping.
            if w.write_all(&buf[..n]).and_then(|()| w.flush()).is_err() {
                out = None;
            }
        }
        if !split.feed(&buf[..n], |l| shipper.push(l, overflow)) && out.is_none() {
            return Ok(());
        }
    };
    if let Some(l) = split.take_partial() {
        let _ = shipper.push(&l, overflow);
    }
    result
}

/// Follows `path` like `tail -F` (from the start of the file) until `stop`.
fn follow(path: &Path, shipper: &Shipper, stop: &AtomicBool) -> io::Result<()> {
    struct Open {
        file: File,
        id: (u64, u64),
        pos: u64,
    }
    fn read_available(
        o: &mut Open,
        buf: &mut [u8],
        split: &mut LineSplitter,
        shipper: &Shipper,
    ) -> io::Result<()> {
        loop {
            let n = match o.file.read(buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            o.pos += n as u64;
            if !split.feed(&buf[..n], |l| shipper.push(l, Overflow::Wait)) {
                return Ok(()); // closed
            }
        }
    }
    let push_partial = |split: &mut LineSplitter| {
        if let Some(l) = split.take_partial() {
            // Refused only once closed; the reader stops right after anyway.
            let _ = shipper.push(&l, Overflow::Wait);
        }
    };

    let mut cur: Option<Open> = None;
    let mut split = LineSplitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut said_missing = false;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if cur.is_none() {
            match File::open(path).and_then(|f| Ok((f.metadata()?, f))) {
                Ok((m, file)) => {
                    cur = Some(Open {
                        file,
                        id: (m.dev(), m.ino()),
                        pos: 0,
                    });
                    said_missing = false;
                }
                Err(e) => {
                    if !said_missing {
                        eprintln!("sightline: waiting for {}: {e}", path.display());
                        said_missing = true;
                    }
                }
            }
        }
        if let Some(o) = cur.as_mut() {
            read_available(o, &mut buf, &mut split, shipper)?;
        }
        if stopping {
            break;
        }
        if let Some(o) = cur.as_mut() {
            // A missing path (renamed away, not yet recreated) keeps the old file.
            if let Ok(m) = std::fs::metadata(path) {
                if (m.dev(), m.ino()) != o.id {
                    // Replaced: finish the old file, then the new one from its start.
                    read_available(o, &mut buf, &mut split, shipper)?;
                    push_partial(&mut split);
                    cur = None;
                    continue;
                }
                if m.len() < o.pos {
                    eprintln!(
                        "sightline: {} was truncated; reading it from the start",
                        path.display()
                    );
                    push_partial(&mut split);
                    o.file.seek(SeekFrom::Start(0))?;
                    o.pos = 0;
                    continue;
                }
            }
        }
        std::thread::park_timeout(POLL);
    }
    push_partial(&mut split);
    Ok(())
}

// ---------------------------------------------------------------------------
// `sightline run`
// ---------------------------------------------------------------------------

/// `sightline run`: see [`RunArgs`].
pub fn run(args: RunArgs) -> ExitCode {
    let target = match args.opts.target() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sightline: {e}");
            return ExitCode::from(2);
        }
    };
    // Registered before the child exists, so that no SIGCHLD can be missed.
    let signals = match SignalsInfo::<WithOrigin>::new([
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sightline: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    };
    let program = &args.command[0];
    let mut cmd = std::process::Command::new(program);
    cmd.args(&args.command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sightline: cannot run {}: {e}", program.to_string_lossy());
            let code = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return ExitCode::from(code);
        }
    };

    let (tx, rx) = mpsc::channel();
    let shipper = Shipper::start(target, &args.opts, tx.clone());
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let passthrough = |name: &str, src: Box<dyn Read + Send>, out: Box<dyn Write + Send>| {
        let (shipper, tx) = (shipper.clone(), tx.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let r = pump(src, Some(out), &shipper, Overflow::DropOldest);
                let _ = tx.send(Event::ReaderDone(r.map_err(|e| e.to_string())));
            })
            .expect("spawn a reader thread");
    };
    passthrough("sightline-stdout", Box::new(stdout), Box::new(io::stdout()));
    passthrough("sightline-stderr", Box::new(stderr), Box::new(io::stderr()));
    let sup_tx = tx.clone();
    std::thread::Builder::new()
        .name("sightline-signals".into())
        .spawn(move || supervise(child, signals, sup_tx))
        .expect("spawn the signal thread");
    drop(tx);

    let mut readers_done = 0;
    let status = loop {
        match rx.recv() {
            Ok(Event::ChildExited(s)) => break s,
            Ok(Event::ReaderDone(_)) => readers_done += 1,
            Ok(_) => {}
            Err(_) => {
                eprintln!("sightline: lost track of the child process");
                return ExitCode::from(1);
            }
        }
    };
    // Let the readers reach the end of the pipes (unless a grandchild holds them open).
    let grace = Instant::now() + READER_GRACE;
    while readers_done < 2 {
        match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok(Event::ReaderDone(_)) => readers_done += 1,
            Ok(Event::Signal(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let summary = finish(&shipper, &rx, args.opts.flush_timeout);
    report(&summary, args.opts.flush_timeout);
    ExitCode::from(exit_code(status))
}

/// A shell's exit code for a child's status: its code, or 128+N for signal N.
fn exit_code(s: ExitStatus) -> u8 {
    match (s.code(), s.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => (128 + sig) as u8,
        _ => 1,
    }
}

/// Owns the child: reaps it on SIGCHLD and forwards the other signals to it
/// until it has exited; after that, hands signals to the main thread.
///
/// A signal the kernel sent (`Cause::Kernel`: a terminal's Ctrl-C, Ctrl-\ or
/// hang-up) went to our whole process group, which includes the child: it is
/// not sent a second time (a second Ctrl-C means "exit now" to many servers).
/// Only this thread reaps the child, so its pid cannot be reused while we may
/// still signal it.
fn supervise(mut child: Child, mut signals: SignalsInfo<WithOrigin>, events: Sender<Event>) {
    let mut exited = false;
    let reap = |child: &mut Child, exited: &mut bool| {
        if *exited {
            return;
        }
        match child.try_wait() {
            Ok(Some(s)) => {
                *exited = true;
                let _ = events.send(Event::ChildExited(s));
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("sightline: cannot wait for the child: {e}");
                *exited = true;
                let _ = events.send(Event::ChildExited(ExitStatus::from_raw(1 << 8)));
            }
        }
    };
    reap(&mut child, &mut exited);
    for origin in signals.forever() {
        let sig = origin.signal;
        if sig == SIGCHLD {
            reap(&mut child, &mut exited);
        } else if exited {
            let _ = events.send(Event::Signal(sig));
        } else if !matches!(origin.cause, Cause::Kernel) {
            forward(child.id(), sig);
        }
    }
}

#[allow(unsafe_code)]
fn forward(pid: u32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the
    // pid is our child, not yet reaped (see `supervise`), so not reused.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

// ---------------------------------------------------------------------------
// `sightline ship`
// ---------------------------------------------------------------------------

/// `sightline ship`: see [`ShipArgs`].
pub fn ship(args: ShipArgs) -> ExitCode {
    let target = match args.opts.target() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sightline: {e}");
            return ExitCode::from(2);
        }
    };
    let stdin = args.file.as_os_str() == "-";
    let following = args.follow && !stdin;
    let name = if stdin {
        "stdin".to_string()
    } else {
        args.file.display().to_string()
    };
    // Without --follow the file must be there now.
    let file = if stdin || following {
        None
    } else {
        match File::open(&args.file) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("sightline: cannot open {name}: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sightline: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    };
    let (tx, rx) = mpsc::channel();
    let sig_tx = tx.clone();
    std::thread::Builder::new()
        .name("sightline-signals".into())
        .spawn(move || {
            for s in signals.forever() {
                let _ = sig_tx.send(Event::Signal(s));
            }
        })
        .expect("spawn the signal thread");
    let shipper = Shipper::start(target, &args.opts, tx.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (shipper, stop, tx, path) = (shipper.clone(), stop.clone(), tx, args.file.clone());
        std::thread::Builder::new()
            .name("sightline-read".into())
            .spawn(move || {
                let r = match file {
                    Some(f) => pump(f, None, &shipper, Overflow::Wait),
                    None if stdin => pump(io::stdin().lock(), None, &shipper, Overflow::Wait),
                    None => follow(&path, &shipper, &stop),
                };
                let _ = tx.send(Event::ReaderDone(r.map_err(|e| e.to_string())));
            })
            .expect("spawn the reader thread")
    };

    let mut ended_by = None;
    let mut read_error = None;
    loop {
        match rx.recv() {
            Ok(Event::ReaderDone(r)) => {
                read_error = r.err();
                break;
            }
            Ok(Event::Signal(sig)) => {
                ended_by = Some(sig);
                stop.store(true, Ordering::SeqCst);
                reader.thread().unpark();
                if following {
                    // One last read, and the held partial line.
                    let grace = Instant::now() + READER_GRACE;
                    while let Ok(ev) =
                        rx.recv_timeout(grace.saturating_duration_since(Instant::now()))
                    {
                        if let Event::ReaderDone(r) = ev {
                            read_error = r.err();
                            break;
                        }
                    }
                }
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let summary = finish(&shipper, &rx, args.opts.flush_timeout);
    eprintln!(
        "sightline: shipped {} lines from {name} (service {})",
        summary.accepted, args.opts.service
    );
    report(&summary, args.opts.flush_timeout);
    if let Some(e) = read_error {
        eprintln!("sightline: cannot read {name}: {e}");
        return ExitCode::from(1);
    }
    if summary.unsent > 0 || summary.dropped > 0 || summary.rejected > 0 {
        return ExitCode::from(1);
    }
    match ended_by {
        // Interrupted before the end of a file or stdin: like a shell would say.
        Some(sig) if !following => ExitCode::from((128 + sig) as u8),
        _ => ExitCode::SUCCESS,
    }
}
