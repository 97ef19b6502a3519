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
pub mod card;
mod helpers;
pub mod money;
pub mod reads;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use handlebars::Handlebars;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{Config, ConfigError};
use crate::roam::blocks::Card;
use crate::text::{ROAM_MAX_TEXT_BYTES, escape_markdown, fit_message};
use card::CardTemplate;
pub use helpers::{Outcome, outcome_of};

/// Where a template came from, for `check` reports.
#[derive(Debug, Clone)]
pub enum TemplateOrigin {
    BuiltIn,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct TemplateInfo {
    pub origin: TemplateOrigin,
    /// A sample payload to render it against, if one ships with it: kept as text and
    /// parsed only by `check` and `render` (the daemon never needs it), see [`Self::sample`].
    pub sample_text: Option<Arc<str>>,
    /// The forms this name has and where each came from: a text template (`.hbs`), a
    /// card (`.card.toml`).
    pub text: Option<TemplateOrigin>,
    pub card: Option<TemplateOrigin>,
}

impl TemplateInfo {
    /// The sample payload, parsed (a sample that is not JSON was refused at load).
    pub fn sample(&self) -> Option<Value> {
        self.sample_text
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
    }
}

/// What a route sends: a card when its template has one (the default), or text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Card,
    Text,
}

impl Format {
    /// A route's `format` setting; the error says what is allowed.
    pub fn parse(s: Option<&str>) -> Result<Format, String> {
        match s {
            None | Some("card") => Ok(Format::Card),
            Some("text") => Ok(Format::Text),
            Some(other) => Err(format!("{other:?}: use \"card\" (default) or \"text\"")),
        }
    }
}

/// A rendered message: markdown text, or a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    Text(String),
    Card(Card),
}

impl Content {
    /// As text: the text, or the card's readable form (logs, previews, group items).
    pub fn readable(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Card(c) => c.preview(),
        }
    }

    /// Its one-line form in a group message.
    pub fn title(&self) -> String {
        match self {
            Content::Text(t) => t.lines().next().unwrap_or("").to_string(),
            Content::Card(c) => c.title(),
        }
    }
}

/// What the request path needs to know about an event to render it.
pub struct EventMeta<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub kind: &'a str,
    pub delivery_id: &'a str,
    pub entity: Option<&'a str>,
}

/// A rendered message; `error` is set when the fallback form was used or, for a card,
/// when an optional part failed and was left out.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub content: Content,
    pub template: String,
    pub error: Option<String>,
    /// The template failed as a whole: `content` is the fallback, which shows the
    /// payload (see [`fallback_content`]).
    pub fallback: bool,
}

/// The templates in force (a reload swaps them): what the group flusher renders digests
/// with, and delivery a message rendered when it is sent.
pub type CurrentTemplates = Box<dyn arc_swap::access::DynAccess<Templates> + Send + Sync>;

pub struct Templates {
    /// Text templates and a card's markdown parts: values are escaped for markdown.
    hbs: Handlebars<'static>,
    /// A card's plain parts (header, button labels and URLs, colour): nothing escaped.
    plain: Handlebars<'static>,
    info: BTreeMap<String, TemplateInfo>,
    cards: BTreeMap<String, CardTemplate>,
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

/// One template file: its name, whether it is a card, its source and sample.
struct Source {
    name: String,
    card: bool,
    source: String,
    sample: Option<Arc<str>>,
    origin: TemplateOrigin,
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
        let registry = |escape: bool| {
            let mut hbs = Handlebars::new();
            hbs.set_strict_mode(true);
            if escape {
                hbs.register_escape_fn(escape_markdown);
            } else {
                hbs.register_escape_fn(handlebars::no_escape);
            }
            helpers::register_helpers(&mut hbs);
            hbs
        };
        let mut t = Templates {
            hbs: registry(true),
            plain: registry(false),
            info: BTreeMap::new(),
            cards: BTreeMap::new(),
        };
        let builtin = builtin::TEMPLATES
            .iter()
            .map(|(name, card, source, sample)| Source {
                name: name.to_string(),
                card: *card,
                source: source.to_string(),
                sample: sample.map(Arc::from),
                origin: TemplateOrigin::BuiltIn,
            })
            .collect();
        t.add(builtin)?;
        if let Some(dir) = dir {
            let mut files = Vec::new();
            collect_files(dir, dir, &mut files).map_err(|e| (dir.display().to_string(), e))?;
            let mut sources = Vec::new();
            for (name, card, path) in files {
                let text = |p: &Path| {
                    std::fs::read_to_string(p)
                        .map_err(|e| (p.display().to_string(), format!("cannot read: {e}")))
                };
                let source = text(&path)?;
                let sample_path = dir.join(format!("{name}.sample.json"));
                let sample = if sample_path.is_file() {
                    let sample = text(&sample_path)?;
                    serde_json::from_str::<serde::de::IgnoredAny>(&sample).map_err(|e| {
                        (
                            sample_path.display().to_string(),
                            format!("not valid JSON: {e}"),
                        )
                    })?;
                    Some(Arc::from(sample))
                } else {
                    t.info.get(&name).and_then(|i| i.sample_text.clone())
                };
                sources.push(Source {
                    name,
                    card,
                    source,
                    sample,
                    origin: TemplateOrigin::File(path),
                });
            }
            t.add(sources)?;
        }
        Ok(t)
    }

    /// Registers a set of template files. A name they define replaces both forms the
    /// name had before (a user's `github/push.hbs` replaces the built-in text and card).
    fn add(&mut self, sources: Vec<Source>) -> Result<(), (String, String)> {
        for s in &sources {
            if self.info.remove(&s.name).is_some() {
                self.cards.remove(&s.name);
                self.hbs.unregister_template(&s.name);
            }
        }
        for s in sources {
            let file = match &s.origin {
                TemplateOrigin::File(p) => p.display().to_string(),
                TemplateOrigin::BuiltIn => s.name.clone(),
            };
            if s.card {
                let card =
                    CardTemplate::register(&s.name, &s.source, &mut self.hbs, &mut self.plain)
                        .map_err(|e| (file, e))?;
                self.cards.insert(s.name.clone(), card);
            } else {
                self.hbs
                    .register_template_string(&s.name, &s.source)
                    .map_err(|e| (file, e.to_string()))?;
            }
            let info = self.info.entry(s.name).or_insert(TemplateInfo {
                origin: s.origin.clone(),
                sample_text: None,
                text: None,
                card: None,
            });
            info.sample_text = info.sample_text.take().or(s.sample);
            if s.card {
                info.card = Some(s.origin);
            } else {
                info.text = Some(s.origin);
            }
        }
        Ok(())
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

    /// Every template an event of `kind` may be rendered with when its route names none
    /// (see [`Templates::resolve`]).
    pub fn kind_candidates(&self, kind: &str) -> Vec<&str> {
        let prefix = format!("{kind}/");
        // "default" only when the kind has no default of its own.
        let fallback = !self.has(&format!("{kind}/default"));
        self.info
            .keys()
            .map(String::as_str)
            .filter(|n| n.starts_with(&prefix) || (fallback && *n == "default"))
            .collect()
    }

    /// Renders a text template with `data` as is (strict). Output is not size-limited.
    pub fn render_raw(&self, name: &str, data: &Value) -> Result<String, RenderError> {
        self.render_context(name, &handlebars::Context::from(data.clone()))
    }

    /// Renders a text template against an event's context as is (strict).
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

    /// Renders `name` in `format`; any failing part is an error. For `render`, group
    /// messages and direct messages, which have their own fallbacks.
    pub fn render(&self, name: &str, format: Format, data: &Value) -> Result<Content, RenderError> {
        self.render_checked(name, format, data)
            .map(|(content, _)| content)
    }

    /// As [`Templates::render`], also returning the optional card parts left out because
    /// the payload lacks a field they name (`check` shows them).
    pub fn render_checked(
        &self,
        name: &str,
        format: Format,
        data: &Value,
    ) -> Result<(Content, Vec<String>), RenderError> {
        let ctx = handlebars::Context::from(data.clone());
        let (content, failures, missing) = self.render_form(name, format, &ctx)?;
        match failures.into_iter().next() {
            Some(message) => Err(RenderError {
                name: name.to_string(),
                message,
            }),
            None => Ok((content, missing)),
        }
    }

    /// The card or text form of `name`: a card when asked for and the name has one; the
    /// text template otherwise; a card-only name asked for as text gives the card's text.
    fn render_form(
        &self,
        name: &str,
        format: Format,
        data: &handlebars::Context,
    ) -> Result<(Content, Vec<String>, Vec<String>), RenderError> {
        let err = |message: String| RenderError {
            name: name.to_string(),
            message,
        };
        let info = self
            .info
            .get(name)
            .ok_or_else(|| err("no such template".into()))?;
        let card = self
            .cards
            .get(name)
            .filter(|_| format == Format::Card || info.text.is_none());
        match card {
            Some(card) => {
                let r = card.render(&self.hbs, &self.plain, data).map_err(err)?;
                let content = match format {
                    Format::Card => Content::Card(r.card),
                    Format::Text => Content::Text(r.card.as_text()),
                };
                Ok((content, r.failures, r.missing))
            }
            None => {
                let text = self.render_context(name, data)?;
                if text.trim().is_empty() {
                    return Err(err("rendered an empty message".into()));
                }
                Ok((
                    Content::Text(text.trim_end().to_string()),
                    Vec::new(),
                    Vec::new(),
                ))
            }
        }
    }

    /// Renders an event for posting: never fails. When the template (a card's header or
    /// text) fails, the plain fallback form is used; the error is returned alongside, for
    /// logging and counting, as is any optional card part that failed and was left out.
    /// `data` comes from [`event_context`], built once per event for all its routes.
    pub fn render_event(
        &self,
        template: &str,
        format: Format,
        meta: &EventMeta<'_>,
        data: &handlebars::Context,
    ) -> Rendered {
        let (content, error, fallback) = match self.render_form(template, format, data) {
            Ok((content, failures, _missing)) => {
                let error = (!failures.is_empty())
                    .then(|| format!("template {template}: {}", failures.join("; ")));
                (content, error, false)
            }
            Err(e) => {
                let error = e.to_string();
                (
                    Content::Text(fallback_text(meta, data.data(), &error)),
                    Some(error),
                    true,
                )
            }
        };
        Rendered {
            content,
            template: template.to_string(),
            error,
            fallback,
        }
    }
}

/// A part's failure: the part and the reason.
fn part_error(part: &str, e: &handlebars::RenderError) -> String {
    let part = part.split_once('#').map_or(part, |(_, p)| p);
    format!("{part}: {}", render_error_text(e))
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
/// The message sent when a template fails as a whole, from the event's whole `payload`
/// (for an event whose payload was built in part, `Event::whole`).
pub fn fallback_content(meta: &EventMeta<'_>, payload: Value, error: &str) -> Content {
    Content::Text(fallback_text(meta, &with_event_meta(meta, payload), error))
}

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
    let reason = match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
            format!("`{path}` is not in the data")
        }
        other => other.to_string(),
    };
    match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: {reason}"),
        _ => reason,
    }
}

fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, bool, PathBuf)>,
) -> Result<(), String> {
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
            collect_files(root, &path, out)?;
        } else if let Some((stem, card)) = template_stem(file_name) {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .with_file_name(stem);
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, card, path));
        }
    }
    Ok(())
}

/// `push.hbs` is the text template `push`; `push.card.toml` is the card `push`.
fn template_stem(file_name: &str) -> Option<(&str, bool)> {
    if let Some(stem) = file_name.strip_suffix(".card.toml") {
        return Some((stem, true));
    }
    file_name.strip_suffix(".hbs").map(|stem| (stem, false))
}

#[cfg(test)]
mod tests;
