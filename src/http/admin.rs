//! The admin listener (`server.admin_listen`, 127.0.0.1 by default; never the public
//! webhook port): `/metrics` for Prometheus and `POST /-/reload`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use super::{ApiError, AppState};
use crate::metrics::Exposition;
use crate::reload::ReloadError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        // For `roam-notify healthcheck` when the webhook port speaks TLS.
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/-/reload", post(reload))
        .route("/-/transcripts/run", post(run_transcripts))
        .route("/api/silences", get(silences_list).post(silences_add))
        .route("/api/silences/{id}", axum::routing::delete(silences_expire))
        .route("/api/outbox", get(outbox_list))
        .route("/api/outbox/retry-dead", post(outbox_retry_dead))
        .route("/api/outbox/{id}", get(outbox_show))
        .route("/api/outbox/{id}/retry", post(outbox_retry))
        .route("/api/outbox/{id}/drop", post(outbox_drop))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

async fn reload(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match st.reloader.reload().await {
        Ok(report) => {
            st.reloads_ok.fetch_add(1, Ordering::Relaxed);
            Ok((
                StatusCode::OK,
                Json(json!({
                    "status": "reloaded",
                    "sources": report.sources,
                    "routes": report.routes,
                    "restart_needed": report.restart_needed,
                })),
            ))
        }
        Err(e) => {
            st.reloads_failed.fetch_add(1, Ordering::Relaxed);
            Err(match e {
                ReloadError::Invalid(c) => ApiError::ReloadRefused(c.to_string()),
                other => ApiError::ReloadRefused(other.to_string()),
            })
        }
    }
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
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let req: crate::admin::SilenceRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadQuery(format!("silence body: {e}")))?;
    let (id, starts_at, ends_at) = crate::admin::create_silence(&st.store, req)
        .await
        .map_err(ApiError::BadQuery)?;
    refresh_silences(&st).await;
    tracing::info!(silence = id, "silence added by the admin API");
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "starts_at": starts_at, "ends_at": ends_at})),
    ))
}

/// `DELETE /api/silences/{id}`: ends a silence now.
async fn silences_expire(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    if !st.store.expire_silence(id).await.map_err(storage)? {
        return Err(ApiError::Conflict(format!("no active silence {id}")));
    }
    refresh_silences(&st).await;
    tracing::info!(silence = id, "silence expired by the admin API");
    Ok(Json(json!({"status": "expired", "id": id})))
}

/// Applies stored silences now instead of at the next periodic refresh.
async fn refresh_silences(st: &AppState) {
    match crate::app::load_stored_silences(&st.store).await {
        Ok(list) => st
            .pipeline
            .load()
            .stored_silences
            .store(std::sync::Arc::new(list)),
        Err(e) => tracing::warn!(error = %e, "cannot re-read silences; the periodic refresh will"),
    }
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/outbox?status=pending|dead|delivered|dropped|all&limit=50`, newest first.
async fn outbox_list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("all") => None,
        Some(s @ ("pending" | "dead" | "delivered" | "dropped")) => Some(s),
        Some(other) => {
            return Err(ApiError::BadQuery(format!(
                "unknown status {other:?} (pending, dead, delivered, dropped, all)"
            )));
        }
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let rows = st
        .store
        .list_messages(status, limit)
        .await
        .map_err(storage)?;
    Ok(Json(json!({ "messages": rows })))
}

async fn outbox_show(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    match st.store.get_message(id).await.map_err(storage)? {
        Some(m) => Ok(Json(json!(m))),
        None => Err(ApiError::NoSuchMessage(id)),
    }
}

/// A dead or dropped message back in the queue with fresh retries; the worker is woken.
async fn outbox_retry(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    if !st.store.requeue(id).await.map_err(storage)? {
        return Err(ApiError::Conflict(format!(
            "message {id} does not exist or is not dead or dropped"
        )));
    }
    st.wake_delivery.notify_one();
    tracing::info!(message_id = id, "re-queued by the admin API");
    Ok(Json(json!({"status": "requeued", "id": id})))
}

async fn outbox_retry_dead(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let n = st.store.requeue_all_dead().await.map_err(storage)?;
    st.wake_delivery.notify_one();
    tracing::info!(messages = n, "dead letters re-queued by the admin API");
    Ok(Json(json!({"status": "requeued", "count": n})))
}

async fn outbox_drop(
    State(st): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    if !st.store.drop_message(id).await.map_err(storage)? {
        return Err(ApiError::Conflict(format!(
            "message {id} does not exist or is not pending or dead"
        )));
    }
    tracing::info!(message_id = id, "dropped by the admin API");
    Ok(Json(json!({"status": "dropped", "id": id})))
}

fn storage(e: crate::storage::StoreError) -> ApiError {
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

/// Prometheus text format: the registry (`metrics`), plus gauges and counters read at
/// scrape time (outbox, held events, pauses, quiet time, reloads, transcripts).
async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let mut m = Exposition(String::with_capacity(8192));
    st.metrics.write(&mut m);
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    let i = &st.ingest;
    m.family(
        "roam_notify_quiet_total",
        "counter",
        "Route messages not sent now, by reason (silenced, muted).",
    );
    m.sample(
        "roam_notify_quiet_total",
        "",
        &[("reason", "silenced")],
        load(&i.silenced),
    );
    m.sample(
        "roam_notify_quiet_total",
        "",
        &[("reason", "muted")],
        load(&i.muted),
    );
    let (pauses, paused) = st.pacer.pause_totals();
    m.family(
        "roam_notify_roam_pauses_total",
        "counter",
        "Pauses of all calls to Roam (a 429, or a refused key).",
    );
    m.sample("roam_notify_roam_pauses_total", "", &[], pauses);
    m.family(
        "roam_notify_roam_paused_seconds_total",
        "counter",
        "Time all calls to Roam were paused.",
    );
    m.sample(
        "roam_notify_roam_paused_seconds_total",
        "",
        &[],
        paused.as_secs_f64(),
    );
    m.family(
        "roam_notify_rate_limited_total",
        "counter",
        "429 answers from Roam to chat.post / chat.update.",
    );
    m.sample(
        "roam_notify_rate_limited_total",
        "",
        &[],
        load(&st.delivery.rate_limited),
    );
    m.family(
        "roam_notify_config_reloads_total",
        "counter",
        "Reloads by result.",
    );
    m.sample(
        "roam_notify_config_reloads_total",
        "",
        &[("result", "ok")],
        load(&st.reloads_ok),
    );
    m.sample(
        "roam_notify_config_reloads_total",
        "",
        &[("result", "invalid")],
        load(&st.reloads_failed),
    );
    if let Ok(s) = st.store.stats().await {
        m.family(
            "roam_notify_outbox_messages",
            "gauge",
            "Outbox messages by status (pending includes those being sent).",
        );
        m.sample(
            "roam_notify_outbox_messages",
            "",
            &[("status", "pending")],
            s.pending,
        );
        m.sample(
            "roam_notify_outbox_messages",
            "",
            &[("status", "dead")],
            s.dead,
        );
        m.family(
            "roam_notify_outbox_oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest message not yet delivered (0 when none).",
        );
        m.sample(
            "roam_notify_outbox_oldest_pending_age_seconds",
            "",
            &[],
            s.oldest_pending_age_seconds.unwrap_or(0.0),
        );
    }
    let t = &st.transcript_status;
    m.family(
        "roam_notify_transcript_runs_total",
        "counter",
        "Transcript sweeps by result.",
    );
    m.sample(
        "roam_notify_transcript_runs_total",
        "",
        &[("result", "ok")],
        load(&t.runs_ok),
    );
    m.sample(
        "roam_notify_transcript_runs_total",
        "",
        &[("result", "failed")],
        load(&t.runs_failed),
    );
    m.family(
        "roam_notify_transcripts_total",
        "counter",
        "Transcripts by outcome.",
    );
    m.sample(
        "roam_notify_transcripts_total",
        "",
        &[("outcome", "processed")],
        load(&t.processed),
    );
    m.sample(
        "roam_notify_transcripts_total",
        "",
        &[("outcome", "skipped_live")],
        load(&t.skipped_live),
    );
    m.sample(
        "roam_notify_transcripts_total",
        "",
        &[("outcome", "failed")],
        load(&t.failed),
    );
    let run = t.snapshot();
    let ts = |v: &Option<String>| {
        v.as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map_or(0, |t| t.timestamp())
    };
    m.family(
        "roam_notify_transcript_last_run_timestamp_seconds",
        "gauge",
        "When the last transcript sweep ended (0: none yet).",
    );
    m.sample(
        "roam_notify_transcript_last_run_timestamp_seconds",
        "",
        &[],
        ts(&run.last_run_at),
    );
    m.family(
        "roam_notify_transcript_next_run_timestamp_seconds",
        "gauge",
        "When the next scheduled sweep runs (0: none).",
    );
    m.sample(
        "roam_notify_transcript_next_run_timestamp_seconds",
        "",
        &[],
        ts(&run.next_run_at),
    );
    m.family(
        "roam_notify_background_leader",
        "gauge",
        "1 on the replica that runs the group flusher, transcript queue retries and pruning.",
    );
    m.sample(
        "roam_notify_background_leader",
        "",
        &[],
        u64::from(st.leader.leading()),
    );
    if let Ok(held) = st.store.held_counts().await {
        m.family(
            "roam_notify_held_events",
            "gauge",
            "Events waiting in groups (grouping, dedup, max_messages, mute summaries), by route.",
        );
        for (route, n) in held {
            m.sample("roam_notify_held_events", "", &[("route", &route)], n);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.0,
    )
}
