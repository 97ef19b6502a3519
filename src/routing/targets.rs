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

/// The most destinations one expression may yield for one event: a payload cannot fan a
/// message out to everyone.
pub const MAX_PER_EXPRESSION: usize = 25;

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
            let tokens: Vec<&str> = text
                .split([',', ' ', '\n', '\t', ';'])
                .filter(|s| !s.is_empty())
                .collect();
            if tokens.len() > MAX_PER_EXPRESSION {
                tracing::warn!(expression = %t, yielded = tokens.len(),
                    "a destination expression yielded more than {MAX_PER_EXPRESSION} destinations; the first {MAX_PER_EXPRESSION} are used");
            }
            for token in tokens.into_iter().take(MAX_PER_EXPRESSION) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_yields_ids_names_emails_up_to_the_cap_else_the_fallback_or_none() {
        let expr = "{{people}}".to_string();
        let mut exprs = Handlebars::new();
        exprs.register_template_string(&expr, &expr).unwrap();
        let targets = Targets {
            to: vec![Destination::Template(expr)],
            fallback: vec![],
            mentions: vec![],
        };
        let dir = Snapshot::default();
        let many: Vec<String> = (0..30).map(|i| format!("p{i}@example.com")).collect();
        let data = handlebars::Context::from(serde_json::json!({"people": many.join(", ")}));
        let r = targets.resolve(&exprs, &data, &dir);
        assert_eq!(r.to.len(), MAX_PER_EXPRESSION);
        assert_eq!(r.to[0], "email:p0@example.com");
        let data = handlebars::Context::from(serde_json::json!({"people": ""}));
        let r = targets.resolve(&exprs, &data, &dir);
        assert!(
            r.to[0].starts_with("none:no destination: {{people}} yielded nothing"),
            "{:?}",
            r.to
        );
    }
}
