//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let stats = tokio::time::timeout(Duration::from_secs(2), st.store.stats()).await;
    let (storage, outbox, ok) = match stats {
        Ok(Ok(s)) => (
            "ok".to_string(),
            serde_json::to_value(&s).unwrap_or_default(),
            true,
        ),
        Ok(Err(e)) => (format!("error: {e}"), serde_json::Value::Null, false),
        Err(_) => (
            "error: storage did not answer within 2s".to_string(),
            serde_json::Value::Null,
            false,
        ),
    };
    // Events waiting in groups (grouping, dedup, max_messages, mute summaries), by route.
    let held: serde_json::Map<String, serde_json::Value> = st
        .store
        .held_counts()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(route, n)| (route, json!(n)))
        .collect();
    let i = &st.ingest;
    let d = &st.delivery;
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "storage": storage,
        "config": {
            "loaded": true,
            "sources": st.pipeline.load().sources.len(),
            "routes": st.pipeline.load().router.routes().len(),
        },
        "dry_run": st.dry_run,
        "replica": {
            "id": st.store.replica_id(),
            "storage": if st.store.is_shared() { "postgres" } else { "sqlite" },
            "leads_background_work": st.leader.leading(),
        },
        "outbox": outbox,
        "held": held,
        "transcripts": transcripts_json(&st),
        "delivery": {
            "delivered": d.delivered.load(Ordering::Relaxed),
            "retried": d.retried.load(Ordering::Relaxed),
            "dead_lettered": d.dead_lettered.load(Ordering::Relaxed),
            "rate_limited": d.rate_limited.load(Ordering::Relaxed),
            "paused_for_seconds": st.pacer.paused_for().map(|p| p.as_secs_f64()),
            "last_error": d.last_error(),
        },
        "webhooks": {
            "accepted": i.accepted.load(Ordering::Relaxed),
            "duplicates": i.duplicates.load(Ordering::Relaxed),
            "unauthorized": i.unauthorized.load(Ordering::Relaxed),
            "bad_requests": i.bad_requests.load(Ordering::Relaxed),
            "template_errors": i.template_errors.load(Ordering::Relaxed),
            "silenced": i.silenced.load(Ordering::Relaxed),
            "muted": i.muted.load(Ordering::Relaxed),
        },
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// Transcript processing: on or why not, last and next run, counters.
pub(super) fn transcripts_json(st: &AppState) -> serde_json::Value {
    let t = &st.transcript_status;
    let run = t.snapshot();
    json!({
        "enabled": run.disabled.is_none(),
        "disabled_because": run.disabled,
        "last_run_at": run.last_run_at,
        "last_run_ok": run.last_run_ok,
        "next_run_at": run.next_run_at,
        "checkpoint": run.checkpoint,
        "last_error": run.last_error,
        "runs_ok": t.runs_ok.load(Ordering::Relaxed),
        "runs_failed": t.runs_failed.load(Ordering::Relaxed),
        "processed": t.processed.load(Ordering::Relaxed),
        "skipped_live": t.skipped_live.load(Ordering::Relaxed),
        "failed": t.failed.load(Ordering::Relaxed),
    })
}
