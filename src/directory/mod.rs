//! Names instead of ids: what `#Deploys`, `ann@example.com` and `{{pull_request.user.email}}`
//! stand for in Roam.
//!
//! - [`Destination`] is one entry of a route's `to`, `fallback` or `mentions`: a Roam id, a
//!   `#Name` (a chat as `chat.list` names it), an email (a person, `user.lookup`), or a
//!   Handlebars expression evaluated per event that yields any of these.
//! - [`Directory`] is the cache of what Roam said, kept durably in the `directory` table
//!   so a restart while Roam is down still knows every name; [`refresh`] asks Roam again
//!   (at start, on reload, and periodically), through the pacer.
//! - Names and emails written in the config are checked at start and on reload
//!   ([`verify`]): an unknown or ambiguous `#Name` is a config error naming its key and the
//!   closest names. Emails an expression yields are looked up when the message is sent.

mod refresh;
mod resolver;
mod snapshot;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, ConfigError};
use crate::storage::{Store, StoreError};
pub use refresh::{Lookup, refresh, user_id};
pub use resolver::Resolver;
pub use snapshot::{ChatHit, NameError, Snapshot};

/// Destinations the request path could not resolve, stored as a message's chat for the
/// delivery worker to resolve just before sending.
pub mod placeholder {
    /// `email:ADDR`: a person Roam must be asked about (`user.lookup`).
    pub const EMAIL: &str = "email:";
    /// `name:#NAME`: a chat name the directory did not know.
    pub const NAME: &str = "name:";
    /// `none:REASON`: nothing to send to; dead-lettered with the reason.
    pub const NONE: &str = "none:";
}

/// One destination as written in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A Roam tagged id (`G-…`, `C-…`, `D-…`, `U-…`), or `all` in `mentions`.
    Id(String),
    /// `#Name`: a chat by its name (case-insensitive, exact otherwise).
    Name(String),
    /// A person by email (lowercase).
    Email(String),
    /// A Handlebars expression, rendered per event into any of the above.
    Template(String),
}

impl Destination {
    /// Reads one destination. Roam ids are recognised by their tag and UUID.
    pub fn parse(s: &str) -> Result<Destination, String> {
        let s = s.trim();
        if s.contains("{{") {
            return Ok(Destination::Template(s.to_string()));
        }
        if let Some(name) = s.strip_prefix('#') {
            let name = name.trim();
            if name.is_empty() {
                return Err("\"#\" needs a chat name after it".into());
            }
            return Ok(Destination::Name(name.to_string()));
        }
        if is_roam_id(s) {
            return Ok(Destination::Id(s.to_string()));
        }
        if is_email(s) {
            return Ok(Destination::Email(s.to_ascii_lowercase()));
        }
        Err(format!(
            "{s:?} is not a Roam id (G-…, C-…, D-…, U-… with a UUID), a #Name, an email address or a {{{{template}}}}"
        ))
    }
}

/// A Roam tagged id: a tag letter, `-`, a UUID.
pub fn is_roam_id(s: &str) -> bool {
    let Some((tag, uuid)) = s.split_once('-') else {
        return false;
    };
    tag.len() == 1
        && tag.chars().all(|c| c.is_ascii_uppercase())
        && uuid::Uuid::parse_str(uuid).is_ok()
}

/// Good enough to tell an email from a name or an id: one `@`, text on both sides, a dot
/// in the domain, no spaces.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
}

/// The directory in force: shared by every pipeline a reload builds and by the delivery
/// worker.
#[derive(Debug, Clone, Default)]
pub struct Directory(Arc<ArcSwap<Snapshot>>);

impl Directory {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }

    /// Reads the durable cache.
    pub async fn load(&self, store: &Store) -> Result<(), StoreError> {
        self.0
            .store(Arc::new(Snapshot::from_entries(store.directory().await?)));
        Ok(())
    }

    fn set(&self, s: Snapshot) {
        self.0.store(Arc::new(s));
    }
}

/// Every name and email written in the config (not expressions), with the key it is
/// written under: what [`refresh`] asks Roam about and [`verify`] checks.
pub fn written(cfg: &Config) -> Vec<(String, Destination)> {
    let mut out = Vec::new();
    let mut add = |key: String, s: &str| {
        if let Ok(d @ (Destination::Name(_) | Destination::Email(_))) = Destination::parse(s) {
            out.push((key, d));
        }
    };
    for (name, list) in &cfg.destinations {
        for s in list.to_vec() {
            add(format!("destinations.{name}"), &s);
        }
    }
    let defaults = &cfg.route_defaults;
    for s in defaults.to.iter().flat_map(|t| t.to_vec()) {
        add("route_defaults.to".into(), &s);
    }
    for s in defaults.mentions.iter().flatten() {
        add("route_defaults.mentions".into(), s);
    }
    for (i, r) in cfg.routes.iter().enumerate() {
        for s in r.to.iter().flat_map(|t| t.to_vec()) {
            add(format!("routes[{i}].to"), &s);
        }
        for s in r.fallback.iter().flat_map(|t| t.to_vec()) {
            add(format!("routes[{i}].fallback"), &s);
        }
        for s in r.mentions.iter().flatten() {
            add(format!("routes[{i}].mentions"), s);
        }
    }
    out
}

/// Checks every `#Name` and email written in the config against the directory: an
/// unknown or ambiguous name, or an email with no Roam user, is a config error naming the
/// key (and, for a name, the closest ones Roam has). A name only an earlier listing had
/// keeps its last known id, with a warning.
pub fn verify(cfg: &Config, snapshot: &Snapshot) -> Result<(), ConfigError> {
    for (key, d) in written(cfg) {
        match d {
            Destination::Name(name) => match snapshot.chat(&name) {
                Ok(ChatHit {
                    stale: true, id, ..
                }) => tracing::warn!(
                    key, name = %name, id,
                    "#{name} is no longer in Roam's chat list; using its last known id"
                ),
                Ok(_) => {}
                Err(e) => return Err(cfg.error(&key, e.to_string())),
            },
            Destination::Email(email) if snapshot.user(&email).is_none() => {
                return Err(cfg.error(
                    &key,
                    format!("no Roam user has the email {email} (user.lookup)"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
