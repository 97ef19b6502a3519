//! How a kind signs ([`AuthSpec`]), and a source's authenticator built from its
//! `auth`, `secret`/`secrets` and signature keys, each problem naming its key.

use super::{Authenticator, DEFAULT_TOLERANCE, standard_webhooks_key};
use crate::config::{Config, ConfigError};

/// How a kind signs, for [`Authenticator::from_config`].
pub struct AuthSpec {
    /// The scheme used when `auth` is not set (`None`: `auth` must be written).
    pub default: Option<&'static str>,
    /// The schemes the kind accepts, besides `none`.
    pub allowed: &'static [&'static str],
    /// What `hmac-sha256` means for this kind.
    pub hmac: HmacStyle,
    /// The header `token` reads.
    pub token_header: &'static str,
}

pub enum HmacStyle {
    /// The kind has no HMAC scheme.
    None,
    /// `<header>: <prefix><hex>` over the body.
    Hex {
        header: &'static str,
        prefix: &'static str,
    },
    /// `<header>: v1=<hex>,v1=<hex>` over the body.
    HexList {
        header: &'static str,
        version: &'static str,
    },
    /// Grafana's, with an optional signed timestamp header.
    Grafana { header: &'static str },
    /// Buildkite's `timestamp=…,signature=…`.
    Buildkite,
    /// HubSpot's v3 (needs `public_url`).
    HubSpot,
}

/// Senders configured with HTTP Basic or a Bearer token (Alertmanager's `http_config`,
/// Jenkins, Datadog): either form is accepted.
pub const BASIC_OR_BEARER: AuthSpec = AuthSpec {
    default: Some("basic-or-bearer"),
    allowed: &["basic-or-bearer", "basic", "bearer"],
    hmac: HmacStyle::None,
    token_header: "",
};

impl Authenticator {
    /// Builds the authenticator from `auth`, `secret`/`secrets` and the signature keys.
    pub fn from_config(
        cfg: &Config,
        i: usize,
        kind: &str,
        spec: &AuthSpec,
    ) -> Result<Authenticator, ConfigError> {
        let sc = &cfg.sources[i];
        let key = |k: &str| format!("sources[{i}].{k}");
        let secrets = sc.all_secrets();
        let tolerance = sc.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        let scheme = match (sc.auth.as_deref(), spec.default) {
            (Some(s), _) => s,
            (None, Some(d)) => d,
            (None, None) => {
                return Err(cfg.error(
                    &key("auth"),
                    format!(
                        "missing: set auth = {} or (explicitly) \"none\"",
                        spec.allowed
                            .iter()
                            .map(|a| format!("{a:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        if scheme == "none" {
            if !secrets.is_empty() {
                return Err(cfg.error(
                    &key("auth"),
                    "auth = \"none\" but a secret is set; remove one of them",
                ));
            }
            return Ok(Authenticator::None);
        }
        if !spec.allowed.contains(&scheme) {
            return Err(cfg.error(
                &key("auth"),
                format!(
                    "kind {kind:?} does not support auth {scheme:?} (use {} or \"none\")",
                    spec.allowed
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if secrets.is_empty() {
            return Err(cfg.error(
            &key("secret"),
            format!("auth = {scheme:?} needs `secret` (or `secrets = [..]`); write ${{env:NAME}} to keep it out of the file"),
        ));
        }
        let uses_signature_keys = matches!(scheme, "hmac-sha256");
        if !uses_signature_keys && (sc.signature_header.is_some() || sc.signature_prefix.is_some())
        {
            return Err(cfg.error(
                &key("signature_header"),
                "only used with auth = \"hmac-sha256\"",
            ));
        }
        if sc.timestamp_header.is_some() && !matches!(spec.hmac, HmacStyle::Grafana { .. }) {
            return Err(cfg.error(
                &key("timestamp_header"),
                format!("not used by kind {kind:?}"),
            ));
        }
        let header = |default: &str| -> Result<String, ConfigError> {
            let h = sc
                .signature_header
                .clone()
                .unwrap_or_else(|| default.to_string());
            if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(cfg.error(
                    &key("signature_header"),
                    format!("{h:?} is not a valid header name"),
                ));
            }
            Ok(h)
        };
        Ok(match scheme {
            "basic-or-bearer" => Authenticator::BasicOrBearer { secrets },
            "bearer" => Authenticator::Bearer { secrets },
            "basic" => Authenticator::Basic { secrets },
            "token" => Authenticator::Token {
                header: spec.token_header.to_string(),
                secrets,
            },
            "url-token" => Authenticator::UrlToken { secrets },
            "stripe" => Authenticator::Stripe { secrets, tolerance },
            "standard-webhooks" => {
                let mut keys = Vec::new();
                for s in &secrets {
                    keys.push(
                        standard_webhooks_key(s.expose())
                            .map_err(|e| cfg.error(&key("secret"), e))?,
                    );
                }
                Authenticator::StandardWebhooks { keys, tolerance }
            }
            "hmac-sha256" => match spec.hmac {
                HmacStyle::None => {
                    return Err(
                        cfg.error(&key("auth"), format!("kind {kind:?} has no HMAC scheme"))
                    );
                }
                HmacStyle::Hex { header: h, prefix } => Authenticator::HmacSha256Hex {
                    header: header(h)?,
                    prefix: sc
                        .signature_prefix
                        .clone()
                        .unwrap_or_else(|| prefix.to_string()),
                    secrets,
                },
                HmacStyle::HexList { header: h, version } => Authenticator::HmacSha256HexList {
                    header: header(h)?,
                    version: version.to_string(),
                    secrets,
                },
                HmacStyle::Grafana { header: h } => Authenticator::Grafana {
                    header: header(h)?,
                    timestamp_header: sc.timestamp_header.clone(),
                    secrets,
                    tolerance,
                },
                HmacStyle::Buildkite => Authenticator::Buildkite { secrets, tolerance },
                HmacStyle::HubSpot => {
                    let public_url = sc.public_url.clone().ok_or_else(|| {
                    cfg.error(
                        &key("public_url"),
                        "missing: HubSpot signs the URL it calls; set public_url = \"https://<your host>/hooks/<name>\"",
                    )
                })?;
                    Authenticator::HubSpotV3 {
                        secrets,
                        public_url,
                        tolerance,
                    }
                }
            },
            other => {
                return Err(cfg.error(&key("auth"), format!("unknown auth {other:?}")));
            }
        })
    }
}
