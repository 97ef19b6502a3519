//! How each sender signs a body, as its documentation says (every kind's signature is
//! checked against real fixture bytes in the tests that use these).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::helpers::*;

pub(crate) const HUBSPOT_URL: &str = "https://hooks.example.com/hooks/hubspot";

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How a sender authenticates a body; `ts` lets tests send a stale timestamp.
#[derive(Clone, Copy)]
pub(crate) enum Signer {
    GitHub,
    GitLabToken,
    GitLabSigned,
    Basic,
    GrafanaHmac,
    GrafanaHmacTs,
    PagerDuty,
    Sentry,
    CircleCi,
    Stripe,
    StandardWebhooks,
    BuildkiteToken,
    BuildkiteSigned,
    HubSpot,
    Nothing,
}

pub(crate) fn headers(signer: Signer, secret: &str, body: &[u8], ts: u64) -> Vec<(String, String)> {
    let h = |k: &str, v: String| (k.to_string(), v);
    match signer {
        Signer::GitHub => vec![h(
            "X-Hub-Signature-256",
            format!("sha256={}", hmac_hex(secret.as_bytes(), &[body])),
        )],
        Signer::GitLabToken => vec![h("X-Gitlab-Token", secret.to_string())],
        Signer::GitLabSigned | Signer::StandardWebhooks => {
            let id = format!("msg_{}", hmac_hex(b"id", &[body]).get(..12).unwrap());
            let t = ts.to_string();
            let sig = sign_standard_webhooks(secret, &id, &t, body);
            vec![
                h("webhook-id", id),
                h("webhook-timestamp", t),
                h("webhook-signature", sig),
            ]
        }
        Signer::Basic => vec![h("Authorization", format!("Basic {}", B64.encode(secret)))],
        Signer::GrafanaHmac => vec![h(
            "X-Grafana-Alerting-Signature",
            hmac_hex(secret.as_bytes(), &[body]),
        )],
        Signer::GrafanaHmacTs => {
            let t = ts.to_string();
            vec![
                h(
                    "X-Grafana-Alerting-Signature",
                    hmac_hex(secret.as_bytes(), &[t.as_bytes(), b":", body]),
                ),
                h("X-Grafana-Alerting-Timestamp", t),
            ]
        }
        Signer::PagerDuty => vec![
            // Two signatures, as during a secret rotation: one with an old secret.
            h(
                "X-PagerDuty-Signature",
                format!(
                    "v1={},v1={}",
                    hmac_hex(b"old-secret", &[body]),
                    hmac_hex(secret.as_bytes(), &[body])
                ),
            ),
            h(
                "X-Webhook-Id",
                format!("wh-{}", &hmac_hex(b"id", &[body])[..10]),
            ),
        ],
        Signer::Sentry => vec![
            h(
                "Sentry-Hook-Signature",
                hmac_hex(secret.as_bytes(), &[body]),
            ),
            h("Sentry-Hook-Resource", "issue".into()),
            h("Sentry-Hook-Timestamp", ts.to_string()),
        ],
        Signer::CircleCi => vec![
            h(
                "circleci-signature",
                format!("v1={}", hmac_hex(secret.as_bytes(), &[body])),
            ),
            h("Circleci-Event-Type", "workflow-completed".into()),
        ],
        Signer::BuildkiteToken => vec![
            h("X-Buildkite-Token", secret.to_string()),
            h("X-Buildkite-Event", "build.finished".into()),
        ],
        Signer::BuildkiteSigned => {
            let t = ts.to_string();
            vec![
                h(
                    "X-Buildkite-Signature",
                    format!(
                        "timestamp={t},signature={}",
                        hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", body])
                    ),
                ),
                h("X-Buildkite-Event", "build.finished".into()),
            ]
        }
        Signer::HubSpot => {
            let t = (ts * 1000).to_string();
            let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            for p in [
                b"POST".as_slice(),
                HUBSPOT_URL.as_bytes(),
                body,
                t.as_bytes(),
            ] {
                m.update(p);
            }
            vec![
                h(
                    "X-HubSpot-Signature-v3",
                    B64.encode(m.finalize().into_bytes()),
                ),
                h("X-HubSpot-Request-Timestamp", t),
            ]
        }
        Signer::Nothing => vec![],
        Signer::Stripe => {
            let t = ts.to_string();
            vec![h(
                "Stripe-Signature",
                format!(
                    "t={t},v1={}",
                    hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", body])
                ),
            )]
        }
    }
}
