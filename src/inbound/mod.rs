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

pub mod auth;
mod generic;
mod github;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};

pub use auth::Authenticator;

/// The source kinds this build knows, for error messages and docs.
pub const KINDS: &[&str] = &["github", "generic"];

/// What a source kind sees of a request.
pub struct Inbound<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
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
}

/// A configured source: the URL is `POST /hooks/<name>`.
pub struct Source {
    pub name: String,
    pub kind: &'static str,
    pub unauthenticated: bool,
    handler: Box<dyn SourceKind>,
}

impl Source {
    pub fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        self.handler.authenticate(req)
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

/// Compiles every `[[sources]]` entry.
pub fn build_sources(cfg: &Config) -> Result<Vec<Source>, ConfigError> {
    (0..cfg.sources.len())
        .map(|i| build_source(cfg, i))
        .collect()
}

fn build_source(cfg: &Config, i: usize) -> Result<Source, ConfigError> {
    let sc = &cfg.sources[i];
    let (kind, handler, auth): (&'static str, Box<dyn SourceKind>, bool) = match sc.kind.as_str() {
        "github" => {
            let g = github::GitHub::from_config(cfg, i)?;
            let none = g.auth.is_none();
            ("github", Box::new(g), none)
        }
        "generic" => {
            let g = generic::Generic::from_config(cfg, i)?;
            let none = g.auth.is_none();
            ("generic", Box::new(g), none)
        }
        other => {
            return Err(cfg.error(
                &format!("sources[{i}].kind"),
                format!(
                    "unknown source kind {other:?} (known: {})",
                    KINDS.join(", ")
                ),
            ));
        }
    };
    Ok(Source {
        name: sc.name.clone(),
        kind,
        unauthenticated: auth,
        handler,
    })
}

/// Builds the authenticator from `auth`, `secret`/`secrets` and the signature keys.
/// `default_hmac` is the kind's native signature scheme, used when `auth` is not set.
fn authenticator_from_config(
    cfg: &Config,
    i: usize,
    default_hmac: Option<(&str, &str)>,
) -> Result<Authenticator, ConfigError> {
    let sc = &cfg.sources[i];
    let key = |k: &str| format!("sources[{i}].{k}");
    let secrets = sc.all_secrets();
    let scheme = match (sc.auth.as_deref(), default_hmac) {
        (Some(s), _) => s.to_string(),
        (None, Some(_)) => "hmac-sha256".to_string(),
        (None, None) => {
            return Err(cfg.error(
                &key("auth"),
                "missing: set auth = \"bearer\", \"hmac-sha256\" or (explicitly) \"none\"",
            ));
        }
    };
    match scheme.as_str() {
        "none" => {
            if !secrets.is_empty() {
                return Err(cfg.error(
                    &key("auth"),
                    "auth = \"none\" but a secret is set; remove one of them",
                ));
            }
            Ok(Authenticator::None)
        }
        "bearer" | "hmac-sha256" => {
            if secrets.is_empty() {
                return Err(cfg.error(
                    &key("secret"),
                    format!("auth = {scheme:?} needs `secret` (or `secrets = [..]`); write ${{env:NAME}} to keep it out of the file"),
                ));
            }
            if scheme == "bearer" {
                if sc.signature_header.is_some() || sc.signature_prefix.is_some() {
                    return Err(cfg.error(
                        &key("signature_header"),
                        "only used with auth = \"hmac-sha256\"",
                    ));
                }
                return Ok(Authenticator::Bearer { secrets });
            }
            let (dh, dp) = default_hmac.unwrap_or(("X-Signature-256", "sha256="));
            let header = sc
                .signature_header
                .clone()
                .unwrap_or_else(|| dh.to_string());
            if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(cfg.error(
                    &key("signature_header"),
                    format!("{header:?} is not a valid header name"),
                ));
            }
            Ok(Authenticator::HmacSha256Hex {
                header,
                prefix: sc
                    .signature_prefix
                    .clone()
                    .unwrap_or_else(|| dp.to_string()),
                secrets,
            })
        }
        other => Err(cfg.error(
            &key("auth"),
            format!("unknown auth {other:?} (use \"bearer\", \"hmac-sha256\" or \"none\")"),
        )),
    }
}

/// Refuses keys that the kind does not use, so a misplaced key is not silently ignored.
fn reject_unused(
    cfg: &Config,
    i: usize,
    kind: &str,
    keys: &[(&str, bool)],
) -> Result<(), ConfigError> {
    for (k, set) in keys {
        if *set {
            return Err(cfg.error(
                &format!("sources[{i}].{k}"),
                format!("not used by kind {kind:?}"),
            ));
        }
    }
    Ok(())
}

/// A stable delivery id for senders that do not send one: the body's SHA-256.
fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn parse_json(body: &[u8]) -> Result<Value, Rejection> {
    serde_json::from_slice(body)
        .map_err(|e| Rejection::bad_request(format!("body is not valid JSON: {e}")))
}

/// Keeps event-name parts to `[a-z0-9_.-]` so names are predictable in routes.
fn name_part(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
