//! One function per signature scheme; `Authenticator::verify` picks the configured one.
//! Each takes the request and the scheme's settings and accepts any of the secrets.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::Sha256;

use super::{
    any_equal, any_hmac, basic, bearer, check_timestamp, ct_eq, header_str, hmac_parts_match,
    tagged_hex,
};
use crate::config::Secret;
use crate::inbound::{Inbound, Rejection};

/// `Authorization: Bearer <secret>`.
pub fn bearer_token(req: &Inbound<'_>, secrets: &[Secret]) -> Result<(), Rejection> {
    let headers = req.headers;
    let token = bearer(headers)?
        .ok_or_else(|| Rejection::unauthorized("missing Authorization: Bearer header"))?;
    any_equal(secrets, token.as_bytes(), "bearer token does not match")
}

/// `Authorization: Basic base64(user:password)`.
pub fn basic_pair(req: &Inbound<'_>, secrets: &[Secret]) -> Result<(), Rejection> {
    let headers = req.headers;
    let pair = basic(headers)?
        .ok_or_else(|| Rejection::unauthorized("missing Authorization: Basic header"))?;
    any_equal(secrets, &pair, "basic auth user or password does not match")
}

/// Basic or Bearer, whichever the sender was configured with.
pub fn basic_or_bearer(req: &Inbound<'_>, secrets: &[Secret]) -> Result<(), Rejection> {
    let headers = req.headers;
    if let Some(pair) = basic(headers)? {
        return any_equal(secrets, &pair, "basic auth user or password does not match");
    }
    let token = bearer(headers)?
        .ok_or_else(|| Rejection::unauthorized("missing Authorization header (Basic or Bearer)"))?;
    any_equal(secrets, token.as_bytes(), "bearer token does not match")
}

/// A shared token sent as-is in a header.
pub fn token_header(req: &Inbound<'_>, header: &str, secrets: &[Secret]) -> Result<(), Rejection> {
    let headers = req.headers;
    let value = header_str(headers, header)?
        .ok_or_else(|| Rejection::unauthorized(format!("missing {header} header")))?;
    any_equal(
        secrets,
        value.trim().as_bytes(),
        &format!("{header} does not match"),
    )
}

/// The secret as the last URL segment.
pub fn url_token(req: &Inbound<'_>, secrets: &[Secret]) -> Result<(), Rejection> {
    let token = req
        .url_token
        .ok_or_else(|| Rejection::unauthorized("missing token: post to /hooks/<source>/<token>"))?;
    any_equal(secrets, token.as_bytes(), "URL token does not match")
}

/// `<header>: <prefix><hex HMAC of the body>`.
pub fn hmac_hex(
    req: &Inbound<'_>,
    header: &str,
    prefix: &str,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let (headers, body) = (req.headers, req.body);
    let value = header_str(headers, header)?
        .ok_or_else(|| Rejection::unauthorized(format!("missing {header} header")))?;
    let hex_sig = value.trim().strip_prefix(prefix).ok_or_else(|| {
        Rejection::unauthorized(format!("{header} header does not start with {prefix:?}"))
    })?;
    let sig = hex::decode(hex_sig)
        .map_err(|_| Rejection::unauthorized(format!("{header} header is not hex")))?;
    any_hmac(secrets, &[body], &[sig], header)
}

/// `<header>: v1=<hex>[,v1=<hex>…]` over the body.
pub fn hmac_hex_list(
    req: &Inbound<'_>,
    header: &str,
    version: &str,
    secrets: &[Secret],
) -> Result<(), Rejection> {
    let (headers, body) = (req.headers, req.body);
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

/// Grafana: hex HMAC of the body, or of `<timestamp>:<body>`.
pub fn grafana(
    req: &Inbound<'_>,
    header: &str,
    timestamp_header: Option<&str>,
    secrets: &[Secret],
    tolerance: Duration,
) -> Result<(), Rejection> {
    let (headers, body) = (req.headers, req.body);
    let value = header_str(headers, header)?
        .ok_or_else(|| Rejection::unauthorized(format!("missing {header} header")))?;
    let sig = hex::decode(value.trim())
        .map_err(|_| Rejection::unauthorized(format!("{header} header is not hex")))?;
    match timestamp_header {
        None => any_hmac(secrets, &[body], &[sig], header),
        Some(th) => {
            let ts = header_str(headers, th)?
                .ok_or_else(|| Rejection::unauthorized(format!("missing {th} header")))?;
            check_timestamp(ts, tolerance, th)?;
            any_hmac(secrets, &[ts.trim().as_bytes(), b":", body], &[sig], header)
        }
    }
}

/// Stripe: `t=<unix>,v1=<hex>…` over `<t>.<body>`.
pub fn stripe(req: &Inbound<'_>, secrets: &[Secret], tolerance: Duration) -> Result<(), Rejection> {
    let (headers, body) = (req.headers, req.body);
    let value = header_str(headers, "stripe-signature")?
        .ok_or_else(|| Rejection::unauthorized("missing Stripe-Signature header"))?;
    let t = value
        .split(',')
        .find_map(|p| p.trim().strip_prefix("t="))
        .ok_or_else(|| Rejection::unauthorized("Stripe-Signature has no t= timestamp"))?;
    check_timestamp(t, tolerance, "Stripe-Signature t")?;
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

/// Buildkite: `timestamp=…,signature=…` over `<timestamp>.<body>`.
pub fn buildkite(
    req: &Inbound<'_>,
    secrets: &[Secret],
    tolerance: Duration,
) -> Result<(), Rejection> {
    let (headers, body) = (req.headers, req.body);
    let value = header_str(headers, "x-buildkite-signature")?
        .ok_or_else(|| Rejection::unauthorized("missing X-Buildkite-Signature header"))?;
    let field = |k: &str| {
        value
            .split(',')
            .find_map(|p| p.trim().strip_prefix(k))
            .map(str::trim)
    };
    let ts = field("timestamp=")
        .ok_or_else(|| Rejection::unauthorized("X-Buildkite-Signature has no timestamp="))?;
    check_timestamp(ts, tolerance, "X-Buildkite-Signature timestamp")?;
    let sig = field("signature=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| Rejection::unauthorized("X-Buildkite-Signature has no hex signature="))?;
    any_hmac(
        secrets,
        &[ts.as_bytes(), b".", body],
        &[sig],
        "X-Buildkite-Signature",
    )
}

/// HubSpot v3 (or v1/v2 from older apps).
pub fn hubspot(
    req: &Inbound<'_>,
    secrets: &[Secret],
    public_url: &str,
    tolerance: Duration,
) -> Result<(), Rejection> {
    let (headers, body) = (req.headers, req.body);
    let uri = match req.uri.query() {
        Some(q) => format!("{public_url}?{q}"),
        None => public_url.to_string(),
    };
    let Some(sig) = header_str(headers, "x-hubspot-signature-v3")? else {
        // Older apps and workflow webhooks sign with v1/v2 (no timestamp).
        return hubspot_v1_v2(headers, secrets, req.method.as_str(), &uri, body);
    };
    let ts = header_str(headers, "x-hubspot-request-timestamp")?
        .ok_or_else(|| Rejection::unauthorized("missing X-HubSpot-Request-Timestamp header"))?;
    let ms: i64 = ts
        .trim()
        .parse()
        .map_err(|_| Rejection::unauthorized("X-HubSpot-Request-Timestamp is not a number"))?;
    check_timestamp(
        &(ms / 1000).to_string(),
        tolerance,
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

/// Standard Webhooks (`webhook-*` or `svix-*` headers).
pub fn standard_webhooks(
    req: &Inbound<'_>,
    keys: &[Vec<u8>],
    tolerance: Duration,
) -> Result<(), Rejection> {
    let (headers, body) = (req.headers, req.body);
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
    check_timestamp(ts, tolerance, ts_h)?;
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

/// HubSpot's v1 (`sha256(secret + body)`) and v2 (`sha256(secret + method + uri + body)`)
/// signatures, hex, in `X-HubSpot-Signature` with `X-HubSpot-Signature-Version`.
pub(super) fn hubspot_v1_v2(
    headers: &axum::http::HeaderMap,
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
