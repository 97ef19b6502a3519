//! Helpers the sender kinds share to read a request.

use axum::body::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Inbound, Rejection};
use crate::reads::Reads;

/// The first of `headers` that is present and non-empty, else the body's SHA-256.
pub fn delivery_from_headers(req: &Inbound<'_>, headers: &[&str]) -> String {
    headers
        .iter()
        .find_map(|h| {
            req.headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        })
        .map(str::to_string)
        .unwrap_or_else(|| body_digest(req.body))
}

/// A stable delivery id for senders that do not send one: the body's SHA-256.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

pub fn parse_json(body: &[u8]) -> Result<Value, Rejection> {
    parse_json_reading(body, None)
}

/// Like [`parse_json`], building only what `reads` reads (`json::from_str_reading`): the
/// same bodies are refused, with the same message.
pub fn parse_json_reading(body: &[u8], reads: Option<&Reads>) -> Result<Value, Rejection> {
    // A UTF-8 byte-order mark is not JSON but some senders' test tools add one; the
    // signature was checked over the bytes as received.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // One UTF-8 check over the whole body, then a parse that trusts it: serde_json's
    // byte-slice reader checks each string on its own, ~12 % of the parse (README,
    // Performance). Invalid UTF-8 is invalid JSON either way.
    let text = std::str::from_utf8(body).map_err(|e| {
        Rejection::bad_request(format!("body is not valid JSON: it is not UTF-8 ({e})"))
    })?;
    match reads {
        Some(r) => super::json::from_str_reading(text, r),
        None => super::json::from_str(text),
    }
    .map_err(|e| Rejection::bad_request(format!("body is not valid JSON: {e}")))
}

/// The body as JSON for a kind that lists the fields it reads ([`super::Kind::reading`]):
/// built whole, or only what the request's `reads` reads, and then with the body kept
/// as [`super::Event::whole`] for the one place that shows the rest (a failing
/// template's fallback).
pub fn parse_json_kept(req: &Inbound<'_>) -> Result<(Value, Option<Bytes>), Rejection> {
    let payload = parse_json_reading(req.body, req.reads)?;
    Ok((payload, req.reads.map(|_| req.body.clone())))
}

/// Keeps event-name parts to `[a-z0-9_.-]` so names are predictable in routes.
pub fn name_part(s: &str) -> String {
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
