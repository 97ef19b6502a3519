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
    /// The payload fields `parse` itself reads (field paths), when it says so: then a
    /// source of this kind builds only what it and its routes read (`crate::reads`).
    /// None: every payload is built whole.
    pub reads: Option<&'static [&'static str]>,
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
            reads: None,
        }
    }

    /// Whose `parse` reads only `fields` of the payload (and calls
    /// [`super::parse_json_reading`] with the request's `reads`).
    pub const fn reading(mut self, fields: &'static [&'static str]) -> Kind {
        self.reads = Some(fields);
        self
    }

    /// With fields derived for templates.
    pub const fn enriched(mut self, enrich: fn(&mut Value)) -> Kind {
        self.enrich = Some(enrich);
        self
    }
}

/// The payload fields the parser of `kind` reads, when it lists them and derives no
/// fields of its own (`enrich`); None: its payloads are built whole.
pub fn kind_reads(kind: &str) -> Option<&'static [&'static str]> {
    super::KINDS
        .iter()
        .find(|k| k.name == kind)
        .filter(|k| k.enrich.is_none())
        .and_then(|k| k.reads)
}

/// How a source of this kind proves who sent a request, in words, for the console's
/// routing page: `configured` is the source's `auth`, if written.
pub fn auth_summary(kind: &str, configured: Option<&str>) -> String {
    use super::auth::HmacStyle;
    let Some(Build::Simple { auth, .. }) = super::KINDS
        .iter()
        .find(|k| k.name == kind)
        .map(|k| &k.build)
    else {
        return match configured {
            Some("none") => "none: anyone who reaches the URL can post".into(),
            Some(a) => a.to_string(),
            None => format!("{kind}'s own signature scheme"),
        };
    };
    let scheme = configured.or(auth.default).unwrap_or("none");
    match (scheme, &auth.hmac) {
        ("none", _) => "none: anyone who reaches the URL can post".into(),
        ("hmac-sha256", HmacStyle::Hex { header, prefix }) => {
            format!("HMAC-SHA256 of the body in {header} ({prefix}…)")
        }
        ("hmac-sha256", HmacStyle::HexList { header, version }) => {
            format!("HMAC-SHA256 of the body in {header} ({version}=…)")
        }
        ("hmac-sha256", HmacStyle::Grafana { header }) => {
            format!("HMAC-SHA256 in {header}, with an optional signed timestamp")
        }
        ("hmac-sha256", HmacStyle::Buildkite) => {
            "HMAC-SHA256 of timestamp and body in X-Buildkite-Signature".into()
        }
        ("hmac-sha256", HmacStyle::HubSpot) => {
            "HubSpot v3 signature over method, public_url, body and timestamp".into()
        }
        ("token", _) => format!("shared token in {}", auth.token_header),
        ("basic-or-bearer", _) => "HTTP Basic or a Bearer token".into(),
        ("basic", _) => "HTTP Basic".into(),
        ("bearer", _) => "a Bearer token".into(),
        ("url-token", _) => "a token in the URL (/hooks/<source>/<token>)".into(),
        (other, _) => other.to_string(),
    }
}
