//! The Sightline server: HTTP endpoints over the store, background services,
//! and Sightline's own observability (request-id logs, `/metrics`, health).
//!
//! [`routes`] lists every path. Handlers do cheap checks (auth, limits, content
//! type), run parsing and normalization on a blocking thread, hand the batch to
//! the store and answer once the WAL has it. See [`error`] for the status-code
//! contract.

pub mod auth;
pub mod body;
pub mod config;
pub mod cron;
pub mod endpoints;
pub mod error;
pub mod metrics;
pub mod probe;
pub mod red;
pub mod scrape;
pub mod ui;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
pub use config::Config;
use sightline_pipeline::{Normalizer, Scrubber};
use sightline_store::LogStore;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Shared state of every handler.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Arc<LogStore>,
    pub normalizer: Normalizer,
    pub metrics: metrics::Metrics,
    pub api_token: String,
    /// Required on ingest when set (listening beyond loopback).
    pub ingest_key: Option<String>,
    pub ingest_slots: Semaphore,
    /// Log queries running at once.
    pub query_slots: Semaphore,
    pub engine: sightline_query::Engine,
    /// Every acknowledged chunk, for live tails.
    pub tail: tokio::sync::broadcast::Sender<sightline_store::Chunk>,
    /// Projects and their public keys (`DATA/meta.sqlite`).
    pub projects: parking_lot::Mutex<sightline_store::projects::Projects>,
    pub events: Arc<sightline_store::events::EventStore>,
    pub sentry: endpoints::sentry_ingest::SentryState,
    /// Series and samples (`DATA/metrics/`).
    pub tsdb: Arc<sightline_store::tsdb::Tsdb>,
    pub promql: sightline_promql::Engine,
    pub scraper: scrape::Scraper,
    pub prober: Arc<probe::Prober>,
    /// Spans from OTLP and Sentry transactions (`DATA/traces/`).
    pub spans: Arc<sightline_store::spans::SpanStore>,
    pub traces: sightline_query::traces::Traces,
    /// Counters behind the span RED series (fed by the span store's append hook).
    pub red: Arc<red::Red>,
    /// Web UI sessions and the in-process read API it renders from.
    pub ui: ui::Ui,
}

pub type AppState = Arc<App>;

/// The id of the API request being served, from `x-request-id` or generated.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The read API, without its bearer-token check.
fn read_api() -> Router<AppState> {
    Router::new()
        .route("/api/v1/logs", get(endpoints::logs_query::query))
        .route("/api/v1/logs/fields", get(endpoints::logs_query::fields))
        .route("/api/v1/logs/tail", get(endpoints::logs_query::tail))
        .route(
            "/api/v1/requests/{request_id}",
            get(endpoints::views::request),
        )
        .route("/api/v1/traces", get(endpoints::traces::search))
        .route("/api/v1/traces/{trace_id}", get(endpoints::traces::trace))
        .route("/api/v1/flows", get(endpoints::views::flows))
        .route("/api/v1/flows/stats", get(endpoints::views::flow_stats))
        .route("/api/v1/flows/{flow_id}", get(endpoints::views::flow))
        .route(
            "/api/v1/projects",
            get(endpoints::projects::list).post(endpoints::projects::create),
        )
        .route(
            "/api/v1/projects/{name}/keys",
            post(endpoints::projects::add_key),
        )
        .route("/api/v1/issues", get(endpoints::issues::list))
        .route(
            "/api/v1/issues/{id}",
            get(endpoints::issues::get).put(endpoints::issues::put),
        )
        .route(
            "/api/v1/issues/{id}/events",
            get(endpoints::issues::issue_events),
        )
        .route("/api/v1/events/{event_id}", get(endpoints::issues::event))
        .route("/api/v1/monitors", get(endpoints::issues::monitors))
        .route("/api/v1/releases", get(endpoints::issues::releases))
        .route(
            "/api/v1/query",
            get(endpoints::prom_api::query).post(endpoints::prom_api::query),
        )
        .route(
            "/api/v1/query_range",
            get(endpoints::prom_api::query_range).post(endpoints::prom_api::query_range),
        )
        .route(
            "/api/v1/series",
            get(endpoints::prom_api::series).post(endpoints::prom_api::series),
        )
        .route(
            "/api/v1/labels",
            get(endpoints::prom_api::labels).post(endpoints::prom_api::labels),
        )
        .route(
            "/api/v1/label/{name}/values",
            get(endpoints::prom_api::label_values),
        )
        .route("/api/v1/metadata", get(endpoints::prom_api::metadata))
        .route(
            "/api/v1/targets",
            get(endpoints::prom_api::targets).post(endpoints::prom_api::add_target),
        )
        .route(
            "/api/v1/targets/{key}",
            axum::routing::delete(endpoints::prom_api::remove_target),
        )
        .route(
            "/api/v1/status/buildinfo",
            get(endpoints::prom_api::buildinfo),
        )
        .route("/api/v1/rules", get(endpoints::prom_api::empty_rules))
        .route("/api/v1/alerts", get(endpoints::prom_api::empty_alerts))
        .route(
            "/api/v1/query_exemplars",
            get(endpoints::prom_api::empty_exemplars).post(endpoints::prom_api::empty_exemplars),
        )
        .route("/api/v1/health", get(endpoints::prom_api::health))
}

/// Every route Sightline serves.
pub fn routes(app: AppState) -> Router {
    // The UI renders from the read API, called in-process by logged-in users.
    app.ui.set_api(read_api().with_state(app.clone()));
    let read_api = read_api().route_layer(middleware::from_fn_with_state(
        app.clone(),
        require_api_token,
    ));
    Router::new()
        // NDJSON: structlog / stdlib JSON lines or plain text, one record per line.
        .route("/api/v1/logs/ingest", post(endpoints::logs_ingest::ingest))
        // OTLP/HTTP logs; the OTel SDK's default path on its default port.
        .route("/v1/logs", post(endpoints::otlp_logs::ingest))
        // OTLP/HTTP traces, into the span store.
        .route("/v1/traces", post(endpoints::traces::ingest))
        // OTLP/HTTP metrics, into the metrics store as Prometheus series.
        .route("/v1/metrics", post(endpoints::otlp_metrics::ingest))
        // Prometheus remote write 1.0 (snappy + protobuf).
        .route("/api/v1/write", post(endpoints::prom_api::remote_write))
        .route(
            "/api/{project_id}/envelope/",
            any(endpoints::sentry_ingest::handle),
        )
        .route(
            "/api/{project_id}/envelope",
            any(endpoints::sentry_ingest::handle),
        )
        .route(
            "/api/{project_id}/store/",
            any(endpoints::sentry_ingest::handle),
        )
        .route(
            "/api/{project_id}/store",
            any(endpoints::sentry_ingest::handle),
        )
        .merge(read_api)
        .merge(ui::routes(app.clone()))
        .route("/health", get(endpoints::health::live))
        .route("/health/ready", get(endpoints::health::ready))
        .route("/metrics", get(endpoints::health::metrics))
        .route("/", get(endpoints::health::index))
        .route_layer(middleware::from_fn_with_state(app.clone(), observe))
        .fallback(fallback)
        .with_state(app)
}

/// Sentry endpoints under a path prefix (`/sentry/api/1/envelope/`); anything
/// else is a 404.
async fn fallback(state: State<AppState>, req: Request) -> Response {
    if endpoints::sentry_ingest::match_path(req.uri().path()).is_some() {
        return endpoints::sentry_ingest::handle(state, req).await;
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "no such endpoint"})),
    )
        .into_response()
}

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// Request id, one structured log line and metrics per API request.
async fn observe(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(valid_request_id)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(rid.clone()));
    let span = tracing::info_span!("request", request_id = %rid);
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status();
    let elapsed = start.elapsed();
    app.metrics
        .http_requests
        .inc_by(&[method.as_str(), &route, status.as_str()], 1);
    app.metrics.http_duration.observe(&[&route], elapsed);
    let ms = elapsed.as_secs_f64() * 1000.0;
    if route != "/metrics" && !route.starts_with("/health") {
        if status.is_server_error() {
            tracing::warn!(request_id = %rid, method = %method, route, status = status.as_u16(), duration_ms = ms, "request");
        } else {
            tracing::info!(request_id = %rid, method = %method, route, status = status.as_u16(), duration_ms = ms, "request");
        }
    }
    resp
}

async fn require_api_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let given = auth::bearer(
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
    );
    match given {
        Some(t) if auth::secret_eq(t, &app.api_token) => next.run(req).await,
        Some(_) => error::ApiError::Unauthorized("invalid API token").into_response(),
        None => error::ApiError::Unauthorized("read APIs need Authorization: Bearer <api token>")
            .into_response(),
    }
}

/// Chunks a live tail may fall behind before it is told it dropped some.
pub const TAIL_CHUNKS: usize = 1024;

/// Builds the app state: opens the store, loads or creates secrets.
pub fn build(config: Config) -> anyhow_like::Result<AppState> {
    let store = LogStore::open(config.store_config())
        .map_err(|e| format!("cannot open data dir {}: {e}", config.data_dir.display()))?;
    let api_token = match &config.api_token {
        Some(t) if !t.is_empty() => t.clone(),
        _ => {
            auth::api_token(&config.data_dir).map_err(|e| format!("cannot store api token: {e}"))?
        }
    };
    let ingest_key = if config.listen.ip().is_loopback() {
        config.ingest_key.clone().filter(|k| !k.is_empty())
    } else {
        Some(match &config.ingest_key {
            Some(k) if !k.is_empty() => k.clone(),
            _ => auth::ingest_key(&config.data_dir)
                .map_err(|e| format!("cannot store ingest key: {e}"))?,
        })
    };
    let projects = open_projects(&config)?;
    let events = sightline_store::events::EventStore::open(&config.data_dir, config.fsync)
        .map_err(|e| {
            format!(
                "cannot open the event store in {}: {e}",
                config.data_dir.display()
            )
        })?;
    let ms = |s: &str, what: &str| {
        sightline_query::time::parse_duration(s)
            .map(|ns| ns / 1_000_000)
            .map_err(|e| format!("[metrics] {what}: {e}"))
    };
    let tsdb_opts = sightline_store::tsdb::TsdbOptions {
        fsync: config.fsync,
        block_ms: ms(&config.metrics.block_duration, "block_duration")?.max(1000),
        retention_ms: ms(&config.metrics.retention, "retention")?.max(1000),
    };
    let tsdb = Arc::new(
        sightline_store::tsdb::Tsdb::open(&config.data_dir, tsdb_opts).map_err(|e| {
            format!(
                "cannot open the metrics store in {}: {e}",
                config.data_dir.display()
            )
        })?,
    );
    let lookback = sightline_query::time::parse_duration(&config.metrics.lookback_delta)
        .map_err(|e| format!("[metrics] lookback_delta: {e}"))?;
    let promql = sightline_promql::Engine::new(sightline_promql::EngineOptions {
        lookback_delta: std::time::Duration::from_nanos(lookback.max(1_000_000) as u64),
        max_samples: config.metrics.max_samples,
        timeout: std::time::Duration::from_secs(config.query.timeout_secs.max(1)),
        ..Default::default()
    });
    for t in &config.targets {
        scrape::Target::from_config(t, &config.metrics, "config")
            .map_err(|e| format!("[[targets]]: {e}"))?;
    }
    let spans =
        sightline_store::spans::SpanStore::open(config.span_store_config()).map_err(|e| {
            format!(
                "cannot open the span store in {}: {e}",
                sightline_store::files::traces_dir(&config.data_dir).display()
            )
        })?;
    let red = Arc::new(red::Red::new(config.traces.duration_buckets.clone()));
    spans.on_append(red::hook(red.clone()));
    let prober = Arc::new(probe::Prober::new(tsdb.clone()));
    let scraper = scrape::Scraper::new(tsdb.clone(), &config.metrics, Some(prober.clone()));
    let normalizer = Normalizer::new(Scrubber::new(&config.scrub), config.limits.max_record_bytes);
    let (tail, _) = tokio::sync::broadcast::channel(TAIL_CHUNKS);
    let tx = tail.clone();
    store.on_append(Box::new(move |c| {
        // No subscriber is the normal case: send then costs a check.
        if tx.receiver_count() > 0 {
            let _ = tx.send(c.clone());
        }
    }));
    Ok(Arc::new(App {
        ingest_slots: Semaphore::new(config.limits.max_concurrent_ingest.max(1)),
        query_slots: Semaphore::new(config.query.max_concurrent.max(1)),
        engine: sightline_query::Engine::new(config.query_limits()),
        tail,
        projects: parking_lot::Mutex::new(projects),
        events: Arc::new(events),
        sentry: Default::default(),
        tsdb,
        promql,
        scraper,
        prober,
        spans: Arc::new(spans),
        traces: sightline_query::traces::Traces::new(),
        red,
        ui: ui::Ui::new(
            &api_token,
            Some(
                config
                    .data_dir
                    .join(sightline_store::files::UI_REVOKED_FILE),
            ),
        ),
        config,
        store: Arc::new(store),
        normalizer,
        metrics: metrics::Metrics::default(),
        api_token,
        ingest_key,
    }))
}

/// Opens the projects metadata, makes the declared projects exist, and creates
/// a `default` project with a new key when there is none.
fn open_projects(config: &Config) -> anyhow_like::Result<sightline_store::projects::Projects> {
    let path = config.data_dir.join(sightline_store::files::META_FILE);
    let mut p = sightline_store::projects::Projects::open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    for d in &config.projects {
        p.declare(&d.name, d.id, &d.keys)
            .map_err(|e| format!("[[projects]] {}: {e}", d.name))?;
    }
    if p.list().map_err(|e| e.to_string())?.is_empty() {
        p.create("default", None, &endpoints::projects::new_key())
            .map_err(|e| format!("cannot create the default project: {e}"))?;
    }
    Ok(p)
}

/// Error type of [`build`] and [`serve`]: a message for the operator.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, String>;
}

/// What a user needs to start: printed once on start.
pub fn banner(app: &App, addr: std::net::SocketAddr) -> String {
    let base = format!("http://{addr}");
    let key_note = match &app.ingest_key {
        Some(k) => format!("  ingest key:   {k}  (send as Authorization: Bearer <key>)\n"),
        None => "  ingest:       open on loopback (no key needed)\n".to_string(),
    };
    let dsns: String = app
        .projects
        .lock()
        .list()
        .unwrap_or_default()
        .iter()
        .flat_map(|p| {
            p.keys.iter().map(move |k| {
                format!(
                    "  Sentry DSN:   {}   (project {})\n",
                    endpoints::projects::dsn(k, &addr.to_string(), p.id),
                    p.name
                )
            })
        })
        .collect();
    format!(
        "Sightline {ver} is running\n\
         \x20 API/UI:       {base}/\n\
         \x20 API token:    {token}  (Authorization: Bearer <token>)\n\
         \x20 data dir:     {data}\n\
         {key_note}\
         {dsns}\
         \x20 ingest logs:  POST {base}/api/v1/logs/ingest?service=NAME   (NDJSON: structlog JSON or plain lines; gzip/zstd)\n\
         \x20               POST {base}/v1/logs                           (OTLP/HTTP logs, protobuf or JSON)\n\
         \x20 traces:       POST {base}/v1/traces                         (OTLP/HTTP spans; Sentry transactions arrive through the DSN)\n\
         \x20 ship logs:    python app.py 2>&1 | curl -sS --data-binary @- -H 'Content-Type: application/x-ndjson' '{base}/api/v1/logs/ingest?service=api'\n\
         \x20 OTel apps:    OTEL_EXPORTER_OTLP_ENDPOINT={base}\n\
         \x20 query:        curl -H 'Authorization: Bearer {token}' '{base}/api/v1/logs?q=level:>=warning'\n\
         \x20 one request:  SIGHTLINE_URL={base} SIGHTLINE_API_TOKEN={token} sightline request ID\n\
         \x20 health:       {base}/health  {base}/health/ready  {base}/metrics\n",
        ver = env!("CARGO_PKG_VERSION"),
        token = app.api_token,
        data = app.config.data_dir.display(),
    )
}

/// Starts scraping and probing the declared targets and those added at
/// runtime (kept in `meta.sqlite`).
pub fn start_targets(app: &App) {
    for c in &app.config.targets {
        if let Ok(t) = scrape::Target::from_config(c, &app.config.metrics, "config") {
            app.scraper.add(t);
        }
    }
    let stored = app.projects.lock().targets().unwrap_or_default();
    for (url, json) in stored {
        let parsed = serde_json::from_str::<config::TargetConfig>(&json)
            .map_err(|e| e.to_string())
            .and_then(|c| scrape::Target::from_config(&c, &app.config.metrics, "api"));
        match parsed {
            Ok(t) => app.scraper.add(t),
            Err(e) => tracing::warn!(url, error = %e, "stored target skipped"),
        }
    }
}

/// Serves until SIGINT/SIGTERM, then stops accepting, flushes and returns.
pub async fn serve(app: AppState) -> anyhow_like::Result<()> {
    let listener = tokio::net::TcpListener::bind(app.config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", app.config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    print!("{}", banner(&app, addr));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(listen = %addr, data_dir = %app.config.data_dir.display(), "sightline started");
    start_targets(&app);
    red::spawn(app.clone());
    let router = routes(app.clone());
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!("shutting down: flushing");
    app.scraper.stop_all();
    let store = app.store.clone();
    let events = app.events.clone();
    let tsdb = app.tsdb.clone();
    let spans = app.spans.clone();
    tokio::task::spawn_blocking(move || {
        events.shutdown();
        tsdb.shutdown();
        spans.shutdown();
        store.shutdown()
    })
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Installs the JSON log subscriber for Sightline's own logs (stderr).
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
