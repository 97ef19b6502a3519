//! Prometheus Alertmanager (webhook version 4) and Grafana unified alerting: one shape.
//!
//! Auth: Basic or Bearer from the sender's `http_config` (`secret = "user:password"` for
//! Basic); Grafana may instead sign (`auth = "hmac-sha256"`, `X-Grafana-Alerting-Signature`,
//! with `timestamp_header` when its timestamp header is on).
//! Event: `alertmanager.firing` / `alertmanager.resolved` (`grafana.…` likewise).
//! Neither sender has a delivery id. Alertmanager retries a failed notification with the
//! same body but also *repeats* a still-firing group every `repeat_interval` with the same
//! body, which must not be swallowed: the delivery id is the body's SHA-256 within a
//! 10-minute window, so retries collapse and repeats (hours apart) come through.
//! Templates get `_counts` (firing, resolved, total), `_shown` (the first 10 alerts) and
//! `_more` (how many were not shown).

use serde_json::{Value, json};

use super::kind::Kind;
use super::simple::one;
use super::{AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, body_digest, parse_json};
use crate::storage::now_ms;

/// Alerts listed in a message; the rest are counted.
const SHOWN: usize = 10;
/// Deliveries of the same body within this window are one delivery.
const RETRY_WINDOW_MS: i64 = 10 * 60 * 1000;

pub const GRAFANA_AUTH: AuthSpec = AuthSpec {
    default: Some("basic-or-bearer"),
    allowed: &["basic-or-bearer", "basic", "bearer", "hmac-sha256"],
    hmac: HmacStyle::Grafana {
        header: "X-Grafana-Alerting-Signature",
    },
    token_header: "",
};

pub const ALERTMANAGER: Kind =
    Kind::simple("alertmanager", &super::BASIC_OR_BEARER, parse_alertmanager).enriched(enrich);

pub const GRAFANA: Kind = Kind::simple("grafana", &GRAFANA_AUTH, parse_grafana).enriched(enrich);

pub fn parse_alertmanager(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    parse_group(req, "alertmanager")
}

pub fn parse_grafana(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    parse_group(req, "grafana")
}

fn parse_group(req: &Inbound<'_>, kind: &str) -> Result<Parsed, Rejection> {
    let mut p = parse_json(req.body)?;
    let status = p
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            Rejection::bad_request(format!("body has no `status`: not a {kind} webhook"))
        })?;
    let alerts = p.get("alerts").and_then(Value::as_array).ok_or_else(|| {
        Rejection::bad_request(format!("body has no `alerts` list: not a {kind} webhook"))
    })?;
    let group = p
        .get("groupKey")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| fingerprints(alerts));
    let receiver = p
        .get("receiver")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    enrich(&mut p);
    let window = now_ms() / RETRY_WINDOW_MS;
    Ok(one(Event {
        name: format!("{kind}.{}", super::name_part(&status)),
        delivery_id: format!("{}:{window}", body_digest(req.body)),
        entity: Some(format!("{kind}:{receiver}:{group}")),
        payload: p,
    }))
}

/// Adds `_counts`, `_shown` and `_more` for templates (also used by `check` on samples).
pub fn enrich(p: &mut Value) {
    let Some(alerts) = p.get("alerts").and_then(Value::as_array).cloned() else {
        return;
    };
    let count = |s: &str| {
        alerts
            .iter()
            .filter(|a| a.get("status").and_then(Value::as_str) == Some(s))
            .count()
    };
    let (firing, resolved) = (count("firing"), count("resolved"));
    if let Value::Object(m) = p {
        m.insert(
            "_counts".into(),
            json!({"firing": firing, "resolved": resolved, "total": alerts.len()}),
        );
        m.insert("_more".into(), json!(alerts.len().saturating_sub(SHOWN)));
        m.insert(
            "_shown".into(),
            Value::Array(alerts.into_iter().take(SHOWN).collect()),
        );
    }
}

/// A group key for senders without `groupKey`: the sorted alert fingerprints.
fn fingerprints(alerts: &[Value]) -> String {
    let mut f: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a.get("fingerprint").and_then(Value::as_str))
        .collect();
    f.sort_unstable();
    f.join(",")
}
