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

use super::{Inbound, Rejection};
use crate::config::Secret;

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
        let (headers, body) = (req.headers, req.body);
        match self {
            Authenticator::None => Ok(()),
            Authenticator::Bearer { secrets } => {
                let token = bearer(headers)?.ok_or_else(|| {
                    Rejection::unauthorized("missing Authorization: Bearer header")
                })?;
                any_equal(secrets, token.as_bytes(), "bearer token does not match")
            }
            Authenticator::Basic { secrets } => {
                let pair = basic(headers)?.ok_or_else(|| {
                    Rejection::unauthorized("missing Authorization: Basic header")
                })?;
                any_equal(secrets, &pair, "basic auth user or password does not match")
            }
            Authenticator::BasicOrBearer { secrets } => {
                if let Some(pair) = basic(headers)? {
                    return any_equal(secrets, &pair, "basic auth user or password does not match");
                }
                let token = bearer(headers)?.ok_or_else(|| {
                    Rejection::unauthorized("missing Authorization header (Basic or Bearer)")
                })?;
                any_equal(secrets, token.as_bytes(), "bearer token does not match")
            }
            Authenticator::Token { header, secrets } => {
                let value = header_str(headers, header)?
                    .ok_or_else(|| Rejection::unauthorized(format!("missing {header} header")))?;
                any_equal(
                    secrets,
                    value.trim().as_bytes(),
                    &format!("{header} does not match"),
                )
            }
            Authenticator::UrlToken { secrets } => {
                let token = req.url_token.ok_or_else(|| {
                    Rejection::unauthorized("missing token: post to /hooks/<source>/<token>")
                })?;
                any_equal(secrets, token.as_bytes(), "URL token does not match")
            }
            Authenticator::HmacSha256Hex {
                header,
                prefix,
                secrets,
            } => {
                let value = header_str(headers, header)?
                    .ok_or_else(|| Rejection::unauthorized(format!("missing {header} header")))?;
                let hex_sig = value.trim().strip_prefix(prefix.as_str()).ok_or_else(|| {
                    Rejection::unauthorized(format!(
                        "{header} header does not start with {prefix:?}"
                    ))
                })?;
                let sig = hex::decode(hex_sig)
                    .map_err(|_| Rejection::unauthorized(format!("{header} header is not hex")))?;
                any_hmac(secrets, &[body], &[sig], header)
            }
            Authenticator::HmacSha256HexList {
                header,
                version,
                secrets,
            } => {
                let value = header_str(headers, header)?
                    .ok_or_else(|| Rejection::unauthorized(format!("missing {header} header")))?;
                let sigs = tagged_hex(value, ',', '=', version);
                if sigs.is_empty() {
                    return Err(Rejection::unauthorized(format!(
                        "{header} has no {version}= signature"
                    )));
                }
                any_hmac(secrets, &[body], &sigs, header)
            }
            Authenticator::Grafana {
                header,
                timestamp_header,
                secrets,
                tolerance,
            } => {
                let value = header_str(headers, header)?
                    .ok_or_else(|| Rejection::unauthorized(format!("missing {header} header")))?;
                let sig = hex::decode(value.trim())
                    .map_err(|_| Rejection::unauthorized(format!("{header} header is not hex")))?;
                match timestamp_header {
                    None => any_hmac(secrets, &[body], &[sig], header),
                    Some(th) => {
                        let ts = header_str(headers, th)?.ok_or_else(|| {
                            Rejection::unauthorized(format!("missing {th} header"))
                        })?;
                        check_timestamp(ts, *tolerance, th)?;
                        any_hmac(secrets, &[ts.trim().as_bytes(), b":", body], &[sig], header)
                    }
                }
            }
            Authenticator::Stripe { secrets, tolerance } => {
                let value = header_str(headers, "stripe-signature")?
                    .ok_or_else(|| Rejection::unauthorized("missing Stripe-Signature header"))?;
                let t = value
                    .split(',')
                    .find_map(|p| p.trim().strip_prefix("t="))
                    .ok_or_else(|| {
                        Rejection::unauthorized("Stripe-Signature has no t= timestamp")
                    })?;
                check_timestamp(t, *tolerance, "Stripe-Signature t")?;
                let sigs = tagged_hex(value, ',', '=', "v1");
                if sigs.is_empty() {
                    return Err(Rejection::unauthorized(
                        "Stripe-Signature has no v1= signature",
                    ));
                }
                any_hmac(
                    secrets,
                    &[t.as_bytes(), b".", body],
                    &sigs,
                    "Stripe-Signature",
                )
            }
            Authenticator::Buildkite { secrets, tolerance } => {
                let value = header_str(headers, "x-buildkite-signature")?.ok_or_else(|| {
                    Rejection::unauthorized("missing X-Buildkite-Signature header")
                })?;
                let field = |k: &str| {
                    value
                        .split(',')
                        .find_map(|p| p.trim().strip_prefix(k))
                        .map(str::trim)
                };
                let ts = field("timestamp=").ok_or_else(|| {
                    Rejection::unauthorized("X-Buildkite-Signature has no timestamp=")
                })?;
                check_timestamp(ts, *tolerance, "X-Buildkite-Signature timestamp")?;
                let sig = field("signature=")
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or_else(|| {
                        Rejection::unauthorized("X-Buildkite-Signature has no hex signature=")
                    })?;
                any_hmac(
                    secrets,
                    &[ts.as_bytes(), b".", body],
                    &[sig],
                    "X-Buildkite-Signature",
                )
            }
            Authenticator::HubSpotV3 {
                secrets,
                public_url,
                tolerance,
            } => {
                let uri = match req.uri.query() {
                    Some(q) => format!("{public_url}?{q}"),
                    None => public_url.clone(),
                };
                let Some(sig) = header_str(headers, "x-hubspot-signature-v3")? else {
                    // Older apps and workflow webhooks sign with v1/v2 (no timestamp).
                    return hubspot_v1_v2(headers, secrets, req.method.as_str(), &uri, body);
                };
                let ts = header_str(headers, "x-hubspot-request-timestamp")?.ok_or_else(|| {
                    Rejection::unauthorized("missing X-HubSpot-Request-Timestamp header")
                })?;
                let ms: i64 = ts.trim().parse().map_err(|_| {
                    Rejection::unauthorized("X-HubSpot-Request-Timestamp is not a number")
                })?;
                check_timestamp(
                    &(ms / 1000).to_string(),
                    *tolerance,
                    "X-HubSpot-Request-Timestamp",
                )?;
                let sig = B64
                    .decode(sig.trim())
                    .map_err(|_| Rejection::unauthorized("X-HubSpot-Signature-v3 is not base64"))?;
                let parts: [&[u8]; 4] = [
                    req.method.as_str().as_bytes(),
                    uri.as_bytes(),
                    body,
                    ts.trim().as_bytes(),
                ];
                if secrets
                    .iter()
                    .any(|s| hmac_parts_match(s.expose().as_bytes(), &parts, &sig))
                {
                    Ok(())
                } else {
                    Err(Rejection::unauthorized(format!(
                        "X-HubSpot-Signature-v3 does not match for any configured secret (signed URL taken as {uri})"
                    )))
                }
            }
            Authenticator::StandardWebhooks { keys, tolerance } => {
                let (id_h, ts_h, sig_h) = if headers.contains_key("webhook-signature") {
                    ("webhook-id", "webhook-timestamp", "webhook-signature")
                } else {
                    ("svix-id", "svix-timestamp", "svix-signature")
                };
                let id = header_str(headers, id_h)?
                    .ok_or_else(|| Rejection::unauthorized(format!("missing {id_h} header")))?;
                let ts = header_str(headers, ts_h)?
                    .ok_or_else(|| Rejection::unauthorized(format!("missing {ts_h} header")))?;
                let sig = header_str(headers, sig_h)?
                    .ok_or_else(|| Rejection::unauthorized(format!("missing {sig_h} header")))?;
                check_timestamp(ts, *tolerance, ts_h)?;
                let sigs: Vec<Vec<u8>> = sig
                    .split_whitespace()
                    .filter_map(|s| s.strip_prefix("v1,"))
                    .filter_map(|b| B64.decode(b).ok())
                    .collect();
                if sigs.is_empty() {
                    return Err(Rejection::unauthorized(format!(
                        "{sig_h} has no v1, signature"
                    )));
                }
                let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.trim().as_bytes(), b".", body];
                let ok = keys
                    .iter()
                    .any(|k| sigs.iter().any(|s| hmac_parts_match(k, &parts, s)));
                if ok {
                    Ok(())
                } else {
                    Err(Rejection::unauthorized(format!(
                        "{sig_h} does not match for any configured secret"
                    )))
                }
            }
        }
    }
}

/// HubSpot's v1 (`sha256(secret + body)`) and v2 (`sha256(secret + method + uri + body)`)
/// signatures, hex, in `X-HubSpot-Signature` with `X-HubSpot-Signature-Version`.
fn hubspot_v1_v2(
    headers: &HeaderMap,
    secrets: &[Secret],
    method: &str,
    uri: &str,
    body: &[u8],
) -> Result<(), Rejection> {
    use sha2::Digest;
    let sig = header_str(headers, "x-hubspot-signature")?
        .ok_or_else(|| Rejection::unauthorized("missing X-HubSpot-Signature-v3 header"))?;
    let sig = hex::decode(sig.trim())
        .map_err(|_| Rejection::unauthorized("X-HubSpot-Signature is not hex"))?;
    let version = header_str(headers, "x-hubspot-signature-version")?
        .unwrap_or("v1")
        .trim()
        .to_string();
    let ok = secrets.iter().any(|s| {
        let mut h = Sha256::new();
        h.update(s.expose().as_bytes());
        if version == "v2" {
            h.update(method.as_bytes());
            h.update(uri.as_bytes());
        }
        h.update(body);
        ct_eq(&h.finalize(), &sig)
    });
    if ok {
        Ok(())
    } else {
        Err(Rejection::unauthorized(format!(
            "X-HubSpot-Signature ({version}) does not match for any configured secret"
        )))
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
mod tests {
    use super::*;
    use axum::http::{Method, Uri};
    use serde_json::Value;

    fn vectors() -> Value {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/_vectors/signature-vectors.json"
        );
        serde_json::from_str(&std::fs::read_to_string(p).expect("shared vectors")).unwrap()
    }

    fn req<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Inbound<'a> {
        static M: Method = Method::POST;
        static U: std::sync::OnceLock<Uri> = std::sync::OnceLock::new();
        Inbound {
            method: &M,
            uri: U.get_or_init(|| Uri::from_static("/hooks/x")),
            headers,
            body,
            url_token: None,
        }
    }

    /// GitHub's published vector.
    #[test]
    fn github_published_vector() {
        let v = &vectors()["github_x_hub_signature_256"];
        let secret = v["secret"].as_str().unwrap();
        let body = v["payload"].as_str().unwrap().as_bytes();
        let expected = v["expected"].as_str().unwrap();
        assert_eq!(
            format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body)),
            expected
        );
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature-256", expected.parse().unwrap());
        let a = Authenticator::HmacSha256Hex {
            header: "X-Hub-Signature-256".into(),
            prefix: "sha256=".into(),
            secrets: vec![Secret::new("old"), Secret::new(secret)],
        };
        assert!(a.verify(&req(&h, body)).is_ok());
        assert!(a.verify(&req(&h, b"Hello, World?")).is_err());
    }

    /// The Standard Webhooks reference vector: right signature, but its 2021 timestamp
    /// is outside the replay window; with an unlimited window it verifies.
    #[test]
    fn standard_webhooks_published_vector() {
        let v = &vectors()["standard_webhooks_v1"];
        let mut h = HeaderMap::new();
        h.insert(
            "webhook-id",
            v["webhook-id"].as_str().unwrap().parse().unwrap(),
        );
        h.insert(
            "webhook-timestamp",
            v["webhook-timestamp"].as_str().unwrap().parse().unwrap(),
        );
        h.insert(
            "webhook-signature",
            v["expected"].as_str().unwrap().parse().unwrap(),
        );
        let body = v["payload"].as_str().unwrap().as_bytes();
        let key = standard_webhooks_key(v["secret"].as_str().unwrap()).unwrap();
        let stale = Authenticator::StandardWebhooks {
            keys: vec![key.clone()],
            tolerance: DEFAULT_TOLERANCE,
        };
        let e = stale.verify(&req(&h, body)).unwrap_err();
        assert!(e.message.contains("replay window"), "{e}");
        let open = Authenticator::StandardWebhooks {
            keys: vec![key],
            tolerance: Duration::from_secs(u64::MAX / 4),
        };
        assert!(open.verify(&req(&h, body)).is_ok());
        assert!(open.verify(&req(&h, b"{\"test\": 2432232315}")).is_err());
    }

    /// HubSpot's published v3 vector (timestamp 15000000 ms is far in the past: checked
    /// with an unlimited window; the HMAC is what is under test).
    #[test]
    fn hubspot_v3_published_vector() {
        let v = &vectors()["hubspot"];
        let mut h = HeaderMap::new();
        h.insert(
            "x-hubspot-signature-v3",
            v["v3"]["expected"].as_str().unwrap().parse().unwrap(),
        );
        h.insert(
            "x-hubspot-request-timestamp",
            v["v3"]["timestamp"].to_string().parse().unwrap(),
        );
        let a = Authenticator::HubSpotV3 {
            secrets: vec![Secret::new(v["client_secret"].as_str().unwrap())],
            public_url: v["url"].as_str().unwrap().to_string(),
            tolerance: Duration::from_secs(u64::MAX / 4),
        };
        let body = v["request_body"].as_str().unwrap().as_bytes();
        assert!(a.verify(&req(&h, body)).is_ok());
        assert!(a.verify(&req(&h, b"{}")).is_err());
        let strict = Authenticator::HubSpotV3 {
            secrets: vec![Secret::new(v["client_secret"].as_str().unwrap())],
            public_url: v["url"].as_str().unwrap().to_string(),
            tolerance: DEFAULT_TOLERANCE,
        };
        assert!(
            strict
                .verify(&req(&h, body))
                .unwrap_err()
                .message
                .contains("replay window")
        );
    }

    /// The same vector under Svix's header names.
    #[test]
    fn standard_webhooks_under_svix_names() {
        let v = &vectors()["standard_webhooks_v1"];
        let mut h = HeaderMap::new();
        h.insert(
            "svix-id",
            v["webhook-id"].as_str().unwrap().parse().unwrap(),
        );
        h.insert(
            "svix-timestamp",
            v["webhook-timestamp"].as_str().unwrap().parse().unwrap(),
        );
        h.insert(
            "svix-signature",
            format!("v1,bm90IGl0 {}", v["expected"].as_str().unwrap())
                .parse()
                .unwrap(),
        );
        let key = standard_webhooks_key(v["secret"].as_str().unwrap()).unwrap();
        let open = Authenticator::StandardWebhooks {
            keys: vec![key],
            tolerance: Duration::from_secs(u64::MAX / 4),
        };
        assert!(
            open.verify(&req(&h, v["payload"].as_str().unwrap().as_bytes()))
                .is_ok()
        );
    }

    /// HubSpot's published v1 and v2 vectors, including v2 for a GET with an empty body.
    #[test]
    fn hubspot_v1_v2_published_vectors() {
        let v = &vectors()["hubspot"];
        let secrets = vec![Secret::new(v["client_secret"].as_str().unwrap())];
        let url = v["url"].as_str().unwrap();
        let body = v["request_body"].as_str().unwrap().as_bytes();
        let sig = |k: &str| v[k]["expected"].as_str().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert("x-hubspot-signature", sig("v1").parse().unwrap());
        h.insert("x-hubspot-signature-version", "v1".parse().unwrap());
        assert!(hubspot_v1_v2(&h, &secrets, "POST", url, body).is_ok());
        assert!(hubspot_v1_v2(&h, &secrets, "POST", url, b"{}").is_err());
        h.insert("x-hubspot-signature", sig("v2").parse().unwrap());
        h.insert("x-hubspot-signature-version", "v2".parse().unwrap());
        assert!(hubspot_v1_v2(&h, &secrets, "POST", url, body).is_ok());
        assert!(
            hubspot_v1_v2(&h, &secrets, "POST", "https://www.example.com/other", body).is_err()
        );
        h.insert(
            "x-hubspot-signature",
            v["v2"]["expected_GET_empty_body"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        );
        assert!(hubspot_v1_v2(&h, &secrets, "GET", url, b"").is_ok());
    }

    #[test]
    fn bearer_any_of_secrets() {
        let a = Authenticator::Bearer {
            secrets: vec![Secret::new("one"), Secret::new("two")],
        };
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer two".parse().unwrap());
        assert!(a.verify(&req(&h, b"")).is_ok());
        h.insert("authorization", "Bearer three".parse().unwrap());
        assert!(a.verify(&req(&h, b"")).is_err());
    }

    #[test]
    fn basic_or_bearer() {
        let a = Authenticator::BasicOrBearer {
            secrets: vec![Secret::new("am:pw")],
        };
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            format!("Basic {}", B64.encode("am:pw")).parse().unwrap(),
        );
        assert!(a.verify(&req(&h, b"")).is_ok());
        h.insert(
            "authorization",
            format!("Basic {}", B64.encode("am:nope")).parse().unwrap(),
        );
        assert!(a.verify(&req(&h, b"")).is_err());
        h.insert("authorization", "Bearer am:pw".parse().unwrap());
        assert!(a.verify(&req(&h, b"")).is_ok());
    }
}
