//! CircleCI webhooks: `circleci-signature: v1=<hex>`. Event:
//! `circleci.<type>.<status>` (`circleci.workflow-completed.failed`); delivery id: the body's `id`.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, delivery_from_headers, name_part,
    parse_json_kept,
};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("hmac-sha256"),
    allowed: &["hmac-sha256"],
    hmac: HmacStyle::HexList {
        header: "circleci-signature",
        version: "v1",
    },
    token_header: "",
};

/// The fields `parse` reads: the type, the status, the id and the entity's parts.
const READS: &[&str] = &[
    "type",
    "job.status",
    "workflow.status",
    "id",
    "project.slug",
    "workflow.id",
];

pub const KIND: Kind = Kind::simple("circleci", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let (p, whole) = parse_json_kept(req)?;
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
    let kind = s("/type")
        .ok_or_else(|| Rejection::bad_request("body has no `type`: not a CircleCI webhook"))?;
    let status = s("/job/status")
        .filter(|_| kind == "job-completed")
        .or_else(|| s("/workflow/status"));
    let name = match status {
        Some(st) => format!("circleci.{}.{}", name_part(kind), name_part(st)),
        None => format!("circleci.{}", name_part(kind)),
    };
    let delivery_id = match s("/id") {
        Some(id) => id.to_string(),
        None => delivery_from_headers(req, &[]),
    };
    let entity = match (s("/project/slug"), s("/workflow/id")) {
        (Some(slug), Some(w)) => Some(format!("circleci:{slug}/workflow/{w}")),
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
