//! Noise control: routes that group, deduplicate, cap or mute their events.
//!
//! A route with `group_by`, `group_wait`, `group_interval`, `repeat_interval` or
//! `max_messages` (or a muted route that summarises) does not queue a message per event.
//! Its events become *items* in a durable group (`storage::groups`), committed with the
//! event, and the [`flusher`] later turns each due group into one message:
//! - a new group waits `group_wait` for company, later messages of the group come at
//!   most every `group_interval`; a resolved event makes its group due at once;
//! - items whose fingerprint the route sent within `repeat_interval` are dropped, and
//!   identical items pending together are one line with a count;
//! - when sending the due groups one by one would exceed `max_messages` per
//!   `max_messages_interval`, they go out as one digest message instead.
//!
//! A group of one item is sent as that item's own message; larger groups use the
//! `group` template (or the route's `group_template`).

pub mod flusher;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fieldpath::{FieldPath, scalar_text};
use crate::render::{Content, Format, Outcome, outcome_of};
use crate::roam::blocks::Card;
use crate::storage::KEY_SEP;

/// A route's grouping settings, compiled from its config.
#[derive(Debug, Clone)]
pub struct Hold {
    /// None: every event is its own group (dedup and caps only).
    pub group_by: Option<Vec<FieldPath>>,
    pub wait_ms: i64,
    pub interval_ms: i64,
    pub repeat_ms: Option<i64>,
    pub max_messages: Option<u32>,
    pub max_window_ms: i64,
    /// Template for messages of several items.
    pub template: Option<String>,
    /// Items listed in a group message; the rest are counted.
    pub shown: usize,
    /// Fields that identify "the same event" for `repeat_interval`; empty: the event's
    /// name and entity, or its rendered text when it has no entity.
    pub fingerprint: Vec<FieldPath>,
}

impl Default for Hold {
    /// A route that holds nothing back: what a mute summary of a plain route uses.
    fn default() -> Hold {
        Hold {
            group_by: None,
            wait_ms: 0,
            interval_ms: 0,
            repeat_ms: None,
            max_messages: None,
            max_window_ms: 600_000,
            template: None,
            shown: 10,
            fingerprint: Vec::new(),
        }
    }
}

/// What a group needs to become a message, stored with the group (see `storage::groups`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupSpec {
    pub to: Vec<String>,
    pub mentions: Vec<String>,
    pub template: Option<String>,
    pub thread: bool,
    pub update: bool,
    pub split_long: bool,
    pub interval_ms: i64,
    pub repeat_ms: Option<i64>,
    pub max_messages: Option<u32>,
    pub max_window_ms: i64,
    pub shown: usize,
    /// The `group_by` fields and their values for this group.
    pub labels: BTreeMap<String, String>,
    /// Set on a mute summary group: the mute window's name.
    #[serde(default)]
    pub muted: Option<String>,
    /// Set on the `max_messages` overflow digest.
    #[serde(default)]
    pub digest: bool,
    /// The route's format: a card or text.
    #[serde(default)]
    pub format: Format,
}

/// One event's line in a group message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub event: String,
    /// The last part of the event name: `firing`, `resolved`, `completed`, ...
    pub status: String,
    pub entity: Option<String>,
    /// The first line of the event's message.
    pub title: String,
    /// The event's whole message as text (its card's readable form for a card).
    pub text: String,
    /// The event's card, sent as is when the group has only this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// Alert kinds: alerts in this notification by status (`_counts`), so a group counts
    /// alerts, not notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<BTreeMap<String, u64>>,
    /// Alert kinds: the alert's labels, for a digest's counts by label value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

impl Item {
    pub fn new(event: &str, entity: Option<&str>, content: &Content, payload: &Value) -> Item {
        let alerts = payload.get("_counts").and_then(|c| {
            let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
            let map: BTreeMap<String, u64> = [("firing", n("firing")), ("resolved", n("resolved"))]
                .into_iter()
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            (!map.is_empty()).then_some(map)
        });
        let text = content.readable();
        let title = match content {
            Content::Card(c) => c.title(),
            Content::Text(_) => text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string(),
        };
        let title = title.chars().take(200).collect();
        Item {
            event: event.to_string(),
            status: event.rsplit('.').next().unwrap_or(event).to_string(),
            entity: entity.map(str::to_string),
            title,
            text,
            card: match content {
                Content::Card(c) => Some(c.clone()),
                Content::Text(_) => None,
            },
            alerts,
            labels: alerts_labels(payload),
        }
    }

    pub fn is_resolved(&self) -> bool {
        self.status == "resolved"
    }
}

/// An alert event's labels (as text), for [`Item::labels`].
fn alerts_labels(payload: &Value) -> Option<BTreeMap<String, String>> {
    payload.get("_counts")?;
    let labels = payload.get("labels")?.as_object()?;
    Some(
        labels
            .iter()
            .filter_map(|(k, v)| scalar_text(v).map(|v| (k.clone(), v)))
            .collect(),
    )
}

/// Labels shown in a digest's counts: those with 2 to this many distinct values (one
/// value says nothing; a value per alert, like `instance`, is the list itself).
const LABEL_VALUES_SHOWN: usize = 6;

/// Which group of a route an item joins. Stored as text (`encode`); the kinds that are
/// not `group_by` values start with a control character no label text can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupKey {
    /// The route does not group: each event is its own group (dedup and caps only).
    Single(String),
    /// The `group_by` values, `path=value` joined by `KEY_SEP`.
    Labels(String),
    /// The `max_messages` overflow digest.
    Overflow,
    /// Events muted by a window, summarised when it ends at `until_ms`.
    Muted { window: String, until_ms: i64 },
}

impl GroupKey {
    const SINGLE: char = '\u{1}';
    const OVERFLOW: &str = "\u{2}overflow";
    const MUTED: &str = "\u{3}muted";

    pub fn encode(&self) -> String {
        match self {
            GroupKey::Single(unique) => format!("{}{unique}", Self::SINGLE),
            GroupKey::Labels(k) => k.clone(),
            GroupKey::Overflow => Self::OVERFLOW.to_string(),
            GroupKey::Muted { window, until_ms } => {
                format!("{}{KEY_SEP}{window}{KEY_SEP}{until_ms}", Self::MUTED)
            }
        }
    }

    /// Whether a stored key is one event's own group (sent as that event's message).
    pub fn is_single(stored: &str) -> bool {
        stored.starts_with(Self::SINGLE)
    }
}

/// The group key and its labels: the `group_by` values, or `unique` when the route does
/// not group.
pub fn group_key(
    hold: &Hold,
    payload: &Value,
    unique: &str,
) -> (GroupKey, BTreeMap<String, String>) {
    let Some(paths) = &hold.group_by else {
        return (GroupKey::Single(unique.to_string()), BTreeMap::new());
    };
    let mut labels = BTreeMap::new();
    for p in paths {
        let v = p.lookup(payload).and_then(scalar_text).unwrap_or_default();
        labels.insert(p.as_str().to_string(), v);
    }
    let key = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(&KEY_SEP.to_string());
    (GroupKey::Labels(key), labels)
}

/// What makes two events "the same" for `repeat_interval`.
pub fn fingerprint(
    hold: &Hold,
    source: &str,
    event: &str,
    entity: Option<&str>,
    payload: &Value,
    text: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0]);
    h.update(event.as_bytes());
    h.update([0]);
    if !hold.fingerprint.is_empty() {
        for p in &hold.fingerprint {
            let v = p.lookup(payload).map(|v| v.to_string()).unwrap_or_default();
            h.update(v.as_bytes());
            h.update([0]);
        }
    } else if let Some(e) = entity {
        h.update(e.as_bytes());
    } else {
        h.update(text.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// An item with how many identical ones were pending with it.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    #[serde(flatten)]
    pub item: Item,
    pub repeats: u64,
}

/// The data a group template sees (see `templates/group.sample.json`).
pub fn group_context(
    route: &str,
    spec: &GroupSpec,
    lines: &[Line],
    suppressed: usize,
) -> serde_json::Value {
    let count: u64 = lines.iter().map(|l| l.repeats).sum();
    // Alert notifications count their alerts; other events count once each.
    let mut statuses: BTreeMap<&str, u64> = BTreeMap::new();
    let mut alerts = 0;
    for l in lines {
        match &l.item.alerts {
            Some(by_status) => {
                for (status, n) in by_status {
                    *statuses.entry(status.as_str()).or_default() += n * l.repeats;
                    alerts += n * l.repeats;
                }
            }
            None => *statuses.entry(l.item.status.as_str()).or_default() += l.repeats,
        }
    }
    let (total, noun) = if alerts > 0 {
        (alerts, if alerts == 1 { "alert" } else { "alerts" })
    } else {
        (count, if count == 1 { "event" } else { "events" })
    };
    // The group's colour: danger while anything failed or fires, warning for warnings,
    // good when everything went well, none otherwise.
    let outcomes: Vec<Outcome> = statuses
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, _)| outcome_of(s))
        .collect();
    let outcome = if outcomes.contains(&Outcome::Bad) {
        "danger"
    } else if outcomes.contains(&Outcome::Warning) {
        "warning"
    } else if !outcomes.is_empty() && outcomes.iter().all(|o| *o == Outcome::Good) {
        "good"
    } else {
        ""
    };
    let shown: Vec<&Line> = lines.iter().take(spec.shown).collect();
    // Counts by label value, for labels that tell the alerts apart in a few ways.
    let mut by_label: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for l in lines {
        for (k, v) in l.item.labels.iter().flatten() {
            *by_label.entry(k).or_default().entry(v).or_default() += l.repeats;
        }
    }
    let by_label: Vec<serde_json::Value> = by_label
        .into_iter()
        .filter(|(_, values)| (2..=LABEL_VALUES_SHOWN).contains(&values.len()))
        .map(|(label, values)| {
            let mut values: Vec<(&str, u64)> = values.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            serde_json::json!({"label": label, "values": values.into_iter().map(|(v, n)| serde_json::json!({"value": v, "count": n})).collect::<Vec<_>>()})
        })
        .collect();
    serde_json::json!({
        "by_label": by_label,
        "route": route,
        "count": count,
        "total": total,
        "what": noun,
        "statuses": statuses,
        "labels": spec.labels,
        "shown": shown,
        "more": lines.len().saturating_sub(spec.shown),
        "suppressed": suppressed,
        "digest": spec.digest,
        "muted": spec.muted,
        "color": outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> GroupSpec {
        GroupSpec {
            to: vec![],
            mentions: vec![],
            template: None,
            thread: false,
            update: false,
            split_long: false,
            interval_ms: 0,
            repeat_ms: None,
            max_messages: None,
            max_window_ms: 1,
            shown: 1,
            labels: BTreeMap::new(),
            muted: None,
            digest: false,
            format: Format::Card,
        }
    }

    #[test]
    fn alert_notifications_count_their_alerts_other_events_count_once() {
        let two = Item::new(
            "alertmanager.firing",
            None,
            &Content::Text("t".into()),
            &json!({"_counts": {"firing": 2, "resolved": 0, "total": 2}}),
        );
        let mixed = Item::new(
            "alertmanager.firing",
            None,
            &Content::Text("t".into()),
            &json!({"_counts": {"firing": 1, "resolved": 1, "total": 2}}),
        );
        let lines = vec![
            Line {
                item: two,
                repeats: 2,
            },
            Line {
                item: mixed,
                repeats: 1,
            },
        ];
        let c = group_context("r", &spec(), &lines, 0);
        assert_eq!(c["count"], 3, "notifications");
        assert_eq!(c["total"], 6, "alerts");
        assert_eq!(c["what"], "alerts");
        assert_eq!(c["statuses"], json!({"firing": 5, "resolved": 1}));
        assert_eq!(c["more"], 1);
        let push = Item::new(
            "github.push",
            None,
            &Content::Text("t".into()),
            &json!({"ref": "x"}),
        );
        let c = group_context(
            "r",
            &spec(),
            &[Line {
                item: push,
                repeats: 1,
            }],
            0,
        );
        assert_eq!(
            (c["total"].clone(), c["what"].clone()),
            (json!(1), json!("event"))
        );
    }
}
