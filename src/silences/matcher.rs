//! What a silence matches, and a silence compiled to check events against.

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::routing::Glob;
use crate::routing::when;

/// What a silence applies to. Stored as JSON for silences added from the command line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Event name patterns (`*` globs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<String>>,
    /// A `when` condition on the event's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Value>,
}

impl Matcher {
    /// `path=value`, `path!=value`, `path=~regex`, `path!~regex` (command-line form) into
    /// `when` conditions, all of which must hold. `=` compares the field's text exactly,
    /// as `match` does on routes.
    pub fn add_field_matchers(&mut self, specs: &[String]) -> Result<(), String> {
        let mut conds = Vec::new();
        for s in specs {
            let (path, negate, op, value) = if let Some((p, v)) = s.split_once("!~") {
                (p, true, "regex", v)
            } else if let Some((p, v)) = s.split_once("=~") {
                (p, false, "regex", v)
            } else if let Some((p, v)) = s.split_once("!=") {
                (p, true, "text", v)
            } else if let Some((p, v)) = s.split_once('=') {
                (p, false, "text", v)
            } else {
                return Err(format!(
                    "{s:?}: write path=value, path!=value, path=~regex or path!~regex"
                ));
            };
            let path = path.trim();
            if path.is_empty() {
                return Err(format!("{s:?}: the field path is empty"));
            }
            let cond = json!({ "field": path, op: value });
            conds.push(if negate { json!({ "not": cond }) } else { cond });
        }
        if !conds.is_empty() {
            let mut all = conds;
            if let Some(w) = self.when.take() {
                all.push(w);
            }
            self.when = Some(json!({ "all": all }));
        }
        Ok(())
    }
}

/// A silence ready to check events against.
#[derive(Debug)]
pub struct CompiledSilence {
    /// `config #N` or `#id` (stored).
    pub label: String,
    pub comment: String,
    pub starts_at: i64,
    pub ends_at: i64,
    source: Option<String>,
    events: Option<Vec<Glob>>,
    routes: Option<Vec<String>>,
    when: Option<when::Cond>,
}

impl CompiledSilence {
    /// The payload fields the silence's conditions read.
    pub fn field_paths(&self) -> impl Iterator<Item = &crate::fieldpath::FieldPath> {
        self.when.iter().flat_map(|w| w.field_paths())
    }

    /// Whether the silence has conditions on the payload (a field test, no allocation:
    /// asked on every webhook while stored silences exist).
    pub fn reads_payload(&self) -> bool {
        self.when.is_some()
    }

    /// Errors are `(key suffix, problem)`.
    pub fn compile(
        label: String,
        comment: String,
        starts_at: i64,
        ends_at: i64,
        m: &Matcher,
    ) -> Result<CompiledSilence, (String, String)> {
        if ends_at <= starts_at {
            return Err(("ends".into(), "must be after the start".into()));
        }
        let when = match &m.when {
            None => None,
            Some(v) => Some(when::compile(v).map_err(|(k, p)| {
                (
                    if k.is_empty() {
                        "when".into()
                    } else {
                        format!("when.{k}")
                    },
                    p,
                )
            })?),
        };
        Ok(CompiledSilence {
            label,
            comment,
            starts_at,
            ends_at,
            source: m.source.clone(),
            events: m
                .events
                .as_ref()
                .map(|l| l.iter().map(|e| Glob::new(e)).collect()),
            routes: m.routes.clone(),
            when,
        })
    }

    /// Whether this silence mutes `route`'s message about this event at `now_ms`.
    pub fn silences(
        &self,
        now_ms: i64,
        source: &str,
        event: &str,
        route: &str,
        payload: &Value,
    ) -> bool {
        now_ms >= self.starts_at
            && now_ms < self.ends_at
            && self.source.as_deref().is_none_or(|s| s == source)
            && self
                .events
                .as_ref()
                .is_none_or(|g| g.iter().any(|g| g.matches(event)))
            && self
                .routes
                .as_ref()
                .is_none_or(|r| r.iter().any(|r| r == route))
            && self
                .when
                .as_ref()
                .is_none_or(|w| w.check(payload).is_none())
    }
}

/// Parses RFC 3339 (`2026-12-01T20:00:00Z`, `2026-12-01T21:00:00+01:00`) to unix ms.
pub fn parse_instant(s: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-12-01T20:00:00Z: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_matchers_become_conditions() {
        let mut m = Matcher::default();
        m.add_field_matchers(&[
            "commonLabels.alertname=DiskFull".into(),
            "commonLabels.severity!=info".into(),
            "commonLabels.instance=~^db-".into(),
        ])
        .unwrap();
        let s = CompiledSilence::compile("t".into(), "c".into(), 0, i64::MAX, &m).unwrap();
        let hit = json!({"commonLabels": {"alertname": "DiskFull", "instance": "db-1"}});
        let miss = json!({"commonLabels": {"alertname": "DiskFull", "instance": "web-1"}});
        assert!(s.silences(1, "am", "alertmanager.firing", "r", &hit));
        assert!(!s.silences(1, "am", "alertmanager.firing", "r", &miss));
        assert!(m.clone().add_field_matchers(&["nofield".into()]).is_err());
        let expired = CompiledSilence::compile("t".into(), "c".into(), 0, 10, &m).unwrap();
        assert!(!expired.silences(10, "am", "alertmanager.firing", "r", &hit));
    }

    #[test]
    fn equals_in_a_matcher_is_exact_text_as_in_match() {
        let mut m = Matcher::default();
        m.add_field_matchers(&["pr.number=42".into()]).unwrap();
        let s = CompiledSilence::compile("t".into(), "c".into(), 0, i64::MAX, &m).unwrap();
        assert!(s.silences(1, "gh", "e", "r", &json!({"pr": {"number": 42}})));
        // Text, not numbers: 42.0 is not "42" (as in a route's `match`).
        assert!(!s.silences(1, "gh", "e", "r", &json!({"pr": {"number": 42.0}})));
    }
}
