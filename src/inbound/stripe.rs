//! Stripe webhooks: `Stripe-Signature: t=<unix>,v1=<hex>` over `<t>.<body>` with the
//! endpoint secret as written (`whsec_…`), 5-minute tolerance. Event: `stripe.<type>`
//! (`stripe.invoice.payment_failed`); delivery id: the event's `id`.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, delivery_from_headers, name_part,
    parse_json_kept,
};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("stripe"),
    allowed: &["stripe"],
    hmac: HmacStyle::None,
    token_header: "",
};

/// The fields `parse` reads: the event type and id, and the object's kind and id.
const READS: &[&str] = &["type", "id", "data.object.object", "data.object.id"];

pub const KIND: Kind = Kind::simple("stripe", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let (p, whole) = parse_json_kept(req)?;
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
    let kind = s("/type")
        .ok_or_else(|| Rejection::bad_request("body has no `type`: not a Stripe event"))?;
    let name = format!("stripe.{}", name_part(kind));
    let delivery_id = s("/id")
        .map(str::to_string)
        .unwrap_or_else(|| delivery_from_headers(req, &[]));
    let entity = match (s("/data/object/object"), s("/data/object/id")) {
        (Some(o), Some(id)) => Some(format!("stripe:{o}/{id}")),
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
