//! Salesforce Outbound Messages (SOAP 1.1). A message carries no signature: the daemon
//! checks its `OrganizationId` against `organization_id` (constant-time) and refuses any
//! other with 401; use HTTPS and, in front, Salesforce's IP ranges or client certificate.
//! Each `Notification` is an event, `salesforce.<sObject type>` (`salesforce.contact`),
//! delivery id the notification `Id` (Salesforce retries with the same one for 24 h).
//! The answer is the SOAP `Ack` Salesforce needs to stop retrying.

use quick_xml::Reader;
use quick_xml::events::Event as Xml;
use serde_json::{Map, Value};

use super::auth::ct_eq;
use super::kind::{Build, Kind};
use super::{Ack, Event, Inbound, Parsed, Rejection, SourceKind, name_part, reject_unused};
use crate::config::{Config, ConfigError};

pub struct Salesforce {
    organization_id: String,
}

pub const KIND: Kind = Kind {
    name: "salesforce",
    build: Build::Custom(|cfg, i| Ok(Box::new(build(cfg, i)?))),
    enrich: None,
};

fn build(cfg: &Config, i: usize) -> Result<Salesforce, ConfigError> {
    let sc = &cfg.sources[i];
    reject_unused(cfg, i, "salesforce")?;
    if sc.secret.is_some() || sc.secrets.is_some() || sc.auth.is_some() {
        return Err(cfg.error(
            &format!("sources[{i}].auth"),
            "Salesforce outbound messages are not signed; set organization_id instead of auth/secret",
        ));
    }
    let organization_id = sc.organization_id.clone().ok_or_else(|| {
        cfg.error(
            &format!("sources[{i}].organization_id"),
            "missing: the 15- or 18-character Salesforce organization id messages must carry",
        )
    })?;
    Ok(Salesforce { organization_id })
}

/// The parsed envelope: organization id and one map of fields per notification.
struct Envelope {
    organization_id: Option<String>,
    enterprise_url: Option<String>,
    notifications: Vec<Notification>,
}

struct Notification {
    id: String,
    sobject_type: String,
    fields: Map<String, Value>,
}

fn local(name: impl AsRef<[u8]>) -> String {
    let n = String::from_utf8_lossy(name.as_ref());
    n.rsplit(':').next().unwrap_or(&n).to_string()
}

fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    let mut reader = Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut env = Envelope {
        organization_id: None,
        enterprise_url: None,
        notifications: vec![],
    };
    let mut current: Option<Notification> = None;
    let mut text = String::new();
    loop {
        match reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not well-formed XML: {e}"))?
        {
            Xml::Start(e) => {
                let name = local(e.name().as_ref());
                if name == "Notification" {
                    current = Some(Notification {
                        id: String::new(),
                        sobject_type: String::new(),
                        fields: Map::new(),
                    });
                }
                if name == "sObject"
                    && let Some(n) = current.as_mut()
                {
                    for a in e.attributes().flatten() {
                        if local(a.key.as_ref()) == "type" {
                            n.sobject_type = local(&*a.value);
                        }
                    }
                }
                path.push(name);
                text.clear();
            }
            Xml::Text(t) => text.push_str(&t.xml10_content()),
            Xml::CData(t) => text.push_str(&t.xml10_content()),
            Xml::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else if let Some(s) =
                    quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                {
                    text.push_str(s);
                }
            }
            Xml::End(_) => {
                let parent = path.iter().rev().nth(1).map(String::as_str);
                match (path.last().map(String::as_str), parent) {
                    (Some("OrganizationId"), _) => env.organization_id = Some(text.clone()),
                    (Some("EnterpriseUrl"), _) => env.enterprise_url = Some(text.clone()),
                    (Some("Id"), Some("Notification")) => {
                        if let Some(n) = current.as_mut() {
                            n.id = text.clone();
                        }
                    }
                    (Some(field), Some("sObject")) => {
                        if let Some(n) = current.as_mut() {
                            n.fields
                                .insert(field.to_string(), Value::String(text.clone()));
                        }
                    }
                    _ => {}
                }
                text.clear();
                if path.pop().as_deref() == Some("Notification")
                    && let Some(n) = current.take()
                {
                    env.notifications.push(n);
                }
            }
            Xml::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(env)
}

impl SourceKind for Salesforce {
    fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        // Unreadable XML cannot be checked: refused as unauthenticated, nothing stored.
        let env = parse_envelope(req.body)
            .map_err(|e| Rejection::unauthorized(format!("cannot read OrganizationId: {e}")))?;
        let org = env
            .organization_id
            .ok_or_else(|| Rejection::unauthorized("message has no OrganizationId"))?;
        if ct_eq(org.trim().as_bytes(), self.organization_id.as_bytes()) {
            Ok(())
        } else {
            Err(Rejection::unauthorized(
                "OrganizationId does not match organization_id",
            ))
        }
    }

    fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection> {
        let env = parse_envelope(req.body).map_err(Rejection::bad_request)?;
        if env.notifications.is_empty() {
            return Err(Rejection::bad_request(
                "outbound message has no Notification",
            ));
        }
        // Record links point at the instance the message came from.
        let instance = env
            .enterprise_url
            .as_deref()
            .and_then(|u| u.find("/services/").map(|i| u[..i].to_string()));
        let mut events = Vec::new();
        for n in env.notifications {
            if n.id.is_empty() {
                return Err(Rejection::bad_request("a Notification has no Id"));
            }
            let record = n
                .fields
                .get("Id")
                .and_then(Value::as_str)
                .map(str::to_string);
            let mut payload = Map::new();
            payload.insert("object".into(), Value::String(n.sobject_type.clone()));
            payload.insert("notification_id".into(), Value::String(n.id.clone()));
            if let (Some(base), Some(id)) = (&instance, &record) {
                payload.insert("record_url".into(), Value::String(format!("{base}/{id}")));
            }
            payload.insert("fields".into(), Value::Object(n.fields));
            events.push(Event {
                name: format!("salesforce.{}", name_part(&n.sobject_type)),
                delivery_id: n.id,
                entity: record.map(|r| format!("salesforce:{}/{r}", n.sobject_type)),
                payload: Value::Object(payload),
            });
        }
        Ok(Parsed {
            events,
            ack: Ack::Soap,
        })
    }
}

/// The answer Salesforce needs to stop retrying.
pub const SOAP_ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"#;
