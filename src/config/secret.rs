//! Secrets: values that must never reach a log line, an error message or `Debug` output.
//!
//! In the config a secret may be written literally, as `${env:NAME}` (read from the
//! environment) or as `${file:/path}` (read from a file, trailing newline trimmed: the
//! Docker / Kubernetes secrets convention). Resolution happens once, at load.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret string. `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret's bytes, for the few places that must use them (HMAC keys, headers).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces `${env:NAME}` / `${file:/path}` by what it points to.
    /// The error text names the reference, never a secret value.
    pub fn resolve(&self) -> Result<Secret, String> {
        let raw = self.0.trim();
        if let Some(name) = raw.strip_prefix("${env:").and_then(|r| r.strip_suffix('}')) {
            return match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(_) => Err(format!("environment variable {name} is not set")),
            };
        }
        if let Some(path) = raw
            .strip_prefix("${file:")
            .and_then(|r| r.strip_suffix('}'))
        {
            return match std::fs::read_to_string(path) {
                Ok(v) => {
                    let v = v.trim_end_matches(['\n', '\r']);
                    if v.is_empty() {
                        Err(format!("secret file {path} is empty"))
                    } else {
                        Ok(Secret(v.to_string()))
                    }
                }
                Err(e) => Err(format!("cannot read secret file {path}: {e}")),
            };
        }
        if raw.starts_with("${") {
            return Err("unknown secret reference: use ${env:NAME} or ${file:/path}".into());
        }
        if self.0.is_empty() {
            return Err("secret is empty".into());
        }
        Ok(self.clone())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Accept numbers too: a numeric-looking secret must keep every digit, so the
        // environment provider hands all values over as strings (see `env.rs`).
        super::de::string_like(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn file_reference_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "abc123\n").unwrap();
        let s = Secret::new(format!("${{file:{}}}", p.display()));
        assert_eq!(s.resolve().unwrap().expose(), "abc123");
    }

    #[test]
    fn missing_env_reference_names_the_variable_only() {
        let s = Secret::new("${env:ROAM_NOTIFY_TEST_SURELY_UNSET}");
        let err = s.resolve().unwrap_err();
        assert!(err.contains("ROAM_NOTIFY_TEST_SURELY_UNSET"), "{err}");
    }
}
