//! Who may use the admin listener: `Authorization: Bearer <server.admin_token>`, compared
//! in constant time. A refusal is a 401 with a JSON reason and a log line naming the
//! client address and the path, never the token sent.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Secret;
use crate::http::ApiError;
use crate::inbound::auth::ct_eq;

/// Runs the request if it carries the token; otherwise answers 401.
pub async fn require_token(token: Secret, req: Request, next: Next) -> Response {
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let problem = match sent {
        None => "missing Authorization: Bearer <server.admin_token>",
        Some(t) if ct_eq(t.as_bytes(), token.expose().as_bytes()) => {
            return next.run(req).await;
        }
        Some(_) => "the bearer token does not match server.admin_token",
    };
    let client = client(&req);
    tracing::warn!(client = %client, method = %req.method(), path = %req.uri().path(), reason = problem,
        "admin request refused");
    let mut resp = ApiError::Unauthorized(problem.to_string()).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"roam-notify admin\""),
    );
    resp
}

/// The peer's address, for the log ("unknown" where the server gave none).
fn client(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string())
}
