//! `POST /hooks/{source}`: the webhook endpoint. It maps HTTP to and from the ingest
//! step: who may post (allow_ips, rate_limit), the signature, the sender's format, then
//! `ingest::Ingest::accept`, then the answer the sender expects.
//!
//! The answer is sent only after the events and their messages are committed, so a 2xx
//! means "durably stored". 202 names the delivery id and the routes matched; a
//! redelivered id gets 200 and the routes it matched the first time.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::{ApiError, AppState, client_ip};
use crate::inbound::{Ack, Inbound, Parsed, Source};
use crate::ingest::Outcome;
use crate::ingest::recent::Received;
use crate::reads::Reads;

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

fn delivery_hint(headers: &HeaderMap) -> &str {
    DELIVERY_ID_HEADERS
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .unwrap_or("unknown")
}

/// `/hooks/{source}` or `/hooks/{source}/{token}` (the token for `auth = "url-token"`).
#[derive(serde::Deserialize)]
struct HookPath {
    source: String,
    token: Option<String>,
}

/// The request as received, before anything is checked.
struct Request {
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
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
    let req = Request {
        peer,
        method,
        uri,
        headers,
        body,
        token: path.token,
    };
    let (result, counted, label) = match handle(&st, &path.source, req).await {
        Ok((resp, result)) => (Ok(resp), result, path.source.as_str()),
        // Unknown sources are counted without the requested name: the path is the
        // sender's to choose.
        Err(e @ ApiError::UnknownSource(_)) => (Err(e), "unknown_source", ""),
        Err(e) => {
            let r = e.metric_result();
            (Err(e), r, path.source.as_str())
        }
    };
    st.metrics.webhooks.inc(&[label, counted]);
    st.metrics.ack_seconds.observe(started.elapsed());
    result
}

/// Checks, parses and accepts one request: the response and its metrics result.
async fn handle(
    st: &AppState,
    source_name: &str,
    req: Request,
) -> Result<(Response, &'static str), ApiError> {
    let pipeline = st.pipeline.load();
    let Some(source) = pipeline.sources.get(source_name) else {
        tracing::warn!(source = %source_name, "refused: unknown source");
        return Err(ApiError::UnknownSource(source_name.to_string()));
    };
    // Before any signature work: who may post here, and how often.
    let client = client_ip(&pipeline.trusted_proxies, req.peer.ip(), &req.headers);
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
    let (mut parsed, kept) = verify_and_parse(st, source, pipeline.reads(&source.name), req)?;
    match parsed.ack {
        Ack::Pong { event } => {
            tracing::info!(source = %source.name, event = %event, "connectivity check answered");
            let body = json!({"status": "ok", "event": event, "message": "pong; nothing is posted for this event"});
            Ok(((StatusCode::OK, Json(body)).into_response(), "ping"))
        }
        Ack::Transcript { id } => super::transcripts::saved(st, &source.name, &id).await,
        Ack::Challenge(challenge) => {
            tracing::info!(source = %source.name, "Roam's subscription check answered");
            let body = json!({"challenge": challenge});
            Ok(((StatusCode::OK, Json(body)).into_response(), "ping"))
        }
        ack => {
            pipeline
                .enrichers
                .enrich(&source.name, &mut parsed.events, &st.store, &st.metrics)
                .await;
            let outcome = st
                .ingest
                .accept(&pipeline, source, parsed.events)
                .await
                .map_err(|e| ApiError::Storage(e.to_string()))?;
            let result = if outcome.any_new() {
                st.recent.record(Received {
                    at_ms: crate::storage::now_ms(),
                    source: source.name.clone(),
                    headers: kept.0,
                    body: kept.1,
                });
                "accepted"
            } else {
                "duplicate"
            };
            Ok((reply(&outcome, ack), result))
        }
    }
}

/// The body within its limit, the signature over its raw bytes, then the sender's
/// format, building only what `reads` reads of the payload when given. Every refusal is
/// logged with the delivery id the sender gave. Gives back the headers and body too
/// (kept for the console's silence preview).
fn verify_and_parse(
    st: &AppState,
    source: &Source,
    reads: Option<&Reads>,
    req: Request,
) -> Result<(Parsed, (HeaderMap, Bytes)), ApiError> {
    let hint = delivery_hint(&req.headers);
    let body = req.body.map_err(|e| {
        let err = ApiError::from_body(e, st.max_body);
        tracing::warn!(source = %source.name, delivery_id = %hint, error = %err, "refused");
        err
    })?;
    let inbound = Inbound {
        method: &req.method,
        uri: &req.uri,
        headers: &req.headers,
        body: &body,
        url_token: req.token.as_deref(),
        reads,
    };
    if let Err(r) = source.authenticate(&inbound) {
        tracing::warn!(source = %source.name, delivery_id = %hint, reason = %r, "refused: authentication failed");
        return Err(r.into());
    }
    let parsed = source.parse(&inbound).map_err(|r| {
        tracing::warn!(source = %source.name, delivery_id = %hint, bytes = body.len(), reason = %r,
            "refused: verified request could not be parsed; nothing stored");
        ApiError::from(r)
    })?;
    Ok((parsed, (req.headers, body)))
}

/// The answer once committed: the sender's own acknowledgement (Slack's `ok`, a SOAP
/// `Ack`) or JSON naming the delivery ids, routes and messages.
fn reply(outcome: &Outcome, ack: Ack) -> Response {
    match ack {
        Ack::Soap => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            crate::inbound::salesforce::SOAP_ACK,
        )
            .into_response(),
        Ack::Text(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response(),
        _ => {
            let new = outcome.any_new();
            let code = if new {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            (code, Json(json_reply(outcome, new))).into_response()
        }
    }
}

/// The 202/200 body: the first event's id, name and quiet reasons at the top (most
/// requests carry one event), every event under `events`. Written straight from the
/// outcome, keys sorted as they always were.
#[derive(serde::Serialize)]
struct Reply<'a> {
    delivery_id: Option<&'a str>,
    event: Option<&'a str>,
    events: Vec<EventReply<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    held: usize,
    messages: usize,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    quiet: &'a [String],
    routes: Vec<String>,
    status: &'static str,
}

#[derive(serde::Serialize)]
struct EventReply<'a> {
    delivery_id: &'a str,
    event: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    held: usize,
    messages: usize,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    quiet: &'a [String],
    routes: &'a [String],
    status: &'static str,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn status(new: bool) -> &'static str {
    if new { "accepted" } else { "duplicate" }
}

fn json_reply(outcome: &Outcome, new: bool) -> Reply<'_> {
    let first = outcome.events.first();
    Reply {
        delivery_id: first.map(|e| e.delivery_id.as_str()),
        event: first.map(|e| e.name.as_str()),
        events: outcome
            .events
            .iter()
            .map(|e| EventReply {
                delivery_id: &e.delivery_id,
                event: &e.name,
                held: e.held,
                messages: e.messages,
                quiet: &e.quiet,
                routes: &e.routes,
                status: status(e.new),
            })
            .collect(),
        held: outcome.held(),
        messages: outcome.messages(),
        quiet: first.map_or(&[], |e| e.quiet.as_slice()),
        routes: outcome.routes(),
        status: status(new),
    }
}
