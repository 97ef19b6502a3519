//! Who a PagerDuty incident is assigned to, and who owns a Pipedrive deal, by email: the
//! webhooks carry only the sender's user ids, so the sender's users API is asked
//! (cached), and `to = "{{assignee.email}}"` / `"{{owner.email}}"` reaches the person.
//!
//! - PagerDuty (`GET {api_url}/users/{id}`, `Authorization: Token token=…`, default
//!   `https://api.pagerduty.com`): `event.data.assignees[]` become `assignees` (`{id,
//!   name, email}`) and the first one `assignee`.
//! - Pipedrive (`GET {api_url}/api/v1/users/{id}?api_token=…`, `api_url` being the
//!   company's `https://<company>.pipedrive.com`): `data.owner_id` becomes `owner`.

use std::time::Duration;

use serde_json::{Value, json};

use super::api::{Api, Auth, Call, Failure, segment};
use crate::config::{Secret, SourceConfig};
use crate::fieldpath::scalar_text;

/// People change rarely.
const TTL: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct People {
    api: Api,
    sender: Sender,
}

#[derive(Debug, Clone, Copy)]
enum Sender {
    PagerDuty,
    Pipedrive,
}

impl People {
    pub fn pagerduty(s: &SourceConfig, token: Secret, timeout: Duration) -> Result<People, String> {
        let base = s
            .api_url
            .clone()
            .unwrap_or_else(|| "https://api.pagerduty.com".into());
        Ok(People {
            api: Api::new("PagerDuty", &base, token, Auth::PagerDuty, timeout)?,
            sender: Sender::PagerDuty,
        })
    }

    pub fn pipedrive(s: &SourceConfig, token: Secret, timeout: Duration) -> Result<People, String> {
        let base = s
            .api_url
            .clone()
            .ok_or("needs api_url: your company's https://<company>.pipedrive.com")?;
        Ok(People {
            api: Api::new("Pipedrive", &base, token, Auth::Query, timeout)?,
            sender: Sender::Pipedrive,
        })
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// What the event's people add to it; None when it names nobody.
    pub async fn fields(&self, payload: &Value, c: Call<'_>) -> Option<Result<Value, Failure>> {
        match self.sender {
            Sender::PagerDuty => {
                let ids: Vec<String> = payload
                    .pointer("/event/data/assignees")?
                    .as_array()?
                    .iter()
                    .filter_map(|a| a.get("id").and_then(scalar_text))
                    .collect();
                if ids.is_empty() {
                    return None;
                }
                Some(self.pagerduty_assignees(&ids, c).await)
            }
            Sender::Pipedrive => {
                let id = payload
                    .pointer("/data/owner_id")
                    .and_then(scalar_text)
                    .filter(|v| v != "null")?;
                Some(self.pipedrive_owner(&id, c).await)
            }
        }
    }

    async fn pagerduty_assignees(&self, ids: &[String], c: Call<'_>) -> Result<Value, Failure> {
        let mut people = Vec::new();
        for id in ids {
            let u = self
                .api
                .cached_get(
                    &format!("pagerduty:user:{id}"),
                    &format!("/users/{}", segment(id)),
                    TTL,
                    &format!("user {id}"),
                    c,
                )
                .await?;
            people.push(json!({"id": id, "name": u["user"]["name"], "email": u["user"]["email"]}));
        }
        Ok(json!({"assignee": people[0].clone(), "assignees": people}))
    }

    async fn pipedrive_owner(&self, id: &str, c: Call<'_>) -> Result<Value, Failure> {
        let u = self
            .api
            .cached_get(
                &format!("pipedrive:user:{id}"),
                &format!("/api/v1/users/{}", segment(id)),
                TTL,
                &format!("user {id}"),
                c,
            )
            .await?;
        Ok(json!({"owner": {"id": id, "name": u["data"]["name"], "email": u["data"]["email"]}}))
    }
}
