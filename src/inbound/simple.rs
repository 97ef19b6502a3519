//! The shape most source kinds share: an authenticator plus a parse function.

use super::auth::{AuthSpec, Authenticator};
use super::kind::ParseFn;
use super::{Event, Inbound, Parsed, Rejection, SourceKind, reject_unused};
use crate::config::{Config, ConfigError};

pub struct Simple {
    pub auth: Authenticator,
    pub parse: ParseFn,
}

/// A kind from its authentication spec and parse function: checks that only the keys the
/// kind uses are set and builds the authenticator.
pub fn build(
    cfg: &Config,
    i: usize,
    kind: &str,
    spec: &AuthSpec,
    parse: ParseFn,
) -> Result<Simple, ConfigError> {
    reject_unused(cfg, i, kind)?;
    Ok(Simple {
        auth: Authenticator::from_config(cfg, i, kind, spec)?,
        parse,
    })
}

impl SourceKind for Simple {
    fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        self.auth.verify(req)
    }

    fn unauthenticated(&self) -> bool {
        self.auth.is_none()
    }

    fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection> {
        (self.parse)(req)
    }
}

/// One event, default acknowledgement.
pub fn one(event: Event) -> Parsed {
    Parsed {
        events: vec![event],
        ack: super::Ack::Default,
    }
}
