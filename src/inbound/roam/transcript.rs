//! A fetched transcript (`transcript.info`) as the `roam.transcript.saved` event: the
//! fields routes and templates use are derived here, for the transcript worker and for
//! offline checks alike.

use std::collections::BTreeSet;

use chrono::DateTime;
use serde_json::{Value, json};

use crate::inbound::Event;

pub const EVENT_NAME: &str = "roam.transcript.saved";

pub fn delivery_id(transcript_id: &str) -> String {
    format!("transcript:{transcript_id}")
}

/// `[transcripts] internal_domains` as compared: lower case, without a leading `@`.
pub fn internal_domains(configured: &[String]) -> Vec<String> {
    configured
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .collect()
}

/// The event for a fetched transcript (`transcript.info`), with the fields routes and
/// templates use: `meeting.name`, `meeting.duration_minutes`, `participant_names`,
/// `participant_emails`, `domains`, `external`, `external_domains`,
/// `action_items_count`, each action item's `assignee_name`. Cues are dropped (only
/// `cues_count` is kept): messages do not quote them and they are most of the bytes.
pub fn transcript_event(mut info: Value, internal_domains: &[String]) -> Event {
    let id = info
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    enrich(&mut info, internal_domains);
    Event {
        name: EVENT_NAME.to_string(),
        delivery_id: delivery_id(&id),
        entity: Some(format!("roam:transcript:{id}")),
        payload: info,
        whole: None,
    }
}

/// An assignee's Roam user id without asking Roam: the assignee itself if it is one, or
/// the participant with that name or email.
pub fn known_user(assignee: &str, participants: &[Value]) -> Option<String> {
    if assignee.starts_with("U-") {
        return Some(assignee.to_string());
    }
    participants
        .iter()
        .find(|p| {
            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            !assignee.is_empty()
                && (s("name") == assignee || s("email").eq_ignore_ascii_case(assignee))
        })
        .and_then(|p| p.get("user").and_then(Value::as_str))
        .map(str::to_string)
}

/// Offline (`routes test`, `[[tests]]`): sets `assignee_user` where `known_user` finds one.
pub fn assign_known_users(payload: &mut Value) {
    let participants: Vec<Value> = payload
        .get("participants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for it in payload
        .get_mut("action_items")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let assignee = it
            .get("assignee")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let (Some(u), Some(o)) = (known_user(&assignee, &participants), it.as_object_mut()) {
            o.insert("assignee_user".into(), Value::String(u));
        }
    }
}

/// Adds the derived fields (also used by `check` on the template samples).
pub fn enrich(info: &mut Value, internal_domains: &[String]) {
    let Some(obj) = info.as_object_mut() else {
        return;
    };
    let cues = obj.remove("cues");
    let cues_count = cues.as_ref().and_then(Value::as_array).map_or(0, Vec::len);
    let participants: Vec<Value> = obj
        .get("participants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut names = Vec::new();
    let mut people = Vec::new();
    let mut emails = Vec::new();
    let mut domains = BTreeSet::new();
    let mut external_domains = BTreeSet::new();
    let mut external = false;
    for p in &participants {
        let name = s(p, "name");
        if !name.is_empty() {
            names.push(name);
        }
        let email = Some(s(p, "email"))
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| s(p, "unconfirmedEmail"));
        let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
        let guest = s(p, "type") == "guest";
        let shown = [s(p, "name"), email.clone()]
            .into_iter()
            .find(|x| !x.is_empty())
            .unwrap_or_else(|| "someone".to_string());
        people.push(json!({"name": shown, "guest": guest}));
        if let Some(d) = &domain {
            domains.insert(d.clone());
            let outside = if internal_domains.is_empty() {
                guest
            } else {
                !internal_domains.iter().any(|i| i == d)
            };
            if outside {
                external_domains.insert(d.clone());
            }
        }
        external |= guest
            || domain
                .as_ref()
                .is_some_and(|d| !internal_domains.is_empty() && !internal_domains.contains(d));
        if !email.is_empty() {
            emails.push(email);
        }
    }
    let start = obj.get("start").and_then(Value::as_str).map(str::to_string);
    let end = obj.get("end").and_then(Value::as_str).map(str::to_string);
    let duration = match (&start, &end) {
        (Some(a), Some(b)) => match (
            DateTime::parse_from_rfc3339(a),
            DateTime::parse_from_rfc3339(b),
        ) {
            (Ok(a), Ok(b)) => Some(((b - a).num_seconds().max(0) + 30) / 60),
            _ => None,
        },
        _ => None,
    };
    let mut items: Vec<Value> = obj
        .get("actionItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for it in &mut items {
        let assignee = s(it, "assignee");
        let who = participants.iter().find(|p| {
            !assignee.is_empty()
                && (s(p, "user") == assignee || s(p, "email").eq_ignore_ascii_case(&assignee))
        });
        if let Some(o) = it.as_object_mut() {
            let name = who.map(|p| s(p, "name")).filter(|n| !n.is_empty());
            o.insert(
                "assignee_name".into(),
                json!(name.or((!assignee.is_empty()).then_some(assignee))),
            );
        }
    }
    let name = obj
        .get("eventName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or("Meeting")
        .to_string();
    obj.insert(
        "meeting".into(),
        json!({"name": name, "start": start, "end": end, "duration_minutes": duration}),
    );
    obj.insert("action_items_count".into(), json!(items.len()));
    obj.insert("action_items".into(), json!(items));
    obj.insert("participant_names".into(), json!(names));
    obj.insert("people".into(), json!(people));
    obj.insert("participant_emails".into(), json!(emails));
    obj.insert("domains".into(), json!(domains));
    obj.insert("external".into(), json!(external));
    obj.insert("external_domains".into(), json!(external_domains));
    obj.insert("cues_count".into(), json!(cues_count));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_fields() {
        let mut t = json!({
            "id": "t1", "start": "2026-01-21T17:32:39Z", "end": "2026-01-21T18:02:10Z",
            "eventName": "Sales sync",
            "participants": [
                {"name": "Alex", "email": "alex@acme.com", "user": "U-1", "type": "member"},
                {"name": "Kim", "unconfirmedEmail": "kim@Client.io", "type": "guest"}
            ],
            "actionItems": [{"title": "Send deck", "assignee": "U-1"}, {"title": "Call back"}],
            "cues": [{"speaker": "Alex", "text": "hi", "startOffset": 0, "endOffset": 1}]
        });
        enrich(&mut t, &["acme.com".to_string()]);
        assert_eq!(t["meeting"]["name"], "Sales sync");
        assert_eq!(t["meeting"]["duration_minutes"], 30);
        assert_eq!(t["external"], true);
        assert_eq!(t["external_domains"], json!(["client.io"]));
        assert_eq!(t["domains"], json!(["acme.com", "client.io"]));
        assert_eq!(t["action_items_count"], 2);
        assert_eq!(t["action_items"][0]["assignee_name"], "Alex");
        assert_eq!(t["action_items"][1]["assignee_name"], Value::Null);
        assert_eq!(t["cues_count"], 1);
        assert!(t.get("cues").is_none());
        let mut internal =
            json!({"participants": [{"name": "A", "email": "a@acme.com", "type": "member"}]});
        enrich(&mut internal, &["acme.com".to_string()]);
        assert_eq!(internal["external"], false);
        assert_eq!(internal["meeting"]["name"], "Meeting");
    }
}
