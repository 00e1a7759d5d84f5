//! Projects and their DSNs: `GET /api/v1/projects`, `POST /api/v1/projects`
//! (`{"name"}`), `POST /api/v1/projects/{name}/keys` (a new public key).

use super::blocking;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_store::projects::Project;

/// A new public key: 32 hex digits, as Sentry issues them.
pub fn new_key() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// `http://KEY@HOST/ID`: what `sentry_sdk.init(dsn=…)` takes.
pub fn dsn(key: &str, host: &str, id: i64) -> String {
    format!("http://{key}@{host}/{id}")
}

/// The host clients reach us at: the request's `Host`, else the listen address.
fn host_of(app: &crate::App, headers: &HeaderMap) -> String {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() < 256)
        .map(str::to_string)
        .unwrap_or_else(|| app.config.listen.to_string())
}

pub fn project_json(p: &Project, host: &str) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "keys": p.keys.iter().map(|k| json!({"public_key": k, "dsn": dsn(k, host, p.id)})).collect::<Vec<_>>(),
    })
}

pub async fn list(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let host = host_of(&app, &headers);
    let a = app.clone();
    match blocking(move || a.projects.lock().list()).await {
        Ok(Ok(ps)) => {
            Json(json!({"projects": ps.iter().map(|p| project_json(p, &host)).collect::<Vec<_>>()}))
                .into_response()
        }
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct NewProject {
    name: String,
}

pub async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let host = host_of(&app, &headers);
    let req: NewProject = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::BadRequest(format!("expected {{\"name\": \"…\"}}: {e}"))
                .into_response()
        }
    };
    let a = app.clone();
    match blocking(move || a.projects.lock().create(&req.name, None, &new_key())).await {
        Ok(Ok(p)) => (StatusCode::CREATED, Json(project_json(&p, &host))).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn add_key(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let host = host_of(&app, &headers);
    let a = app.clone();
    match blocking(move || a.projects.lock().add_key(&name, &new_key())).await {
        Ok(Ok(p)) => (StatusCode::CREATED, Json(project_json(&p, &host))).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(e) => e.into_response(),
    }
}
