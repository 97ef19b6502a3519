//! GitLab project and group webhooks.
//!
//! Auth: `X-Gitlab-Token` (the secret as-is, compared in constant time), or the newer
//! signing token (`auth = "standard-webhooks"`: `webhook-id`/`-timestamp`/`-signature`).
//! Event: the body's `object_kind` (`build` is named `job`) plus its action or status:
//! `gitlab.merge_request.open`, `gitlab.pipeline.failed`, `gitlab.job.success`.
//! Delivery id: `Idempotency-Key` (same on GitLab's retries), else `webhook-id`, else
//! `X-Gitlab-Event-UUID`, else the body's SHA-256.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, delivery_from_headers, name_part,
    parse_json_kept,
};

pub const AUTH: AuthSpec = AuthSpec {
    default: Some("token"),
    allowed: &["token", "standard-webhooks"],
    hmac: HmacStyle::None,
    token_header: "X-Gitlab-Token",
};

/// The fields `parse` reads: the event and its action, and the entity's parts.
const READS: &[&str] = &[
    "object_kind",
    "object_attributes.action",
    "object_attributes.status",
    "build_status",
    "status",
    "action",
    "object_attributes.noteable_type",
    "project.path_with_namespace",
    "project_name",
    "object_attributes.iid",
    "object_attributes.id",
    "build_id",
    "ref",
    "deployment_id",
    "tag",
    "merge_request.iid",
    "issue.iid",
];

pub const KIND: Kind = Kind::simple("gitlab", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let (p, whole) = parse_json_kept(req)?;
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
    let kind = s("/object_kind")
        .ok_or_else(|| Rejection::bad_request("body has no `object_kind`: not a GitLab webhook"))?;
    let (event, action) = match kind {
        "merge_request" => ("merge_request", s("/object_attributes/action")),
        "pipeline" => ("pipeline", s("/object_attributes/status")),
        "build" => ("job", s("/build_status")),
        "deployment" => ("deployment", s("/status")),
        "release" => ("release", s("/action")),
        "issue" => ("issue", s("/object_attributes/action")),
        "note" => ("note", s("/object_attributes/noteable_type")),
        other => (other, None),
    };
    let name = match action {
        Some(a) => format!("gitlab.{}.{}", name_part(event), name_part(a)),
        None => format!("gitlab.{}", name_part(event)),
    };
    let delivery_id = delivery_from_headers(
        req,
        &["idempotency-key", "webhook-id", "x-gitlab-event-uuid"],
    );
    let entity = entity(event, &p);
    Ok(one(Event {
        name,
        delivery_id,
        entity,
        payload: p,
        whole,
    }))
}

fn entity(event: &str, p: &Value) -> Option<String> {
    let project = p
        .pointer("/project/path_with_namespace")
        .or_else(|| p.pointer("/project_name"))
        .and_then(Value::as_str)?;
    let n = |ptr: &str| p.pointer(ptr).and_then(Value::as_u64);
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
    let tail = match event {
        "merge_request" => format!("!{}", n("/object_attributes/iid")?),
        "issue" => format!("#{}", n("/object_attributes/iid")?),
        "pipeline" => format!("/pipelines/{}", n("/object_attributes/id")?),
        "job" => format!("/jobs/{}", n("/build_id")?),
        "push" | "tag_push" => format!("@{}", s("/ref")?),
        "deployment" => format!("/deployments/{}", n("/deployment_id")?),
        "release" => format!("/releases/{}", s("/tag")?),
        "note" => match (n("/merge_request/iid"), n("/issue/iid")) {
            (Some(mr), _) => format!("!{mr}"),
            (None, Some(is)) => format!("#{is}"),
            _ => String::new(),
        },
        _ => String::new(),
    };
    Some(format!("gitlab:{project}{tail}"))
}
