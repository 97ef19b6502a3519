//! `POST /hooks/{source}`: verify, parse, route, render, commit, then answer.
//!
//! The answer is sent only after the event and its messages are committed, so a 2xx
//! means "durably stored". 202 names the delivery id and the routes matched; a
//! redelivered id gets 200 and the routes it matched the first time.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::{ApiError, AppState};
use crate::inbound::{Ack, Inbound};
use crate::pipeline::Quiet;
use crate::storage::Committed;

pub fn router(max_body: usize) -> Router<AppState> {
    Router::new()
        .route("/hooks/{source}", post(receive))
        .route("/hooks/{source}/{token}", post(receive))
        .layer(DefaultBodyLimit::max(max_body))
}

/// Headers senders use for delivery ids, to name a refused request in the log.
const DELIVERY_ID_HEADERS: &[&str] = &[
    "x-github-delivery",
    "idempotency-key",
    "x-gitlab-event-uuid",
    "webhook-id",
    "svix-id",
    "x-webhook-id",
    "request-id",
    "x-request-id",
];

fn delivery_hint(headers: &HeaderMap) -> String {
    DELIVERY_ID_HEADERS
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or("unknown")
        .to_string()
}

/// `/hooks/{source}` or `/hooks/{source}/{token}` (the token for `auth = "url-token"`).
#[derive(serde::Deserialize)]
struct HookPath {
    source: String,
    token: Option<String>,
}

/// Times the answer and counts the outcome per source (`/metrics`).
async fn receive(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(path): Path<HookPath>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let source = path.source.clone();
    let result = receive_inner(&st, peer, path, method, uri, headers, body).await;
    st.metrics.ack_seconds.observe(started.elapsed());
    if let Err(e) = &result {
        let label = match e {
            // Not the requested name: the path is the sender's to choose.
            ApiError::UnknownSource(_) => "",
            _ => source.as_str(),
        };
        st.metrics.webhooks.inc(&[label, e.metric_result()]);
    }
    result
}

async fn receive_inner(
    st: &AppState,
    peer: SocketAddr,
    HookPath {
        source: source_name,
        token,
    }: HookPath,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let pipeline = st.pipeline.load();
    let Some(source) = pipeline.sources.get(&source_name) else {
        tracing::warn!(source = %source_name, "refused: unknown source");
        return Err(ApiError::UnknownSource(source_name));
    };
    // Before any signature work: who may post here, and how often.
    let client = pipeline.client_ip(peer.ip(), &headers);
    if !source.allows(client) {
        tracing::warn!(source = %source.name, client = %client, "refused: address not in allow_ips");
        return Err(ApiError::Forbidden(format!(
            "{client} may not post to source {:?} (allow_ips)",
            source.name
        )));
    }
    if let Err(wait) = source.admit() {
        tracing::warn!(source = %source.name, client = %client, "refused: over the source's rate_limit");
        return Err(ApiError::TooManyRequests {
            name: source.name.clone(),
            retry_after: wait,
        });
    }
    let body = body.map_err(|e| {
        st.ingest.bad_requests.fetch_add(1, Ordering::Relaxed);
        let err = ApiError::from_body(e, st.max_body);
        tracing::warn!(source = %source.name, delivery_id = %delivery_hint(&headers), error = %err, "refused");
        err
    })?;
    let req = Inbound {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
        url_token: token.as_deref(),
    };
    if let Err(r) = source.authenticate(&req) {
        st.ingest.unauthorized.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(source = %source.name, delivery_id = %delivery_hint(&headers), reason = %r, "refused: authentication failed");
        return Err(r.into());
    }
    let parsed = source.parse(&req).map_err(|r| {
        st.ingest.bad_requests.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(source = %source.name, delivery_id = %delivery_hint(&headers), bytes = body.len(), reason = %r,
            "refused: verified request could not be parsed; nothing stored");
        ApiError::from(r)
    })?;
    if let Ack::Pong { event } = &parsed.ack {
        st.metrics.webhooks.inc(&[&source.name, "ping"]);
        tracing::info!(source = %source.name, event = %event, "connectivity check answered");
        return Ok((StatusCode::OK, Json(json!({"status": "ok", "event": event, "message": "pong; nothing is posted for this event"}))).into_response());
    }

    if let Ack::Transcript { id } = &parsed.ack {
        return transcript_saved(st, &source.name, id).await;
    }
    let parsed_ack = parsed.ack.clone();
    let mut planned = Vec::with_capacity(parsed.events.len());
    let mut quiet: Vec<Vec<String>> = Vec::with_capacity(parsed.events.len());
    for ev in parsed.events {
        let p = pipeline.plan(source, ev);
        for q in &p.quiet {
            let counter = match q {
                Quiet::Silenced { .. } => &st.ingest.silenced,
                Quiet::Muted { .. } => &st.ingest.muted,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::info!(source = %source.name, delivery_id = %p.event.delivery_id, event = %p.event.name, "{q}");
        }
        quiet.push(p.quiet.iter().map(ToString::to_string).collect());
        for e in &p.render_errors {
            st.ingest.template_errors.fetch_add(1, Ordering::Relaxed);
            st.metrics.template_errors.inc(&[&source.name]);
            tracing::error!(source = %source.name, delivery_id = %p.event.delivery_id, event = %p.event.name, error = %e,
                "template failed; the message is sent in its plain fallback form");
        }
        planned.push(p.event);
    }
    let summary: Vec<(String, String, Vec<String>)> = planned
        .iter()
        .map(|e| (e.delivery_id.clone(), e.name.clone(), e.routes.clone()))
        .collect();
    // Per event: the route of each queued message and of each held item, for /metrics.
    let outbox_routes: Vec<(Vec<String>, Vec<String>)> = planned
        .iter()
        .map(|e| {
            (
                e.messages.iter().map(|m| m.route.clone()).collect(),
                e.held.iter().map(|h| h.route.clone()).collect(),
            )
        })
        .collect();
    let results = st
        .committer
        .commit(planned)
        .await
        .map_err(|e| ApiError::Storage(e.to_string()))?;

    let mut any_new = false;
    let mut total_messages = 0;
    let mut total_held = 0;
    let mut all_routes: Vec<String> = Vec::new();
    let mut events = Vec::new();
    for ((((delivery_id, name, routes), result), quiet), (queued, held_routes)) in summary
        .into_iter()
        .zip(results)
        .zip(quiet)
        .zip(outbox_routes)
    {
        let (status, routes, messages, held) = match result {
            Committed::Inserted { messages, held, .. } => {
                any_new = true;
                for r in &routes {
                    st.metrics.routed.inc(&[r]);
                }
                for r in &queued {
                    st.metrics.messages.inc(&[r, "queued"]);
                }
                for r in &held_routes {
                    st.metrics.messages.inc(&[r, "held"]);
                }
                st.ingest.accepted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(source = %source.name, delivery_id = %delivery_id, event = %name, routes = ?routes, messages, held, "accepted");
                ("accepted", routes, messages, held)
            }
            Committed::Duplicate { routes } => {
                st.ingest.duplicates.fetch_add(1, Ordering::Relaxed);
                tracing::info!(source = %source.name, delivery_id = %delivery_id, event = %name, "duplicate delivery; nothing new queued");
                ("duplicate", routes, 0, 0)
            }
        };
        total_messages += messages;
        total_held += held;
        for r in &routes {
            if !all_routes.contains(r) {
                all_routes.push(r.clone());
            }
        }
        let mut entry = json!({"delivery_id": delivery_id, "event": name, "status": status, "routes": routes, "messages": messages});
        if !quiet.is_empty() && status == "accepted" {
            entry["quiet"] = json!(quiet);
        }
        if held > 0 {
            // Waiting in a group (grouping, dedup, max_messages or a mute summary).
            entry["held"] = json!(held);
        }
        events.push(entry);
    }
    st.metrics.webhooks.inc(&[
        &source.name,
        if any_new || events.is_empty() {
            "accepted"
        } else {
            "duplicate"
        },
    ]);
    let code = if any_new || events.is_empty() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let first = events.first().cloned().unwrap_or_else(|| json!({}));
    let body = json!({
        "status": if any_new || events.is_empty() { "accepted" } else { "duplicate" },
        "delivery_id": first.get("delivery_id"),
        "event": first.get("event"),
        "routes": all_routes,
        "messages": total_messages,
        "events": events,
    });
    let mut body = body;
    if let Some(q) = first.get("quiet") {
        body["quiet"] = q.clone();
    }
    if total_held > 0 {
        body["held"] = json!(total_held);
    }
    if let Ack::Soap = parsed_ack {
        return Ok((
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            crate::inbound::salesforce::SOAP_ACK,
        )
            .into_response());
    }
    if let Ack::Text(text) = parsed_ack {
        return Ok((
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            text,
        )
            .into_response());
    }
    Ok((code, Json(body)).into_response())
}

/// Roam's `transcript:saved`: the id is queued durably (then answered 202), and the
/// transcript worker fetches and posts it; the scheduled sweep is the safety net.
async fn transcript_saved(st: &AppState, source: &str, id: &str) -> Result<Response, ApiError> {
    let new = st
        .store
        .enqueue_transcript(id)
        .await
        .map_err(|e| ApiError::Storage(e.to_string()))?;
    st.ingest.accepted.fetch_add(1, Ordering::Relaxed);
    st.metrics.webhooks.inc(&[source, "accepted"]);
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
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"status": "accepted", "event": "roam.transcript.saved", "transcript": id, "message": message})),
    )
        .into_response())
}
