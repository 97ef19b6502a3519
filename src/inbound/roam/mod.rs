//! Roam's own webhooks (`tests/roam-openapi/webhooks.json`), signed with Standard
//! Webhooks (`whsec_` secret from Roam Administration > Developer, 5-minute window).
//!
//! `transcript:saved` carries metadata only, so it is not routed as it is: the transcript
//! id is queued durably and the transcript worker fetches `transcript.info` and commits
//! the `roam.transcript.saved` event (see `transcripts`). Other Roam events are routed
//! as `roam.<event>` (`roam.transcript.started`, `roam.recording.saved`, ...).
//! Bodies come bare (v0) or in the v1 envelope `{type, eventId, timestamp, apiVersion,
//! data}`. Roam currently delivers some v1 events twice under one `webhook-id` (a legacy
//! body, then the envelope); the delivery id is that `webhook-id`, so the second is a
//! duplicate and nothing is posted twice. v1's `meeting.ended` with a transcript id is
//! treated like `transcript:saved`.

pub mod transcript;

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{Ack, Event, Inbound, Parsed, Rejection, delivery_from_headers, name_part, parse_json};

/// Roam signs with Standard Webhooks, as that kind does.
pub const KIND: Kind =
    Kind::simple("roam", &super::standard_webhooks::AUTH, parse).enriched(enrich_sample);

/// Transcript fields on a sample (no internal domains are known offline).
fn enrich_sample(payload: &mut Value) {
    transcript::enrich(payload, &[]);
}

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let body = parse_json(req.body)?;
    if let Some(challenge) = verification_challenge(&body) {
        return Ok(Parsed {
            events: Vec::new(),
            ack: Ack::Challenge(challenge),
        });
    }
    let (kind, payload) = match (body.get("type").and_then(Value::as_str), body.get("data")) {
        (Some(t), Some(data)) if t.contains('.') || t.contains(':') => {
            (t.replace(':', "."), data.clone())
        }
        _ => (bare_kind(&body).to_string(), body),
    };
    if kind == "transcript.saved" {
        let id = payload
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Rejection::bad_request("transcript:saved body has no transcript `id`")
            })?;
        return Ok(Parsed {
            events: Vec::new(),
            ack: Ack::Transcript { id: id.to_string() },
        });
    }
    // v1 names the end of a meeting `meeting.ended`: with a transcript it starts the
    // same fetch as transcript:saved. Without one it is routed as roam.meeting.ended
    // (the scheduled sweep picks the transcript up when it is saved).
    if kind == "meeting.ended"
        && let Some(id) = meeting_transcript(&payload)
    {
        return Ok(Parsed {
            events: Vec::new(),
            ack: Ack::Transcript { id },
        });
    }
    let entity = payload
        .get("id")
        .and_then(Value::as_str)
        .filter(|_| kind.starts_with("transcript."))
        .map(|id| format!("roam:transcript:{id}"));
    Ok(one(Event {
        name: format!("roam.{}", name_part(&kind)),
        delivery_id: delivery_from_headers(req, &["webhook-id"]),
        entity,
        payload,
        whole: None,
    }))
}

/// The challenge of Roam's subscription check (`webhook.verification`, API versions
/// from 2026-07-23), in the envelope's `data` or beside `type`.
fn verification_challenge(body: &Value) -> Option<String> {
    let t = body.get("type").and_then(Value::as_str)?;
    if t.replace(':', ".") != "webhook.verification" {
        return None;
    }
    body.pointer("/data/challenge")
        .or_else(|| body.get("challenge"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The transcript a `meeting.ended` payload names, if any (`transcriptId`, or a
/// `transcript` object or id).
fn meeting_transcript(p: &Value) -> Option<String> {
    [
        p.get("transcriptId"),
        p.pointer("/transcript/id"),
        p.get("transcript"),
    ]
    .into_iter()
    .flatten()
    .find_map(Value::as_str)
    .filter(|s| !s.is_empty())
    .map(str::to_string)
}

/// v0 bodies carry no type: tell the documented shapes apart by their fields.
fn bare_kind(b: &Value) -> &'static str {
    let has = |k: &str| b.get(k).is_some_and(|v| !v.is_null() && v != "");
    if has("recordingId") {
        "recording.saved"
    } else if has("meetingId") && has("id") {
        if has("end") || has("participants") && !has("location") {
            "transcript.saved"
        } else {
            "transcript.started"
        }
    } else if has("lobbyId") || has("booking") {
        "lobby.booked"
    } else if has("sender") && has("chat") {
        "chat.message"
    } else {
        "event"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tells_v0_shapes_apart() {
        let saved = json!({"id": "t", "meetingId": "m", "start": "2026-01-21T17:32:39Z", "end": "2026-01-21T17:48:04Z", "participants": []});
        assert_eq!(bare_kind(&saved), "transcript.saved");
        let started = json!({"id": "t", "meetingId": "m", "start": "2026-01-21T17:32:39Z", "location": "Room"});
        assert_eq!(bare_kind(&started), "transcript.started");
        assert_eq!(bare_kind(&json!({"recordingId": "r"})), "recording.saved");
        assert_eq!(bare_kind(&json!({"x": 1})), "event");
    }
}
