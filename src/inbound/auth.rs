//! Authentication schemes shared by source kinds.
//!
//! Every comparison of a secret or a signature is constant-time: HMAC tags through
//! `Mac::verify_slice`, shared tokens through `subtle`. Each scheme accepts any of the
//! configured secrets, so a secret can be rotated without rejecting deliveries.

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Rejection;
use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Declared with `auth = "none"`; the daemon warns about it at start-up.
    None,
    /// `Authorization: Bearer <secret>`.
    Bearer { secrets: Vec<Secret> },
    /// `<header>: <prefix><hex(HMAC-SHA256(secret, raw body))>` (GitHub's scheme).
    HmacSha256Hex {
        header: String,
        prefix: String,
        secrets: Vec<Secret>,
    },
}

impl Authenticator {
    pub fn is_none(&self) -> bool {
        matches!(self, Authenticator::None)
    }

    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Rejection> {
        match self {
            Authenticator::None => Ok(()),
            Authenticator::Bearer { secrets } => {
                let value = header_str(headers, "authorization")?
                    .ok_or_else(|| Rejection::unauthorized("missing Authorization header"))?;
                let token = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .ok_or_else(|| {
                        Rejection::unauthorized("Authorization header is not a Bearer token")
                    })?;
                if secrets
                    .iter()
                    .any(|s| ct_eq(token.trim().as_bytes(), s.expose().as_bytes()))
                {
                    Ok(())
                } else {
                    Err(Rejection::unauthorized("bearer token does not match"))
                }
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
                if secrets
                    .iter()
                    .any(|s| hmac_sha256_matches(s.expose().as_bytes(), body, &sig))
                {
                    Ok(())
                } else {
                    Err(Rejection::unauthorized(format!(
                        "{header} does not match the body for any configured secret"
                    )))
                }
            }
        }
    }
}

/// Constant-time HMAC-SHA256 check of `tag` over `msg`.
pub fn hmac_sha256_matches(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    mac.update(msg);
    mac.verify_slice(tag).is_ok()
}

/// HMAC-SHA256 as lowercase hex; used by tests and `check` to sign sample bodies.
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

    /// GitHub's published vector (shared/fixtures/_vectors/signature-vectors.json).
    #[test]
    fn github_published_vector() {
        let sig = hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            format!("sha256={sig}").parse().unwrap(),
        );
        let a = Authenticator::HmacSha256Hex {
            header: "x-hub-signature-256".into(),
            prefix: "sha256=".into(),
            secrets: vec![
                Secret::new("old"),
                Secret::new("It's a Secret to Everybody"),
            ],
        };
        assert!(a.verify(&h, b"Hello, World!").is_ok());
        assert!(a.verify(&h, b"Hello, World?").is_err());
    }

    #[test]
    fn bearer_any_of_secrets() {
        let a = Authenticator::Bearer {
            secrets: vec![Secret::new("one"), Secret::new("two")],
        };
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer two".parse().unwrap());
        assert!(a.verify(&h, b"").is_ok());
        h.insert("authorization", "Bearer three".parse().unwrap());
        assert!(a.verify(&h, b"").is_err());
    }
}
