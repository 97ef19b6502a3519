//! Any sender using Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64>`, `whsec_` secrets), also under the `svix-` names.
//! Event: `standard-webhooks.<type>` from the body's `type` (the spec's convention);
//! delivery id: `webhook-id`.

use serde_json::Value;

use super::simple::{Simple, one};
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, auth_from_config,
    delivery_from_headers, name_part, parse_json, reject_unused,
};
use crate::config::{Config, ConfigError};

const AUTH: AuthSpec = AuthSpec {
    default: Some("standard-webhooks"),
    allowed: &["standard-webhooks"],
    hmac: HmacStyle::Hex {
        header: "",
        prefix: "",
    },
    token_header: "",
};

pub fn build(cfg: &Config, i: usize) -> Result<Simple, ConfigError> {
    reject_unused(cfg, i, "standard-webhooks")?;
    Ok(Simple {
        auth: auth_from_config(cfg, i, "standard-webhooks", &AUTH)?,
        parse,
    })
}

fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let p = parse_json(req.body)?;
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("event");
    Ok(one(Event {
        name: format!("standard-webhooks.{}", name_part(kind)),
        delivery_id: delivery_from_headers(req, &["webhook-id", "svix-id"]),
        entity: None,
        payload: p,
    }))
}
