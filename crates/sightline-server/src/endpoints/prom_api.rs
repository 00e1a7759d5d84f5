//! The Prometheus HTTP API over the metrics store (`/api/v1/query`,
//! `query_range`, `series`, `labels`, `label/{name}/values`, `metadata`,
//! `targets`, `status/buildinfo`), GET or form POST, with Prometheus's JSON
//! shapes and error bodies — so Grafana's Prometheus data source works —
//! plus remote write (`POST /api/v1/write`), runtime targets and `/api/v1/health`.

use crate::endpoints::check_ingest_key;
use crate::error::ApiError;
use crate::scrape::{now_ms, Target};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sightline_promql::{MatchOp as PMatchOp, Matcher, QueryError, Series, Storage};
use sightline_store::tsdb::{LabelMatcher, Labels, MatchOp, SeriesSamples, Tsdb};

/// The metrics store as the PromQL engine reads it.
pub struct TsdbStorage<'a>(pub &'a Tsdb);

pub fn to_store_matcher(m: &Matcher) -> LabelMatcher {
    LabelMatcher {
        name: m.name.clone(),
        op: match &m.op {
            PMatchOp::Equal => MatchOp::Equal(m.value.clone()),
            PMatchOp::NotEqual => MatchOp::NotEqual(m.value.clone()),
            PMatchOp::Re(r) => MatchOp::Regex(r.clone()),
            PMatchOp::NotRe(r) => MatchOp::NotRegex(r.clone()),
        },
    }
}

impl Storage for TsdbStorage<'_> {
    fn select(
        &self,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<Series>, String> {
        let ms: Vec<LabelMatcher> = matchers.iter().map(to_store_matcher).collect();
        Ok(self
            .0
            .select(&ms, mint_ms, maxt_ms)
            .into_iter()
            .map(|s| Series {
                labels: sightline_promql::Labels(s.labels.0),
                samples: s.samples,
            })
            .collect())
    }
}

/// A Prometheus API error body with its status.
pub struct PromError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl PromError {
    fn bad_data(m: impl Into<String>) -> PromError {
        PromError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: m.into(),
        }
    }
}

impl From<QueryError> for PromError {
    fn from(e: QueryError) -> Self {
        let status = match &e {
            QueryError::Parse(_) => StatusCode::BAD_REQUEST,
            QueryError::Execution(_) | QueryError::TooManySamples => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            QueryError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        PromError {
            status,
            kind: e.error_type(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": "error", "errorType": self.kind, "error": self.message})),
        )
            .into_response()
    }
}

fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

fn respond(r: Result<Value, PromError>) -> Response {
    match r {
        Ok(data) => success(data),
        Err(e) => e.into_response(),
    }
}

/// Parameters from the URL query and, for POST, the form body (an
/// extractor: it reads the body, so it comes last in a handler's arguments).
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = PromError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, PromError> {
        let method = req.method().clone();
        let query = req.uri().query().map(str::to_string);
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| PromError::bad_data(format!("cannot read the request body: {e}")))?;
        Params::parse(&method, query, &headers, &body)
    }
}

impl Params {
    fn parse(
        method: &Method,
        query: Option<String>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Params, PromError> {
        let mut p: Vec<(String, String)> = match &query {
            Some(q) => serde_urlencoded::from_str(q)
                .map_err(|e| PromError::bad_data(format!("invalid query string: {e}")))?,
            None => vec![],
        };
        if method == Method::POST && !body.is_empty() {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !ct.starts_with("application/x-www-form-urlencoded") {
                return Err(PromError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    kind: "bad_data",
                    message: format!(
                        "POST parameters must be application/x-www-form-urlencoded, not {ct:?}"
                    ),
                });
            }
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|e| PromError::bad_data(format!("invalid form body: {e}")))?;
            p.extend(form);
        }
        Ok(Params(p))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A time as Prometheus takes it: unix seconds (float) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok((f * 1000.0).round() as i64);
    }
    sightline_pipeline::timefmt::parse_timestamp(s)
        .map(|ns| ns.div_euclid(1_000_000))
        .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// A duration as Prometheus takes it: float seconds or `5m`.
fn parse_step(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f * 1000.0 > i64::MAX as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((f * 1000.0).round() as i64);
    }
    promql_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// Prometheus duration syntax (`1h30m`, `500ms`, `2d`, `1w`, `1y`).
fn promql_duration(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let d = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if d == 0 {
            return None;
        }
        let n: i64 = rest[..d].parse().ok()?;
        rest = &rest[d..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            let u = match rest.chars().next()? {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 7 * 86_400_000,
                'y' => 365 * 86_400_000,
                _ => return None,
            };
            (u, 1)
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, PromError> {
    match p.get(name) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s)
            .map_err(|e| PromError::bad_data(format!("invalid parameter {name:?}: {e}"))),
    }
}

/// Selector sets from `match[]`, each parsed as a PromQL vector selector.
fn match_sets(p: &Params) -> Result<Vec<Vec<LabelMatcher>>, PromError> {
    let mut out = vec![];
    for m in p.all("match[]") {
        let expr = sightline_promql::parse(m)
            .map_err(|e| PromError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
        match expr {
            promql_parser::parser::Expr::VectorSelector(vs) => {
                let mut ms: Vec<LabelMatcher> =
                    vs.matchers.matchers.iter().map(to_store_matcher).collect();
                if let Some(n) = vs.name {
                    if !ms.iter().any(|m| m.name == "__name__") {
                        ms.push(LabelMatcher::equal("__name__", &n));
                    }
                }
                if ms.iter().all(|m| m.matches("")) {
                    return Err(PromError::bad_data(
                        "match[] must contain at least one non-empty matcher",
                    ));
                }
                out.push(ms);
            }
            _ => {
                return Err(PromError::bad_data(format!(
                    "invalid parameter \"match[]\": {m:?} is not a series selector"
                )))
            }
        }
    }
    Ok(out)
}

const MIN_TIME: i64 = -9_223_309_901_257_974;
const MAX_TIME: i64 = 9_223_309_901_257_974;

async fn run_query<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&crate::App) -> Result<T, PromError> + Send + 'static,
) -> Result<T, PromError> {
    let _slot = app.query_slots.acquire().await.map_err(|_| PromError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "unavailable",
        message: "shutting down".into(),
    })?;
    let a = app.clone();
    tokio::task::spawn_blocking(move || f(&a))
        .await
        .map_err(|e| PromError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: format!("query task failed: {e}"),
        })?
}

pub async fn query(State(app): State<AppState>, p: Params) -> Response {
    let r = async {
        let query = p
            .get("query")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                PromError::bad_data("invalid parameter \"query\": query must not be empty")
            })?
            .to_string();
        let t = time_param(&p, "time", now_ms())?;
        run_query(&app, move |a| {
            let v = a.promql.instant(&TsdbStorage(&a.tsdb), &query, t)?;
            Ok(sightline_promql::to_json(&v))
        })
        .await
    }
    .await;
    respond(r)
}

pub async fn query_range(State(app): State<AppState>, p: Params) -> Response {
    let r = async {
        let query = p
            .get("query")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| PromError::bad_data("invalid parameter \"query\": query must not be empty"))?
            .to_string();
        let need = |k: &str| {
            p.get(k)
                .ok_or_else(|| PromError::bad_data(format!("invalid parameter {k:?}: missing")))
        };
        let start = parse_time(need("start")?).map_err(|e| PromError::bad_data(format!("invalid parameter \"start\": {e}")))?;
        let end = parse_time(need("end")?).map_err(|e| PromError::bad_data(format!("invalid parameter \"end\": {e}")))?;
        if end < start {
            return Err(PromError::bad_data("invalid parameter \"end\": end timestamp must not be before start time"));
        }
        let step = parse_step(need("step")?).map_err(|e| PromError::bad_data(format!("invalid parameter \"step\": {e}")))?;
        if step <= 0 {
            return Err(PromError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end - start) / step > 11_000 {
            return Err(PromError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        run_query(&app, move |a| {
            let v = a.promql.range(&TsdbStorage(&a.tsdb), &query, start, end, step)?;
            Ok(sightline_promql::to_json(&v))
        })
        .await
    }
    .await;
    respond(r)
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(
        l.0.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

pub async fn series(State(app): State<AppState>, p: Params) -> Response {
    let r = async {
        let sets = match_sets(&p)?;
        if sets.is_empty() {
            return Err(PromError::bad_data("no match[] parameter provided"));
        }
        let start = time_param(&p, "start", MIN_TIME)?;
        let end = time_param(&p, "end", MAX_TIME)?;
        run_query(&app, move |a| {
            Ok(Value::Array(
                a.tsdb
                    .series(&sets, start, end)
                    .iter()
                    .map(labels_json)
                    .collect(),
            ))
        })
        .await
    }
    .await;
    respond(r)
}

pub async fn labels(State(app): State<AppState>, p: Params) -> Response {
    let r = async {
        let sets = match_sets(&p)?;
        let start = time_param(&p, "start", i64::MIN)?;
        let end = time_param(&p, "end", i64::MAX)?;
        run_query(&app, move |a| {
            Ok(json!(a.tsdb.label_names(&sets, start, end)))
        })
        .await
    }
    .await;
    respond(r)
}

pub async fn label_values(
    State(app): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> Response {
    let r = async {
        if !crate::scrape::valid_label_name(&name) {
            return Err(PromError::bad_data(format!("invalid label name: {name:?}")));
        }
        let sets = match_sets(&p)?;
        let start = time_param(&p, "start", i64::MIN)?;
        let end = time_param(&p, "end", i64::MAX)?;
        run_query(&app, move |a| {
            Ok(json!(a.tsdb.label_values(&name, &sets, start, end)))
        })
        .await
    }
    .await;
    respond(r)
}

pub async fn metadata(State(app): State<AppState>, p: Params) -> Response {
    let metric = p.get("metric").filter(|s| !s.is_empty());
    let limit: usize = p
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0)
        .unwrap_or(usize::MAX);
    let md = app.scraper.metadata.read();
    let mut names: Vec<&String> = md
        .keys()
        .filter(|k| metric.is_none_or(|m| m == k.as_str()))
        .collect();
    names.sort();
    let mut out = serde_json::Map::new();
    for n in names.into_iter().take(limit) {
        let m = &md[n];
        out.insert(
            n.clone(),
            json!([{"type": m.kind.as_str(), "help": m.help, "unit": m.unit}]),
        );
    }
    success(Value::Object(out))
}

fn rfc3339(t: std::time::SystemTime) -> String {
    let ns = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    sightline_pipeline::timefmt::format_rfc3339_nanos(ns)
}

fn secs(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `GET /api/v1/targets` in Prometheus's shape.
pub async fn targets(State(app): State<AppState>) -> Response {
    let active: Vec<Value> = app
        .scraper
        .list()
        .into_iter()
        .map(|t| {
            let mut labels = serde_json::Map::new();
            for (k, v) in t.target.target_labels() {
                labels.insert(k, Value::String(v));
            }
            json!({
                "discoveredLabels": {
                    "__address__": t.target.instance(),
                    "__metrics_path__": t.target.metrics_path,
                    "__scheme__": "http",
                    "job": t.target.service,
                },
                "labels": labels,
                "scrapePool": t.target.service,
                "scrapeUrl": format!("{}{}", t.target.base_url, t.target.metrics_path),
                "globalUrl": format!("{}{}", t.target.base_url, t.target.metrics_path),
                "lastError": t.status.last_error,
                "lastScrape": t.status.last_scrape.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                "lastScrapeDuration": t.status.last_duration.as_secs_f64(),
                "health": t.status.health,
                "scrapeInterval": secs(t.target.interval),
                "scrapeTimeout": secs(t.target.timeout),
                "source": t.target.source,
                "samples": t.status.samples,
            })
        })
        .collect();
    success(json!({"activeTargets": active, "droppedTargets": []}))
}

/// `POST /api/v1/targets` `{"service", "url", …}`: scrape and probe it from
/// now on (kept across restarts).
pub async fn add_target(
    State(app): State<AppState>,
    Json(c): Json<crate::config::TargetConfig>,
) -> Response {
    let t = match Target::from_config(&c, &app.config.metrics, "api") {
        Ok(t) => t,
        Err(e) => return ApiError::BadRequest(e).into_response(),
    };
    if app
        .config
        .targets
        .iter()
        .any(|d| d.url.trim_end_matches('/') == t.base_url)
    {
        return ApiError::BadRequest(format!(
            "{} is declared in sightline.toml; change it there",
            t.base_url
        ))
        .into_response();
    }
    let stored = serde_json::to_string(&t.to_config()).expect("serializable");
    if let Err(e) = app.projects.lock().put_target(&t.base_url, &stored) {
        return ApiError::from(e).into_response();
    }
    app.scraper.add(t.clone());
    (
        StatusCode::CREATED,
        Json(json!({"service": t.service, "url": t.base_url, "instance": t.instance()})),
    )
        .into_response()
}

/// `DELETE /api/v1/targets/{service or url}`.
pub async fn remove_target(State(app): State<AppState>, Path(key): Path<String>) -> Response {
    let declared: Vec<String> = app
        .config
        .targets
        .iter()
        .filter(|d| d.service == key || d.url.trim_end_matches('/') == key.trim_end_matches('/'))
        .map(|d| d.url.clone())
        .collect();
    if !declared.is_empty() {
        return ApiError::BadRequest(format!(
            "{key} is declared in sightline.toml; remove it there"
        ))
        .into_response();
    }
    let urls: Vec<String> = app
        .scraper
        .list()
        .into_iter()
        .filter(|t| t.target.service == key || t.target.base_url == key.trim_end_matches('/'))
        .map(|t| t.target.base_url)
        .collect();
    if urls.is_empty() {
        return ApiError::NotFound(format!("no target {key}")).into_response();
    }
    for u in &urls {
        if let Err(e) = app.projects.lock().delete_target(u) {
            return ApiError::from(e).into_response();
        }
    }
    let n = app.scraper.remove(&key);
    Json(json!({"removed": n, "urls": urls})).into_response()
}

/// `GET /api/v1/status/buildinfo`: Grafana asks which Prometheus this is.
pub async fn buildinfo() -> Response {
    success(json!({
        "version": "2.42.0",
        "revision": concat!("sightline-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// Endpoints Grafana may call that Sightline answers empty.
pub async fn empty_rules() -> Response {
    success(json!({"groups": []}))
}

pub async fn empty_alerts() -> Response {
    success(json!({"alerts": []}))
}

pub async fn empty_exemplars() -> Response {
    success(json!([]))
}

/// `GET /api/v1/health`: every probed service's state.
pub async fn health(State(app): State<AppState>) -> Response {
    let a = app.clone();
    let services = tokio::task::spawn_blocking(move || {
        a.prober
            .statuses()
            .into_iter()
            .map(|(t, s)| crate::probe::status_json(&a.tsdb, &t, &s))
            .collect::<Vec<Value>>()
    })
    .await
    .unwrap_or_default();
    Json(json!({"services": services})).into_response()
}

/// `POST /api/v1/write`: Prometheus remote write 1.0. 204 when every sample
/// was stored; 400 naming what was refused (the rest is stored).
pub async fn remote_write(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = check_ingest_key(&app, &headers, None) {
        return e.into_response();
    }
    if body.len() > app.config.metrics.max_write_bytes {
        return ApiError::TooLarge(format!(
            "remote-write body of {} bytes is over max_write_bytes ({})",
            body.len(),
            app.config.metrics.max_write_bytes
        ))
        .into_response();
    }
    let enc = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("snappy");
    if !enc.eq_ignore_ascii_case("snappy") {
        return ApiError::UnsupportedMedia(format!(
            "remote write needs Content-Encoding: snappy, not {enc:?}"
        ))
        .into_response();
    }
    let max = app.config.limits.max_decompressed_bytes;
    let decoded = tokio::task::spawn_blocking(
        move || -> Result<(Vec<SeriesSamples>, Vec<String>), String> {
            let req =
                sightline_protocol::remote_write::decode(&body, max).map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(req.timeseries.len());
            let mut refused = vec![];
            for (i, ts) in req.timeseries.into_iter().enumerate() {
                let mut names = std::collections::HashSet::new();
                let mut bad = None;
                for l in &ts.labels {
                    if !names.insert(l.name.as_str()) {
                        bad = Some(format!(
                            "series {}: duplicate label name {:?}",
                            i + 1,
                            l.name
                        ));
                    } else if l.name != "__name__" && !crate::scrape::valid_label_name(&l.name) {
                        bad = Some(format!("series {}: invalid label name {:?}", i + 1, l.name));
                    }
                }
                if !names.contains("__name__") && bad.is_none() {
                    bad = Some(format!("series {}: no __name__ label", i + 1));
                }
                if let Some(b) = bad {
                    refused.push(b);
                    continue;
                }
                let labels =
                    Labels::new(ts.labels.into_iter().map(|l| (l.name, l.value)).collect());
                let mut samples: Vec<(i64, f64)> = ts
                    .samples
                    .into_iter()
                    .map(|s| (s.timestamp, s.value))
                    .collect();
                samples.sort_by_key(|s| s.0);
                out.push(SeriesSamples { labels, samples });
            }
            Ok((out, refused))
        },
    )
    .await;
    let (batch, mut refused) = match decoded {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return ApiError::BadRequest(e).into_response(),
        Err(e) => return ApiError::Internal(format!("decode task failed: {e}")).into_response(),
    };
    let outcome = match crate::scrape::append(&app.tsdb, batch).await {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if outcome.out_of_order > 0 {
        refused.push(format!("{} out-of-order samples", outcome.out_of_order));
    }
    if outcome.duplicate > 0 {
        refused.push(format!(
            "{} duplicate samples for a timestamp with a different value",
            outcome.duplicate
        ));
    }
    if refused.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        refused.truncate(20);
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": refused.join("; "), "code": "bad_request", "stored": outcome.appended})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_steps() {
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_step("15").unwrap(), 15_000);
        assert_eq!(parse_step("1m30s").unwrap(), 90_000);
        assert_eq!(parse_step("250ms").unwrap(), 250);
        assert!(parse_step("1x").is_err());
        assert!(parse_step("").is_err());
    }
}
