//! Adding a silence, from the command line or the admin API: validated as a whole, then
//! stored; running daemons pick it up (see [`super::Stored`]).

use super::{CompiledSilence, Matcher, parse_instant};
use crate::storage::{Store, now_ms};

/// A silence to add, from the command line or the admin API (`POST /api/silences`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// `path=value`, `path!=value`, `path=~regex`, `path!~regex`; all must hold.
    #[serde(default)]
    pub matchers: Vec<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub routes: Vec<String>,
    /// RFC 3339; default now.
    #[serde(default)]
    pub starts: Option<String>,
    /// `2h`, `30m`; or `until`.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    pub comment: String,
    #[serde(default = "unknown_author")]
    pub created_by: String,
}

fn unknown_author() -> String {
    "api".to_string()
}

/// A request that passed every check: what it matches, when, compiled.
#[derive(Debug)]
pub struct Validated {
    pub matcher: Matcher,
    pub starts_at: i64,
    pub ends_at: i64,
    pub compiled: CompiledSilence,
}

/// Checks a request as a whole (paths, regexes, the time range); every problem is a
/// sentence. Nothing is stored.
pub fn validate(r: &SilenceRequest) -> Result<Validated, String> {
    let mut m = Matcher {
        source: r.source.clone().filter(|s| !s.is_empty()),
        events: (!r.events.is_empty()).then(|| r.events.clone()),
        routes: (!r.routes.is_empty()).then(|| r.routes.clone()),
        when: None,
    };
    m.add_field_matchers(&r.matchers)?;
    if m.source.is_none() && m.events.is_none() && m.routes.is_none() && m.when.is_none() {
        return Err(
            "a silence needs at least one of match, source, event, route (it would silence everything)".into(),
        );
    }
    if r.comment.trim().is_empty() {
        return Err("a silence needs a comment saying why".into());
    }
    let start = match &r.starts {
        Some(s) => parse_instant(s)?,
        None => now_ms(),
    };
    let end = match (&r.duration, &r.until) {
        (Some(d), None) => {
            let d = humantime::parse_duration(d.trim())
                .map_err(|e| format!("duration {d:?}: {e} (write e.g. \"2h\")"))?;
            start.saturating_add(d.as_millis().min(i64::MAX as u128) as i64)
        }
        (None, Some(u)) => parse_instant(u)?,
        _ => return Err("give exactly one of duration or until".into()),
    };
    let compiled = CompiledSilence::compile(String::new(), r.comment.clone(), start, end, &m)
        .map_err(|(k, p)| format!("{k}: {p}"))?;
    Ok(Validated {
        matcher: m,
        starts_at: start,
        ends_at: end,
        compiled,
    })
}

/// Validates and stores a silence: (id, starts_at, ends_at). Every problem is a sentence.
pub async fn create(store: &Store, r: SilenceRequest) -> Result<(i64, i64, i64), String> {
    let v = validate(&r)?;
    let json = serde_json::to_string(&v.matcher).map_err(|e| e.to_string())?;
    let id = store
        .add_silence(&json, v.starts_at, v.ends_at, &r.comment, &r.created_by)
        .await
        .map_err(|e| e.to_string())?;
    Ok((id, v.starts_at, v.ends_at))
}
