//! Configuration: built-in defaults < TOML file < environment variables.
//!
//! `load` merges the three layers with figment, deserializes them strictly (unknown keys
//! are errors), resolves `${env:..}` / `${file:..}` secrets and checks every value that
//! can be checked without knowing about sources, routes or templates. Those are compiled
//! (and checked) by their own modules, which report problems through [`ConfigError`] with
//! the help of [`Config::origin`], so every error names the file (or variable) and key.

mod de;
mod env;
mod schema;
mod secret;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::{Figment, Source};
use serde::Deserialize;

pub use de::parse_byte_size;
pub use env::{API_KEY_ALIAS, EnvStrings, PREFIX as ENV_PREFIX};
pub use schema::*;
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

    /// The `public_url` of the `[[sources]]` entry that receives Roam's transcript
    /// webhook (kind `roam`, named `transcripts.source`), if set.
    pub fn transcript_source_url(&self) -> Option<String> {
        self.sources
            .iter()
            .find(|s| s.name == self.transcripts.source && s.kind == "roam")
            .and_then(|s| s.public_url.clone())
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
        if let Some(t) = &self.server.admin_token {
            let resolved = t
                .resolve()
                .map_err(|p| self.error("server.admin_token", p))?;
            self.server.admin_token = Some(resolved);
        }
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
mod tests;
