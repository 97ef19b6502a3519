//! Routing: which routes an event matches, in order, and why not.
//!
//! A route matches when its `source` is the event's source, one of its `events` patterns
//! (`*` matches any run of characters) matches the normalised event name, and every
//! `match` condition holds. Routes are tried in file order; the first match wins unless
//! it sets `continue = true`. [`Router::explain`] reports, for every route, the first
//! condition that failed, for debug logs and the CLI.

mod compile;
pub mod quiet;
pub mod targets;
pub mod when;

use std::sync::Arc;

use serde_json::Value;

use crate::directory::Snapshot;
use crate::fieldpath::FieldPath;
use crate::grouping::Hold;
use crate::reads::Reads;
use crate::render::Format;
use handlebars::Handlebars;
use quiet::MuteWindow;
pub use targets::{Resolved, Targets};

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub source: String,
    events: Option<Vec<Glob>>,
    /// `match`: exact texts or regexes, all of which must hold.
    matches: Option<when::Cond>,
    when: Option<when::Cond>,
    /// `to`, `fallback` and `mentions`, resolved per event with [`Router::targets`].
    pub targets: Targets,
    pub template: Option<String>,
    /// A card (when the template has one) or text.
    pub format: Format,
    pub continue_: bool,
    /// Over Roam's size cap: split into a thread (true) instead of cutting.
    pub split_long: bool,
    pub thread: bool,
    pub update: bool,
    /// Grouping, dedup and caps; None: one message per event, at once.
    pub hold: Option<Hold>,
    /// Mute windows during which this route sends nothing.
    pub mute: Vec<Arc<MuteWindow>>,
    /// Muted events are summarised in one message when the window ends.
    pub mute_summary: bool,
    /// Transcripts: direct messages to action-item assignees.
    pub dm_assignees: bool,
}

impl Route {
    /// Every field path the route reads, with the key it is written under (`match`,
    /// `when`, `group_by`, `fingerprint`).
    pub fn field_paths(&self) -> Vec<(&'static str, &FieldPath)> {
        let mut out: Vec<(&'static str, &FieldPath)> = Vec::new();
        for (key, cond) in [("match", &self.matches), ("when", &self.when)] {
            if let Some(c) = cond {
                out.extend(c.field_paths().into_iter().map(|p| (key, p)));
            }
        }
        if let Some(h) = &self.hold {
            out.extend(h.group_by.iter().flatten().map(|p| ("group_by", p)));
            out.extend(h.fingerprint.iter().map(|p| ("fingerprint", p)));
        }
        out
    }

    /// The mute window `now` falls in and when it ends (unix ms), if any.
    pub fn muted_at(&self, now_ms: i64) -> Option<(&MuteWindow, i64)> {
        let at = chrono::DateTime::from_timestamp_millis(now_ms)?;
        self.mute.iter().find_map(|w| {
            w.active_until(at)
                .map(|end| (w.as_ref(), end.timestamp_millis()))
        })
    }
}

/// An event-name pattern; `*` matches any run of characters.
#[derive(Debug, Clone)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.trim().to_string())
    }

    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with single-star backtracking: O(len(p) * len(s)) worst case.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether and why a route matched an event.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub route: String,
    /// None: matched. Some: the first condition that failed.
    pub failed: Option<String>,
}

#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// The destination expressions of every route, each registered under its text.
    exprs: Handlebars<'static>,
}

impl Router {
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Where `route` sends this event: Roam ids, or placeholders the delivery worker
    /// resolves (see `targets`).
    pub fn targets(&self, route: &Route, data: &handlebars::Context, dir: &Snapshot) -> Resolved {
        route.targets.resolve(&self.exprs, data, dir)
    }

    /// Adds what `route` reads of a payload to match and address it: its `match`,
    /// `when`, `group_by` and `fingerprint` fields and the expressions in `to`,
    /// `fallback` and `mentions`.
    pub fn reads(&self, route: &Route, out: &mut Reads) {
        for (_, p) in route.field_paths() {
            out.add_field(p);
        }
        for e in route.targets.expressions() {
            match self.exprs.get_template(e) {
                Some(t) => crate::render::reads::template_reads(t, out),
                None => *out = Reads::All,
            }
        }
    }

    /// Routes that take this event, in order, honouring `continue`.
    pub fn matching(&self, source: &str, event: &str, payload: &Value) -> Vec<&Route> {
        let mut out = Vec::new();
        for r in &self.routes {
            if r.reject_reason(source, event, payload).is_none() {
                out.push(r);
                if !r.continue_ {
                    break;
                }
            }
        }
        out
    }

    /// Every route's verdict, in order. Routes after a matching route without
    /// `continue` are reported as not reached.
    pub fn explain(&self, source: &str, event: &str, payload: &Value) -> Vec<Verdict> {
        let mut out = Vec::new();
        let mut stopped_by: Option<&str> = None;
        for r in &self.routes {
            let failed = match stopped_by {
                Some(prev) => Some(format!(
                    "not reached: route {prev:?} matched first (set continue = true on it to go on)"
                )),
                None => r.reject_reason(source, event, payload),
            };
            if failed.is_none() && !r.continue_ {
                stopped_by = Some(&r.name);
            }
            out.push(Verdict {
                route: r.name.clone(),
                failed,
            });
        }
        out
    }
}

impl Route {
    fn reject_reason(&self, source: &str, event: &str, payload: &Value) -> Option<String> {
        if self.source != source {
            return Some(format!(
                "source is {source:?}, route wants {:?}",
                self.source
            ));
        }
        if let Some(globs) = &self.events
            && !globs.iter().any(|g| g.matches(event))
        {
            let list: Vec<&str> = globs.iter().map(|g| g.0.as_str()).collect();
            return Some(format!(
                "event {event:?} is not in events [{}]",
                list.join(", ")
            ));
        }
        self.matches
            .as_ref()
            .and_then(|m| m.check(payload))
            .or_else(|| self.when.as_ref().and_then(|w| w.check(payload)))
    }
}

#[cfg(test)]
mod tests;
