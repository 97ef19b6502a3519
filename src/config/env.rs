//! Environment variables as a figment provider that never re-types values.
//!
//! figment's own `Env` provider parses every value as TOML-ish, so an API key
//! `0123456789` becomes the integer 123456789 and `true` a boolean. This provider hands
//! every value over as a string; the config structs accept strings for their numeric
//! and boolean fields (`de.rs`).
//!
//! `ROAM_NOTIFY__SERVER__LISTEN=...` sets `server.listen`; the double underscore separates
//! levels so that keys with single underscores (`max_body`) survive.
//! `ROAM_NOTIFY_ROAM_API_KEY` is a conventional alias for `ROAM_NOTIFY__ROAM__API_KEY`.

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

pub const PREFIX: &str = "ROAM_NOTIFY__";
pub const API_KEY_ALIAS: &str = "ROAM_NOTIFY_ROAM_API_KEY";

pub struct EnvStrings {
    vars: Vec<(String, String)>,
}

impl EnvStrings {
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut selected = Vec::new();
        let mut alias = None;
        for (k, v) in vars {
            if k == API_KEY_ALIAS {
                alias = Some(v);
            } else if let Some(rest) = k.strip_prefix(PREFIX) {
                selected.push((rest.to_ascii_lowercase(), v));
            }
        }
        // The explicit nested form wins over the alias when both are set.
        if let Some(v) = alias
            && !selected.iter().any(|(k, _)| k == "roam__api_key")
        {
            selected.push(("roam__api_key".to_string(), v));
        }
        selected.sort();
        EnvStrings { vars: selected }
    }
}

impl Provider for EnvStrings {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_profile, keys| {
            format!("{PREFIX}{}", keys.join("__").to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (key, value) in &self.vars {
            let parts: Vec<&str> = key.split("__").filter(|p| !p.is_empty()).collect();
            if parts.is_empty() {
                continue;
            }
            insert(&mut root, &parts, value.clone());
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert(dict: &mut Dict, parts: &[&str], value: String) {
    let (first, rest) = (parts[0], &parts[1..]);
    if rest.is_empty() {
        dict.insert(first.to_string(), Value::from(value));
        return;
    }
    let entry = dict
        .entry(first.to_string())
        .or_insert_with(|| Value::from(Dict::new()));
    if !matches!(entry, Value::Dict(..)) {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}
