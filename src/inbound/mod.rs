//! Inbound sources: turn an HTTP request from a sender into verified, normalised events.
//!
//! Each source kind (one module per sender) implements [`SourceKind`] in two steps that
//! the HTTP layer calls in order:
//! 1. `authenticate`: check the signature or token over the **raw** body bytes. A
//!    failure is a 401 and nothing is stored.
//! 2. `parse`: read the event type, delivery id and payload. A failure is a 400.
//!
//! Events are named `<kind>.<event>[.<action>]` (e.g. `github.pull_request.closed`) for
//! every kind, so routes and templates look the same whatever the sender.

mod alerts;
pub mod auth;
mod buildkite;
mod circleci;
mod datadog;
mod generic;
mod github;
mod gitlab;
mod hubspot;
mod jenkins;
mod pagerduty;
mod pipedrive;
pub mod roam;
pub mod salesforce;
mod sentry;
mod simple;
mod slack;
mod standard_webhooks;
mod stripe;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use ipnet::IpNet;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};
use crate::ratelimit::TokenBucket;

pub use auth::Authenticator;

/// The source kinds this build knows, for error messages and docs.
pub const KINDS: &[&str] = &[
    "github",
    "gitlab",
    "alertmanager",
    "grafana",
    "pagerduty",
    "sentry",
    "circleci",
    "jenkins",
    "stripe",
    "buildkite",
    "datadog",
    "hubspot",
    "salesforce",
    "pipedrive",
    "standard-webhooks",
    "slack",
    "roam",
    "generic",
];

/// What a source kind sees of a request.
pub struct Inbound<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The segment after `/hooks/<source>/`, for `auth = "url-token"`.
    pub url_token: Option<&'a str>,
}

/// One normalised event.
#[derive(Debug, Clone)]
pub struct Event {
    /// `<kind>.<event>[.<action>]`.
    pub name: String,
    /// The sender's id for this delivery; a redelivery carries the same id.
    pub delivery_id: String,
    /// The thing the event is about (a pull request, a pipeline), for threading.
    pub entity: Option<String>,
    pub payload: Value,
}

/// What a request produced.
#[derive(Debug)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub ack: Ack,
}

/// How to answer the sender beyond the default JSON reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// 202 (or 200 for a duplicate) with a JSON body naming delivery id and routes.
    Default,
    /// A connectivity check (GitHub `ping`): answered 200, nothing stored or posted.
    Pong { event: String },
    /// Once committed, answer 200 with this text/plain body (Slack's `ok`).
    Text(&'static str),
    /// Once committed, answer 200 with the SOAP `Ack` (Salesforce outbound messages).
    Soap,
    /// Roam's `transcript:saved`: queue this transcript for the transcript worker.
    Transcript { id: String },
}

/// Why a request was refused; becomes an HTTP status and a JSON body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }
}

pub trait SourceKind: Send + Sync + 'static {
    fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection>;
    fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection>;
}

/// A configured source: the URL is `POST /hooks/<name>`.
pub struct Source {
    pub name: String,
    pub kind: &'static str,
    pub unauthenticated: bool,
    /// The transcript source added without a `[[sources]]` entry: no webhook endpoint.
    pub internal: bool,
    /// Client addresses allowed to post (empty: any).
    pub allow_ips: Vec<IpNet>,
    /// Inbound requests per second (`rate_limit`); more get 429.
    pub limiter: Option<std::sync::Mutex<TokenBucket>>,
    handler: Box<dyn SourceKind>,
}

impl Source {
    /// Whether `ip` may post here (`allow_ips`).
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        self.allow_ips.is_empty() || self.allow_ips.iter().any(|n| n.contains(&ip))
    }

    /// Takes one request from the source's budget; Err: how long until the next one.
    pub fn admit(&self) -> Result<(), std::time::Duration> {
        match &self.limiter {
            None => Ok(()),
            Some(l) => l
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(tokio::time::Instant::now()),
        }
    }

    pub fn authenticate(&self, req: &Inbound<'_>) -> Result<(), Rejection> {
        self.handler.authenticate(req)
    }

    pub fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection> {
        self.handler.parse(req)
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Adds the fields a kind computes for its templates (`_counts` for alert groups, …) to
/// a sample payload, so `check` and `render` see what a live event would.
pub fn prepare_sample(kind: &str, payload: &mut Value) {
    match kind {
        "alertmanager" | "grafana" => alerts::enrich(payload),
        "slack" => slack::enrich(payload),
        "roam" => roam::transcript::enrich(payload, &[]),
        _ => {}
    }
}

/// Compiles every `[[sources]]` entry. Unless a `[[sources]]` entry has the transcript
/// source's name (`transcripts.source`, default `roam`), adds it as a source without a
/// webhook endpoint, so routes can name it (also while `[transcripts]` is off).
pub fn build_sources(cfg: &Config) -> Result<Vec<Source>, ConfigError> {
    let mut out: Vec<Source> = (0..cfg.sources.len())
        .map(|i| build_source(cfg, i))
        .collect::<Result<_, _>>()?;
    let t = &cfg.transcripts;
    match out.iter().find(|s| s.name == t.source) {
        Some(s) if t.enabled && s.kind != "roam" => {
            return Err(cfg.error(
                "transcripts.source",
                format!(
                    "{:?} is a {} source; transcript events need a source of kind \"roam\" (or a name no source uses)",
                    t.source, s.kind
                ),
            ));
        }
        None => out.push(Source {
            name: t.source.clone(),
            kind: "roam",
            unauthenticated: false,
            internal: true,
            allow_ips: Vec::new(),
            limiter: None,
            handler: Box::new(NoWebhooks(t.source.clone())),
        }),
        _ => {}
    }
    Ok(out)
}

/// The transcript source when no `[[sources]]` entry declares it: no webhook endpoint.
struct NoWebhooks(String);

impl SourceKind for NoWebhooks {
    fn authenticate(&self, _: &Inbound<'_>) -> Result<(), Rejection> {
        Err(Rejection {
            status: StatusCode::NOT_FOUND,
            code: "unknown_source",
            message: format!(
                "source {:?} only carries transcripts fetched on schedule; to receive Roam's transcript:saved webhook here, add [[sources]] name = {:?}, kind = \"roam\" with the webhook signing secret",
                self.0, self.0
            ),
        })
    }

    fn parse(&self, req: &Inbound<'_>) -> Result<Parsed, Rejection> {
        self.authenticate(req).map(|_| Parsed {
            events: Vec::new(),
            ack: Ack::Default,
        })
    }
}

fn build_source(cfg: &Config, i: usize) -> Result<Source, ConfigError> {
    let sc = &cfg.sources[i];
    let (kind, handler, auth): (&'static str, Box<dyn SourceKind>, bool) = match sc.kind.as_str() {
        "github" => {
            let g = github::GitHub::from_config(cfg, i)?;
            let none = g.auth.is_none();
            ("github", Box::new(g), none)
        }
        "gitlab" => simple(cfg, i, "gitlab", &gitlab::AUTH, gitlab::parse)?,
        "alertmanager" => simple(
            cfg,
            i,
            "alertmanager",
            &BASIC_OR_BEARER,
            alerts::parse_alertmanager,
        )?,
        "grafana" => simple(
            cfg,
            i,
            "grafana",
            &alerts::GRAFANA_AUTH,
            alerts::parse_grafana,
        )?,
        "pagerduty" => simple(cfg, i, "pagerduty", &pagerduty::AUTH, pagerduty::parse)?,
        "sentry" => simple(cfg, i, "sentry", &sentry::AUTH, sentry::parse)?,
        "circleci" => simple(cfg, i, "circleci", &circleci::AUTH, circleci::parse)?,
        "jenkins" => simple(cfg, i, "jenkins", &jenkins::AUTH, jenkins::parse)?,
        "stripe" => simple(cfg, i, "stripe", &stripe::AUTH, stripe::parse)?,
        "standard-webhooks" => simple(
            cfg,
            i,
            "standard-webhooks",
            &standard_webhooks::AUTH,
            standard_webhooks::parse,
        )?,
        "slack" => simple(cfg, i, "slack", &slack::AUTH, slack::parse)?,
        "roam" => simple(cfg, i, "roam", &roam::AUTH, roam::parse)?,
        "buildkite" => simple(cfg, i, "buildkite", &buildkite::AUTH, buildkite::parse)?,
        "datadog" => simple(cfg, i, "datadog", &datadog::AUTH, datadog::parse)?,
        "hubspot" => simple(cfg, i, "hubspot", &hubspot::AUTH, hubspot::parse)?,
        "pipedrive" => simple(cfg, i, "pipedrive", &pipedrive::AUTH, pipedrive::parse)?,
        "salesforce" => ("salesforce", Box::new(salesforce::build(cfg, i)?), false),
        "generic" => {
            let g = generic::Generic::from_config(cfg, i)?;
            let none = g.auth.is_none();
            ("generic", Box::new(g), none)
        }
        other => {
            return Err(cfg.error(
                &format!("sources[{i}].kind"),
                format!(
                    "unknown source kind {other:?} (known: {})",
                    KINDS.join(", ")
                ),
            ));
        }
    };
    let allow_ips = match &sc.allow_ips {
        None => Vec::new(),
        Some(list) if list.is_empty() => {
            return Err(cfg.error(
                &format!("sources[{i}].allow_ips"),
                "empty list: it would refuse everyone; leave it out to allow any address",
            ));
        }
        Some(list) => parse_cidrs(list)
            .map_err(|(n, e)| cfg.error(&format!("sources[{i}].allow_ips[{n}]"), e))?,
    };
    let limiter = match sc.rate_limit {
        None => None,
        Some(r) if !(r > 0.0 && r.is_finite()) => {
            return Err(cfg.error(
                &format!("sources[{i}].rate_limit"),
                "must be a number of requests per second above 0",
            ));
        }
        Some(r) => Some(std::sync::Mutex::new(TokenBucket::new(
            r,
            sc.rate_limit_burst.unwrap_or(r.ceil() as u32).max(1),
        ))),
    };
    if sc.rate_limit_burst.is_some() && sc.rate_limit.is_none() {
        return Err(cfg.error(
            &format!("sources[{i}].rate_limit_burst"),
            "has no effect without rate_limit",
        ));
    }
    Ok(Source {
        name: sc.name.clone(),
        kind,
        unauthenticated: auth,
        internal: false,
        allow_ips,
        limiter,
        handler,
    })
}

/// CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or single addresses; errors are (index, problem).
pub fn parse_cidrs(list: &[String]) -> Result<Vec<IpNet>, (usize, String)> {
    list.iter()
        .enumerate()
        .map(|(n, s)| {
            let t = s.trim();
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    (
                        n,
                        format!("{s:?} is not an address or CIDR like 192.0.2.0/24"),
                    )
                })
        })
        .collect()
}

/// How a kind signs, for [`auth_from_config`].
pub struct AuthSpec {
    /// The scheme used when `auth` is not set (`None`: `auth` must be written).
    pub default: Option<&'static str>,
    /// The schemes the kind accepts, besides `none`.
    pub allowed: &'static [&'static str],
    /// What `hmac-sha256` means for this kind.
    pub hmac: HmacStyle,
    /// The header `token` reads.
    pub token_header: &'static str,
}

pub enum HmacStyle {
    /// The kind has no HMAC scheme.
    None,
    /// `<header>: <prefix><hex>` over the body.
    Hex {
        header: &'static str,
        prefix: &'static str,
    },
    /// `<header>: v1=<hex>,v1=<hex>` over the body.
    HexList {
        header: &'static str,
        version: &'static str,
    },
    /// Grafana's, with an optional signed timestamp header.
    Grafana { header: &'static str },
    /// Buildkite's `timestamp=…,signature=…`.
    Buildkite,
    /// HubSpot's v3 (needs `public_url`).
    HubSpot,
}

fn simple(
    cfg: &Config,
    i: usize,
    kind: &'static str,
    spec: &AuthSpec,
    parse: simple::ParseFn,
) -> Result<(&'static str, Box<dyn SourceKind>, bool), ConfigError> {
    let s = simple::build(cfg, i, kind, spec, parse)?;
    let none = s.auth.is_none();
    Ok((kind, Box::new(s), none))
}

/// Senders configured with HTTP Basic or a Bearer token (Alertmanager's `http_config`,
/// Jenkins, Datadog): either form is accepted.
pub const BASIC_OR_BEARER: AuthSpec = AuthSpec {
    default: Some("basic-or-bearer"),
    allowed: &["basic-or-bearer", "basic", "bearer"],
    hmac: HmacStyle::None,
    token_header: "",
};

/// Builds the authenticator from `auth`, `secret`/`secrets` and the signature keys.
fn auth_from_config(
    cfg: &Config,
    i: usize,
    kind: &str,
    spec: &AuthSpec,
) -> Result<Authenticator, ConfigError> {
    let sc = &cfg.sources[i];
    let key = |k: &str| format!("sources[{i}].{k}");
    let secrets = sc.all_secrets();
    let tolerance = sc.tolerance.unwrap_or(auth::DEFAULT_TOLERANCE);
    let scheme = match (sc.auth.as_deref(), spec.default) {
        (Some(s), _) => s,
        (None, Some(d)) => d,
        (None, None) => {
            return Err(cfg.error(
                &key("auth"),
                format!(
                    "missing: set auth = {} or (explicitly) \"none\"",
                    spec.allowed
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    if scheme == "none" {
        if !secrets.is_empty() {
            return Err(cfg.error(
                &key("auth"),
                "auth = \"none\" but a secret is set; remove one of them",
            ));
        }
        return Ok(Authenticator::None);
    }
    if !spec.allowed.contains(&scheme) {
        return Err(cfg.error(
            &key("auth"),
            format!(
                "kind {kind:?} does not support auth {scheme:?} (use {} or \"none\")",
                spec.allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if secrets.is_empty() {
        return Err(cfg.error(
            &key("secret"),
            format!("auth = {scheme:?} needs `secret` (or `secrets = [..]`); write ${{env:NAME}} to keep it out of the file"),
        ));
    }
    let uses_signature_keys = matches!(scheme, "hmac-sha256");
    if !uses_signature_keys && (sc.signature_header.is_some() || sc.signature_prefix.is_some()) {
        return Err(cfg.error(
            &key("signature_header"),
            "only used with auth = \"hmac-sha256\"",
        ));
    }
    if sc.timestamp_header.is_some() && !matches!(spec.hmac, HmacStyle::Grafana { .. }) {
        return Err(cfg.error(
            &key("timestamp_header"),
            format!("not used by kind {kind:?}"),
        ));
    }
    let header = |default: &str| -> Result<String, ConfigError> {
        let h = sc
            .signature_header
            .clone()
            .unwrap_or_else(|| default.to_string());
        if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            return Err(cfg.error(
                &key("signature_header"),
                format!("{h:?} is not a valid header name"),
            ));
        }
        Ok(h)
    };
    Ok(match scheme {
        "basic-or-bearer" => Authenticator::BasicOrBearer { secrets },
        "bearer" => Authenticator::Bearer { secrets },
        "basic" => Authenticator::Basic { secrets },
        "token" => Authenticator::Token {
            header: spec.token_header.to_string(),
            secrets,
        },
        "url-token" => Authenticator::UrlToken { secrets },
        "stripe" => Authenticator::Stripe { secrets, tolerance },
        "standard-webhooks" => {
            let mut keys = Vec::new();
            for s in &secrets {
                keys.push(
                    auth::standard_webhooks_key(s.expose())
                        .map_err(|e| cfg.error(&key("secret"), e))?,
                );
            }
            Authenticator::StandardWebhooks { keys, tolerance }
        }
        "hmac-sha256" => match spec.hmac {
            HmacStyle::None => {
                return Err(cfg.error(&key("auth"), format!("kind {kind:?} has no HMAC scheme")));
            }
            HmacStyle::Hex { header: h, prefix } => Authenticator::HmacSha256Hex {
                header: header(h)?,
                prefix: sc
                    .signature_prefix
                    .clone()
                    .unwrap_or_else(|| prefix.to_string()),
                secrets,
            },
            HmacStyle::HexList { header: h, version } => Authenticator::HmacSha256HexList {
                header: header(h)?,
                version: version.to_string(),
                secrets,
            },
            HmacStyle::Grafana { header: h } => Authenticator::Grafana {
                header: header(h)?,
                timestamp_header: sc.timestamp_header.clone(),
                secrets,
                tolerance,
            },
            HmacStyle::Buildkite => Authenticator::Buildkite { secrets, tolerance },
            HmacStyle::HubSpot => {
                let public_url = sc.public_url.clone().ok_or_else(|| {
                    cfg.error(
                        &key("public_url"),
                        "missing: HubSpot signs the URL it calls; set public_url = \"https://<your host>/hooks/<name>\"",
                    )
                })?;
                Authenticator::HubSpotV3 {
                    secrets,
                    public_url,
                    tolerance,
                }
            }
        },
        other => {
            return Err(cfg.error(&key("auth"), format!("unknown auth {other:?}")));
        }
    })
}

/// Refuses the generic source's keys on a kind that reads its event and delivery id
/// itself, so a misplaced key is an error rather than silently ignored.
fn reject_unused(cfg: &Config, i: usize, kind: &str) -> Result<(), ConfigError> {
    let sc = &cfg.sources[i];
    for (k, set) in [
        ("event_field", sc.event_field.is_some()),
        ("event_header", sc.event_header.is_some()),
        ("delivery_id_field", sc.delivery_id_field.is_some()),
        ("delivery_id_header", sc.delivery_id_header.is_some()),
    ] {
        if set {
            return Err(cfg.error(
                &format!("sources[{i}].{k}"),
                format!("not used by kind {kind:?}"),
            ));
        }
    }
    Ok(())
}

/// The first of `headers` that is present and non-empty, else the body's SHA-256.
fn delivery_from_headers(req: &Inbound<'_>, headers: &[&str]) -> String {
    headers
        .iter()
        .find_map(|h| {
            req.headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        })
        .map(str::to_string)
        .unwrap_or_else(|| body_digest(req.body))
}

/// A stable delivery id for senders that do not send one: the body's SHA-256.
fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn parse_json(body: &[u8]) -> Result<Value, Rejection> {
    // A UTF-8 byte-order mark is not JSON but some senders' test tools add one; the
    // signature was checked over the bytes as received.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body)
        .map_err(|e| Rejection::bad_request(format!("body is not valid JSON: {e}")))
}

/// Keeps event-name parts to `[a-z0-9_.-]` so names are predictable in routes.
fn name_part(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
