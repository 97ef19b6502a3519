//! The admin listener (`server.admin_listen`, 127.0.0.1 by default; never the public
//! webhook port): `/metrics`, `POST /-/reload`, `POST /-/transcripts/run`, and the
//! operator API (`outbox.rs`, `silences.rs`).

mod auth;
mod outbox;
mod silences;

use axum::Json;
use axum::Router;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use super::{ApiError, AppState};
use crate::config::AdminAuth;
use crate::metrics::ScrapeState;
use crate::reload::ReloadError;

/// Every admin endpoint but `/healthz` behind `auth` (and `/metrics` only when the
/// config says so).
pub fn router(state: AppState, auth: AdminAuth, console: Option<Duration>) -> Router {
    let operator = Router::new()
        .route("/-/reload", post(reload))
        .route("/-/transcripts/run", post(run_transcripts))
        .merge(silences::router())
        .merge(outbox::router());
    let scrape = Router::new().route("/metrics", get(metrics));
    let (operator, scrape) = match &auth {
        AdminAuth::Token { token, metrics } => {
            let guard = {
                let token = token.clone();
                axum::middleware::from_fn(move |req, next| {
                    auth::require_token(token.clone(), req, next)
                })
            };
            let scrape = if *metrics {
                scrape.route_layer(guard.clone())
            } else {
                scrape
            };
            (operator.route_layer(guard), scrape)
        }
        AdminAuth::LoopbackOnly | AdminAuth::Open => (operator, scrape),
    };
    let console = match console {
        Some(ttl) => super::console::router(state.clone(), &auth, ttl),
        None => Router::new(),
    };
    Router::new()
        // For `roam-notify healthcheck` when the webhook port speaks TLS.
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(console)
        .merge(operator)
        .merge(scrape)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

async fn reload(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(client = %client, "reload requested by the admin API");
    match st.reloader.reload().await {
        Ok(report) => Ok((
            StatusCode::OK,
            Json(json!({
                "status": "reloaded",
                "sources": report.sources,
                "routes": report.routes,
                "restart_needed": report.restart_needed,
            })),
        )),
        Err(e) => Err(match e {
            ReloadError::Invalid(c) => ApiError::ReloadRefused(c.to_string()),
            other => ApiError::ReloadRefused(other.to_string()),
        }),
    }
}

pub(super) fn storage(e: crate::storage::StoreError) -> ApiError {
    ApiError::Storage(e.to_string())
}

/// Runs a transcript sweep now (and the webhook queue), answering with its report.
async fn run_transcripts(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let Some(sweeper) = &st.transcripts else {
        let why = st.transcript_status.snapshot().disabled.unwrap_or_default();
        return Err(ApiError::Unavailable(format!(
            "transcript processing is off: {why}"
        )));
    };
    let never = tokio_util::sync::CancellationToken::new();
    match sweeper.run_logged("POST /-/transcripts/run", &never).await {
        Some(report) => Ok((StatusCode::OK, Json(json!(report)))),
        None => Err(ApiError::Conflict(
            "a sweep is already running or failed; see /readyz transcripts.last_error".into(),
        )),
    }
}

/// Prometheus: the registry, with the gauges read from storage and other components at
/// scrape time (outbox, held events, leadership, transcript schedule).
async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let outbox = st.store.stats().await.ok().map(|s| {
        (
            s.pending,
            s.dead,
            s.oldest_pending_age_seconds.unwrap_or(0.0),
        )
    });
    let run = st.transcript_status.snapshot();
    let ts = |v: &Option<String>| {
        v.as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map_or(0, |t| t.timestamp())
    };
    // Every route that can hold events is shown, at 0 when nothing waits.
    let held = st.store.held_counts().await.ok().map(|mut held| {
        for r in st.pipeline.load().router.routes() {
            if (r.hold.is_some() || r.mute_summary) && !held.iter().any(|(n, _)| *n == r.name) {
                held.push((r.name.clone(), 0));
            }
        }
        held
    });
    let text = st.metrics.encode(ScrapeState {
        outbox,
        held,
        transcript_last_run: ts(&run.last_run_at),
        transcript_next_run: ts(&run.next_run_at),
        leader: st.leader.leading(),
    });
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
