//! HubSpot's CRM API (v3): the record each webhook event names, with labels and owner.
//!
//! For `deal.*`, `contact.*`, `company.*` and `ticket.*` events the object is read
//! (`GET /crm/v3/objects/{type}/{id}` with the properties that matter), its pipeline and
//! stage ids become their labels (`GET /crm/v3/pipelines/{type}`), and its owner becomes a
//! name and an email (the owners list, `GET /crm/v3/owners`, every page). The event gains
//! `deal` / `contact` / `company` / `ticket` and `owner`; on failure `enrichment_error`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::api::{Api, Auth, Call, Failure, segment};
use crate::config::{Secret, SourceConfig};
use crate::fieldpath::scalar_text;
use crate::storage::now_ms;

const DEFAULT_URL: &str = "https://api.hubapi.com";
/// Pipelines and owners change rarely.
const LABELS_TTL: Duration = Duration::from_secs(3600);

/// The properties read per object type.
const DEAL: &[&str] = &[
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "closedate",
    "hubspot_owner_id",
];
const CONTACT: &[&str] = &[
    "firstname",
    "lastname",
    "email",
    "company",
    "hubspot_owner_id",
];
const COMPANY: &[&str] = &["name", "domain", "hubspot_owner_id"];
const TICKET: &[&str] = &[
    "subject",
    "hs_pipeline",
    "hs_pipeline_stage",
    "hubspot_owner_id",
];

#[derive(Debug)]
pub struct HubSpot {
    api: Api,
    ttl: Duration,
}

impl HubSpot {
    pub fn new(
        s: &SourceConfig,
        token: Secret,
        timeout: Duration,
        ttl: Duration,
    ) -> Result<HubSpot, String> {
        let base = s.api_url.clone().unwrap_or_else(|| DEFAULT_URL.into());
        Ok(HubSpot {
            api: Api::new("HubSpot", &base, token, Auth::Bearer, timeout)?,
            ttl,
        })
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// What the event's record adds to it; None for subscriptions about no record.
    pub async fn fields(&self, payload: &Value, c: Call<'_>) -> Option<Result<Value, Failure>> {
        let (kind, id) = object_of(payload)?;
        Some(self.record(kind, &id, c).await)
    }

    /// The event's added fields: the object, its labels, its owner.
    async fn record(&self, kind: &'static str, id: &str, c: Call<'_>) -> Result<Value, Failure> {
        let (props, plural) = match kind {
            "deal" => (DEAL, "deals"),
            "contact" => (CONTACT, "contacts"),
            "company" => (COMPANY, "companies"),
            _ => (TICKET, "tickets"),
        };
        let path = format!(
            "/crm/v3/objects/{plural}/{}?properties={}",
            segment(id),
            props.join(",")
        );
        let object = self
            .api
            .cached_get(
                &format!("hubspot:{kind}:{id}"),
                &path,
                self.ttl,
                &format!("{kind} {id}"),
                c,
            )
            .await?;
        let p = |k: &str| {
            object["properties"][k]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut out = serde_json::Map::new();
        match kind {
            "deal" => {
                let (pipeline, stage) = self
                    .labels(plural, p("pipeline"), p("dealstage"), c)
                    .await?;
                out.insert(
                    "deal".into(),
                    json!({
                        "id": id, "name": p("dealname"),
                        "amount": p("amount").and_then(|a| a.parse::<f64>().ok()),
                        "currency": p("deal_currency_code"), "pipeline": pipeline,
                        "stage": stage, "close_date": p("closedate"),
                        "won": p("dealstage").as_deref() == Some("closedwon"),
                    }),
                );
            }
            "contact" => {
                let name = [p("firstname"), p("lastname")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                out.insert(
                    "contact".into(),
                    json!({"id": id, "name": name, "email": p("email"), "company": p("company")}),
                );
            }
            "company" => {
                out.insert(
                    "company".into(),
                    json!({"id": id, "name": p("name"), "domain": p("domain")}),
                );
            }
            _ => {
                let (pipeline, stage) = self
                    .labels(plural, p("hs_pipeline"), p("hs_pipeline_stage"), c)
                    .await?;
                out.insert(
                    "ticket".into(),
                    json!({"id": id, "subject": p("subject"), "pipeline": pipeline, "stage": stage}),
                );
            }
        }
        if let Some(owner) = p("hubspot_owner_id") {
            let o = self.owner(&owner, c).await?;
            let name = [o["firstName"].as_str(), o["lastName"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            out.insert(
                "owner".into(),
                json!({"id": owner, "name": name, "email": o["email"]}),
            );
        }
        Ok(Value::Object(out))
    }

    /// A pipeline and stage as `{id, label}`, from the (cached) pipelines of `plural`.
    async fn labels(
        &self,
        plural: &str,
        pipeline: Option<String>,
        stage: Option<String>,
        c: Call<'_>,
    ) -> Result<(Value, Value), Failure> {
        let (Some(pipeline), Some(stage)) = (pipeline, stage) else {
            return Ok((Value::Null, Value::Null));
        };
        let all = self
            .api
            .cached_get(
                &format!("hubspot:pipelines:{plural}"),
                &format!("/crm/v3/pipelines/{plural}"),
                LABELS_TTL,
                "pipelines",
                c,
            )
            .await?;
        let found = all["results"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["id"] == pipeline.as_str());
        let stage_label = found
            .and_then(|p| p["stages"].as_array())
            .into_iter()
            .flatten()
            .find(|s| s["id"] == stage.as_str())
            .and_then(|s| s["label"].as_str())
            .unwrap_or(&stage)
            .to_string();
        let pipeline_label = found
            .and_then(|p| p["label"].as_str())
            .unwrap_or(&pipeline)
            .to_string();
        Ok((
            json!({"id": pipeline, "label": pipeline_label}),
            json!({"id": stage, "label": stage_label}),
        ))
    }

    /// An owner from the owners list (every page, following `paging.next.after`), cached
    /// for an hour; an owner the cached list lacks (new) makes it read again, once.
    async fn owner(&self, id: &str, c: Call<'_>) -> Result<Value, Failure> {
        const KEY: &str = "hubspot:owners";
        for fresh in [false, true] {
            let cached = match c.store.cached(KEY).await {
                Ok(Some((v, at))) if !fresh && now_ms() - at < LABELS_TTL.as_millis() as i64 => {
                    serde_json::from_str::<Value>(&v).ok()
                }
                _ => None,
            };
            let list = match cached {
                Some(list) => {
                    c.metrics.enrichments.inc(&[c.source, "cached"]);
                    list
                }
                None => {
                    let list = self.owners(c.deadline).await?;
                    c.metrics.enrichments.inc(&[c.source, "fetched"]);
                    if let Err(e) = c.store.put_cached(KEY, &list.to_string(), now_ms()).await {
                        tracing::warn!(error = %e, "cannot cache HubSpot's owners");
                    }
                    list
                }
            };
            if let Some(o) = list
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["id"] == id)
            {
                return Ok(o.clone());
            }
        }
        Err(Failure::NotFound {
            api: "HubSpot",
            what: format!("owner {id}"),
        })
    }

    /// Every owner, page by page.
    async fn owners(&self, deadline: Instant) -> Result<Value, Failure> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        // A cursor that never ends would loop forever; a portal has finitely many owners.
        for _ in 0..1000 {
            let path = match &after {
                Some(a) => format!(
                    "/crm/v3/owners?limit=100&after={}",
                    form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>()
                ),
                None => "/crm/v3/owners?limit=100".to_string(),
            };
            let page = self.api.get(&path, "owners", deadline).await?;
            all.extend(page["results"].as_array().cloned().unwrap_or_default());
            after = page["paging"]["next"]["after"].as_str().map(str::to_string);
            if after.is_none() {
                break;
            }
        }
        Ok(Value::Array(all))
    }
}

/// The object a HubSpot event is about: (`deal`, id) from `subscriptionType` and
/// `objectId`; None for other subscriptions.
fn object_of(payload: &Value) -> Option<(&'static str, String)> {
    let sub = payload.get("subscriptionType")?.as_str()?;
    let kind = match sub.split('.').next()? {
        "deal" => "deal",
        "contact" => "contact",
        "company" => "company",
        "ticket" => "ticket",
        _ => return None,
    };
    let id = scalar_text(payload.get("objectId")?)?;
    Some((kind, id))
}
