//! GitHub repository, organization and App webhooks.
//!
//! Auth: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
//! Event: `X-GitHub-Event` plus the body's `action`; delivery id: `X-GitHub-Delivery`.
//! Bodies are JSON, or a form with one `payload` field when the hook is set to
//! `application/x-www-form-urlencoded` (the signature then covers the raw form bytes).

use axum::body::Bytes;
use serde_json::Value;

use super::kind::Kind;
use super::{
    Ack, AuthSpec, Event, HmacStyle, Inbound, Parsed, Rejection, auth::header_str,
    delivery_from_headers, name_part, parse_json_kept, parse_json_reading,
};

const AUTH: AuthSpec = AuthSpec {
    default: Some("hmac-sha256"),
    allowed: &["hmac-sha256"],
    hmac: HmacStyle::Hex {
        header: "X-Hub-Signature-256",
        prefix: "sha256=",
    },
    token_header: "",
};

/// The fields `parse` reads: `action` and those `entity_key` names.
const READS: &[&str] = &[
    "action",
    "repository.full_name",
    "pull_request.number",
    "issue.number",
    "ref",
    "workflow_run.id",
    "workflow_job.id",
    "check_run.id",
    "release.id",
    "deployment.id",
];

pub const KIND: Kind = Kind::simple("github", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let event = header_str(req.headers, "x-github-event")
        .map_err(|_| Rejection::bad_request("X-GitHub-Event header is not valid text"))?
        .ok_or_else(|| Rejection::bad_request("missing X-GitHub-Event header"))?;
    let event = name_part(event);
    let (payload, whole) = body_json(req)?;
    if event == "ping" {
        return Ok(Parsed {
            events: vec![],
            ack: Ack::Pong {
                event: "github.ping".into(),
            },
        });
    }
    let delivery_id = delivery_from_headers(req, &["x-github-delivery"]);
    let name = match payload.get("action").and_then(Value::as_str) {
        Some(action) => format!("github.{event}.{}", name_part(action)),
        None => format!("github.{event}"),
    };
    let entity = entity_key(&event, &payload);
    Ok(Parsed {
        events: vec![Event {
            name,
            delivery_id,
            entity,
            payload,
            whole,
        }],
        ack: Ack::Default,
    })
}

/// The payload, and with it the JSON text when only what the source reads was built.
fn body_json(req: &Inbound<'_>) -> Result<(Value, Option<Bytes>), Rejection> {
    // GitHub's form mode sends `payload=<url-encoded JSON>`. A JSON body sent with a form
    // content type (curl's default) is still JSON.
    let form = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
        && req.body.starts_with(b"payload=");
    if !form {
        return parse_json_kept(req);
    }
    let payload = form_urlencoded::parse(req.body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| Rejection::bad_request("form body has no `payload` field"))?;
    let value = parse_json_reading(payload.as_bytes(), req.reads)?;
    Ok((value, req.reads.map(|_| Bytes::from(payload))))
}

/// The thing an event is about, so later events about it can share a thread.
fn entity_key(event: &str, p: &Value) -> Option<String> {
    let repo = p.pointer("/repository/full_name")?.as_str()?;
    let num = |ptr: &str| p.pointer(ptr).and_then(Value::as_u64);
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
    let tail = match event {
        "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
            format!("#pr-{}", num("/pull_request/number")?)
        }
        "issues" | "issue_comment" => format!("#issue-{}", num("/issue/number")?),
        "push" => format!("@{}", s("/ref")?),
        "workflow_run" => format!("/run/{}", num("/workflow_run/id")?),
        "workflow_job" => format!("/job/{}", num("/workflow_job/id")?),
        "check_run" => format!("/check/{}", num("/check_run/id")?),
        "release" => format!("/release/{}", num("/release/id")?),
        "deployment_status" | "deployment" => format!("/deployment/{}", num("/deployment/id")?),
        _ => return Some(format!("github:{repo}")),
    };
    Some(format!("github:{repo}{tail}"))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::inbound::reading_tests::parse_with;
    use crate::reads::Reads;

    /// The form mode keeps the form's `payload` field as the text the payload was built
    /// from (the JSON fixtures of every kind that lists its reads: `reading_tests`).
    #[test]
    fn a_form_body_keeps_its_payload_field_as_the_text() {
        let reads = Reads::of_fields(READS).unwrap();
        let json =
            br#"{"ref": "refs/heads/main", "after": "abc", "repository": {"full_name": "o/r"}}"#;
        let form = format!(
            "payload={}",
            form_urlencoded::byte_serialize(json).collect::<String>()
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", HeaderValue::from_static("push"));
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let part = parse_with(parse, &headers, form.as_bytes(), Some(&reads)).remove(0);
        assert_eq!(part.entity.as_deref(), Some("github:o/r@refs/heads/main"));
        assert!(part.payload.get("after").is_none());
        assert_eq!(part.whole.as_deref(), Some(&json[..]));
    }
}
