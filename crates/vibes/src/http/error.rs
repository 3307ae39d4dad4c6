//! The API's errors: a status and a reason, answered as `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vibes_plugin::QueryError;

/// An API call that failed: `status` with `reason` in the body.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) reason: String,
    /// More fields for the body (the rejected lines of a POST, say).
    pub(super) details: Option<serde_json::Value>,
}

impl ApiError {
    /// 400: the request is wrong (a filter, an offset, a body), said why.
    pub(super) fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    /// 404: what was asked about does not exist.
    pub(super) fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }

    /// 503: this serve cannot answer it (a plugin it does not run), or the log failed.
    pub(super) fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, reason)
    }

    pub(super) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        ApiError {
            status,
            reason: reason.into(),
            details: None,
        }
    }

    /// A failure of the log (not of the request): 503 with the whole chain of causes.
    pub(super) fn log(error: anyhow::Error) -> Self {
        Self::unavailable(format!("{error:#}"))
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        let status = match &error {
            QueryError::UnknownQuery { .. } => StatusCode::NOT_FOUND,
            QueryError::BadArgument(_) => StatusCode::BAD_REQUEST,
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.reason });
        if let (Some(serde_json::Value::Object(more)), Some(fields)) =
            (self.details, body.as_object_mut())
        {
            fields.extend(more);
        }
        (self.status, Json(body)).into_response()
    }
}

/// What a handler answers.
pub(super) type ApiResult<T> = Result<T, ApiError>;
