//! HubSpot's CRM API (v3): the record each webhook event names, with labels and owner.
//!
//! For `deal.*`, `contact.*`, `company.*` and `ticket.*` events the object is read
//! (`GET /crm/v3/objects/{type}/{id}` with the properties that matter), its pipeline and
//! stage ids become their labels (`GET /crm/v3/pipelines/{type}`), and its owner becomes a
//! name and an email (`GET /crm/v3/owners/{id}`). The event gains `deal` / `contact` /
//! `company` / `ticket` and `owner`; on failure `enrichment_error`.
//!
//! A 429 is respected: within the bound its `Retry-After` is waited out once; beyond it,
//! calls stop until then (events go on with their ids), so HubSpot is never hammered.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{Secret, SourceConfig};
use crate::inbound::Event;
use crate::metrics::Metrics;
use crate::storage::{Store, now_ms};

const DEFAULT_URL: &str = "https://api.hubapi.com";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_TTL: Duration = Duration::from_secs(600);
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

pub struct HubSpot {
    http: reqwest::Client,
    base: String,
    token: Secret,
    timeout: Duration,
    ttl: Duration,
    /// After a 429 whose wait exceeds the bound: no call until then.
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for HubSpot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpot").field("base", &self.base).finish()
    }
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("HubSpot has no {0} {1} (deleted?)")]
    NotFound(&'static str, String),
    #[error("HubSpot rate-limits us; retry after {0}s")]
    RateLimited(u64),
    #[error("HubSpot answered {0}")]
    Status(u16),
    #[error("cannot reach HubSpot: {0}")]
    Network(String),
    #[error("HubSpot's answer is not what its API documents: {0}")]
    Shape(String),
}

impl HubSpot {
    pub fn new(s: &SourceConfig, token: Secret) -> Result<HubSpot, String> {
        let base = s.api_url.clone().unwrap_or_else(|| DEFAULT_URL.into());
        let parsed = url::Url::parse(&base).map_err(|e| format!("{base:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{base:?}: use an http(s) URL"));
        }
        let timeout = s.enrich_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("roam-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HubSpot {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            timeout,
            ttl: s.enrich_ttl.unwrap_or(DEFAULT_TTL),
            paused_until: Mutex::new(None),
        })
    }

    pub async fn enrich(
        &self,
        source: &str,
        events: &mut [Event],
        store: &Store,
        metrics: &Metrics,
    ) {
        let deadline = Instant::now() + self.timeout;
        for ev in events.iter_mut() {
            let Some((kind, id)) = object_of(&ev.payload) else {
                continue;
            };
            let result = tokio::time::timeout_at(
                deadline.into(),
                self.record(kind, &id, store, deadline, metrics, source),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Network(format!(
                    "no answer within {:?} (enrich_timeout)",
                    self.timeout
                )))
            });
            let Some(obj) = ev.payload.as_object_mut() else {
                continue;
            };
            match result {
                Ok(fields) => {
                    if let Value::Object(f) = fields {
                        obj.extend(f);
                    }
                }
                Err(e) => {
                    tracing::warn!(source, object = kind, id = %id, error = %e,
                        "HubSpot enrichment failed; the message shows the ids");
                    metrics.enrichments.inc(&[source, "failed"]);
                    obj.insert("enrichment_error".into(), Value::String(e.to_string()));
                }
            }
        }
    }

    /// The event's added fields: the object, its labels, its owner.
    async fn record(
        &self,
        kind: &'static str,
        id: &str,
        store: &Store,
        deadline: Instant,
        metrics: &Metrics,
        source: &str,
    ) -> Result<Value, Failure> {
        let (props, plural) = match kind {
            "deal" => (DEAL, "deals"),
            "contact" => (CONTACT, "contacts"),
            "company" => (COMPANY, "companies"),
            _ => (TICKET, "tickets"),
        };
        let path = format!(
            "/crm/v3/objects/{plural}/{id}?properties={}",
            props.join(",")
        );
        let object = self
            .cached_get(
                &format!("hubspot:{kind}:{id}"),
                &path,
                self.ttl,
                store,
                deadline,
                metrics,
                source,
                Some((kind, id)),
            )
            .await?;
        let p = |k: &str| {
            object["properties"][k]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut out = serde_json::Map::new();
        let labels = |pipeline: Option<String>, stage: Option<String>| async move {
            let (Some(pipeline), Some(stage)) = (pipeline, stage) else {
                return Ok::<_, Failure>((Value::Null, Value::Null));
            };
            let all = self
                .cached_get(
                    &format!("hubspot:pipelines:{plural}"),
                    &format!("/crm/v3/pipelines/{plural}"),
                    LABELS_TTL,
                    store,
                    deadline,
                    metrics,
                    source,
                    None,
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
        };
        match kind {
            "deal" => {
                let (pipeline, stage) = labels(p("pipeline"), p("dealstage")).await?;
                let amount = p("amount").and_then(|a| a.parse::<f64>().ok());
                out.insert(
                    "deal".into(),
                    json!({
                        "id": id, "name": p("dealname"), "amount": amount,
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
                let (pipeline, stage) = labels(p("hs_pipeline"), p("hs_pipeline_stage")).await?;
                out.insert(
                    "ticket".into(),
                    json!({"id": id, "subject": p("subject"), "pipeline": pipeline, "stage": stage}),
                );
            }
        }
        if let Some(owner) = p("hubspot_owner_id") {
            let o = self
                .cached_get(
                    &format!("hubspot:owner:{owner}"),
                    &format!("/crm/v3/owners/{owner}"),
                    LABELS_TTL,
                    store,
                    deadline,
                    metrics,
                    source,
                    Some(("owner", &owner)),
                )
                .await?;
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

    /// A GET answer from the durable cache when younger than `ttl`, else from HubSpot
    /// (then cached).
    #[allow(clippy::too_many_arguments)]
    async fn cached_get(
        &self,
        key: &str,
        path: &str,
        ttl: Duration,
        store: &Store,
        deadline: Instant,
        metrics: &Metrics,
        source: &str,
        what: Option<(&'static str, &str)>,
    ) -> Result<Value, Failure> {
        if let Ok(Some((value, at))) = store.cached(key).await
            && now_ms() - at < ttl.as_millis() as i64
            && let Ok(v) = serde_json::from_str(&value)
        {
            metrics.enrichments.inc(&[source, "cached"]);
            return Ok(v);
        }
        let v = self.get(path, deadline, what).await?;
        metrics.enrichments.inc(&[source, "fetched"]);
        if let Err(e) = store.put_cached(key, &v.to_string(), now_ms()).await {
            tracing::warn!(error = %e, "cannot cache a HubSpot answer; it is asked again next time");
        }
        Ok(v)
    }

    /// One GET; a 429 is waited out once if its `Retry-After` ends before `deadline`.
    async fn get(
        &self,
        path: &str,
        deadline: Instant,
        what: Option<(&'static str, &str)>,
    ) -> Result<Value, Failure> {
        for attempt in 0..2 {
            if let Some(until) = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner())
                && until > Instant::now()
            {
                return Err(Failure::RateLimited(
                    (until - Instant::now()).as_secs().max(1),
                ));
            }
            let resp = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(self.token.expose())
                .send()
                .await
                .map_err(|e| {
                    Failure::Network(if e.is_timeout() {
                        format!("no answer within {:?} (enrich_timeout)", self.timeout)
                    } else {
                        e.without_url().to_string()
                    })
                })?;
            let status = resp.status().as_u16();
            match status {
                200 => return resp.json().await.map_err(|e| Failure::Shape(e.to_string())),
                404 => {
                    let (kind, id) = what.unwrap_or(("record", ""));
                    return Err(Failure::NotFound(kind, id.to_string()));
                }
                429 => {
                    let wait = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(10);
                    let until = Instant::now() + Duration::from_secs(wait);
                    if attempt == 0 && until < deadline {
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                        continue;
                    }
                    *self.paused_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
                    return Err(Failure::RateLimited(wait));
                }
                s => return Err(Failure::Status(s)),
            }
        }
        Err(Failure::RateLimited(1))
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
    let id = crate::fieldpath::scalar_text(payload.get("objectId")?)?;
    Some((kind, id))
}
