//! Jenkins Notification plugin (JSON). Auth: Basic (user-info in the endpoint URL) or
//! Bearer. Event: `jenkins.<phase>.<status>` (`jenkins.finalized.failure`), or
//! `jenkins.<phase>` before a result exists. There is no delivery id: job, build number and
//! phase identify a notification, so the plugin's retries collapse.

use serde_json::Value;

use super::kind::Kind;
use super::simple::one;
use super::{AuthSpec, Event, Inbound, Parsed, Rejection, name_part, parse_json_kept};

pub const AUTH: AuthSpec = super::BASIC_OR_BEARER;

/// The fields `parse` reads: the job, its build's number, phase and status.
const READS: &[&str] = &["name", "build.number", "build.phase", "build.status"];

pub const KIND: Kind = Kind::simple("jenkins", &AUTH, parse).reading(READS);

pub fn parse(req: &Inbound<'_>) -> Result<Parsed, Rejection> {
    let (p, whole) = parse_json_kept(req)?;
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
    let job = s("/name").ok_or_else(|| {
        Rejection::bad_request("body has no `name`: not a Jenkins Notification plugin body")
    })?;
    let number = p
        .pointer("/build/number")
        .and_then(Value::as_u64)
        .ok_or_else(|| Rejection::bad_request("body has no `build.number`"))?;
    let phase = s("/build/phase").unwrap_or("unknown");
    let name = match s("/build/status") {
        Some(st) => format!("jenkins.{}.{}", name_part(phase), name_part(st)),
        None => format!("jenkins.{}", name_part(phase)),
    };
    Ok(one(Event {
        name,
        delivery_id: format!("{job}#{number}:{phase}"),
        entity: Some(format!("jenkins:{job}#{number}")),
        payload: p,
        whole,
    }))
}
