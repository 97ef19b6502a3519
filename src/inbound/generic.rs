//! Any JSON sender: authentication, event name and delivery id are configured.
//!
//! ```toml
//! [[sources]]
//! name = "deploys"
//! kind = "generic"
//! auth = "bearer"                 # or "hmac-sha256" (signature_header/_prefix) or "none"
//! secret = "${env:DEPLOY_TOKEN}"
//! event_field = "type"            # or event_header = "X-Event-Type"
//! delivery_id_header = "X-Request-Id"   # or delivery_id_field = "id"
//! ```
//! Without a delivery id setting each request is its own delivery (no deduplication).

use serde_json::Value;

use super::kind::{Build, Kind};
use super::{
    Ack, AuthSpec, Authenticator, Event, HmacStyle, Inbound, Parsed, Rejection, SourceKind,
    auth::header_str, name_part, parse_json,
};
use crate::config::{Config, ConfigError};
use crate::fieldpath::{FieldPath, scalar_text};

const AUTH: AuthSpec = AuthSpec {
    default: None,
    allowed: &[
        "bearer",
        "basic",
        "hmac-sha256",
        "standard-webhooks",
        "url-token",
    ],
    hmac: HmacStyle::Hex {
        header: "X-Signature-256",
        prefix: "sha256=",
    },
    token_header: "",
};

pub struct Generic {
    pub auth: Authenticator,
    event: Lookup,
    delivery_id: Option<Lookup>,
}

enum Lookup {
    Field(FieldPath),
    Header(String),
    Fixed(String),
}

impl Lookup {
    fn from_config(
        cfg: &Config,
        i: usize,
        what: &str,
        field: &Option<String>,
        header: &Option<String>,
    ) -> Result<Option<Lookup>, ConfigError> {
        match (field, header) {
            (Some(_), Some(_)) => Err(cfg.error(
                &format!("sources[{i}].{what}_header"),
                format!("set either {what}_field or {what}_header, not both"),
            )),
            (Some(f), None) => FieldPath::parse(f)
                .map(|p| Some(Lookup::Field(p)))
                .map_err(|e| cfg.error(&format!("sources[{i}].{what}_field"), e)),
            (None, Some(h)) => {
                if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(cfg.error(
                        &format!("sources[{i}].{what}_header"),
                        format!("{h:?} is not a valid header name"),
                    ));
                }
                Ok(Some(Lookup::Header(h.to_ascii_lowercase())))
            }
            (None, None) => Ok(None),
        }
    }

    fn get(&self, req: &Inbound<'_>, payload: &Value) -> Result<String, Rejection> {
        match self {
            Lookup::Fixed(s) => Ok(s.clone()),
            Lookup::Header(h) => header_str(req.headers, h)
                .map_err(|_| Rejection::bad_request(format!("{h} header is not valid text")))?
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_string())
                .ok_or_else(|| Rejection::bad_request(format!("missing {h} header"))),
            Lookup::Field(p) => p
                .lookup(payload)
                .and_then(scalar_text)
                .filter(|v| !v.is_empty() && v != "null")
                .ok_or_else(|| {
                    Rejection::bad_request(format!("body has no field `{p}` (text or number)"))
                }),
        }
    }
}

pub const KIND: Kind = Kind {
    name: "generic",
    build: Build::Custom(|cfg, i| Ok(Box::new(Generic::from_config(cfg, i)?))),
    enrich: None,
    reads: None,
};

impl Generic {
    pub fn from_config(cfg: &Config, i: usize) -> Result<Self, ConfigError> {
        let sc = &cfg.sources[i];
        let auth = Authenticator::from_config(cfg, i, "generic", &AUTH)?;
        let event = Lookup::from_config(cfg, i, "event", &sc.event_field, &sc.event_header)?
            .unwrap_or_else(|| Lookup::Fixed("event".into()));
        let delivery_id = Lookup::from_config(
            cfg,
            i,
            "delivery_id",
            &sc.delivery_id_field,
            &sc.delivery_id_header,
        )?;
        Ok(Generic {
            auth,
            event,
            delivery_id,
        })
    }
}

impl SourceKind for Generic {
    fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        self.auth.verify(req)
    }

    fn unauthenticated(&self) -> bool {
        self.auth.is_none()
    }

    fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection> {
        let payload = parse_json(req.body)?;
        let event = self.event.get(req, &payload)?;
        let delivery_id = match &self.delivery_id {
            Some(l) => l.get(req, &payload)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        Ok(Parsed {
            events: vec![Event {
                name: format!("generic.{}", name_part(&event)),
                delivery_id,
                entity: None,
                payload,
                whole: None,
            }],
            ack: Ack::Default,
        })
    }
}
