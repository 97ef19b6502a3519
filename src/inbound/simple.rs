//! The shape most source kinds share: an authenticator plus a parse function.

use super::{Authenticator, Event, Inbound, Parsed, Rejection, SourceKind};

pub struct Simple {
    pub auth: Authenticator,
    pub parse: fn(&Inbound<'_>) -> Result<Parsed, Rejection>,
}

impl SourceKind for Simple {
    fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        self.auth.verify(req)
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
