//! The HTTP entry points. The public listener takes webhooks (`hooks`, with Roam's
//! `transcript:saved` in `transcripts`) and answers health probes (`health`); the admin
//! listener (`admin`) serves metrics, reload and the operator API.
//!
//! Each area owns its `router()`; this module merges them, adds the request timeout,
//! and answers unknown paths and methods with JSON errors.

mod admin;
mod client;
mod console;
pub mod error;
mod health;
mod hooks;
mod transcripts;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;

use crate::delivery::DeliveryStatus;
use crate::ingest::recent::Recent;
use crate::ingest::{Ingest, Pipeline};
use crate::metrics::Metrics;
use crate::pacer::Pacer;
use crate::reload::Reloader;
use crate::storage::Store;
use crate::storage::leader::Leader;
use crate::transcripts::TranscriptStatus;
use crate::transcripts::sweep::Sweeper;
use client::client_ip;
pub use error::ApiError;
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Shared {
    /// Swapped whole by a reload; each request uses the one it loaded.
    pub pipeline: Arc<ArcSwap<Pipeline>>,
    /// Plans and commits what the webhooks bring.
    pub ingest: Ingest,
    pub store: Store,
    /// Whether this replica runs the single-instance background work.
    pub leader: Leader,
    pub dry_run: bool,
    pub max_body: usize,
    pub pacer: Arc<Pacer>,
    pub delivery: Arc<DeliveryStatus>,
    pub reloader: Arc<Reloader>,
    pub metrics: Arc<Metrics>,
    /// Transcript processing, if on.
    pub transcripts: Option<Arc<Sweeper>>,
    pub transcript_status: Arc<TranscriptStatus>,
    /// Wakes the delivery worker (re-queued messages go out at once).
    pub wake_delivery: Arc<Notify>,
    /// Wakes the transcript queue after a `transcript:saved` webhook.
    pub transcript_wake: Arc<Notify>,
    /// The last webhooks accepted, for the console's silence preview.
    pub recent: Arc<Recent>,
}

pub type AppState = Arc<Shared>;

impl Shared {
    /// Applies the stored silences now (after one was added or expired here) rather than
    /// at the next periodic refresh.
    pub async fn apply_silences(&self) {
        self.pipeline
            .load()
            .silences
            .stored()
            .refresh(&self.store)
            .await;
    }
}

pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let max_body = state.max_body;
    Router::new()
        .merge(hooks::router(max_body))
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                // A request (including reading its body) that takes longer is cut off with
                // a JSON 408, so a client trickling its body cannot hold a connection.
                match tokio::time::timeout(request_timeout, next.run(req)).await {
                    Ok(resp) => resp,
                    Err(_) => axum::response::IntoResponse::into_response(ApiError::Timeout(
                        request_timeout,
                    )),
                }
            },
        ))
        .with_state(state)
}

/// The admin listener's router (`/metrics`, `/-/reload`, the operator API and, with a
/// session length, the console), guarded as `auth` says.
pub fn admin_router(
    state: AppState,
    auth: crate::config::AdminAuth,
    console: Option<Duration>,
) -> Router {
    admin::router(state, auth, console)
}
