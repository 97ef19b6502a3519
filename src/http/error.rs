//! One error type for the HTTP API: every refusal is a status plus a JSON body
//! `{"error": "<code>", "message": "<what is wrong>"}`.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::inbound::Rejection;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no source named {0:?} is configured (the URL is /hooks/<source name>)")]
    UnknownSource(String),
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("request body is larger than the {limit}-byte limit (server.max_body)")]
    TooLarge { limit: usize },
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("could not store the event ({0}); nothing was accepted, please retry")]
    Storage(String),
    #[error("no such endpoint; webhooks go to POST /hooks/<source name>")]
    NotFound,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("reload refused, the running configuration stays: {0}")]
    ReloadRefused(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("no message {0} in the outbox")]
    NoSuchMessage(i64),
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("the request took longer than {}s to arrive (server.request_timeout)", .0.as_secs_f64())]
    Timeout(std::time::Duration),
    #[error("too many requests to source {name:?} (its rate_limit); retry after {}s", retry_after.as_secs().max(1))]
    TooManyRequests {
        name: String,
        retry_after: std::time::Duration,
    },
}

impl ApiError {
    pub fn from_body(e: BytesRejection, limit: usize) -> ApiError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::BodyRead(e.body_text())
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownSource(_) | ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Rejected(r) => r.status,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyRead(_) => StatusCode::BAD_REQUEST,
            ApiError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::ReloadRefused(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NoSuchMessage(_) => StatusCode::NOT_FOUND,
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownSource(_) => "unknown_source",
            ApiError::Rejected(r) => r.code,
            ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::BodyRead(_) => "bad_request",
            ApiError::Storage(_) => "storage_unavailable",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::ReloadRefused(_) => "invalid_config",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Conflict(_) => "conflict",
            ApiError::NoSuchMessage(_) => "not_found",
            ApiError::BadQuery(_) => "bad_request",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::TooManyRequests { .. } => "rate_limited",
        }
    }
}

impl ApiError {
    /// The `result` label of `roam_notify_webhooks_total` for a refused webhook.
    pub fn metric_result(&self) -> &'static str {
        match self {
            ApiError::UnknownSource(_) => "unknown_source",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Storage(_) => "storage_unavailable",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Rejected(r) if r.status == StatusCode::UNAUTHORIZED => "unauthorized",
            ApiError::Rejected(r) if r.status == StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            ApiError::Rejected(r) if r.status == StatusCode::FORBIDDEN => "forbidden",
            ApiError::Rejected(r) if r.status == StatusCode::NOT_FOUND => "unknown_source",
            _ => "bad_request",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(json!({ "error": self.code(), "message": self.to_string() }));
        let mut resp = (status, body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
