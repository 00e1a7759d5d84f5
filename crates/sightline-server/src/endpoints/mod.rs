//! One module per HTTP surface, plus the helpers every ingest endpoint shares.

pub mod health;
pub mod logs_ingest;
pub mod logs_query;
pub mod otlp_logs;

use crate::error::ApiError;
use crate::{auth, App};
use axum::http::HeaderMap;
use serde::Serialize;
use sightline_pipeline::LogRecord;

/// One rejected line of a batch.
#[derive(Debug, Serialize)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// The answer of every log ingest endpoint.
#[derive(Debug, Serialize, Default)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: usize,
    pub errors: Vec<LineError>,
}

/// Checks the ingest key when one is required.
pub fn check_ingest_key(
    app: &App,
    headers: &HeaderMap,
    query_key: Option<&str>,
) -> Result<(), ApiError> {
    let Some(want) = &app.ingest_key else {
        return Ok(());
    };
    let given = auth::bearer(headers.get("authorization").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("x-sightline-key").and_then(|v| v.to_str().ok()))
        .or(query_key);
    match given {
        Some(k) if auth::secret_eq(k, want) || auth::secret_eq(k, &app.api_token) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("invalid ingest key")),
        None => Err(ApiError::Unauthorized(
            "ingest needs a key when Sightline listens beyond loopback",
        )),
    }
}

/// Hands a batch to the store and waits until it is durable.
pub async fn store_batch(app: &App, records: Vec<LogRecord>) -> Result<(), ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.store.append(
        records,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    )?;
    rx.await
        .map_err(|_| ApiError::Overloaded("shutting down; retry later".into()))??;
    Ok(())
}

/// Runs CPU-heavy work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
