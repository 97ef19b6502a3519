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
    reads: None,
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
            payload.insert("field_list".into(), field_list(&n.fields));
            if let Some(owner) = owner(&n.fields) {
                payload.insert("owner".into(), owner);
            }
            payload.insert("fields".into(), Value::Object(n.fields));
            events.push(Event {
                name: format!("salesforce.{}", name_part(&n.sobject_type)),
                delivery_id: n.id,
                entity: record.map(|r| format!("salesforce:{}/{r}", n.sobject_type)),
                payload: Value::Object(payload),
                whole: None,
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

/// The fields the admin selected, in order, with readable labels: `[{name, label,
/// value}]` (`LastModifiedDate` is "Last Modified Date", `Renewal_Date__c` "Renewal
/// Date", `AccountId` "Account ID"); the record's own `Id` is left out.
fn field_list(fields: &Map<String, Value>) -> Value {
    Value::Array(
        fields
            .iter()
            .filter(|(k, _)| k.as_str() != "Id")
            .map(|(k, v)| serde_json::json!({"name": k, "label": label(k), "value": v}))
            .collect(),
    )
}

/// A readable label for a Salesforce API field name.
pub fn label(api_name: &str) -> String {
    let name = api_name
        .strip_suffix("__c")
        .or_else(|| api_name.strip_suffix("__r"))
        .unwrap_or(api_name);
    let chars: Vec<char> = name.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == ' ' {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    if words.len() > 1
        && let Some(last) = words.last_mut()
        && last == "Id"
    {
        *last = "ID".into();
    }
    words.join(" ")
}

/// The record's owner: `OwnerId`, and an email when the message carries one (a formula
/// field such as `Owner_Email__c` = `Owner.Email`, since outbound messages only send the
/// object's own fields).
fn owner(fields: &Map<String, Value>) -> Option<Value> {
    let id = fields.get("OwnerId").and_then(Value::as_str)?;
    let email = [
        "Owner_Email__c",
        "OwnerEmail__c",
        "OwnerEmail",
        "Owner_Email",
    ]
    .iter()
    .find_map(|k| fields.get(*k).and_then(Value::as_str));
    Some(serde_json::json!({"id": id, "email": email}))
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn api_names_become_readable_labels() {
        for (api, shown) in [
            ("LastModifiedDate", "Last Modified Date"),
            ("Renewal_Date__c", "Renewal Date"),
            ("AccountId", "Account ID"),
            ("SLAExpirationDate__c", "SLA Expiration Date"),
            ("Name", "Name"),
            ("Amount2__c", "Amount2"),
        ] {
            assert_eq!(label(api), shown, "{api}");
        }
    }
}
