//! Prometheus Alertmanager (webhook version 4) and Grafana unified alerting: one shape.
//!
//! Auth: Basic or Bearer from the sender's `http_config` (`secret = "user:password"` for
//! Basic); Grafana may instead sign (`auth = "hmac-sha256"`, `X-Grafana-Alerting-Signature`,
//! with `timestamp_header` when its timestamp header is on).
//! One event per alert, as Alertmanager users expect: `alertmanager.firing` /
//! `alertmanager.resolved` by the alert's own status (`grafana.…` likewise), its
//! `fingerprint` in the entity (`alertmanager:<receiver>:<fingerprint>`), so repeat
//! suppression, grouping, silences, threads and updates work per alert; the alert's
//! labels are also at the top level (`alertname`), next to the notification's common
//! fields (see `alert_payload`).
//! Neither sender has a delivery id. Alertmanager retries a failed notification with the
//! same body but also *repeats* a still-firing group every `repeat_interval` with the same
//! body, which must not be swallowed: the delivery id is the body's SHA-256 within a
//! 10-minute window and the alert's fingerprint, so retries collapse and repeats (hours
//! apart) come through.
//! Templates get `_counts` (firing, resolved, total), `_shown` (the first 10 alerts) and
//! `_more` (how many were not shown): for an alert's event, of that one alert.

use serde_json::{Value, json};

use super::kind::Kind;
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
    Kind::simple("alertmanager", &super::BASIC_OR_BEARER, parse_alertmanager).enriched(prepare);

pub const GRAFANA: Kind = Kind::simple("grafana", &GRAFANA_AUTH, parse_grafana).enriched(prepare);

pub fn parse_alertmanager(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    parse_group(req, "alertmanager")
}

pub fn parse_grafana(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    parse_group(req, "grafana")
}

fn parse_group(req: &Inbound<'_>, kind: &str) -> Result<Parsed, Rejection> {
    let mut p = parse_json(req.body)?;
    if p.get("status").and_then(Value::as_str).is_none() {
        return Err(Rejection::bad_request(format!(
            "body has no `status`: not a {kind} webhook"
        )));
    }
    let Some(Value::Array(alerts)) = p.as_object_mut().and_then(|o| o.remove("alerts")) else {
        return Err(Rejection::bad_request(format!(
            "body has no `alerts` list: not a {kind} webhook"
        )));
    };
    let group = p
        .get("groupKey")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| fingerprints(&alerts));
    let receiver = p
        .get("receiver")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let delivery = format!("{}:{}", body_digest(req.body), now_ms() / RETRY_WINDOW_MS);
    let truncated = p.as_object_mut().and_then(|o| o.remove("truncatedAlerts"));
    let total = alerts.len();
    let mut events = Vec::with_capacity(total);
    for (n, alert) in alerts.into_iter().enumerate() {
        let fingerprint = alert
            .get("fingerprint")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{group}#{n}"));
        let status = alert
            .get("status")
            .and_then(Value::as_str)
            .or_else(|| p.get("status").and_then(Value::as_str))
            .unwrap_or("unknown")
            .to_string();
        let mut payload = alert_payload(&p, alert, total);
        if n == 0
            && let (Some(t), Some(o)) = (&truncated, payload.as_object_mut())
        {
            // Said once, on the notification's first alert.
            o.insert("truncatedAlerts".into(), t.clone());
        }
        events.push(Event {
            name: format!("{kind}.{}", super::name_part(&status)),
            delivery_id: format!("{delivery}:{fingerprint}"),
            entity: Some(format!("{kind}:{receiver}:{fingerprint}")),
            payload,
            whole: None,
        });
    }
    Ok(Parsed {
        events,
        ack: super::Ack::Default,
    })
}

/// One alert's event: the notification's common fields (`receiver`, `externalURL`,
/// `groupLabels`, `commonLabels`, `commonAnnotations`, `groupKey`, ...), the alert's own
/// fields over them (`status`, `labels`, `annotations`, `fingerprint`, `startsAt`,
/// `generatorURL`, Grafana's `silenceURL`, ...), its labels at the top level where no
/// field of that name is (so `alertname` means `labels.alertname` in `group_by`,
/// `match`, `when`, silences and `fingerprint`), `alerts` holding just this alert, and
/// `notification` saying how many alerts came together.
fn alert_payload(common: &Value, alert: Value, total: usize) -> Value {
    let mut payload = common.clone();
    let Some(o) = payload.as_object_mut() else {
        return payload;
    };
    o.insert(
        "notification".into(),
        json!({"status": common.get("status"), "alerts": total}),
    );
    if let Value::Object(a) = &alert {
        for (k, v) in a {
            o.insert(k.clone(), v.clone());
        }
        if let Some(Value::Object(labels)) = a.get("labels") {
            for (k, v) in labels {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    o.insert("alerts".into(), Value::Array(vec![alert]));
    enrich(&mut payload);
    payload
}

/// A sample of a whole notification (`check`, `render`) becomes what its first alert's
/// event is at run time; then `_counts`, `_shown` and `_more` are added.
pub fn prepare(p: &mut Value) {
    if p.get("notification").is_none()
        && let Some(o) = p.as_object_mut()
        && let Some(Value::Array(alerts)) = o.remove("alerts")
    {
        let total = alerts.len();
        match alerts.into_iter().next() {
            Some(first) => *p = alert_payload(p, first, total),
            None => {
                o.insert("alerts".into(), Value::Array(Vec::new()));
                enrich(p);
            }
        }
        return;
    }
    enrich(p);
}

/// Adds `_counts`, `_shown` and `_more` for templates.
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
