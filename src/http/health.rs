//! `GET /healthz` (the process answers) and `GET /readyz` (it can do its job).

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
    let pipeline = st.pipeline.load();
    let mut sources: Vec<&str> = pipeline.sources.keys().map(String::as_str).collect();
    sources.push(""); // requests to an unknown source
    let routes: Vec<&str> = pipeline
        .router
        .routes()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let m = &st.metrics;
    let webhooks = |results: &[&str]| m.sum(&m.webhooks, &[&sources, results]);
    let messages = |outcome: &str| m.sum(&m.messages, &[&routes, &[outcome]]);
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "storage": storage,
        "config": {
            "loaded": true,
            "sources": pipeline.sources.len(),
            "routes": routes.len(),
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
            "delivered": messages("sent"),
            "retried": messages("retried"),
            "dead_lettered": messages("dead"),
            "rate_limited": m.rate_limited.get(),
            "paused_for_seconds": st.pacer.paused_for().map(|p| p.as_secs_f64()),
            "last_error": st.delivery.last_error(),
        },
        "webhooks": {
            "accepted": webhooks(&["accepted"]),
            "duplicates": webhooks(&["duplicate"]),
            "unauthorized": webhooks(&["unauthorized"]),
            "bad_requests": webhooks(&["bad_request", "too_large"]),
            "template_errors": m.sum(&m.template_errors, &[&routes]),
            "silenced": m.quiet.get(&["silenced"]),
            "muted": m.quiet.get(&["muted"]),
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
fn transcripts_json(st: &AppState) -> serde_json::Value {
    let m = &st.metrics;
    let run = st.transcript_status.snapshot();
    json!({
        "enabled": run.disabled.is_none(),
        "disabled_because": run.disabled,
        "last_run_at": run.last_run_at,
        "last_run_ok": run.last_run_ok,
        "next_run_at": run.next_run_at,
        "checkpoint": run.checkpoint,
        "last_error": run.last_error,
        "runs_ok": m.transcript_runs.get(&["ok"]),
        "runs_failed": m.transcript_runs.get(&["failed"]),
        "processed": m.transcripts.get(&["processed"]),
        "skipped_live": m.transcripts.get(&["skipped_live"]),
        "failed": m.transcripts.get(&["failed"]),
    })
}
