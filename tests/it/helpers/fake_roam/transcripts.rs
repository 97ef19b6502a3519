//! The fake's `transcript.list`, `transcript.info` and `user.lookup`.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{FakeCtx, FakeState, Recorded, Reply};
use crate::helpers::test_files;

/// Fails the test if `t` is not a `Transcript` as chat.json defines it (closed against
/// fields the spec does not have).
pub(super) fn assert_transcript_shape(t: &Value) {
    let spec: Value = serde_json::from_slice(
        &std::fs::read(test_files().join("roam-openapi/chat.json")).unwrap(),
    )
    .unwrap();
    let mut components = spec["components"].clone();
    components["schemas"]["Transcript"]["additionalProperties"] = json!(false);
    let schema = json!({"$ref": "#/components/schemas/Transcript", "components": components});
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = v.iter_errors(t).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "fake transcript breaks chat.json: {errors:?}\n{t}"
    );
}

/// Pops a scripted answer for a transcript call, if any (429s, failures; `Slow` waits,
/// then answers normally).
async fn scripted_transcript_reply(state: &Arc<Mutex<FakeState>>) -> Option<Response> {
    let reply = state.lock().unwrap().transcripts.script.pop_front()?;
    Some(match reply {
        Reply::RateLimited(after) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", after)],
            Json(json!({"error": "rate limited"})),
        )
            .into_response(),
        Reply::Status(code, msg) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"error": msg.unwrap_or("fake failure")})),
        )
            .into_response(),
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Reply::Ok => return None,
    })
}

pub(super) fn record_get(
    state: &Arc<Mutex<FakeState>>,
    path: &str,
    headers: &HeaderMap,
    q: &std::collections::HashMap<String, String>,
    status: u16,
) {
    let body = json!(q);
    state
        .lock()
        .unwrap()
        .recorded
        .push(Recorded::new(path, headers, body, vec![], status, None));
}

pub(super) async fn transcript_list(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = scripted_transcript_reply(&state).await {
        record_get(
            &state,
            "/v0/transcript.list",
            &headers,
            &q,
            r.status().as_u16(),
        );
        return r;
    }
    let body = {
        let s = state.lock().unwrap();
        let t = &s.transcripts;
        let after = q
            .get("after")
            .and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok());
        let mut list: Vec<Value> = t
            .all
            .iter()
            .filter(|x| {
                let Some(after) = after else { return true };
                let key = if t.after_compares_end { &x["end"] } else { &x["start"] };
                key.as_str()
                    .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
                    .is_some_and(|v| v > after)
            })
            .map(|x| {
                // TranscriptMetadata: no summary, cues or action items in the listing.
                json!({"id": x["id"], "meetingId": x["meetingId"], "start": x["start"], "end": x["end"], "participants": x["participants"]})
            })
            .collect();
        list.sort_by(|a, b| a["start"].as_str().cmp(&b["start"].as_str()));
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
        let size = limit.min(if t.page == 0 { 100 } else { t.page });
        let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
        let items: Vec<Value> = list.iter().skip(from).take(size).cloned().collect();
        let mut body = json!({"transcripts": items});
        if from + size < list.len() {
            body["nextCursor"] = json!((from + size).to_string());
        }
        body
    };
    record_get(&state, "/v0/transcript.list", &headers, &q, 200);
    Json(body).into_response()
}

pub(super) async fn transcript_info(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = scripted_transcript_reply(&state).await {
        record_get(
            &state,
            "/v0/transcript.info",
            &headers,
            &q,
            r.status().as_u16(),
        );
        return r;
    }
    let id = q.get("id").cloned().unwrap_or_default();
    let (status, resp) = {
        let s = state.lock().unwrap();
        if s.transcripts.failing.contains(&id) {
            (
                503,
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "upstream_timeout"})),
                )
                    .into_response(),
            )
        } else {
            match s.transcripts.all.iter().find(|t| t["id"] == id.as_str()) {
                Some(t) => (200, Json(t.clone()).into_response()),
                None => (
                    404,
                    (
                        StatusCode::NOT_FOUND,
                        Json(json!({"error": "transcript_not_found"})),
                    )
                        .into_response(),
                ),
            }
        }
    };
    record_get(&state, "/v0/transcript.info", &headers, &q, status);
    resp
}

pub(super) async fn user_lookup(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let email = q.get("email").cloned().unwrap_or_default();
    if state.lock().unwrap().directory_down {
        record_get(&state, "/v0/user.lookup", &headers, &q, 503);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let found = state.lock().unwrap().transcripts.users.get(&email).cloned();
    let (status, resp) = match found {
        Some(id) => (
            200,
            Json(json!({"id": id, "name": "x", "email": email})).into_response(),
        ),
        None => (
            404,
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "user_not_found"})),
            )
                .into_response(),
        ),
    };
    record_get(&state, "/v0/user.lookup", &headers, &q, status);
    resp
}
