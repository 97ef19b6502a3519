//! HubSpot Webhooks API. Auth: `X-HubSpot-Signature-v3` (HMAC of method, the public URL,
//! body and timestamp, 5-minute window; `public_url` must be the URL HubSpot calls). The
//! body is an array of events; each becomes its own event:
//! `hubspot.<subscriptionType>` (`hubspot.deal.creation`, `hubspot.deal.propertychange`),
//! delivery id `<subscriptionId>:<eventId>:<occurredAt>` (HubSpot's `eventId` alone is
//! not unique). Events name objects by id only; a source with an `api_token` adds the
//! record, its labels and its owner from HubSpot's CRM API (`enrich::hubspot`).

use serde_json::Value;

use super::kind::Kind;
use super::{Ack, AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, name_part, parse_json};
use crate::fieldpath::scalar_text;

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("hmac-sha256"),
    allowed: &["hmac-sha256"],
    hmac: HmacStyle::HubSpot,
    token_header: "",
};

pub const KIND: Kind = Kind::simple("hubspot", &AUTH, parse);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let body = parse_json(req.body)?;
    let list = match body {
        Value::Array(list) => list,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(Rejection::bad_request("body is not a HubSpot event array")),
    };
    let mut events = Vec::with_capacity(list.len());
    for (n, e) in list.into_iter().enumerate() {
        let s = |k: &str| e.get(k).and_then(scalar_text).filter(|v| v != "null");
        let kind = s("subscriptionType")
            .ok_or_else(|| Rejection::bad_request(format!("event {n} has no subscriptionType")))?;
        let delivery_id = format!(
            "{}:{}:{}",
            s("subscriptionId").unwrap_or_default(),
            s("eventId")
                .ok_or_else(|| Rejection::bad_request(format!("event {n} has no eventId")))?,
            s("occurredAt").unwrap_or_default()
        );
        let object = kind.split('.').next().unwrap_or("object").to_string();
        let entity = s("objectId").map(|id| format!("hubspot:{object}/{id}"));
        events.push(Event {
            name: format!("hubspot.{}", name_part(&kind)),
            delivery_id,
            entity,
            payload: e,
            whole: None,
        });
    }
    Ok(Parsed {
        events,
        ack: Ack::Default,
    })
}
