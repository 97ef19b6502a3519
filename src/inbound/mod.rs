//! Inbound sources: turn an HTTP request from a sender into verified, normalised events.
//!
//! Each source kind (one module per sender) implements [`SourceKind`] in two steps that
//! the HTTP layer calls in order:
//! 1. `authenticate`: check the signature or token over the **raw** body bytes. A
//!    failure is a 401 and nothing is stored.
//! 2. `parse`: read the event type, delivery id and payload. A failure is a 400.
//!
//! Events are named `<kind>.<event>[.<action>]` (e.g. `github.pull_request.closed`) for
//! every kind, so routes and templates look the same whatever the sender.
//!
//! [`KINDS`] lists every kind, one [`Kind`] entry per sender module; `build.rs` turns
//! `[[sources]]` into [`Source`]s with it, `parse.rs` has the helpers senders share (a
//! body's JSON becomes a tree in `json.rs`) and `auth/` one function per signature scheme.

mod alerts;
pub mod auth;
mod build;
mod buildkite;
mod circleci;
mod datadog;
mod generic;
mod github;
mod gitlab;
mod hubspot;
mod jenkins;
mod json;
pub mod kind;
mod pagerduty;
mod parse;
mod pipedrive;
#[cfg(test)]
mod reading_tests;
pub mod roam;
pub mod salesforce;
mod sentry;
mod simple;
mod slack;
mod standard_webhooks;
mod stripe;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use ipnet::IpNet;
use serde_json::Value;

use crate::ratelimit::TokenBucket;

pub use auth::{AuthSpec, Authenticator, BASIC_OR_BEARER, HmacStyle};
use build::reject_unused;
pub use build::{build_sources, parse_cidrs, prepare_sample};
pub use kind::{Kind, auth_summary, kind_reads};
pub use parse::parse_json;
use parse::{body_digest, delivery_from_headers, name_part, parse_json_kept, parse_json_reading};

/// Every sender kind this build knows: one entry each (see `kind.rs`).
pub const KINDS: &[&Kind] = &[
    &github::KIND,
    &gitlab::KIND,
    &alerts::ALERTMANAGER,
    &alerts::GRAFANA,
    &pagerduty::KIND,
    &sentry::KIND,
    &circleci::KIND,
    &jenkins::KIND,
    &stripe::KIND,
    &buildkite::KIND,
    &datadog::KIND,
    &hubspot::KIND,
    &salesforce::KIND,
    &pipedrive::KIND,
    &standard_webhooks::KIND,
    &slack::KIND,
    &roam::KIND,
    &generic::KIND,
];

/// What a source kind sees of a request.
pub struct Inbound<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The body as received (shared, not copied, where an event keeps it whole).
    pub body: &'a Bytes,
    /// The segment after `/hooks/<source>/`, for `auth = "url-token"`.
    pub url_token: Option<&'a str>,
    /// What the source's parser, routes and templates read of the payload, when known
    /// (a kind with [`Kind::reads`]); None: the payload is built whole.
    pub reads: Option<&'a crate::reads::Reads>,
}

/// One normalised event.
#[derive(Debug, Clone)]
pub struct Event {
    /// `<kind>.<event>[.<action>]`.
    pub name: String,
    /// The sender's id for this delivery; a redelivery carries the same id.
    pub delivery_id: String,
    /// The thing the event is about (a pull request, a pipeline), for threading.
    pub entity: Option<String>,
    pub payload: Value,
    /// Some when `payload` holds only what the source reads (`Inbound::reads`): the
    /// JSON text it was built from, read whole only where the whole payload is shown
    /// (a template's fallback message).
    pub whole: Option<Bytes>,
}

/// What a request produced.
#[derive(Debug)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub ack: Ack,
}

/// How to answer the sender beyond the default JSON reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// 202 (or 200 for a duplicate) with a JSON body naming delivery id and routes.
    Default,
    /// A connectivity check (GitHub `ping`): answered 200, nothing stored or posted.
    Pong { event: String },
    /// Once committed, answer 200 with this text/plain body (Slack's `ok`).
    Text(&'static str),
    /// Once committed, answer 200 with the SOAP `Ack` (Salesforce outbound messages).
    Soap,
    /// Roam's `transcript:saved`: queue this transcript for the transcript worker.
    Transcript { id: String },
    /// Roam's subscription check (`webhook.verification`): answer 200 echoing this
    /// challenge; nothing stored or posted.
    Challenge(String),
}

/// Why a request was refused; becomes an HTTP status and a JSON body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }
}

pub trait SourceKind: Send + Sync + 'static {
    fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection>;
    fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection>;
    /// Declared with `auth = "none"`: anyone who reaches the URL may post.
    fn unauthenticated(&self) -> bool {
        false
    }
}

/// A configured source: the URL is `POST /hooks/<name>`.
pub struct Source {
    pub name: String,
    pub kind: &'static str,
    /// The transcript source added without a `[[sources]]` entry: no webhook endpoint.
    pub internal: bool,
    /// Client addresses allowed to post (empty: any).
    pub allow_ips: Vec<IpNet>,
    /// Inbound requests per second (`rate_limit`); more get 429.
    pub limiter: Option<std::sync::Mutex<TokenBucket>>,
    pub(crate) handler: Box<dyn SourceKind>,
}

impl Source {
    /// Whether `ip` may post here (`allow_ips`).
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allow_ips.is_empty() || self.allow_ips.iter().any(|n| n.contains(&ip))
    }

    /// Takes one request from the source's budget; Err: how long until the next one.
    pub fn admit(&self) -> Result<(), std::time::Duration> {
        match &self.limiter {
            None => Ok(()),
            Some(l) => l
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(tokio::time::Instant::now()),
        }
    }

    pub fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        self.handler.authenticate(req)
    }

    /// Declared with `auth = "none"`.
    pub fn unauthenticated(&self) -> bool {
        self.handler.unauthenticated()
    }

    pub fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection> {
        self.handler.parse(req)
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
