//! Sentry integration-platform webhooks: `Sentry-Hook-Signature: <hex HMAC-SHA256 of the
//! body>` with the integration's client secret. Event: `sentry.<Sentry-Hook-Resource>.<action>`
//! (`sentry.issue.created`, `sentry.event_alert.triggered`); delivery id: `Request-ID`.
//! Sentry wants an answer within 1 s: the reply is sent as soon as the event is committed.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, auth::header_str,
    delivery_from_headers, name_part, parse_json_kept,
};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("hmac-sha256"),
    allowed: &["hmac-sha256"],
    hmac: HmacStyle::Hex {
        header: "Sentry-Hook-Signature",
        prefix: "",
    },
    token_header: "",
};

/// The fields `parse` reads: the action and the id.
const READS: &[&str] = &["action", "data.issue.id", "data.event.issue_id"];

pub const KIND: Kind = Kind::simple("sentry", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let resource = header_str(req.headers, "sentry-hook-resource")
        .map_err(|_| Rejection::bad_request("Sentry-Hook-Resource is not valid text"))?
        .ok_or_else(|| Rejection::bad_request("missing Sentry-Hook-Resource header"))?;
    let (p, whole) = parse_json_kept(req)?;
    let name = match p.get("action").and_then(Value::as_str) {
        Some(a) => format!("sentry.{}.{}", name_part(resource), name_part(a)),
        None => format!("sentry.{}", name_part(resource)),
    };
    let delivery_id = delivery_from_headers(req, &["request-id", "sentry-hook-id"]);
    let entity = p
        .pointer("/data/issue/id")
        .or_else(|| p.pointer("/data/event/issue_id"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .map(|id| format!("sentry:issue/{id}"));
    Ok(one(Event {
        name,
        delivery_id,
        entity,
        payload: p,
        whole,
    }))
}
