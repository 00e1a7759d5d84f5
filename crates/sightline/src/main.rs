//! The `sightline` command: parses the CLI, builds the effective config and
//! hands it to the server. Everything else lives in the library crates.

use clap::{Args, Parser, Subcommand};
use sightline_server::Config;
use std::path::PathBuf;
use std::process::ExitCode;

mod client;
mod metrics_cli;
mod ship;

/// mimalloc: less fragmentation across the ingest threads than glibc's arenas,
/// and cheaper small allocations on the normalize path (measured in BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sightline",
    version,
    about = "Errors, logs, metrics and traces for Python backends, in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ConfigArgs),
    /// Print every stored log row of a data directory as JSON lines, decoded from
    /// the WAL and the parts (read-only; safe while a server runs).
    Inspect {
        /// Data directory [default: ./sightline-data].
        #[arg(long, env = "SIGHTLINE_DATA_DIR", default_value = "./sightline-data")]
        data_dir: PathBuf,
    },
    /// Search logs: `sightline logs 'service:api level:>=warning' --since 1h [-f]`.
    Logs(client::LogsArgs),
    /// One request: its spans as bars, logs and errors at their moments, its route's rate and latency.
    Request(client::IdArgs),
    /// One flow: its steps, status and where it stopped.
    Flow(client::IdArgs),
    /// List flows (`--name retake_flow --status failed`), or `--stats`.
    Flows(client::FlowsArgs),
    /// Error issues (grouped Sentry events): `--status`, `--project`, `-q`, `--sort`.
    Issues(client::IssuesArgs),
    /// One issue: stack trace of its latest event, tags, user, its request's logs.
    Issue(client::IdArgs),
    /// Projects and their Sentry DSNs: `list`, `create NAME`, `keys NAME [--new]`.
    Projects {
        #[command(subcommand)]
        command: client::ProjectsCommand,
    },
    /// Scrape targets: `list`, `add SERVICE URL`, `remove SERVICE|URL`.
    Targets {
        #[command(subcommand)]
        command: metrics_cli::TargetsCommand,
    },
    /// Every probed service: ok / degraded / down since when, checks, uptime.
    Health(metrics_cli::HealthArgs),
    /// Run a PromQL query: `sightline query 'rate(http_requests_total[5m])' [--range 1h]`.
    Query(metrics_cli::QueryArgs),
    Run(ship::RunArgs),
    Ship(ship::ShipArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment and flags) as TOML.
    Show(ConfigArgs),
}

/// Flags shared by every command that needs the config; each has an env twin.
#[derive(Args, Clone)]
struct ConfigArgs {
    /// Config file (TOML); unknown keys are an error.
    #[arg(long, env = "SIGHTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:4318].
    #[arg(long, env = "SIGHTLINE_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Data directory [default: ./sightline-data].
    #[arg(long, env = "SIGHTLINE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Bearer token for read APIs [default: generated into the data dir].
    #[arg(long, env = "SIGHTLINE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Ingest key, required when listening beyond loopback [default: generated].
    #[arg(long, env = "SIGHTLINE_INGEST_KEY", hide_env_values = true)]
    ingest_key: Option<String>,
    /// When to fsync the write-ahead log: always (before acknowledging) or batch.
    #[arg(long, env = "SIGHTLINE_FSYNC", value_parser = ["always", "batch"])]
    fsync: Option<String>,
    /// Filter for Sightline's own logs [default: info].
    #[arg(long, env = "SIGHTLINE_LOG_LEVEL")]
    log_level: Option<String>,
}

impl ConfigArgs {
    fn resolve(self) -> Result<Config, String> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.api_token {
            c.api_token = Some(v);
        }
        if let Some(v) = self.ingest_key {
            c.ingest_key = Some(v);
        }
        if let Some(v) = self.fsync {
            c.fsync = if v == "batch" {
                sightline_store::FsyncPolicy::Batch
            } else {
                sightline_store::FsyncPolicy::Always
            };
        }
        if let Some(v) = self.log_level {
            c.log_level = v;
        }
        Ok(c)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Logs(args) => return client::exit(client::logs(args)),
        Command::Request(args) => return client::exit(client::request(args)),
        Command::Flow(args) => return client::exit(client::flow(args)),
        Command::Flows(args) => return client::exit(client::flows(args)),
        Command::Issues(args) => return client::exit(client::issues(args)),
        Command::Issue(args) => return client::exit(client::issue(args)),
        Command::Projects { command } => return client::exit(client::projects(command)),
        Command::Targets { command } => return client::exit(metrics_cli::targets(command)),
        Command::Health(args) => return client::exit(metrics_cli::health(args)),
        Command::Query(args) => return client::exit(metrics_cli::query(args)),
        Command::Run(args) => return ship::run(args),
        Command::Ship(args) => return ship::ship(args),
        Command::Config {
            command: ConfigCommand::Show(args),
        } => args.resolve().map(|c| print!("{}", c.to_toml())),
        Command::Serve(args) => args.resolve().and_then(serve),
        Command::Inspect { data_dir } => inspect(&data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sightline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(data_dir: &std::path::Path) -> Result<(), String> {
    use sightline_store::inspect::Source;
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut result = Ok(());
    sightline_store::inspect::for_each_row(data_dir, |source, row| {
        let mut v = row.to_json();
        let (kind, path) = match source {
            Source::Wal(p) => ("wal", p),
            Source::Part(p) => ("part", p),
        };
        v["source"] = serde_json::json!({"kind": kind, "path": path.display().to_string()});
        if result.is_ok() {
            result = writeln!(out, "{v}");
        }
    })
    .map_err(|e| format!("cannot read {}: {e}", data_dir.display()))?;
    result.and_then(|_| out.flush()).map_err(|e| e.to_string())
}

fn serve(config: Config) -> Result<(), String> {
    sightline_server::init_logging(&config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sightline")
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    let app = sightline_server::build(config)?;
    runtime.block_on(sightline_server::serve(app))
}
