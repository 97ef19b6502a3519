//! Pipedrive webhooks v2 (`{meta, data, previous}`). Auth: HTTP Basic (the webhook's
//! `http_auth_user` / `http_auth_password`; `secret = "user:password"`). Event:
//! `pipedrive.<entity>.<action>` (`pipedrive.deal.change`); delivery id: the `meta.id`,
//! `meta.timestamp` and `meta.attempt`... minus the attempt, so retries collapse.

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, delivery_from_headers, name_part,
    parse_json,
};
use crate::fieldpath::scalar_text;

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("basic"),
    allowed: &["basic"],
    hmac: HmacStyle::None,
    token_header: "",
};

pub const KIND: Kind = Kind::simple("pipedrive", &AUTH, parse);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let p = parse_json(req.body)?;
    let m = |k: &str| {
        p.pointer(&format!("/meta/{k}"))
            .and_then(scalar_text)
            .filter(|v| v != "null")
    };
    let entity_type = m("entity").ok_or_else(|| {
        Rejection::bad_request("body has no `meta.entity`: not a Pipedrive v2 webhook")
    })?;
    let action = m("action").unwrap_or_else(|| "event".into());
    let delivery_id = match (m("id"), m("timestamp")) {
        (Some(id), Some(ts)) => format!("{id}:{ts}"),
        _ => delivery_from_headers(req, &[]),
    };
    let object = m("entity_id").or_else(|| p.pointer("/data/id").and_then(scalar_text));
    Ok(one(Event {
        name: format!(
            "pipedrive.{}.{}",
            name_part(&entity_type),
            name_part(&action)
        ),
        delivery_id,
        entity: object.map(|o| format!("pipedrive:{entity_type}/{o}")),
        payload: p,
        whole: None,
    }))
}
