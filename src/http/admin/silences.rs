//! `/api/silences`: list, add and expire silences; a change applies at once.

use axum::Json;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use serde_json::json;

use super::storage;
use crate::http::{ApiError, AppState};
use crate::silences;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/silences", get(silences_list).post(silences_add))
        .route("/api/silences/{id}", delete(silences_expire))
}

#[derive(Debug, serde::Deserialize)]
struct SilenceQuery {
    #[serde(default)]
    all: bool,
}

/// `GET /api/silences[?all=true]`: active and pending silences (all: expired too).
async fn silences_list(
    State(st): State<AppState>,
    Query(q): Query<SilenceQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let rows = st.store.list_silences(q.all).await.map_err(storage)?;
    let list: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|s| {
            let mut v = json!(s);
            // The matcher as JSON, not as a string of JSON.
            v["matcher"] = serde_json::from_str(&s.matcher).unwrap_or(serde_json::Value::Null);
            v
        })
        .collect();
    Ok(Json(json!({ "silences": list })))
}

/// `POST /api/silences` with the fields of `roam-notify silence add`; applies at once.
async fn silences_add(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let req: silences::SilenceRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadQuery(format!("silence body: {e}")))?;
    let what = format!(
        "matchers {:?}, source {:?}, events {:?}, routes {:?}",
        req.matchers, req.source, req.events, req.routes
    );
    let (by, comment) = (req.created_by.clone(), req.comment.clone());
    let (id, starts_at, ends_at) = silences::create(&st.store, req)
        .await
        .map_err(ApiError::BadQuery)?;
    st.apply_silences().await;
    tracing::info!(silence = id, created_by = %by, client = %client, starts_at, ends_at, comment = %comment,
        matcher = %what, "silence added by the admin API");
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "starts_at": starts_at, "ends_at": ends_at})),
    ))
}

/// `DELETE /api/silences/{id}`: ends a silence now.
async fn silences_expire(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    if !st.store.expire_silence(id).await.map_err(storage)? {
        return Err(ApiError::Conflict(format!("no active silence {id}")));
    }
    st.apply_silences().await;
    tracing::info!(silence = id, client = %client, "silence expired by the admin API");
    Ok(Json(json!({"status": "expired", "id": id})))
}
