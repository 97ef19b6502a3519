//! Configuration: built-in defaults < TOML file < environment variables.
//!
//! `load` merges the three layers with figment, deserializes them strictly (unknown keys
//! are errors), resolves `${env:..}` / `${file:..}` secrets and checks every value that
//! can be checked without knowing about sources, routes or templates. Those are compiled
//! (and checked) by their own modules, which report problems through [`ConfigError`] with
//! the help of [`Config::origin`], so every error names the file (or variable) and key.

mod de;
mod env;
mod secret;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::{Figment, Source};
use serde::Deserialize;

pub use de::parse_byte_size;
pub use env::{API_KEY_ALIAS, EnvStrings, PREFIX as ENV_PREFIX};
pub use secret::Secret;

/// The embedded defaults file: the single place where default values live.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_PATH_ENV: &str = "ROAM_NOTIFY_CONFIG";

/// A configuration problem, always naming where it came from and which key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {key}: {problem}")]
pub struct ConfigError {
    /// The file path, `built-in defaults`, or the environment variable's name.
    pub origin: String,
    /// Dotted key, e.g. `routes[2].match."pull_request.title"`.
    pub key: String,
    pub problem: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub roam: RoamConfig,
    pub storage: StorageConfig,
    pub delivery: DeliveryConfig,
    pub templates: TemplatesConfig,
    pub log: LogConfig,
    pub transcripts: TranscriptsConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Names for Roam ids, usable in a route's `to`: `oncall = "G-…"` or a list.
    #[serde(default)]
    pub destinations: BTreeMap<String, OneOrMany>,
    /// Values a route takes when it does not set them.
    #[serde(default)]
    pub route_defaults: RouteDefaults,
    /// Routing tests run by `roam-notify check`.
    #[serde(default)]
    pub tests: Vec<TestConfig>,
    /// Named times of day when routes that list them in `mute` send nothing.
    #[serde(default)]
    pub mute_windows: Vec<MuteWindowConfig>,
    /// Silences kept in the config (more can be added with `roam-notify silence add`).
    #[serde(default)]
    pub silences: Vec<SilenceConfig>,
    /// Files (globs relative to the config file, `*` in the file name) whose `[[routes]]`
    /// and `[destinations]` are added after this file's: one file per team.
    #[serde(default)]
    pub include: Option<OneOrMany>,
    #[serde(skip)]
    origins: Origins,
}

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
    /// Roam ids or `[destinations]` names (or `route_defaults.to`).
    #[serde(default)]
    pub to: Option<OneOrMany>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default, rename = "continue", deserialize_with = "de::opt_bool")]
    pub continue_: Option<bool>,
    /// Who the message mentions: Roam user ids (`U-…`) or `all`.
    #[serde(default)]
    pub mentions: Option<Vec<String>>,
    /// A message over Roam's 8,000-byte cap: `cut` (default) or `thread` (split, the rest
    /// posted as replies in the first part's thread).
    #[serde(default)]
    pub long: Option<String>,
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

/// Remembers which layer set each key, to name it in error messages.
#[derive(Debug, Clone, Default)]
struct Origins {
    figment: Option<Figment>,
    file: Option<PathBuf>,
    /// Loaded by `load` (file and environment), so a reload can do the same again.
    reloadable: bool,
    /// Routes from included files: (index of the first one, how many, the file).
    included: Vec<(usize, usize, PathBuf)>,
}

/// What an included file may hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Included {
    #[serde(default)]
    routes: Vec<RouteConfig>,
    #[serde(default)]
    destinations: BTreeMap<String, OneOrMany>,
}

impl Config {
    /// Built-in defaults only (no file, no environment): what tests and `check` start from.
    pub fn defaults() -> Result<Config, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(DEFAULTS_TOML)), None)
    }

    /// Loads the real configuration: defaults < `path` (if any) < environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, EnvStrings::from_process())
    }

    pub fn load_with_env(path: Option<&Path>, env: EnvStrings) -> Result<Config, ConfigError> {
        let mut fig = Figment::new().merge(Toml::string(DEFAULTS_TOML));
        if let Some(p) = path {
            if !p.is_file() {
                return Err(ConfigError {
                    origin: p.display().to_string(),
                    key: "(file)".into(),
                    problem: "config file not found or not a regular file".into(),
                });
            }
            fig = fig.merge(Toml::file(p));
        }
        fig = fig.merge(env);
        let mut cfg = Self::from_figment(fig, path.map(Path::to_path_buf))?;
        cfg.origins.reloadable = true;
        Ok(cfg)
    }

    /// How to load this configuration again (hot reload).
    pub fn reload_origin(&self) -> Origin {
        match (self.origins.reloadable, &self.origins.file) {
            (false, _) => Origin::InMemory,
            (true, None) => Origin::Defaults,
            (true, Some(f)) => Origin::File(f.clone()),
        }
    }

    /// Loads from a TOML string (tests, `routes test`); environment is ignored.
    pub fn from_toml_str(toml: &str, pretend_path: &str) -> Result<Config, ConfigError> {
        let fig = Figment::new()
            .merge(Toml::string(DEFAULTS_TOML))
            .merge(Toml::string(toml));
        let mut cfg = Self::from_figment(fig, Some(PathBuf::from(pretend_path)))?;
        cfg.origins.figment = None;
        Ok(cfg)
    }

    fn from_figment(fig: Figment, file: Option<PathBuf>) -> Result<Config, ConfigError> {
        let mut cfg: Config = fig
            .extract()
            .map_err(|e| figment_error(e, file.as_deref()))?;
        cfg.origins = Origins {
            figment: Some(fig),
            file,
            reloadable: false,
            included: Vec::new(),
        };
        cfg.load_includes()?;
        cfg.resolve_secrets()?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Where `key` (dotted, e.g. `routes.2.to`) was set: a file path, an environment
    /// variable name, or `built-in defaults`.
    pub fn origin(&self, key: &str) -> String {
        let file = || {
            self.origins
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in defaults".into())
        };
        let Some(fig) = &self.origins.figment else {
            return file();
        };
        let mut k = key.to_string();
        loop {
            if let Some(md) = fig.find_metadata(&k) {
                return describe_metadata(md, &k, file);
            }
            match k.rfind('.') {
                Some(i) => k.truncate(i),
                None => return file(),
            }
        }
    }

    pub fn error(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        // A route from an included file: name that file and the route's index in it.
        if let Some(rest) = key.strip_prefix("routes[")
            && let Some((n, tail)) = rest.split_once(']')
            && let Ok(n) = n.parse::<usize>()
            && let Some((first, _, path)) = self
                .origins
                .included
                .iter()
                .find(|(f, c, _)| n >= *f && n < f + c)
        {
            return ConfigError {
                origin: path.display().to_string(),
                key: format!("routes[{}]{tail}", n - first),
                problem: problem.into(),
            };
        }
        let lookup = key.replace(['[', ']'], ".").replace("..", ".");
        ConfigError {
            origin: self.origin(lookup.trim_end_matches('.')),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn load_includes(&mut self) -> Result<(), ConfigError> {
        let Some(patterns) = self.include.clone() else {
            return Ok(());
        };
        let base = self
            .origins
            .file
            .as_ref()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for pattern in patterns.to_vec() {
            let files = expand_glob(&base, &pattern).map_err(|p| self.error("include", p))?;
            if files.is_empty() {
                return Err(self.error("include", format!("{pattern:?} matches no file")));
            }
            for path in files {
                let inc: Included = Figment::new()
                    .merge(Toml::file(&path))
                    .extract()
                    .map_err(|e| figment_error(e, Some(&path)))?;
                for (name, ids) in inc.destinations {
                    if self.destinations.insert(name.clone(), ids).is_some() {
                        return Err(ConfigError {
                            origin: path.display().to_string(),
                            key: format!("destinations.{name}"),
                            problem: "already defined in another file".into(),
                        });
                    }
                }
                let first = self.routes.len();
                let count = inc.routes.len();
                self.routes.extend(inc.routes);
                self.origins.included.push((first, count, path));
            }
        }
        Ok(())
    }

    /// The file the configuration came from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.origins.file.as_deref()
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // validate() has checked it.
        self.server
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// True when no Roam API key is configured: messages are logged, not posted.
    fn admin_listen_addr_raw(&self) -> Option<&str> {
        let a = self.server.admin_listen.trim();
        (!a.is_empty() && a != "off").then_some(a)
    }

    /// The admin listener's address; None when turned off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listen_addr_raw().and_then(|a| a.parse().ok())
    }

    pub fn dry_run(&self) -> bool {
        self.roam.api_key.is_none()
    }

    fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        let url = self
            .storage
            .url
            .resolve()
            .map_err(|p| self.error("storage.url", p))?;
        self.storage.url = url;
        if let Some(k) = &self.roam.api_key {
            let resolved = k.resolve().map_err(|p| self.error("roam.api_key", p))?;
            self.roam.api_key = Some(resolved);
        }
        for i in 0..self.sources.len() {
            if let Some(s) = &self.sources[i].secret {
                let r = s
                    .resolve()
                    .map_err(|p| self.error(&format!("sources[{i}].secret"), p))?;
                self.sources[i].secret = Some(r);
            }
            if let Some(list) = self.sources[i].secrets.clone() {
                let mut out = Vec::with_capacity(list.len());
                for (j, s) in list.iter().enumerate() {
                    out.push(
                        s.resolve()
                            .map_err(|p| self.error(&format!("sources[{i}].secrets[{j}]"), p))?,
                    );
                }
                self.sources[i].secrets = Some(out);
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return Err(self.error(
                "server.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    self.server.listen
                ),
            ));
        }
        if let Some(a) = self.admin_listen_addr_raw()
            && a.parse::<SocketAddr>().is_err()
        {
            return Err(self.error(
                "server.admin_listen",
                format!("{a:?} is not an address like 127.0.0.1:9090 (\"\" turns it off)"),
            ));
        }
        if self.admin_listen_addr_raw() == Some(self.server.listen.trim())
            && !self.server.listen.ends_with(":0")
        {
            return Err(self.error(
                "server.admin_listen",
                "must differ from server.listen: the admin endpoints never share the public webhook port",
            ));
        }
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(_), None) => {
                return Err(self.error(
                    "server.tls_key",
                    "tls_cert is set but tls_key is not (both or neither)",
                ));
            }
            (None, Some(_)) => {
                return Err(self.error(
                    "server.tls_cert",
                    "tls_key is set but tls_cert is not (both or neither)",
                ));
            }
            _ => {}
        }
        // A send is at most two calls (an update and its thread reply); a claim that ran
        // out during a send would let another replica send the message too.
        if self.storage.lease <= self.roam.request_timeout * 2 {
            return Err(self.error(
                "storage.lease",
                format!(
                    "{} is not longer than twice roam.request_timeout ({}): a send could outlive its claim",
                    humantime::format_duration(self.storage.lease),
                    humantime::format_duration(self.roam.request_timeout)
                ),
            ));
        }
        if self.server.max_body == 0 {
            return Err(self.error("server.max_body", "must be larger than 0"));
        }
        match reqwest::Url::parse(&self.roam.base_url) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => {
                return Err(self.error(
                    "roam.base_url",
                    format!("{:?} is not an http(s) URL", self.roam.base_url),
                ));
            }
        }
        if !(self.roam.rate_per_second > 0.0 && self.roam.rate_per_second.is_finite()) {
            return Err(self.error("roam.rate_per_second", "must be a number above 0"));
        }
        if self.roam.burst == 0 {
            return Err(self.error("roam.burst", "must be at least 1"));
        }
        let url = self.storage.url.expose();
        if !url.starts_with("sqlite:") && !crate::storage::is_postgres_url(url) {
            return Err(self.error(
                "storage.url",
                format!(
                    "{:?}: use sqlite://FILE (one daemon) or postgres://USER@HOST/DB (several replicas)",
                    crate::storage::redacted_url(url)
                ),
            ));
        }
        if self.delivery.retry_initial.is_zero()
            || self.delivery.retry_max < self.delivery.retry_initial
        {
            return Err(self.error(
                "delivery.retry_max",
                "retry_initial must be above 0 and retry_max at least retry_initial",
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(self.error("log.format", "must be \"text\" or \"json\""));
        }
        let mut names = HashSet::new();
        for (i, s) in self.sources.iter().enumerate() {
            let valid = !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(self.error(
                    &format!("sources[{i}].name"),
                    format!("{:?}: use letters, digits, '-', '_' or '.' (it becomes the URL /hooks/<name>)", s.name),
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(self.error(
                    &format!("sources[{i}].name"),
                    format!("duplicate source name {:?}", s.name),
                ));
            }
        }
        let mut routes = HashSet::new();
        for name in self.destinations.keys() {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(self.error(
                    &format!("destinations.{name}"),
                    "names use letters, digits, '-', '_' or '.'",
                ));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.name.is_empty() || !routes.insert(r.name.as_str()) {
                return Err(self.error(
                    &format!("routes[{i}].name"),
                    format!(
                        "route names must be unique and non-empty (found {:?})",
                        r.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `dir/*.toml` (a `*` in the file name only) relative to `base`, sorted; or one file.
fn expand_glob(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = base.join(pattern);
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    if !name.contains('*') {
        return Ok(if full.is_file() { vec![full] } else { vec![] });
    }
    let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.to_string_lossy().contains('*') {
        return Err(format!("{pattern:?}: `*` is allowed in the file name only"));
    }
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.len() >= pre.len() + post.len()
                        && n.starts_with(pre)
                        && n.ends_with(post)
                        && !n.starts_with('.')
                })
        })
        .collect();
    out.sort();
    Ok(out)
}

fn describe_metadata(md: &figment::Metadata, key: &str, file: impl Fn() -> String) -> String {
    match &md.source {
        Some(Source::File(p)) => p.display().to_string(),
        _ if md.name.contains("environment") => {
            let parts: Vec<&str> = key.split('.').collect();
            md.interpolate(&figment::Profile::Default, &parts)
        }
        _ if md.name.contains("TOML source string") => {
            // Either the embedded defaults or a string given to `from_toml_str`.
            file()
        }
        _ => md.name.to_string(),
    }
}

fn figment_error(e: figment::Error, file: Option<&Path>) -> ConfigError {
    let mut key = e.path.join(".");
    if let figment::error::Kind::UnknownField(field, _) = &e.kind
        && e.path.last() != Some(field)
    {
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(field);
    }
    if key.is_empty() {
        key = "(top level)".into();
    }
    let origin = match &e.metadata {
        Some(md) => {
            let parts: Vec<&str> = e.path.iter().map(String::as_str).collect();
            match &md.source {
                Some(Source::File(p)) => p.display().to_string(),
                _ if md.name.contains("environment") => {
                    md.interpolate(&figment::Profile::Default, &parts)
                }
                _ => file
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "built-in defaults".into()),
            }
        }
        None => file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "configuration".into()),
    };
    ConfigError {
        origin,
        key,
        problem: e.kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> EnvStrings {
        EnvStrings::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_load() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.server.max_body, 1 << 20);
        assert_eq!(c.roam.burst, 10);
        assert!(c.dry_run());
    }

    #[test]
    fn the_storage_url_is_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-url");
        std::fs::write(&file, "postgres://rn:hunter2@db:5432/rn\n").unwrap();
        let c = Config::from_toml_str(
            &format!("[storage]\nurl = \"${{file:{}}}\"\n", file.display()),
            "c.toml",
        )
        .unwrap();
        assert_eq!(c.storage.url.expose(), "postgres://rn:hunter2@db:5432/rn");
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = Config::from_toml_str("[storage]\nurl = \"mysql://rn:hunter2@db/rn\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("storage.url") && e.contains("postgres://"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = Config::from_toml_str("[storage]\nlease = \"15s\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("storage.lease") && e.contains("roam.request_timeout"),
            "{e}"
        );
    }

    #[test]
    fn numeric_looking_secrets_stay_strings() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("ROAM_NOTIFY__ROAM__API_KEY", "0123456789"),
                ("ROAM_NOTIFY__ROAM__BURST", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(c.roam.api_key.unwrap().expose(), "0123456789");
        assert_eq!(c.roam.burst, 3);
        let c = Config::load_with_env(None, env(&[("ROAM_NOTIFY_ROAM_API_KEY", "true")])).unwrap();
        assert_eq!(c.roam.api_key.unwrap().expose(), "true");
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let e = Config::load_with_env(Some(&p), env(&[])).unwrap_err();
        assert_eq!(e.origin, p.display().to_string());
        assert_eq!(e.key, "server.listen_port");
        assert!(e.problem.contains("unknown field"), "{e}");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let e =
            Config::load_with_env(None, env(&[("ROAM_NOTIFY__ROAM__BURST", "many")])).unwrap_err();
        assert_eq!(e.origin, "ROAM_NOTIFY__ROAM__BURST", "{e}");
        assert_eq!(e.key, "roam.burst");
    }

    #[test]
    fn invalid_listen_is_reported_with_its_origin() {
        let e = Config::load_with_env(None, env(&[("ROAM_NOTIFY__SERVER__LISTEN", "nope")]))
            .unwrap_err();
        assert_eq!(e.origin, "ROAM_NOTIFY__SERVER__LISTEN", "{e}");
        assert_eq!(e.key, "server.listen");
    }
}
