//! One sender API as enrichment uses it: GETs with the source's credentials, a durable
//! cache, and a 429's `Retry-After` respected (waited out once within the bound, else no
//! call until it passes).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::Secret;
use crate::metrics::Metrics;
use crate::storage::{Store, now_ms};

/// An id from a payload as one URL path segment: `/`, `?`, `#`, `&` cannot reach
/// another endpoint or query.
pub fn segment(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// How the token is presented.
#[derive(Debug, Clone, Copy)]
pub enum Auth {
    /// `Authorization: Bearer <token>` (HubSpot).
    Bearer,
    /// `Authorization: Token token=<token>` (PagerDuty).
    PagerDuty,
    /// `?api_token=<token>` (Pipedrive).
    Query,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{api} has no {what} (deleted?)")]
    NotFound { api: &'static str, what: String },
    #[error("{0} rate-limits us; retry after {1}s")]
    RateLimited(&'static str, u64),
    #[error("{0} answered {1}")]
    Status(&'static str, u16),
    #[error("cannot reach {0}: {1}")]
    Network(&'static str, String),
    #[error("{0}'s answer is not what its API documents: {1}")]
    Shape(&'static str, String),
}

/// What every call of one request shares: the deadline, the cache, the counters.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub deadline: Instant,
    pub store: &'a Store,
    pub metrics: &'a Metrics,
    pub source: &'a str,
}

pub struct Api {
    /// The API's name in messages ("HubSpot").
    pub name: &'static str,
    http: reqwest::Client,
    base: String,
    token: Secret,
    auth: Auth,
    pub timeout: Duration,
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("name", &self.name)
            .field("base", &self.base)
            .finish()
    }
}

impl Api {
    pub fn new(
        name: &'static str,
        base: &str,
        token: Secret,
        auth: Auth,
        timeout: Duration,
    ) -> Result<Api, String> {
        let parsed = url::Url::parse(base).map_err(|e| format!("{base:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{base:?}: use an http(s) URL"));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("roam-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Api {
            name,
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            auth,
            timeout,
            paused_until: Mutex::new(None),
        })
    }

    /// The error for a request that ran out of time.
    pub fn too_slow(&self) -> Failure {
        Failure::Network(
            self.name,
            format!("no answer within {:?} (enrich_timeout)", self.timeout),
        )
    }

    /// A GET from the durable cache when younger than `ttl`, else from the API (then
    /// cached). `what` names the record in a 404's message.
    pub async fn cached_get(
        &self,
        key: &str,
        path: &str,
        ttl: Duration,
        what: &str,
        c: Call<'_>,
    ) -> Result<Value, Failure> {
        if let Ok(Some((value, at))) = c.store.cached(key).await
            && now_ms() - at < ttl.as_millis() as i64
            && let Ok(v) = serde_json::from_str(&value)
        {
            c.metrics.enrichments.inc(&[c.source, "cached"]);
            return Ok(v);
        }
        let v = self.get(path, what, c.deadline).await?;
        c.metrics.enrichments.inc(&[c.source, "fetched"]);
        if let Err(e) = c.store.put_cached(key, &v.to_string(), now_ms()).await {
            tracing::warn!(error = %e, "cannot cache an API answer; it is asked again next time");
        }
        Ok(v)
    }

    /// One GET; a 429 is waited out once if its `Retry-After` ends before `deadline`.
    pub async fn get(&self, path: &str, what: &str, deadline: Instant) -> Result<Value, Failure> {
        for attempt in 0..2 {
            if let Some(until) = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner())
                && until > Instant::now()
            {
                return Err(Failure::RateLimited(
                    self.name,
                    (until - Instant::now()).as_secs().max(1),
                ));
            }
            let mut req = self.http.get(format!("{}{path}", self.base));
            req = match self.auth {
                Auth::Bearer => req.bearer_auth(self.token.expose()),
                Auth::PagerDuty => req
                    .header(
                        "Authorization",
                        format!("Token token={}", self.token.expose()),
                    )
                    .header("Accept", "application/vnd.pagerduty+json;version=2"),
                Auth::Query => req.query(&[("api_token", self.token.expose())]),
            };
            let resp = req.send().await.map_err(|e| {
                if e.is_timeout() {
                    self.too_slow()
                } else {
                    Failure::Network(self.name, e.without_url().to_string())
                }
            })?;
            match resp.status().as_u16() {
                200 => {
                    return resp
                        .json()
                        .await
                        .map_err(|e| Failure::Shape(self.name, e.to_string()));
                }
                404 => {
                    return Err(Failure::NotFound {
                        api: self.name,
                        what: what.to_string(),
                    });
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
                    return Err(Failure::RateLimited(self.name, wait));
                }
                s => return Err(Failure::Status(self.name, s)),
            }
        }
        Err(Failure::RateLimited(self.name, 1))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_payload_id_stays_one_path_segment() {
        let s = super::segment("12/../owners?after=1#x&y");
        assert!(!s.contains(['/', '?', '#', '&']), "{s}");
        assert_eq!(super::segment("1246965"), "1246965");
    }
}
