//! Any sender using Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64>`, `whsec_` secrets), also under the `svix-` names.
//! Event: `standard-webhooks.<type>` from the body's `type` (the spec's convention);
//! delivery id: `webhook-id`.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, delivery_from_headers, name_part,
    parse_json,
};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("standard-webhooks"),
    allowed: &["standard-webhooks"],
    hmac: HmacStyle::None,
    token_header: "",
};

pub const KIND: Kind = Kind::simple("standard-webhooks", &AUTH, parse);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let p = parse_json(req.body)?;
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("event");
    Ok(one(Event {
        name: format!("standard-webhooks.{}", name_part(kind)),
        delivery_id: delivery_from_headers(req, &["webhook-id", "svix-id"]),
        entity: None,
        payload: p,
        whole: None,
    }))
}
