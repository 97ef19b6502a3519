//! Checks of values that can be made without knowing sources, routes or templates
//! (those are checked by the modules that compile them).

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{AdminAuth, Config, ConfigError};

impl Config {
    /// How the admin endpoints are protected. A listener other than loopback without a
    /// token is refused unless `admin_auth = "none"` says it is meant to be open.
    pub fn admin_auth(&self) -> Result<AdminAuth, ConfigError> {
        let s = &self.server;
        let token = s.admin_token.clone().filter(|t| !t.expose().is_empty());
        match (s.admin_auth.as_deref().map(str::trim), token) {
            (Some("none"), Some(_)) => Err(self.error(
                "server.admin_auth",
                "is \"none\" but server.admin_token is set; remove one of them",
            )),
            (Some("none"), None) => Ok(AdminAuth::Open),
            (None | Some("token"), Some(token)) => Ok(AdminAuth::Token {
                token,
                metrics: s.metrics_auth,
            }),
            (None | Some("token"), None) => {
                let loopback = self.admin_addr().is_none_or(|a| a.ip().is_loopback());
                if loopback {
                    Ok(AdminAuth::LoopbackOnly)
                } else {
                    Err(self.error(
                        "server.admin_token",
                        format!(
                            "missing: server.admin_listen = {:?} is reachable from other hosts, so the admin API (silences, outbox, reload) needs a token; set server.admin_token = \"${{env:ROAM_NOTIFY_ADMIN_TOKEN}}\" (or, to leave it open on purpose, server.admin_auth = \"none\")",
                            s.admin_listen
                        ),
                    ))
                }
            }
            (Some(other), _) => Err(self.error(
                "server.admin_auth",
                format!("{other:?}: use \"token\" (the default) or \"none\""),
            )),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        self.admin_auth()?;
        if self.server.console && self.server.console_session.is_zero() {
            return Err(self.error(
                "server.console_session",
                "must be longer than 0s: a console sign-in would end at once (e.g. \"12h\")",
            ));
        }
        let t = &self.transcripts;
        if t.subscribe
            && !self
                .sources
                .iter()
                .any(|s| s.name == t.source && s.kind == "roam" && s.public_url.is_some())
        {
            return Err(self.error(
                "transcripts.subscribe",
                format!(
                    "needs the URL Roam should post to: add [[sources]] name = {:?}, kind = \"roam\", with public_url = \"https://<your host>/hooks/{}\" and its signing secret",
                    t.source, t.source
                ),
            ));
        }
        if chrono::NaiveDate::parse_from_str(self.roam.api_version.trim(), "%Y-%m-%d").is_err() {
            return Err(self.error(
                "roam.api_version",
                format!(
                    "{:?} is not a date like 2026-07-07 (sent as the Roam-Version header)",
                    self.roam.api_version
                ),
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
        if self.roam.directory_refresh < std::time::Duration::from_secs(60) {
            return Err(self.error("roam.directory_refresh", "must be at least 1m"));
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
        if url.starts_with("sqlite:") && crate::storage::sqlite_path(url).is_none() {
            return Err(self.error(
                "storage.url",
                "names no file: an in-memory SQLite database would lose every accepted webhook when the process stops; name a file (sqlite://FILE)",
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
