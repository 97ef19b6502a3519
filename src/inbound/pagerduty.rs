//! PagerDuty V3 webhooks: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>]` (several during a
//! secret rotation). Event: `pagerduty.<event_type>` (`pagerduty.incident.triggered`);
//! delivery id: `X-Webhook-Id` (same on retries), else `event.id`.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, delivery_from_headers, name_part,
    parse_json_kept,
};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("hmac-sha256"),
    allowed: &["hmac-sha256", "bearer"],
    hmac: HmacStyle::HexList {
        header: "X-PagerDuty-Signature",
        version: "v1",
    },
    token_header: "",
};

/// The fields `parse` reads: the event's type and id, and its object's type and id.
const READS: &[&str] = &[
    "event.event_type",
    "event.id",
    "event.data.type",
    "event.data.id",
];

pub const KIND: Kind = Kind::simple("pagerduty", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let (p, whole) = parse_json_kept(req)?;
    let event_type = p
        .pointer("/event/event_type")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Rejection::bad_request("body has no `event.event_type`: not a PagerDuty V3 webhook")
        })?;
    let name = format!("pagerduty.{}", name_part(event_type));
    let delivery_id = match req
        .headers
        .get("x-webhook-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => match p.pointer("/event/id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => delivery_from_headers(req, &[]),
        },
    };
    let entity = match (
        p.pointer("/event/data/type").and_then(Value::as_str),
        p.pointer("/event/data/id").and_then(Value::as_str),
    ) {
        (Some(t), Some(id)) => Some(format!("pagerduty:{t}/{id}")),
        _ => None,
    };
    Ok(one(Event {
        name,
        delivery_id,
        entity,
        payload: p,
        whole,
    }))
}
