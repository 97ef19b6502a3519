//! Where a route sends: `to`, `fallback` and `mentions`, compiled from the config and
//! resolved per event against the directory.
//!
//! What cannot be resolved while the event is accepted is stored as a placeholder the
//! delivery worker resolves before sending (see `delivery::address`): `email:ADDR` (a
//! person Roam must be asked about), `name:#NAME` (a chat name not in the directory),
//! `none:REASON` (nothing to send to: dead-lettered with the reason, never dropped).

use handlebars::Handlebars;

use crate::directory::placeholder::{EMAIL, NAME, NONE};
use crate::directory::{Destination, Snapshot};

/// A route's destinations as written (after `[destinations]` names are expanded).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub to: Vec<Destination>,
    pub fallback: Vec<Destination>,
    /// `Id("all")` is `<@all>`.
    pub mentions: Vec<Destination>,
}

/// A route's destinations for one event: Roam ids, or placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub to: Vec<String>,
    pub mentions: Vec<String>,
}

impl Targets {
    /// Expressions in every list, to register once per router.
    pub fn expressions(&self) -> impl Iterator<Item = &str> {
        self.to
            .iter()
            .chain(&self.fallback)
            .chain(&self.mentions)
            .filter_map(|d| match d {
                Destination::Template(t) => Some(t.as_str()),
                _ => None,
            })
    }

    /// How many destinations are written (expressions count once).
    pub fn written(&self) -> usize {
        self.to.len()
    }

    /// The destinations of one event. Expressions are rendered (`exprs` holds each,
    /// registered under its own text) and yield ids, `#Name`s or emails, several
    /// separated by commas or spaces; when `to` yields nothing, `fallback` is used, and
    /// without one the message gets the `none:` placeholder with the reason.
    pub fn resolve(
        &self,
        exprs: &Handlebars<'static>,
        data: &handlebars::Context,
        dir: &Snapshot,
    ) -> Resolved {
        let mut to = Vec::new();
        for d in &self.to {
            expand(d, exprs, data, dir, &mut to);
        }
        if to.is_empty() {
            for d in &self.fallback {
                expand(d, exprs, data, dir, &mut to);
            }
        }
        if to.is_empty() {
            let written: Vec<&str> = self.expressions().collect();
            to.push(format!(
                "{NONE}no destination: {} yielded nothing and the route has no fallback",
                written.join(", ")
            ));
        }
        let mut mentions = Vec::new();
        for d in &self.mentions {
            expand(d, exprs, data, dir, &mut mentions);
        }
        dedup(&mut to);
        dedup(&mut mentions);
        Resolved { to, mentions }
    }
}

fn expand(
    d: &Destination,
    exprs: &Handlebars<'static>,
    data: &handlebars::Context,
    dir: &Snapshot,
    out: &mut Vec<String>,
) {
    match d {
        Destination::Template(t) => {
            let text = match exprs.render_with_context(t, data) {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(expression = %t, error = %e, "a destination expression yielded nothing");
                    return;
                }
            };
            for token in text
                .split([',', ' ', '\n', '\t', ';'])
                .filter(|s| !s.is_empty())
            {
                match Destination::parse(token) {
                    Ok(Destination::Template(_)) | Err(_) => {
                        tracing::warn!(expression = %t, value = %token, "a destination expression yielded something that is not a Roam id, #Name or email; skipped");
                    }
                    Ok(d) => expand(&d, exprs, data, dir, out),
                }
            }
        }
        Destination::Id(id) => out.push(id.clone()),
        Destination::Name(name) => match dir.chat(name) {
            Ok(hit) => out.push(hit.id.to_string()),
            Err(_) => out.push(format!("{NAME}#{name}")),
        },
        Destination::Email(email) => match dir.user(email) {
            Some(id) => out.push(id.to_string()),
            None => out.push(format!("{EMAIL}{email}")),
        },
    }
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
}
