//! What a sender kind is: one entry in [`super::KINDS`] says everything the daemon knows
//! about it (its name in `[[sources]] kind`, how it signs, how its body is read, which
//! fields it derives for templates).
//!
//! Adding a sender: write `src/inbound/<kind>.rs` with its `KIND`, add it to `KINDS`,
//! and add `templates/<kind>/*.hbs` with sample payloads and a signed fixture test.

use serde_json::Value;

use super::auth::AuthSpec;
use super::{Inbound, Parsed, Rejection, SourceKind};
use crate::config::{Config, ConfigError};

/// Reads a verified request into events.
pub type ParseFn = fn(&Inbound<'_>) -> Result<Parsed, Rejection>;

/// Builds a source of a kind with keys of its own (`sources[i]`).
pub type BuildFn = fn(&Config, usize) -> Result<Box<dyn SourceKind>, ConfigError>;

pub struct Kind {
    /// `[[sources]] kind = "<name>"`; events are named `<name>.<event>…`.
    pub name: &'static str,
    pub build: Build,
    /// Fields derived for templates (`_counts`, `_markdown`, …). `parse` adds them to
    /// live events; `check` and `render` add them to sample payloads.
    pub enrich: Option<fn(&mut Value)>,
}

pub enum Build {
    /// Signed as `auth` says (the `auth`/`secret` keys); `parse` reads the body.
    Simple {
        auth: &'static AuthSpec,
        parse: ParseFn,
    },
    /// A kind that reads keys of its own.
    Custom(BuildFn),
}

impl Kind {
    /// A kind signed as `auth` says whose body `parse` reads.
    pub const fn simple(name: &'static str, auth: &'static AuthSpec, parse: ParseFn) -> Kind {
        Kind {
            name,
            build: Build::Simple { auth, parse },
            enrich: None,
        }
    }

    /// With fields derived for templates.
    pub const fn enriched(mut self, enrich: fn(&mut Value)) -> Kind {
        self.enrich = Some(enrich);
        self
    }
}
