//! Rendering events into Roam message text with Handlebars.
//!
//! - Built-in templates are compiled into the binary (`builtin.rs`); `*.hbs` files in the
//!   configured directory add to or replace them (`templates/github/push.hbs` is named
//!   `github/push`). A `<name>.sample.json` beside a template is the payload `check`
//!   renders it against.
//! - Values are escaped for Roam markdown, not HTML: a commit message cannot add bold
//!   text, links or `<@all>` mentions. `{{{triple}}}` opts out.
//! - Strict mode: a misspelt field is an error (found by `roam-notify check`), not an
//!   empty string. At run time a failing template still produces a message, in a plain
//!   fallback form, and the failure is logged and counted.

mod builtin;
pub mod fit;
pub mod money;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, handlebars_helper};
use serde_json::{Value, json};

use crate::config::{Config, ConfigError};
use crate::text::escape_markdown;
pub use fit::{ROAM_MAX_TEXT_BYTES, fit_message, split_message};

/// Where a template came from, for `check` reports.
#[derive(Debug, Clone)]
pub enum TemplateOrigin {
    BuiltIn,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct TemplateInfo {
    pub origin: TemplateOrigin,
    /// A sample payload to render it against, if one ships with it.
    pub sample: Option<Value>,
}

/// What the request path needs to know about an event to render it.
pub struct EventMeta<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub kind: &'a str,
    pub delivery_id: &'a str,
    pub entity: Option<&'a str>,
}

/// A rendered message; `error` is set when the fallback form was used.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub text: String,
    pub template: String,
    pub error: Option<String>,
}

pub struct Templates {
    hbs: Handlebars<'static>,
    info: BTreeMap<String, TemplateInfo>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.info.keys())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct RenderError {
    pub name: String,
    pub message: String,
}

impl Templates {
    /// Built-in templates plus the configured directory. A missing directory is fine when
    /// it is the default; a configured one must exist.
    pub fn load(cfg: &Config) -> Result<Templates, ConfigError> {
        let dir = PathBuf::from(&cfg.templates.dir);
        let dir = if dir.is_dir() {
            Some(dir)
        } else if cfg.templates.dir == "templates" {
            // The default: run from anywhere, with only the built-in templates.
            None
        } else {
            return Err(cfg.error(
                "templates.dir",
                format!("{} is not a directory", dir.display()),
            ));
        };
        Self::build(dir.as_deref())
            .map_err(|(file, problem)| cfg.error("templates.dir", format!("{file}: {problem}")))
    }

    /// Built-in templates only.
    pub fn builtin() -> Result<Templates, RenderError> {
        Self::build(None).map_err(|(name, message)| RenderError { name, message })
    }

    fn build(dir: Option<&Path>) -> Result<Templates, (String, String)> {
        let mut hbs = Handlebars::new();
        hbs.set_strict_mode(true);
        hbs.register_escape_fn(escape_markdown);
        register_helpers(&mut hbs);
        let mut info = BTreeMap::new();
        for (name, source, sample) in builtin::TEMPLATES {
            hbs.register_template_string(name, *source)
                .map_err(|e| (name.to_string(), e.to_string()))?;
            let sample = sample.and_then(|s| serde_json::from_str(s).ok());
            info.insert(
                name.to_string(),
                TemplateInfo {
                    origin: TemplateOrigin::BuiltIn,
                    sample,
                },
            );
        }
        if let Some(dir) = dir {
            let mut files = Vec::new();
            collect_hbs(dir, dir, &mut files).map_err(|e| (dir.display().to_string(), e))?;
            for (name, path) in files {
                let src = std::fs::read_to_string(&path)
                    .map_err(|e| (path.display().to_string(), format!("cannot read: {e}")))?;
                hbs.register_template_string(&name, src)
                    .map_err(|e| (path.display().to_string(), e.to_string()))?;
                let sample_path = path.with_extension("sample.json");
                let sample = if sample_path.is_file() {
                    let text = std::fs::read_to_string(&sample_path).map_err(|e| {
                        (
                            sample_path.display().to_string(),
                            format!("cannot read: {e}"),
                        )
                    })?;
                    Some(serde_json::from_str(&text).map_err(|e| {
                        (
                            sample_path.display().to_string(),
                            format!("not valid JSON: {e}"),
                        )
                    })?)
                } else {
                    info.get(&name)
                        .and_then(|i: &TemplateInfo| i.sample.clone())
                };
                info.insert(
                    name,
                    TemplateInfo {
                        origin: TemplateOrigin::File(path),
                        sample,
                    },
                );
            }
        }
        Ok(Templates { hbs, info })
    }

    pub fn has(&self, name: &str) -> bool {
        self.info.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = (&String, &TemplateInfo)> {
        self.info.iter()
    }

    /// The template for an event: the route's own, else the most specific default:
    /// `github/pull_request.closed`, `github/pull_request`, `github/default`, `default`.
    pub fn resolve(&self, explicit: Option<&str>, event_name: &str) -> String {
        if let Some(t) = explicit {
            return t.to_string();
        }
        let (kind, rest) = event_name.split_once('.').unwrap_or((event_name, ""));
        let mut candidate = rest.to_string();
        while !candidate.is_empty() {
            let name = format!("{kind}/{candidate}");
            if self.has(&name) {
                return name;
            }
            match candidate.rfind('.') {
                Some(i) => candidate.truncate(i),
                None => break,
            }
        }
        let kind_default = format!("{kind}/default");
        if self.has(&kind_default) {
            return kind_default;
        }
        "default".to_string()
    }

    /// Renders `name` with `data` as is (strict). Output is not size-limited.
    pub fn render_raw(&self, name: &str, data: &Value) -> Result<String, RenderError> {
        self.hbs.render(name, data).map_err(|e| RenderError {
            name: name.to_string(),
            message: render_error_text(&e),
        })
    }

    /// Renders `name` against an event's context as is (strict).
    pub fn render_context(
        &self,
        name: &str,
        data: &handlebars::Context,
    ) -> Result<String, RenderError> {
        self.hbs
            .render_with_context(name, data)
            .map_err(|e| RenderError {
                name: name.to_string(),
                message: render_error_text(&e),
            })
    }

    /// Renders an event for posting: never fails. On a template error the plain fallback
    /// form is used and the error is returned alongside, for logging and counting.
    /// `data` comes from [`event_context`], built once per event for all its routes.
    pub fn render_event(
        &self,
        template: &str,
        meta: &EventMeta<'_>,
        data: &handlebars::Context,
    ) -> Rendered {
        let result = self
            .hbs
            .render_with_context(template, data)
            .map_err(|e| RenderError {
                name: template.to_string(),
                message: render_error_text(&e),
            });
        let error = match result {
            Ok(text) if !text.trim().is_empty() => {
                // Not cut here: the route decides (cut, or split into a thread).
                return Rendered {
                    text: text.trim_end().to_string(),
                    template: template.to_string(),
                    error: None,
                };
            }
            Ok(_) => format!("template {template} rendered an empty message"),
            Err(e) => e.to_string(),
        };
        Rendered {
            text: fallback_text(meta, data.data(), &error),
            template: template.to_string(),
            error: Some(error),
        }
    }
}

/// The render context of an event, taking the payload without copying it.
pub fn event_context(meta: &EventMeta<'_>, payload: Value) -> handlebars::Context {
    handlebars::Context::from(with_event_meta(meta, payload))
}

/// The data a template sees: the payload's fields at the top level, plus `_event` with
/// the normalised name, source, kind, delivery id and entity key.
pub fn context(meta: &EventMeta<'_>, payload: &Value) -> Value {
    with_event_meta(meta, payload.clone())
}

fn with_event_meta(meta: &EventMeta<'_>, payload: Value) -> Value {
    let event = json!({
        "name": meta.name,
        "source": meta.source,
        "kind": meta.kind,
        "delivery_id": meta.delivery_id,
        "entity": meta.entity,
    });
    match payload {
        Value::Object(mut map) => {
            map.insert("_event".into(), event);
            Value::Object(map)
        }
        other => json!({ "_event": event, "items": other }),
    }
}

/// The plain form used when a template fails: still useful, never empty.
fn fallback_text(meta: &EventMeta<'_>, payload: &Value, error: &str) -> String {
    let link = [
        "/html_url",
        "/url",
        "/pull_request/html_url",
        "/repository/html_url",
        "/compare",
    ]
    .iter()
    .find_map(|p| payload.pointer(p).and_then(Value::as_str));
    let mut text = format!(
        "**{}** from {} (the message template failed: {})",
        escape_markdown(meta.name),
        escape_markdown(meta.source),
        escape_markdown(error),
    );
    if let Some(l) = link {
        text.push('\n');
        text.push_str(&escape_markdown(l));
    }
    let pretty = serde_json::to_string_pretty(payload).unwrap_or_default();
    let budget = 3000;
    let shown = &pretty[..pretty.floor_char_boundary(budget.min(pretty.len()))];
    text.push_str("\n```json\n");
    text.push_str(&shown.replace("```", "'''"));
    if shown.len() < pretty.len() {
        text.push_str("\n…");
    }
    text.push_str("\n```");
    fit_message(&text, ROAM_MAX_TEXT_BYTES)
}

fn render_error_text(e: &handlebars::RenderError) -> String {
    // Handlebars' Display repeats the template name; keep the line/column and reason.
    let reason = e.reason().to_string();
    match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: {reason}"),
        _ => reason,
    }
}

handlebars_helper!(first_line: |s: str| s.lines().next().unwrap_or("").to_string());
handlebars_helper!(short_sha: |s: str| s.chars().take(7).collect::<String>());
handlebars_helper!(ref_name: |s: str| {
    s.strip_prefix("refs/heads/").or_else(|| s.strip_prefix("refs/tags/")).unwrap_or(s).to_string()
});
handlebars_helper!(truncate: |s: str, n: u64| {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n.saturating_sub(1)).collect::<String>()) }
});
// For code blocks: a fence inside the data must not close the block early.
handlebars_helper!(to_json: |v: Json| serde_json::to_string_pretty(v).unwrap_or_default().replace("```", "'''"));
handlebars_helper!(upper: |s: str| s.to_uppercase());
// Amounts in minor units (Stripe: cents for USD, yen for JPY) as "1,234.56 USD".
handlebars_helper!(money_minor: |amount: i64, currency: str| money::minor(amount, currency));
// Amounts in major units (Pipedrive's value, HubSpot's amount; a number or numeric text)
// as "48,000 EUR"; anything else as it is.
handlebars_helper!(money_major: |value: Json, currency: str| {
    let n = value.as_f64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
    match n {
        Some(n) => money::major(n, currency),
        None => format!("{} {}", crate::fieldpath::scalar_text(value).unwrap_or_default(), currency.to_uppercase()),
    }
});
// One emoji for the status words senders use, so every CI and alert message reads alike.
handlebars_helper!(status_emoji: |s: str| {
    match s.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "passed" | "ok" | "resolved" | "recovered" | "fixed" | "completed" | "merged" | "paid" | "succeeded_with_issues" => "✅",
        "failed" | "failure" | "error" | "errored" | "timed_out" | "timedout" | "infrastructure_fail" | "critical" | "firing" | "alerting" | "triggered" | "payment_failed" | "unstable" => "❌",
        "canceled" | "cancelled" | "aborted" | "skipped" | "not_run" | "not_built" | "closed" | "stale" => "⚪",
        "running" | "pending" | "started" | "created" | "queued" | "scheduled" | "in_progress" | "manual" | "waiting" => "🔄",
        "warning" | "acknowledged" | "blocked" | "action_required" => "⚠️",
        _ => "🔔",
    }.to_string()
});
handlebars_helper!(plural: |n: u64, one: str, many: str| if n == 1 { one.to_string() } else { many.to_string() });
// RFC 3339 as "2026-01-21 17:32 UTC"; anything else as it is.
handlebars_helper!(datetime: |s: str| {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| s.to_string())
});

fn register_helpers(hbs: &mut Handlebars<'static>) {
    hbs.register_helper("first_line", Box::new(first_line));
    hbs.register_helper("short_sha", Box::new(short_sha));
    hbs.register_helper("ref_name", Box::new(ref_name));
    hbs.register_helper("truncate", Box::new(truncate));
    hbs.register_helper("json", Box::new(to_json));
    hbs.register_helper("upper", Box::new(upper));
    hbs.register_helper("money", Box::new(money_minor));
    hbs.register_helper("amount", Box::new(money_major));
    hbs.register_helper("status_emoji", Box::new(status_emoji));
    hbs.register_helper("plural", Box::new(plural));
    hbs.register_helper("datetime", Box::new(datetime));
}

fn collect_hbs(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if file_name.starts_with('.') || file_name.starts_with('#') {
            continue;
        }
        if path.is_dir() {
            collect_hbs(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "hbs") {
            let rel = path.strip_prefix(root).unwrap_or(&path).with_extension("");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta<'a>(name: &'a str) -> EventMeta<'a> {
        EventMeta {
            name,
            source: "gh",
            kind: "github",
            delivery_id: "d1",
            entity: None,
        }
    }

    #[test]
    fn strict_mode_falls_back_with_the_error() {
        let mut t = Templates::builtin().unwrap();
        t.hbs
            .register_template_string("bad", "{{nope.nothing}}")
            .unwrap();
        let m = meta("github.push");
        let r = t.render_event(
            "bad",
            &m,
            &event_context(&m, json!({"html_url": "https://x"})),
        );
        let err = r.error.expect("error reported");
        assert!(err.contains("nope.nothing"), "{err}");
        assert!(
            r.text.contains("github.push") && r.text.contains("https://x"),
            "{}",
            r.text
        );
    }

    #[test]
    fn stripe_amounts_use_the_currency_s_own_decimals() {
        let t = Templates::builtin().unwrap();
        for (currency, due, shown) in [
            ("jpy", 123_400, "123,400 JPY"),
            ("kwd", 12_345, "12.345 KWD"),
            ("usd", 1_999_900, "19,999.00 USD"),
        ] {
            let payload = json!({"type": "invoice.payment_failed", "livemode": true,
                "data": {"object": {"id": "in_1", "amount_due": due, "currency": currency}}});
            let m = meta("stripe.invoice.payment_failed");
            let text = t
                .render_raw("stripe/invoice", &context(&m, &payload))
                .unwrap();
            assert!(text.contains(shown), "{currency}: {text}");
        }
    }

    #[test]
    fn resolve_prefers_the_most_specific_default() {
        let t = Templates::builtin().unwrap();
        assert_eq!(t.resolve(None, "github.push"), "github/push");
        assert_eq!(
            t.resolve(None, "github.pull_request.closed"),
            "github/pull_request"
        );
        assert_eq!(t.resolve(None, "github.gollum"), "github/default");
        assert_eq!(t.resolve(None, "nosuchkind.thing"), "default");
        assert_eq!(t.resolve(Some("x/y"), "github.push"), "x/y");
    }
}
