//! The HTTP status-code contract, in one place.
//!
//! | status | when |
//! |---|---|
//! | 200 | accepted (ingest answers say how many lines were rejected and why) |
//! | 400 | the body or query cannot be understood: every line bad, undecodable protobuf/JSON, truncated gzip, bad parameter, a query that does not parse (the answer names the column) |
//! | 401 | missing or wrong API token / ingest key |
//! | 413 | body over `max_body_bytes`, or decompressed over `max_decompressed_bytes` |
//! | 404 | no such request id or flow id |
//! | 415 | unknown `Content-Encoding` or unsupported `Content-Type` |
//! | 422 | a query over its bounds (too many groups, flows, or bytes in a page) |
//! | 503 + Retry-After | the WAL queue or unflushed memory is full, too many concurrent ingests, shutting down, a query over its time limit |
//! | 507 | the disk is full: nothing was acknowledged, retry later |
//! | 500 | anything else: a bug or an I/O error |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sightline_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    DiskFull(String),
    #[error("{0}")]
    NotFound(String),
    /// A query that does not parse: the message and the 1-based column.
    #[error("{0}")]
    Query(String, usize),
    #[error("{0}")]
    TooExpensive(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Query(..) => StatusCode::BAD_REQUEST,
            ApiError::TooExpensive(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Bounded label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMedia(_) => "unsupported_media_type",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::DiskFull(_) => "disk_full",
            ApiError::NotFound(_) => "not_found",
            ApiError::Query(..) => "bad_query",
            ApiError::TooExpensive(_) => "too_expensive",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Overloaded(m) => ApiError::Overloaded(format!("{m}; retry later")),
            StoreError::Closed => ApiError::Overloaded("shutting down; retry later".into()),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            StoreError::DiskFull(m) => {
                ApiError::DiskFull(format!("disk full, nothing was stored: {m}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<sightline_query::QueryError> for ApiError {
    fn from(e: sightline_query::QueryError) -> Self {
        use sightline_query::QueryError as Q;
        match e {
            Q::Parse(p) => ApiError::Query(p.to_string(), p.column),
            Q::BadRequest(m) => ApiError::BadRequest(m),
            Q::Timeout => ApiError::Overloaded(Q::Timeout.to_string()),
            Q::TooExpensive(m) => ApiError::TooExpensive(m),
            Q::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = serde_json::json!({ "error": self.to_string(), "code": self.code() });
        if let ApiError::Query(_, column) = &self {
            body["column"] = (*column).into();
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::INSUFFICIENT_STORAGE
                | StatusCode::TOO_MANY_REQUESTS
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
