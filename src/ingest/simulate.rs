//! What the pipeline would do with a payload, without committing anything: the parse,
//! every route's verdict, the messages rendered. Shared by `roam-notify routes test`,
//! `check`'s `[[tests]]` and the console's explain form.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::Value;

use super::Pipeline;
use crate::inbound::{Event, Source};

/// One message the pipeline would send.
pub struct SimMessage {
    pub route: String,
    pub chat: String,
    /// The `chat.post` body, exactly as stored and sent.
    pub request: String,
    pub error: Option<String>,
}

/// What the pipeline does with one payload, offline (no signature check).
pub struct Simulated {
    pub event: String,
    pub delivery_id: String,
    pub entity: Option<String>,
    pub verdicts: Vec<crate::routing::Verdict>,
    pub messages: Vec<SimMessage>,
    /// (route, group, text): held by a grouping route; it goes out with its group.
    pub held: Vec<(String, String, String)>,
    /// Matched routes that are silenced or muted now.
    pub quiet: Vec<String>,
}

/// Parses `body` as `source` would (headers as given) and routes and renders each event.
/// `Ok(None)`: the source answers it as a connectivity check (nothing posted).
pub fn simulate(
    pipeline: &Pipeline,
    source: &str,
    event: Option<&str>,
    body: &[u8],
    headers: &[(String, String)],
) -> Result<Option<Vec<Simulated>>, String> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("invalid header name {k:?}"))?;
        let value =
            HeaderValue::from_str(v).map_err(|_| format!("invalid value for header {k}"))?;
        map.insert(name, value);
    }
    let (src, events) = parse_events(pipeline, source, body, &map)?;
    let Some(events) = events else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for mut ev in events {
        if let Some(name) = event {
            ev.name = name.to_string();
        }
        let verdicts = pipeline.router.explain(source, &ev.name, &ev.payload);
        let (name, delivery_id, entity) =
            (ev.name.clone(), ev.delivery_id.clone(), ev.entity.clone());
        let planned = pipeline.plan(src, ev, super::Rendering::Now);
        let messages = planned
            .event
            .messages
            .iter()
            .map(|m| SimMessage {
                route: m.route.clone(),
                chat: m.chat.clone(),
                request: m.request.clone(),
                error: m.render_error.clone(),
            })
            .collect();
        let held = planned
            .event
            .held
            .iter()
            .map(|h| {
                let text = serde_json::from_str::<crate::grouping::Item>(&h.item)
                    .map(|i| i.text)
                    .unwrap_or_default();
                let group = if crate::grouping::GroupKey::is_single(&h.key) {
                    "its own".to_string()
                } else {
                    format!("{:?}", h.key.replace(crate::storage::KEY_SEP, ", "))
                };
                (h.route.clone(), group, text)
            })
            .collect();
        out.push(Simulated {
            event: name,
            delivery_id,
            entity,
            verdicts,
            messages,
            held,
            quiet: planned.quiet.iter().map(ToString::to_string).collect(),
        });
    }
    Ok(Some(out))
}

/// The events `source` makes of a request (no signature check), and the source.
/// `Ok((_, None))`: the source answers it as a connectivity check.
pub fn parse_events<'p>(
    pipeline: &'p Pipeline,
    source: &str,
    body: &[u8],
    headers: &HeaderMap,
) -> Result<(&'p Source, Option<Vec<Event>>), String> {
    let Some(src) = pipeline.sources.get(source) else {
        let mut known: Vec<&str> = pipeline.sources.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(format!(
            "unknown source {source:?} (configured: {})",
            known.join(", ")
        ));
    };
    let uri: Uri = format!("/hooks/{source}")
        .parse()
        .map_err(|_| "invalid source name".to_string())?;
    // A copy: the senders take the body as received (`Bytes`); this path is not hot.
    let body = axum::body::Bytes::copy_from_slice(body);
    let req = crate::inbound::Inbound {
        method: &Method::POST,
        uri: &uri,
        headers,
        body: &body,
        url_token: None,
        reads: None,
    };
    // The transcript source: a payload that is a `transcript.info` body (a transcript id
    // with its meeting) is routed as the worker would; a `transcript:saved` webhook only
    // names the transcript.
    let transcript = (src.kind == "roam")
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten()
        .filter(|v| v.get("id").is_some() && v.get("meetingId").is_some());
    if let Some(info) = transcript {
        let mut ev =
            crate::inbound::roam::transcript::transcript_event(info, &pipeline.transcript_domains);
        crate::inbound::roam::transcript::assign_known_users(&mut ev.payload);
        return Ok((src, Some(vec![ev])));
    }
    let parsed = src
        .parse(&req)
        .map_err(|e| format!("the {} source refuses this payload: {e}", src.kind))?;
    if matches!(parsed.ack, crate::inbound::Ack::Pong { .. }) {
        return Ok((src, None));
    }
    Ok((src, Some(parsed.events)))
}
