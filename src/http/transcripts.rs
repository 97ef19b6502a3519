//! Roam's `transcript:saved` webhook: the transcript id is queued durably (then answered
//! 202), and the transcript worker fetches and posts it; the scheduled sweep is the
//! safety net.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState};

/// Queues the transcript and wakes the worker: the response and its metrics result.
pub async fn saved(
    st: &AppState,
    source: &str,
    id: &str,
) -> Result<(Response, &'static str), ApiError> {
    let new = st
        .store
        .enqueue_transcript(id)
        .await
        .map_err(|e| ApiError::Storage(e.to_string()))?;
    let message = match (&st.transcripts, st.transcript_status.snapshot().disabled) {
        (Some(_), _) => {
            st.transcript_wake.notify_one();
            "queued: the transcript is fetched and posted as roam.transcript.saved".to_string()
        }
        (None, why) => format!(
            "queued, but transcript processing is off ({}): nothing is posted until it is on",
            why.unwrap_or_default()
        ),
    };
    tracing::info!(source, transcript = id, new, "{message}");
    let body = json!({"status": "accepted", "event": "roam.transcript.saved", "transcript": id, "message": message});
    Ok((
        (StatusCode::ACCEPTED, Json(body)).into_response(),
        "accepted",
    ))
}
