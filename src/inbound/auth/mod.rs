//! Authentication schemes shared by source kinds.
//!
//! Every comparison of a secret or a signature is constant-time: HMAC tags through
//! `Mac::verify_slice`, shared tokens through `subtle`. Each scheme accepts any of the
//! configured secrets, so a secret can be rotated without refusing deliveries. Schemes
//! that sign a timestamp refuse one outside the replay window (`tolerance`, 5 min).

use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

mod schemes;
mod spec;

use super::{Inbound, Rejection};
use crate::config::Secret;
pub use spec::{AuthSpec, BASIC_OR_BEARER, HmacStyle};

type HmacSha256 = Hmac<Sha256>;

pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Declared with `auth = "none"`; the daemon warns about it at start-up.
    None,
    /// `Authorization: Bearer <secret>`.
    Bearer { secrets: Vec<Secret> },
    /// `Authorization: Basic base64(user:password)`; each secret is `user:password`.
    Basic { secrets: Vec<Secret> },
    /// Basic or Bearer, whichever the sender was configured with (Alertmanager, Grafana,
    /// Jenkins, Datadog, Pipedrive). A Basic secret is `user:password`.
    BasicOrBearer { secrets: Vec<Secret> },
    /// A shared token sent as-is in a header (GitLab `X-Gitlab-Token`).
    Token {
        header: String,
        secrets: Vec<Secret>,
    },
    /// The secret as the last URL segment, `/hooks/<name>/<secret>`: for senders that
    /// cannot add headers (Slack-format tools).
    UrlToken { secrets: Vec<Secret> },
    /// `<header>: <prefix><hex(HMAC-SHA256(secret, raw body))>` (GitHub, Sentry).
    HmacSha256Hex {
        header: String,
        prefix: String,
        secrets: Vec<Secret>,
    },
    /// `<header>: v1=<hex>[,v1=<hex>…]` over the raw body (PagerDuty, CircleCI).
    HmacSha256HexList {
        header: String,
        version: String,
        secrets: Vec<Secret>,
    },
    /// Grafana: hex HMAC of the body, or of `<timestamp>:<body>` when the timestamp
    /// header is configured.
    Grafana {
        header: String,
        timestamp_header: Option<String>,
        secrets: Vec<Secret>,
        tolerance: Duration,
    },
    /// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>…` over `<t>.<body>`, key as written.
    Stripe {
        secrets: Vec<Secret>,
        tolerance: Duration,
    },
    /// Buildkite: `X-Buildkite-Signature: timestamp=<unix>,signature=<hex>` over
    /// `<timestamp>.<body>`.
    Buildkite {
        secrets: Vec<Secret>,
        tolerance: Duration,
    },
    /// HubSpot v3: `X-HubSpot-Signature-v3: base64(HMAC(secret, METHOD + URI + body +
    /// timestamp))`, `X-HubSpot-Request-Timestamp` in milliseconds. `public_url` is the URL
    /// HubSpot calls (what it signs), since behind a proxy we cannot see it.
    HubSpotV3 {
        secrets: Vec<Secret>,
        public_url: String,
        tolerance: Duration,
    },
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`, or the
    /// `svix-` names): base64 HMAC of `<id>.<timestamp>.<body>` with the base64 key after
    /// `whsec_`.
    StandardWebhooks {
        keys: Vec<Vec<u8>>,
        tolerance: Duration,
    },
}

impl Authenticator {
    pub fn is_none(&self) -> bool {
        matches!(self, Authenticator::None)
    }

    pub fn verify(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        match self {
            Authenticator::None => Ok(()),
            Authenticator::Bearer { secrets } => schemes::bearer_token(req, secrets),
            Authenticator::Basic { secrets } => schemes::basic_pair(req, secrets),
            Authenticator::BasicOrBearer { secrets } => schemes::basic_or_bearer(req, secrets),
            Authenticator::Token { header, secrets } => schemes::token_header(req, header, secrets),
            Authenticator::UrlToken { secrets } => schemes::url_token(req, secrets),
            Authenticator::HmacSha256Hex {
                header,
                prefix,
                secrets,
            } => schemes::hmac_hex(req, header, prefix, secrets),
            Authenticator::HmacSha256HexList {
                header,
                version,
                secrets,
            } => schemes::hmac_hex_list(req, header, version, secrets),
            Authenticator::Grafana {
                header,
                timestamp_header,
                secrets,
                tolerance,
            } => schemes::grafana(
                req,
                header,
                timestamp_header.as_deref(),
                secrets,
                *tolerance,
            ),
            Authenticator::Stripe { secrets, tolerance } => {
                schemes::stripe(req, secrets, *tolerance)
            }
            Authenticator::Buildkite { secrets, tolerance } => {
                schemes::buildkite(req, secrets, *tolerance)
            }
            Authenticator::HubSpotV3 {
                secrets,
                public_url,
                tolerance,
            } => schemes::hubspot(req, secrets, public_url, *tolerance),
            Authenticator::StandardWebhooks { keys, tolerance } => {
                schemes::standard_webhooks(req, keys, *tolerance)
            }
        }
    }
}

/// Decodes a Standard Webhooks secret: base64 after an optional `whsec_` prefix.
pub fn standard_webhooks_key(secret: &str) -> Result<Vec<u8>, String> {
    let b = secret.strip_prefix("whsec_").unwrap_or(secret);
    B64.decode(b).map_err(|_| "a Standard Webhooks secret is base64 after \"whsec_\" (e.g. whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw)".to_string())
}

fn any_equal(secrets: &[Secret], given: &[u8], problem: &str) -> Result<(), Rejection> {
    if secrets.iter().any(|s| ct_eq(given, s.expose().as_bytes())) {
        Ok(())
    } else {
        Err(Rejection::unauthorized(problem.to_string()))
    }
}

fn any_hmac(
    secrets: &[Secret],
    parts: &[&[u8]],
    sigs: &[Vec<u8>],
    header: &str,
) -> Result<(), Rejection> {
    let ok = secrets.iter().any(|s| {
        sigs.iter()
            .any(|sig| hmac_parts_match(s.expose().as_bytes(), parts, sig))
    });
    if ok {
        Ok(())
    } else {
        Err(Rejection::unauthorized(format!(
            "{header} does not match the body for any configured secret"
        )))
    }
}

/// `v1=ab12,v1=cd34,t=…` → the decodable hex values tagged `version`.
fn tagged_hex(value: &str, sep: char, eq: char, version: &str) -> Vec<Vec<u8>> {
    value
        .split(sep)
        .filter_map(|p| p.trim().split_once(eq))
        .filter(|(k, _)| *k == version)
        .filter_map(|(_, v)| hex::decode(v.trim()).ok())
        .collect()
}

/// Refuses a signed timestamp (unix seconds) outside `tolerance` of now.
pub fn check_timestamp(ts: &str, tolerance: Duration, what: &str) -> Result<(), Rejection> {
    let t: i64 = ts
        .trim()
        .parse()
        .map_err(|_| Rejection::unauthorized(format!("{what} is not a unix timestamp")))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if (now - t).unsigned_abs() > tolerance.as_secs() {
        return Err(Rejection::unauthorized(format!(
            "{what} is {}s away from now, outside the {}s replay window",
            now - t,
            tolerance.as_secs()
        )));
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    Ok(header_str(headers, "authorization")?.and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
    }))
}

fn basic(headers: &HeaderMap) -> Result<Option<Vec<u8>>, Rejection> {
    let Some(v) = header_str(headers, "authorization")? else {
        return Ok(None);
    };
    let Some(b) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    B64.decode(b.trim())
        .map(Some)
        .map_err(|_| Rejection::unauthorized("Authorization: Basic value is not base64"))
}

/// Constant-time HMAC-SHA256 check of `tag` over the concatenation of `parts`.
pub fn hmac_parts_match(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(tag).is_ok()
}

/// HMAC-SHA256 as lowercase hex; used by tests to sign sample bodies.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time equality (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A header as UTF-8 text; a header that is not valid text is treated as tampered.
pub fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Rejection> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Rejection::unauthorized(format!("{name} header is not valid text"))),
    }
}

#[cfg(test)]
mod tests;
