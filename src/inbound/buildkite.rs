//! Buildkite pipeline webhooks. Auth: `X-Buildkite-Token` (the token as-is, the default)
//! or `X-Buildkite-Signature: timestamp=<unix>,signature=<hex>` over `<timestamp>.<body>`
//! (`auth = "hmac-sha256"`). Event: `buildkite.<X-Buildkite-Event>[.<state>]`
//! (`buildkite.build.finished.failed`); `ping` is answered and posts nothing. Buildkite
//! sends no delivery id: the body's SHA-256 is used.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{
    Ack, AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, auth::header_str,
    delivery_from_headers, name_part, parse_json_kept,
};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("token"),
    allowed: &["token", "hmac-sha256"],
    hmac: HmacStyle::Buildkite,
    token_header: "X-Buildkite-Token",
};

/// The fields `parse` reads: the event (when no header names it), the state, and the
/// entity's pipeline and build number.
const READS: &[&str] = &[
    "event",
    "job.state",
    "build.state",
    "pipeline.slug",
    "build.number",
];

pub const KIND: Kind = Kind::simple("buildkite", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let (p, whole) = parse_json_kept(req)?;
    let event = match header_str(req.headers, "x-buildkite-event") {
        Ok(Some(e)) => e.trim().to_string(),
        _ => p
            .get("event")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Rejection::bad_request("no X-Buildkite-Event header and no `event` in the body")
            })?,
    };
    if event == "ping" {
        return Ok(Parsed {
            events: vec![],
            ack: Ack::Pong {
                event: "buildkite.ping".into(),
            },
        });
    }
    let state = if event.starts_with("job.") {
        p.pointer("/job/state")
    } else {
        p.pointer("/build/state")
    }
    .and_then(Value::as_str);
    let name = match state {
        Some(s) => format!("buildkite.{}.{}", name_part(&event), name_part(s)),
        None => format!("buildkite.{}", name_part(&event)),
    };
    let entity = match (
        p.pointer("/pipeline/slug").and_then(Value::as_str),
        p.pointer("/build/number").and_then(Value::as_u64),
    ) {
        (Some(slug), Some(n)) => Some(format!("buildkite:{slug}#{n}")),
        _ => None,
    };
    Ok(one(Event {
        name,
        delivery_id: delivery_from_headers(req, &["x-request-id"]),
        entity,
        payload: p,
        whole,
    }))
}
