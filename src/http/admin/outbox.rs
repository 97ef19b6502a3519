//! `/api/outbox`: see messages, re-queue dead ones, drop one.

use axum::Json;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use super::storage;
use crate::http::{ApiError, AppState};
use crate::storage::{MessageQuery, status_filter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/outbox", get(outbox_list))
        .route("/api/outbox/retry-dead", post(outbox_retry_dead))
        .route("/api/outbox/{id}", get(outbox_show))
        .route("/api/outbox/{id}/retry", post(outbox_retry))
        .route("/api/outbox/{id}/drop", post(outbox_drop))
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    status: Option<String>,
    route: Option<String>,
    source: Option<String>,
    chat: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/outbox?status=pending|dead|delivered|dropped|all&route=&source=&chat=&before=&limit=50`,
/// newest first; `next_before` pages back.
async fn outbox_list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let query = MessageQuery {
        status: status_filter(q.status.as_deref()).map_err(ApiError::BadQuery)?,
        route: q.route.filter(|s| !s.is_empty()),
        source: q.source.filter(|s| !s.is_empty()),
        chat: q.chat.filter(|s| !s.is_empty()),
        before: q.before,
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
    };
    let mut rows = st.store.list_messages(&query).await.map_err(storage)?;
    let templates = &st.pipeline.load().templates;
    for m in &mut rows {
        crate::compose::fill_preview(templates, m);
    }
    let next_before = (rows.len() as i64 == query.limit)
        .then(|| rows.last().map(|m| m.id))
        .flatten();
    Ok(Json(
        json!({ "messages": rows, "next_before": next_before }),
    ))
}

async fn outbox_show(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    match st.store.get_message(id).await.map_err(storage)? {
        Some(mut m) => {
            crate::compose::fill_preview(&st.pipeline.load().templates, &mut m);
            Ok(Json(json!(m)))
        }
        None => Err(ApiError::NoSuchMessage(id)),
    }
}

/// A dead or dropped message back in the queue with fresh retries; the worker is woken.
async fn outbox_retry(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    if !st.store.requeue(id).await.map_err(storage)? {
        return Err(ApiError::Conflict(format!(
            "message {id} does not exist or is not dead or dropped"
        )));
    }
    st.wake_delivery.notify_one();
    tracing::info!(message_id = id, client = %client, "re-queued by the admin API");
    Ok(Json(json!({"status": "requeued", "id": id})))
}

async fn outbox_retry_dead(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
) -> Result<impl IntoResponse, ApiError> {
    let n = st.store.requeue_all_dead().await.map_err(storage)?;
    st.wake_delivery.notify_one();
    tracing::info!(messages = n, client = %client, "dead letters re-queued by the admin API");
    Ok(Json(json!({"status": "requeued", "count": n})))
}

async fn outbox_drop(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    if !st.store.drop_message(id).await.map_err(storage)? {
        return Err(ApiError::Conflict(format!(
            "message {id} does not exist or is not pending or dead"
        )));
    }
    tracing::info!(message_id = id, client = %client, "dropped by the admin API");
    Ok(Json(json!({"status": "dropped", "id": id})))
}
