//! Roam HTTP API client (v0, `tests/roam-openapi/chat.json`): `chat.post`, `chat.update`,
//! `token.info`, `transcript.list`, `transcript.info`, `user.lookup`.
//!
//! The client sends one request and classifies the answer; it never retries by itself.
//! Retries belong to the durable outbox (`delivery`), because a retried `chat.post`
//! that had in fact succeeded would post the message twice.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde::Deserialize;

use std::sync::Arc;

use crate::config::{RoamConfig, Secret};
use crate::metrics::Metrics;

pub mod blocks;

const USER_AGENT: &str = concat!("roam-notify/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, thiserror::Error)]
pub enum RoamError {
    /// 429: pause all sending; `retry_after` from the `Retry-After` header if given.
    #[error("rate limited by Roam (429){}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// The key itself is refused (401, or 403 for a personal token): no message can go out.
    #[error("Roam refused the API key ({status}): {detail}")]
    Unauthorized { status: u16, detail: String },
    /// Any other 4xx: this message will never be accepted as it is.
    #[error("Roam rejected the message ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// 5xx or 408: Roam is having trouble; try again later.
    #[error("Roam is unavailable ({status}): {detail}")]
    Unavailable { status: u16, detail: String },
    /// Connection refused, DNS, TLS, timeout.
    #[error("cannot reach Roam: {0}")]
    Network(String),
}

/// Wait after a 429 that carries no usable `Retry-After`.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// A `Retry-After` above this is treated as this (a misconfigured proxy must not stall us for days).
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(3600);

impl RoamError {
    /// For a 429: how long every call to Roam pauses (its `Retry-After`, else 30 s, at
    /// most an hour). None for other errors.
    pub fn rate_limit_wait(&self) -> Option<Duration> {
        match self {
            RoamError::RateLimited { retry_after } => Some(
                retry_after
                    .unwrap_or(DEFAULT_RATE_LIMIT_WAIT)
                    .min(MAX_RATE_LIMIT_WAIT),
            ),
            _ => None,
        }
    }

    /// Worth retrying the same request later.
    pub fn is_transient(&self) -> bool {
        matches!(self, RoamError::Unavailable { .. } | RoamError::Network(_))
    }

    /// `chat.update`'s target is gone (deleted in Roam): post a new message instead.
    pub fn is_message_not_found(&self) -> bool {
        matches!(self, RoamError::Rejected { status, detail }
            if *status == 404 || detail.contains("message_not_found"))
    }
}

/// A page of `transcript.list`.
#[derive(Debug, Clone, Deserialize)]
pub struct TranscriptPage {
    #[serde(default)]
    pub transcripts: Vec<TranscriptMeta>,
    #[serde(rename = "nextCursor", default)]
    pub next_cursor: Option<String>,
}

/// `TranscriptMetadata` (chat.json): what the sweep needs of a listed transcript.
#[derive(Debug, Clone, Deserialize)]
pub struct TranscriptMeta {
    pub id: String,
    #[serde(default)]
    pub start: Option<String>,
    /// Empty while the meeting is live.
    #[serde(default)]
    pub end: Option<String>,
}

fn shape_error(method: &str, e: serde_json::Error) -> RoamError {
    RoamError::Unavailable {
        status: 200,
        detail: format!("{method} answer is not the documented shape: {e}"),
    }
}

/// `chat.post`'s answer (`timestamp` only when synchronous).
#[derive(Debug, Deserialize)]
struct Posted {
    timestamp: Option<i64>,
}

/// A webhook subscription (`webhook.subscribe`'s answer).
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub event: String,
    pub url: String,
}

/// A page of `chat.list`.
#[derive(Debug, Clone, Deserialize)]
struct ChatPage {
    #[serde(default)]
    chats: Vec<Chat>,
    #[serde(rename = "nextCursor", default)]
    next_cursor: Option<String>,
}

/// A chat the bot can see (`chat.list`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Chat {
    /// The chat's tagged id (`C-…` channel, `D-…` DM, `P-…` multi-DM).
    pub id: String,
    /// The group's name for a channel, the other party for a DM, the participants for a
    /// multi-DM.
    pub name: String,
    /// The group (`G-…`) a channel belongs to; absent for DMs and multi-DMs.
    #[serde(default)]
    pub group: Option<String>,
}

impl Chat {
    /// `channel`, `DM` or `multi-DM`, from the group and the id's tag.
    pub fn kind(&self) -> &'static str {
        match self.id.split_once('-').map(|(tag, _)| tag) {
            _ if self.group.is_some() => "channel",
            Some("C") => "channel",
            Some("D") => "DM",
            Some("P") => "multi-DM",
            _ => "chat",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenInfo {
    pub addr: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub roam: Option<RoamInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoamInfo {
    pub id: String,
    pub name: String,
}

#[derive(Clone)]
pub struct RoamClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for RoamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoamClient")
            .field("base", &self.base)
            .field("key", &self.key)
            .finish()
    }
}

impl RoamClient {
    /// A client for `[roam]`: its base URL, timeout and `Roam-Version` (sent on every
    /// call), authenticated with `key`.
    pub fn new(c: &RoamConfig, key: Secret) -> Result<RoamClient, reqwest::Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        // The config checks it is a date; a value no header can carry is left out.
        if let Ok(v) = reqwest::header::HeaderValue::from_str(c.api_version.trim()) {
            headers.insert("roam-version", v);
        }
        let timeout = c.request_timeout;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(RoamClient {
            http,
            base: c.base_url.trim_end_matches('/').to_string(),
            key,
            metrics: None,
        })
    }

    /// Counts every call by endpoint and status in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> RoamClient {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, endpoint: &str, resp: &Result<reqwest::Response, reqwest::Error>) {
        if let Some(m) = &self.metrics {
            let status = match resp {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "network".to_string(),
            };
            m.roam_calls.inc(&[endpoint, &status]);
        }
    }

    /// `POST /chat.post` with a prepared JSON body. Returns the message's timestamp when
    /// Roam gives one (requests with `sync` or `threadKey`).
    pub async fn chat_post(&self, body: String) -> Result<Option<i64>, RoamError> {
        let body = self.post_json("chat.post", body).await?;
        Ok(serde_json::from_str::<Posted>(&body)
            .ok()
            .and_then(|p| p.timestamp))
    }

    /// `POST /chat.update`: edits a message the bot posted.
    pub async fn chat_update(&self, body: String) -> Result<(), RoamError> {
        self.post_json("chat.update", body).await.map(|_| ())
    }

    async fn post_json(&self, method: &str, body: String) -> Result<String, RoamError> {
        let resp = self
            .http
            .post(format!("{}/{method}", self.base))
            .bearer_auth(self.key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        self.count(method, &resp);
        classify(resp.map_err(network_error)?).await
    }

    /// `GET /transcript.list`: one page of transcripts starting after `after` (RFC 3339),
    /// oldest first.
    pub async fn transcript_list(
        &self,
        after: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TranscriptPage, RoamError> {
        let mut query: Vec<(&str, String)> =
            vec![("after", after.to_string()), ("limit", limit.to_string())];
        if let Some(c) = cursor {
            query.push(("cursor", c.to_string()));
        }
        let body = self.get_json("transcript.list", &query).await?;
        serde_json::from_str(&body).map_err(|e| shape_error("transcript.list", e))
    }

    /// `GET /transcript.info`: one transcript with summary, action items and cues.
    pub async fn transcript_info(&self, id: &str) -> Result<serde_json::Value, RoamError> {
        let body = self
            .get_json("transcript.info", &[("id", id.to_string())])
            .await?;
        serde_json::from_str(&body).map_err(|e| shape_error("transcript.info", e))
    }

    /// `GET /user.lookup`: the Roam user with this email; None when there is none.
    pub async fn user_lookup(&self, email: &str) -> Result<Option<String>, RoamError> {
        #[derive(Deserialize)]
        struct User {
            id: String,
        }
        match self
            .get_json("user.lookup", &[("email", email.to_string())])
            .await
        {
            Ok(body) => Ok(serde_json::from_str::<User>(&body).ok().map(|u| u.id)),
            Err(RoamError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_json(&self, method: &str, query: &[(&str, String)]) -> Result<String, RoamError> {
        let resp = self
            .http
            .get(format!("{}/{method}", self.base))
            .bearer_auth(self.key.expose())
            .query(query)
            .send()
            .await;
        self.count(method, &resp);
        classify(resp.map_err(network_error)?).await
    }

    /// `GET /chat.list`, every page: the chats the bot can see (those it was added to,
    /// and every public group's channel), newest first.
    pub async fn chat_list_all(&self) -> Result<Vec<Chat>, RoamError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        // A cursor that comes back twice would loop forever; a listing is finite.
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut query = vec![("limit", "100".to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let body = self.get_json("chat.list", &query).await?;
            let page: ChatPage =
                serde_json::from_str(&body).map_err(|e| shape_error("chat.list", e))?;
            out.extend(page.chats);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(c) if seen.insert(c.clone()) => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// `POST /webhook.subscribe`: Roam posts `event` to `url` from now on. Subscribing the
    /// same event and URL again updates the subscription instead of adding one.
    pub async fn webhook_subscribe(
        &self,
        url: &str,
        event: &str,
    ) -> Result<Subscription, RoamError> {
        let body = serde_json::json!({"url": url, "event": event}).to_string();
        let answer = self.post_json("webhook.subscribe", body).await?;
        serde_json::from_str(&answer).map_err(|e| shape_error("webhook.subscribe", e))
    }

    /// `POST /webhook.unsubscribe` (v0 takes a form, not JSON): false when Roam has no
    /// such subscription.
    pub async fn webhook_unsubscribe(&self, id: &str) -> Result<bool, RoamError> {
        let resp = self
            .http
            .post(format!("{}/webhook.unsubscribe", self.base))
            .bearer_auth(self.key.expose())
            .form(&[("id", id)])
            .send()
            .await;
        self.count("webhook.unsubscribe", &resp);
        match classify(resp.map_err(network_error)?).await {
            Ok(_) => Ok(true),
            Err(RoamError::Rejected { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /token.info`: who the key belongs to and what it may do.
    pub async fn token_info(&self) -> Result<TokenInfo, RoamError> {
        let body = self.get_json("token.info", &[]).await?;
        serde_json::from_str(&body).map_err(|e| shape_error("token.info", e))
    }
}

fn network_error(e: reqwest::Error) -> RoamError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The source chain explains the cause (refused, DNS, TLS) without any header values.
    let mut detail = kind.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        src = s.source();
    }
    RoamError::Network(detail)
}

/// Maps a response to success (its body) or a classified error.
async fn classify(resp: reqwest::Response) -> Result<String, RoamError> {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(body);
    }
    let detail = error_detail(&body);
    let code = status.as_u16();
    Err(match status {
        StatusCode::TOO_MANY_REQUESTS => RoamError::RateLimited { retry_after },
        StatusCode::UNAUTHORIZED => RoamError::Unauthorized {
            status: code,
            detail,
        },
        StatusCode::FORBIDDEN if is_access_mode_error(&detail) => RoamError::Unauthorized {
            status: code,
            detail,
        },
        StatusCode::REQUEST_TIMEOUT => RoamError::Unavailable {
            status: code,
            detail,
        },
        s if s.is_server_error() => RoamError::Unavailable {
            status: code,
            detail,
        },
        _ => RoamError::Rejected {
            status: code,
            detail,
        },
    })
}

/// A 403 that is about the kind of key (a personal token), not about one chat.
pub fn is_access_mode_error(detail: &str) -> bool {
    detail.contains("access_mode_not_supported")
        || detail.contains("Personal access tokens are not supported")
}

/// Roam's error bodies: v0 `{"error": "<sentence>", "code": "<code>"}`, v1
/// `{"ok": false, "error": "<code>"}`. Falls back to the start of the raw body.
pub fn error_detail(body: &str) -> String {
    #[derive(Deserialize)]
    struct ErrBody {
        error: Option<String>,
        code: Option<String>,
    }
    if let Ok(ErrBody { error, code }) = serde_json::from_str::<ErrBody>(body) {
        match (code, error) {
            (Some(c), Some(e)) => return format!("{c}: {e}"),
            (Some(c), None) => return c,
            (None, Some(e)) => return e,
            (None, None) => {}
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "(empty body)".into();
    }
    let end = trimmed.floor_char_boundary(200);
    trimmed[..end].to_string()
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past
/// means "now". Unparseable values are ignored (the caller uses its own backoff).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        // Beyond u64 seconds (found by the fuzzer: `8888888888888888888082` panicked in
        // `from_secs_f64`): as long as can be; the caller caps every wait.
        return Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        // Found by fuzzing: too big for u64 seconds must not panic.
        assert_eq!(
            parse_retry_after("8888888888888888888082", now),
            Some(Duration::MAX)
        );
        assert_eq!(parse_retry_after("1e300", now), Some(Duration::MAX));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_detail(r#"{"error":"Token revoked","code":"token_revoked"}"#),
            "token_revoked: Token revoked"
        );
        assert_eq!(
            error_detail(r#"{"ok":false,"error":"not_in_chat"}"#),
            "not_in_chat"
        );
        assert_eq!(error_detail(""), "(empty body)");
    }

    proptest! {
        #[test]
        fn retry_after_seconds_round_trip(s in 0u64..10_000_000) {
            prop_assert_eq!(parse_retry_after(&s.to_string(), SystemTime::now()), Some(Duration::from_secs(s)));
        }

        #[test]
        fn retry_after_never_panics(v in ".{0,40}") {
            let _ = parse_retry_after(&v, SystemTime::now());
        }

        #[test]
        fn retry_after_never_panics_on_numbers(v in "[0-9]{1,40}(\\.[0-9]{0,10})?(e[0-9]{1,3})?") {
            let _ = parse_retry_after(&v, SystemTime::now());
        }
    }
}
