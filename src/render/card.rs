//! Card templates: `NAME.card.toml` files whose parts are each a Handlebars string,
//! assembled into a [`Card`] (and by `roam::blocks` into valid Block Kit).
//!
//! ```toml
//! header = "Workflow {{workflow_run.name}} {{workflow_run.conclusion}}"   # plain text
//! color  = "{{outcome workflow_run.conclusion}}"    # good, warning, danger, #hex or empty
//! text   = "**{{repository.full_name}}** on {{workflow_run.head_branch}}"  # markdown
//! fields = [{ label = "Commit", value = "{{short_sha workflow_run.head_sha}}" }]
//! context = ["{{workflow_run.actor.login}}", "{{datetime workflow_run.updated_at}}"]
//! buttons = [{ label = "View run", url = "{{workflow_run.html_url}}" }]
//! ```
//!
//! `header` and `text` are the card: if either fails, the message falls back to the plain
//! form, as a text template does. Every other part is optional: one that renders empty is
//! left out, and so is one that names a field this payload does not have (`check`
//! reports it against the sample). Any other failure of an optional part leaves it out and
//! is logged and counted. Values in markdown parts are escaped; the header, button
//! labels, URLs and colour are plain text, so nothing is escaped there.

use std::collections::BTreeMap;

use handlebars::{Handlebars, RenderErrorReason};
use serde::Deserialize;

use crate::roam::blocks::{Button, Card};

/// A card template as written (`deny_unknown_fields`: a misspelt part is an error).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardFile {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldFile>,
    #[serde(default)]
    pub context: OneOrMany,
    #[serde(default)]
    pub buttons: Vec<ButtonFile>,
    #[serde(default)]
    pub color: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFile {
    /// Shown as is (not a template).
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonFile {
    pub label: String,
    pub url: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<&str> {
        match self {
            OneOrMany::None => vec![],
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The registered part names of one card template.
#[derive(Debug, Clone, Default)]
pub struct CardTemplate {
    header: Option<String>,
    text: Option<String>,
    fields: Vec<(String, String)>,
    context: Vec<String>,
    buttons: Vec<(String, String)>,
    color: Option<String>,
}

/// Which registry a part is rendered with.
pub enum Escaping {
    /// Markdown parts: values are escaped.
    Markdown,
    /// Plain parts (header, button label and URL, colour): nothing is escaped.
    Plain,
}

impl CardTemplate {
    /// Parses `source` and registers each part as `NAME#part` in the registry that suits
    /// it. The error names the part.
    pub fn register(
        name: &str,
        source: &str,
        markdown: &mut Handlebars<'static>,
        plain: &mut Handlebars<'static>,
    ) -> Result<CardTemplate, String> {
        let file: CardFile = toml::from_str(source).map_err(|e| e.to_string())?;
        if file.header.is_none() && file.text.is_none() {
            return Err("a card needs a header or a text".into());
        }
        let mut add = |part: String, src: &str, how: Escaping| -> Result<String, String> {
            let full = format!("{name}#{part}");
            let reg = match how {
                Escaping::Markdown => &mut *markdown,
                Escaping::Plain => &mut *plain,
            };
            reg.register_template_string(&full, src)
                .map_err(|e| format!("{part}: {e}"))?;
            Ok(full)
        };
        let mut t = CardTemplate::default();
        if let Some(h) = &file.header {
            t.header = Some(add("header".into(), h, Escaping::Plain)?);
        }
        if let Some(x) = &file.text {
            t.text = Some(add("text".into(), x, Escaping::Markdown)?);
        }
        for (i, f) in file.fields.iter().enumerate() {
            let part = add(format!("fields[{i}].value"), &f.value, Escaping::Markdown)?;
            t.fields
                .push((crate::text::escape_markdown(&f.label), part));
        }
        for (i, c) in file.context.list().into_iter().enumerate() {
            t.context
                .push(add(format!("context[{i}]"), c, Escaping::Markdown)?);
        }
        for (i, b) in file.buttons.iter().enumerate() {
            let label = add(format!("buttons[{i}].label"), &b.label, Escaping::Plain)?;
            let url = add(format!("buttons[{i}].url"), &b.url, Escaping::Plain)?;
            t.buttons.push((label, url));
        }
        if let Some(c) = &file.color {
            t.color = Some(add("color".into(), c, Escaping::Plain)?);
        }
        Ok(t)
    }

    /// Renders the card. `Err` when the header or text fails (the caller falls back);
    /// otherwise the card, the failures of optional parts (left out; to be logged and
    /// counted) and the optional parts left out because the payload lacks a field they
    /// name (normal at run time; `check` shows them against the sample).
    pub fn render(
        &self,
        markdown: &Handlebars<'static>,
        plain: &Handlebars<'static>,
        data: &handlebars::Context,
    ) -> Result<Rendered, String> {
        let required = |reg: &Handlebars<'static>, part: &Option<String>| {
            part.as_ref()
                .map(|p| {
                    reg.render_with_context(p, data)
                        .map_err(|e| super::part_error(p, &e))
                })
                .transpose()
        };
        let header = required(plain, &self.header)?.filter(|h| !h.trim().is_empty());
        let text = required(markdown, &self.text)?.filter(|t| !t.trim().is_empty());
        if header.is_none() && text.is_none() {
            return Err("the card's header and text rendered empty".into());
        }
        let mut failures = Vec::new();
        let mut missing = Vec::new();
        let mut optional = |reg: &Handlebars<'static>, part: &str| -> Option<String> {
            match reg.render_with_context(part, data) {
                Ok(s) if s.trim().is_empty() => None,
                Ok(s) => Some(s.trim().to_string()),
                Err(e) => {
                    let list = match e.reason() {
                        RenderErrorReason::MissingVariable(_) => &mut missing,
                        _ => &mut failures,
                    };
                    list.push(super::part_error(part, &e));
                    None
                }
            }
        };
        let fields: Vec<String> = self
            .fields
            .iter()
            .filter_map(|(label, part)| {
                optional(markdown, part).map(|v| format!("**{label}:** {v}"))
            })
            .collect();
        let context = self
            .context
            .iter()
            .filter_map(|p| optional(markdown, p))
            .collect();
        let buttons = self
            .buttons
            .iter()
            .filter_map(|(label, url)| {
                let label = optional(plain, label)?;
                let url = optional(plain, url)?;
                Some(Button { label, url })
            })
            .collect();
        let color = self.color.as_ref().and_then(|p| optional(plain, p));
        if let Some(c) = &color
            && crate::roam::blocks::color(c).is_none()
        {
            failures.push(format!(
                "color rendered {c:?}: use good, warning, danger, #rrggbb or nothing"
            ));
        }
        let mut sections: Vec<String> =
            text.into_iter().map(|t| t.trim_end().to_string()).collect();
        if !fields.is_empty() {
            sections.push(fields.join("\n"));
        }
        Ok(Rendered {
            card: Card {
                header: header.map(|h| h.trim().to_string()),
                sections,
                context,
                buttons,
                color,
            },
            failures,
            missing,
        })
    }
}

/// A rendered card and what was left out of it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub card: Card,
    /// Optional parts that failed (logged and counted).
    pub failures: Vec<String>,
    /// Optional parts that name a field this payload lacks.
    pub missing: Vec<String>,
}

/// Parsed card files by name, for `check`'s listing.
pub type CardTemplates = BTreeMap<String, CardTemplate>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registries() -> (Handlebars<'static>, Handlebars<'static>) {
        let mut md = Handlebars::new();
        md.set_strict_mode(true);
        md.register_escape_fn(crate::text::escape_markdown);
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(handlebars::no_escape);
        (md, plain)
    }

    const CARD: &str = r#"
header = "Build {{name}} {{status}}"
text = "**{{name}}** by {{who}}"
color = "{{colour}}"
fields = [{ label = "Branch_name", value = "{{branch}}" }, { label = "Gone", value = "{{nothing.here}}" }]
context = ["{{who}}", ""]
buttons = [{ label = "Open {{name}}", url = "{{url}}" }, { label = "Missing", url = "{{no.url}}" }]
"#;

    #[test]
    fn markdown_parts_are_escaped_plain_parts_are_not_and_missing_optional_parts_are_left_out() {
        let (mut md, mut plain) = registries();
        let t = CardTemplate::register("t", CARD, &mut md, &mut plain).unwrap();
        let data = handlebars::Context::from(json!({
            "name": "api_*x*", "status": "failed", "who": "<@all>", "colour": "danger",
            "branch": "main", "url": "https://ci.example/1?a=b&c=d"
        }));
        let r = t.render(&md, &plain, &data).unwrap();
        assert_eq!(r.card.header.as_deref(), Some("Build api_*x* failed"));
        assert_eq!(r.card.sections[0], r"**api\_\*x\*** by \<@all\>");
        assert_eq!(r.card.sections[1], r"**Branch\_name:** main");
        assert_eq!(r.card.context, [r"\<@all\>"]);
        assert_eq!(r.card.buttons.len(), 1);
        assert_eq!(r.card.buttons[0].url, "https://ci.example/1?a=b&c=d");
        assert_eq!(r.card.color.as_deref(), Some("danger"));
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!(r.missing.len(), 2, "{:?}", r.missing);
    }

    #[test]
    fn a_failing_header_fails_the_card_and_a_bad_colour_is_a_failure() {
        let (mut md, mut plain) = registries();
        let t = CardTemplate::register("t", CARD, &mut md, &mut plain).unwrap();
        let data = handlebars::Context::from(json!({"status": "x", "who": "w", "colour": "red"}));
        let e = t.render(&md, &plain, &data).unwrap_err();
        assert!(e.contains("header"), "{e}");
        let data = handlebars::Context::from(
            json!({"name": "n", "status": "x", "who": "w", "colour": "red", "branch": "b", "url": "u"}),
        );
        let r = t.render(&md, &plain, &data).unwrap();
        assert!(
            r.failures.iter().any(|f| f.contains("color")),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn a_misspelt_part_or_a_card_without_header_and_text_is_refused() {
        let (mut md, mut plain) = registries();
        let e = CardTemplate::register(
            "t",
            "header = \"x\"\ncolour = \"good\"",
            &mut md,
            &mut plain,
        )
        .unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = CardTemplate::register("t", "context = [\"x\"]", &mut md, &mut plain).unwrap_err();
        assert!(e.contains("header or a text"), "{e}");
    }
}
