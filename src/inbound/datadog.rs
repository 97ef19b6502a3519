//! Datadog Webhooks integration. The body is a template the user writes in Datadog; the
//! README gives the one this kind expects (Datadog's `$` variables):
//! `{"id": "$ID", "event_type": "$EVENT_TYPE", "title": "$EVENT_TITLE", "transition":
//! "$ALERT_TRANSITION", "priority": "$ALERT_PRIORITY", "alert_id": "$ALERT_ID",
//! "cycle_key": "$ALERT_CYCLE_KEY", "hostname": "$HOSTNAME", "tags": "$TAGS", "link":
//! "$LINK", "body": "$TEXT_ONLY_MSG", "date": "$DATE", "org": "$ORG_NAME"}`.
//! Auth: Basic or Bearer (custom headers). Event: `datadog.<event_type>[.<transition>]`
//! (`datadog.metric_alert_monitor.triggered`); delivery id: `id` plus the transition.

use super::kind::Kind;
use super::simple::one;
use super::{
    AuthSpec, Event, Inbound, Parsed, Rejection, delivery_from_headers, name_part, parse_json,
};
use crate::fieldpath::scalar_text;

pub const AUTH: AuthSpec = super::BASIC_OR_BEARER;

pub const KIND: Kind = Kind::simple("datadog", &AUTH, parse);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let p = parse_json(req.body)?;
    if !p.is_object() {
        return Err(Rejection::bad_request(
            "body is not a JSON object (see the README for the Datadog payload to configure)",
        ));
    }
    let s = |k: &str| {
        p.get(k)
            .and_then(scalar_text)
            .filter(|v| !v.is_empty() && v != "null")
    };
    let kind = s("event_type").unwrap_or_else(|| "event".into());
    let name = match s("transition") {
        Some(t) => format!("datadog.{}.{}", name_part(&kind), name_part(&t)),
        None => format!("datadog.{}", name_part(&kind)),
    };
    let delivery_id = match s("id") {
        Some(id) => format!("{id}:{}", s("transition").unwrap_or_default()),
        None => delivery_from_headers(req, &[]),
    };
    let entity = s("cycle_key")
        .or_else(|| s("alert_id"))
        .map(|k| format!("datadog:alert/{k}"));
    Ok(one(Event {
        name,
        delivery_id,
        entity,
        payload: p,
        whole: None,
    }))
}
