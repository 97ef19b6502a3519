//! The fake's `webhook.subscribe` and `webhook.unsubscribe` (webhooks.json).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{FakeCtx, Recorded};
use crate::helpers::test_files;

/// A schema from webhooks.json, with its components so `$ref`s resolve.
fn webhooks_schema(pointer: &str) -> jsonschema::Validator {
    let spec: Value = serde_json::from_slice(
        &std::fs::read(test_files().join("roam-openapi/webhooks.json")).unwrap(),
    )
    .unwrap();
    let mut schema = spec.pointer(pointer).unwrap().clone();
    schema["components"] = spec["components"].clone();
    jsonschema::validator_for(&schema).unwrap()
}

/// `webhook.subscribe` (webhooks.json): the body is validated against the request schema;
/// the same event and URL update one subscription; a URL that is not HTTPS (outside
/// localhost) gets 400 as Roam does.
pub(super) async fn webhook_subscribe(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let valid = webhooks_schema("/components/schemas/WebhookSubscriptionRequest");
    let errors: Vec<String> = valid.iter_errors(&body).map(|e| e.to_string()).collect();
    let url = body["url"].as_str().unwrap_or("");
    let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
    let (status, answer) = if !errors.is_empty() {
        (400, json!({"error": errors.join("; ")}))
    } else if !url.starts_with("https://") && !local {
        (400, json!({"error": "url must use https"}))
    } else {
        let mut s = state.lock().unwrap();
        let existing = s
            .subscriptions
            .iter()
            .find(|x| x["url"] == body["url"] && x["event"] == body["event"])
            .cloned();
        let sub = existing.unwrap_or_else(|| {
            let sub = json!({"id": uuid::Uuid::new_v4().to_string(), "event": body["event"], "url": body["url"]});
            s.subscriptions.push(sub.clone());
            sub
        });
        let ok = webhooks_schema("/components/schemas/Webhook");
        assert!(
            ok.is_valid(&sub),
            "the fake's answer breaks webhooks.json: {sub}"
        );
        (200, sub)
    };
    state.lock().unwrap().recorded.push(Recorded::new(
        "/v0/webhook.subscribe",
        &headers,
        body,
        errors,
        status,
        None,
    ));
    (StatusCode::from_u16(status).unwrap(), Json(answer)).into_response()
}

/// `webhook.unsubscribe`: a form with `id` (JSON is refused, as v0 does): 204, or 404.
pub(super) async fn webhook_unsubscribe(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let id = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned());
    let status = match (is_form, id) {
        (true, Some(id)) => {
            let mut s = state.lock().unwrap();
            let before = s.subscriptions.len();
            s.subscriptions.retain(|x| x["id"] != id.as_str());
            if s.subscriptions.len() < before {
                204
            } else {
                404
            }
        }
        _ => 400,
    };
    state.lock().unwrap().recorded.push(Recorded::new(
        "/v0/webhook.unsubscribe",
        &headers,
        json!(String::from_utf8_lossy(&body)),
        vec![],
        status,
        None,
    ));
    StatusCode::from_u16(status).unwrap().into_response()
}
