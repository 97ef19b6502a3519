//! The configuration's sections and entries as written in TOML (strict: unknown keys
//! are errors). Defaults live in `defaults.toml`; checks in `validate.rs` and in the
//! modules that compile each part.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de;
use super::secret::Secret;

/// One `[[mute_windows]]` entry: from `start` to `end` local time in `timezone`, on the
/// listed weekdays (the day the window starts; default every day).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteWindowConfig {
    pub name: String,
    /// IANA time zone name, e.g. `Europe/Berlin` (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub weekdays: Option<Vec<String>>,
    /// `HH:MM`
    pub start: String,
    /// `HH:MM`; at or before `start` means the next day.
    pub end: String,
}

/// One `[[silences]]` entry: events matching it are not sent between `starts` and `ends`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    pub comment: String,
    /// RFC 3339; default: always started.
    #[serde(default)]
    pub starts: Option<String>,
    /// RFC 3339.
    pub ends: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// Field path -> expected value (exact, or `/regex/`), as in a route's `match`.
    #[serde(default, rename = "match")]
    pub match_: BTreeMap<String, MatchValue>,
    #[serde(default)]
    pub when: Option<serde_json::Value>,
}

/// One `[[tests]]` entry: a payload through a source, and what must come out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestConfig {
    pub name: String,
    pub source: String,
    /// Payload file, relative to the config file.
    pub payload: PathBuf,
    /// Headers the source reads (e.g. `X-GitHub-Event`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Overrides the event name the source derives.
    #[serde(default)]
    pub event: Option<String>,
    /// The routes that must match, in order (exactly these).
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// How many messages must be produced.
    #[serde(default)]
    pub messages: Option<usize>,
    /// Texts that must each appear in some message.
    #[serde(default)]
    pub contains: Vec<String>,
    /// The colour some card must have (`good`, `warning`, `danger`, `#hex`, or `none`).
    #[serde(default)]
    pub color: Option<String>,
    /// Button URLs that must each be on some card.
    #[serde(default)]
    pub buttons: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDefaults {
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub to: Option<OneOrMany>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default, rename = "continue", deserialize_with = "de::opt_bool")]
    pub continue_: Option<bool>,
    #[serde(default)]
    pub mentions: Option<Vec<String>>,
    #[serde(default)]
    pub long: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the public webhook listener.
    #[serde(deserialize_with = "de::string_like")]
    pub listen: String,
    /// Largest request body accepted, in bytes.
    #[serde(deserialize_with = "de::byte_size")]
    pub max_body: usize,
    #[serde(deserialize_with = "de::duration")]
    pub request_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests and the current send.
    #[serde(deserialize_with = "de::duration")]
    pub shutdown_timeout: Duration,
    /// TLS for the webhook listener: a PEM certificate chain and its private key (both or
    /// neither; most deployments terminate TLS in a proxy instead).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Proxies (CIDR) whose `X-Forwarded-For` is believed when checking `allow_ips`.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Address of the admin listener (`/metrics`, `/-/reload`); `""` turns it off.
    /// Keep it private: it is never the public webhook port.
    #[serde(deserialize_with = "de::string_like")]
    pub admin_listen: String,
    /// The bearer token every admin endpoint but `/healthz` requires (`${env:NAME}` /
    /// `${file:/path}` keep it out of the file).
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// `"token"` (the default): the admin endpoints need `admin_token` when it is set, and
    /// it must be set unless the admin listener is on a loopback address. `"none"`: open
    /// to whoever reaches the port, on purpose.
    #[serde(default)]
    pub admin_auth: Option<String>,
    /// Whether `/metrics` needs the admin token too (Prometheus can send it).
    pub metrics_auth: bool,
    /// The browser console at the admin listener's `/` (`false`: the JSON API only).
    pub console: bool,
    /// How long a console sign-in lasts.
    #[serde(deserialize_with = "de::duration")]
    pub console_session: Duration,
}

/// How the admin endpoints are protected, as the config says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAuth {
    /// `Authorization: Bearer <admin_token>` on every admin endpoint but `/healthz`
    /// (and `/metrics` when `metrics_auth = false`).
    Token { token: Secret, metrics: bool },
    /// No token configured and the listener only on loopback: local processes only.
    LoopbackOnly,
    /// `admin_auth = "none"`: open, on purpose.
    Open,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoamConfig {
    #[serde(deserialize_with = "de::string_like")]
    pub base_url: String,
    /// Organization API key. None means dry-run.
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(deserialize_with = "de::duration")]
    pub request_timeout: Duration,
    #[serde(deserialize_with = "de::f64")]
    pub rate_per_second: f64,
    #[serde(deserialize_with = "de::u32")]
    pub burst: u32,
    /// Sent as `Roam-Version` on every call: the API version whose shapes this daemon
    /// expects (a date, `YYYY-MM-DD`).
    #[serde(deserialize_with = "de::string_like")]
    pub api_version: String,
    /// How often the chats (`#Name`s) and people (emails) the daemon knows are asked
    /// about again.
    #[serde(deserialize_with = "de::duration")]
    pub directory_refresh: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// A secret, since a PostgreSQL URL may carry a password: `${env:…}` / `${file:…}`
    /// work, and it never prints.
    pub url: Secret,
    /// Delivered and dropped messages, and their events, are deleted this long after;
    /// a sender's redelivery is recognised as a duplicate for as long.
    #[serde(deserialize_with = "de::duration")]
    pub retention: Duration,
    /// PostgreSQL: how long a replica's claim on a message lasts. A replica that dies
    /// mid-send gives its messages back when this runs out.
    #[serde(deserialize_with = "de::duration")]
    pub lease: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// First retry delay after a 5xx or network error; doubles each attempt.
    #[serde(deserialize_with = "de::duration")]
    pub retry_initial: Duration,
    /// Largest delay between two attempts.
    #[serde(deserialize_with = "de::duration")]
    pub retry_max: Duration,
    /// A message still failing this long after it was accepted becomes a dead letter.
    #[serde(deserialize_with = "de::duration")]
    pub give_up_after: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesConfig {
    /// Directory whose `*.hbs` files add to or override the built-in templates.
    #[serde(deserialize_with = "de::string_like")]
    pub dir: String,
}

/// `[transcripts]`: post-meeting summaries and action items (see `transcripts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptsConfig {
    #[serde(deserialize_with = "de::bool")]
    pub enabled: bool,
    /// Cron, 5 fields as people write it (`*/15 * * * *`); 6 with seconds also accepted.
    #[serde(deserialize_with = "de::string_like")]
    pub schedule: String,
    /// IANA time zone the schedule is read in.
    #[serde(deserialize_with = "de::string_like")]
    pub timezone: String,
    /// The source name transcript events carry (routes use it). A `[[sources]]` entry of
    /// kind `roam` with this name also receives Roam's `transcript:saved` webhook.
    #[serde(deserialize_with = "de::string_like")]
    pub source: String,
    /// How far back the first run on a new install looks.
    #[serde(deserialize_with = "de::duration")]
    pub lookback: Duration,
    /// Each sweep lists from this long before its checkpoint again (Roam does not say
    /// whether `after` compares a meeting's start or end).
    #[serde(deserialize_with = "de::duration")]
    pub overlap: Duration,
    /// Email domains of the organization; a participant from any other is external.
    #[serde(default)]
    pub internal_domains: Vec<String>,
    /// At start-up, ask Roam to post `transcript:saved` to the transcript source's
    /// `public_url` (webhook.subscribe; repeating it updates the same subscription).
    #[serde(deserialize_with = "de::bool")]
    pub subscribe: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(deserialize_with = "de::string_like")]
    pub format: String,
    /// A tracing filter: `info`, `debug`, `roam_notify=debug,info`, ...
    #[serde(deserialize_with = "de::string_like")]
    pub level: String,
}

/// One `[[sources]]` entry. Kind-specific keys are checked by the kind (`inbound`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub kind: String,
    /// `none` must be written explicitly to accept unauthenticated requests.
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Several secrets, all accepted: for rotating a secret without downtime.
    #[serde(default)]
    pub secrets: Option<Vec<Secret>>,
    #[serde(default)]
    pub event_field: Option<String>,
    #[serde(default)]
    pub event_header: Option<String>,
    #[serde(default)]
    pub delivery_id_field: Option<String>,
    #[serde(default)]
    pub delivery_id_header: Option<String>,
    #[serde(default)]
    pub signature_header: Option<String>,
    #[serde(default)]
    pub signature_prefix: Option<String>,
    /// Grafana: the header carrying the signed timestamp, when configured there.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// HubSpot: the URL HubSpot calls, which it signs.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Salesforce: the organization id outbound messages must carry.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Replay window for signed timestamps (default 5m).
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub tolerance: Option<Duration>,
    /// Only these client addresses (CIDR) may post to this source; others get 403.
    #[serde(default)]
    pub allow_ips: Option<Vec<String>>,
    /// Requests per second this source accepts (a token bucket); more get 429.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub rate_limit: Option<f64>,
    /// Burst for `rate_limit` (default: one second's worth, at least 1).
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub rate_limit_burst: Option<u32>,
    /// HubSpot: a private app token; with it each event's record (deal, contact,
    /// company, ticket) and its owner are read from HubSpot's CRM API.
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// HubSpot: the API's base URL (default `https://api.hubapi.com`).
    #[serde(default)]
    pub api_url: Option<String>,
    /// HubSpot: how long the answer to a webhook may wait for the CRM API (default 2s).
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub enrich_timeout: Option<Duration>,
    /// HubSpot: how long a record read from the CRM API is used without asking again
    /// (default 10m; pipelines and owners: 1h).
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub enrich_ttl: Option<Duration>,
}

impl SourceConfig {
    /// `secret` and `secrets` together, in order.
    pub fn all_secrets(&self) -> Vec<Secret> {
        let mut v: Vec<Secret> = self.secret.iter().cloned().collect();
        v.extend(self.secrets.iter().flatten().cloned());
        v
    }
}

/// One `[[routes]]` entry; compiled by `routing`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// The source's name (or `route_defaults.source`).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Field path -> expected value (exact, or `/regex/`).
    #[serde(default, rename = "match")]
    pub match_: BTreeMap<String, MatchValue>,
    /// Conditions with operators and all / any / not (`routing::when`).
    #[serde(default)]
    pub when: Option<serde_json::Value>,
    /// Roam ids, `#Name`s, emails, `{{expressions}}` or `[destinations]` names (or
    /// `route_defaults.to`).
    #[serde(default)]
    pub to: Option<OneOrMany>,
    /// Where the message goes when every expression in `to` yields nothing.
    #[serde(default)]
    pub fallback: Option<OneOrMany>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default, rename = "continue", deserialize_with = "de::opt_bool")]
    pub continue_: Option<bool>,
    /// Who the message mentions: Roam user ids (`U-…`), emails, `{{expressions}}` or `all`.
    #[serde(default)]
    pub mentions: Option<Vec<String>>,
    /// A message over Roam's 8,000-byte cap: `cut` (default) or `thread` (split, the rest
    /// posted as replies in the first part's thread).
    #[serde(default)]
    pub long: Option<String>,
    /// `card` (default: Block Kit, when the template has a card form) or `text`.
    #[serde(default)]
    pub format: Option<String>,
    /// Later events about the same entity are posted as replies in one Roam thread.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub thread: Option<bool>,
    /// The first message about an entity is edited in place (`chat.update`) by later ones.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub update: Option<bool>,
    /// Grouping (see `grouping`): fields whose values make a group; `[]` is one group.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub group_wait: Option<Duration>,
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub group_interval: Option<Duration>,
    /// The same event (fingerprint) is not sent again within this long.
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub repeat_interval: Option<Duration>,
    /// Fields that identify "the same event" for `repeat_interval`.
    #[serde(default)]
    pub fingerprint: Option<Vec<String>>,
    /// At most this many messages per `max_messages_interval`; the rest become one digest.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub max_messages: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_duration")]
    pub max_messages_interval: Option<Duration>,
    /// Template for a message of several events (default `group`).
    #[serde(default)]
    pub group_template: Option<String>,
    /// Events listed in a group message before "… and N more" (default 10).
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub group_shown: Option<u32>,
    /// Names of `[[mute_windows]]` during which this route sends nothing.
    #[serde(default)]
    pub mute: Option<Vec<String>>,
    /// Muted events are summarised in one message when the window ends.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub mute_summary: Option<bool>,
    /// Transcripts: each action item's assignee also gets their items as a direct message.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub dm_assignees: Option<bool>,
}

/// Where a configuration came from, so it can be loaded again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A TOML string (tests, `routes test`): there is nothing to re-read.
    InMemory,
    /// The built-in defaults and the environment, no file.
    Defaults,
    /// This file, over the defaults, under the environment.
    File(PathBuf),
}

impl Origin {
    /// The file to pass to `Config::load` again, or None when there is nothing to re-read.
    pub fn reload_path(&self) -> Option<Option<&std::path::Path>> {
        match self {
            Origin::InMemory => None,
            Origin::Defaults => Some(None),
            Origin::File(f) => Some(Some(f)),
        }
    }
}

/// A match value as written: `true` and `42` are compared as the strings "true" and "42".
#[derive(Debug, Clone, Deserialize)]
pub struct MatchValue(#[serde(deserialize_with = "de::string_like")] pub String);

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}
