//! `/health` (liveness), `/health/ready` (readiness with per-check detail) and
//! `/metrics` (Prometheus text format).

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

pub async fn live() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Browsers go to the UI; anything else gets a pointer to the APIs.
pub async fn index(headers: axum::http::HeaderMap) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if html {
        return axum::response::Redirect::to("/ui/").into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Sightline: the UI is at /ui/; see also /health, /health/ready, /metrics and /api/v1/logs (Authorization: Bearer <api token>)\n",
    )
        .into_response()
}

/// Free bytes for unprivileged users on the filesystem holding `path`.
#[allow(unsafe_code)]
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

fn writable(dir: &Path) -> Result<(), String> {
    let probe = dir.join("tmp").join(".ready-probe");
    std::fs::write(&probe, b"ok").map_err(|e| e.to_string())?;
    std::fs::remove_file(&probe).map_err(|e| e.to_string())
}

pub async fn ready(State(app): State<AppState>) -> Response {
    let dir = app.config.data_dir.clone();
    let min_free = app.config.storage.min_free_disk_bytes;
    let st = app.store.stats();
    let sp = app.spans.stats();
    // The log and span stores share the WAL and part machinery: both count.
    let (wal_ok, flush_ok) = (
        st.wal_healthy.load(Relaxed) && sp.wal_healthy.load(Relaxed),
        st.flush_healthy.load(Relaxed) && sp.flush_healthy.load(Relaxed),
    );
    let checks = tokio::task::spawn_blocking(move || {
        let w = writable(&dir);
        let free = free_bytes(&dir);
        (w, free)
    })
    .await;
    let (w, free) = checks.unwrap_or((Err("check failed".into()), None));
    let mut all_ok = true;
    let mut check = |ok: bool, detail: serde_json::Value| {
        all_ok &= ok;
        let mut d = json!({"status": if ok { "ok" } else { "failing" }});
        if let (Some(o), serde_json::Value::Object(extra)) = (d.as_object_mut(), detail) {
            o.extend(extra);
        }
        d
    };
    let data_dir = check(
        w.is_ok(),
        w.err().map(|e| json!({"error": e})).unwrap_or(json!({})),
    );
    let wal = check(
        wal_ok,
        json!({"write_errors": st.wal_write_errors.load(Relaxed)}),
    );
    let parts = check(
        flush_ok,
        json!({"flush_errors": st.flush_errors.load(Relaxed)}),
    );
    let disk = check(
        free.is_some_and(|f| f >= min_free),
        json!({"free_bytes": free, "min_free_bytes": min_free}),
    );
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if all_ok { "ok" } else { "degraded" },
        "checks": {"data_dir_writable": data_dir, "wal": wal, "part_flush": parts, "disk_space": disk},
    });
    (status, Json(body)).into_response()
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    let a = app.clone();
    let text = tokio::task::spawn_blocking(move || {
        let mut t = a.metrics.render(&a.store);
        crate::metrics::render_events(&mut t, &a.events);
        crate::metrics::render_tsdb(&mut t, &a.tsdb);
        crate::metrics::render_spans(&mut t, &a.spans);
        t
    })
    .await
    .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
