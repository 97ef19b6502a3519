//! Offline checks behind `roam-notify check` and `roam-notify render`: find broken
//! configuration and templates before they reach production.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::render::{
    EventMeta, ROAM_MAX_TEXT_BYTES, TemplateOrigin, Templates, context, fit_message,
};

/// A readable report and the number of problems found.
#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    pub problems: usize,
}

impl Report {
    fn line(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.text, "{}", s.as_ref());
    }

    fn fail(&mut self, s: impl AsRef<str>) {
        self.problems += 1;
        self.line(s);
    }
}

/// Loads the configuration, compiles sources, routes and templates, and renders every
/// template that has a sample payload.
pub fn check(config_path: Option<&Path>) -> Report {
    let mut r = Report::default();
    let shown = config_path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    let cfg = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            r.fail(format!("config   FAIL  {e}"));
            return finish(r);
        }
    };
    let pipeline = match Pipeline::compile(&cfg) {
        Ok(p) => p,
        Err(e) => {
            r.fail(format!("config   FAIL  {e}"));
            return finish(r);
        }
    };
    r.line(format!(
        "config   ok    {shown}: {} source(s), {} route(s), {}",
        pipeline.sources.len(),
        pipeline.router.routes().len(),
        if cfg.dry_run() {
            "dry-run (no Roam API key)"
        } else {
            "Roam API key set"
        }
    ));
    for s in pipeline.sources.values().filter(|s| s.unauthenticated) {
        r.line(format!(
            "source   warn  {}: auth = \"none\", anyone who can reach the URL can post",
            s.name
        ));
    }
    check_templates(&pipeline.templates, &mut r);
    for route in pipeline.router.routes() {
        if let Some(t) = &route.template {
            r.line(format!(
                "route    ok    {} -> template {t}, {} destination(s)",
                route.name,
                route.to.len()
            ));
        } else {
            r.line(format!(
                "route    ok    {} -> default template per event, {} destination(s)",
                route.name,
                route.to.len()
            ));
        }
    }
    finish(r)
}

fn check_templates(t: &Templates, r: &mut Report) {
    for (name, info) in t.names() {
        let origin = match &info.origin {
            TemplateOrigin::BuiltIn => "built-in".to_string(),
            TemplateOrigin::File(p) => p.display().to_string(),
        };
        let Some(sample) = &info.sample else {
            r.line(format!("template ok    {name} ({origin}) compiled; no {name}.sample.json to render it against"));
            continue;
        };
        match render_sample(t, name, sample) {
            Ok(text) => r.line(format!(
                "template ok    {name} ({origin}) renders its sample ({} bytes)",
                text.len()
            )),
            Err(e) => r.fail(format!("template FAIL  {name} ({origin}): {e}")),
        }
    }
}

fn render_sample(t: &Templates, name: &str, sample: &Value) -> Result<String, String> {
    let event = name.replacen('/', ".", 1);
    let mut sample = sample.clone();
    crate::inbound::prepare_sample(name.split('/').next().unwrap_or(""), &mut sample);
    let meta = EventMeta {
        name: &event,
        source: "sample",
        kind: name.split('/').next().unwrap_or("sample"),
        delivery_id: "sample",
        entity: None,
    };
    let text = t
        .render_raw(name, &context(&meta, &sample))
        .map_err(|e| e.to_string())?;
    if text.trim().is_empty() {
        return Err("renders an empty message".into());
    }
    Ok(text)
}

fn finish(mut r: Report) -> Report {
    if r.problems == 0 {
        r.line("check: ok");
    } else {
        let n = r.problems;
        r.line(format!("check: {n} problem(s)"));
    }
    r
}

/// `roam-notify render`: the message `template` makes of `payload`, as it would be posted.
pub fn render(
    templates: &Templates,
    template: &str,
    event: &str,
    source: &str,
    payload: &Value,
) -> Result<String, String> {
    if !templates.has(template) {
        let known: Vec<&str> = templates.names().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "unknown template {template:?} (known: {})",
            known.join(", ")
        ));
    }
    let kind = event.split('.').next().unwrap_or("");
    let meta = EventMeta {
        name: event,
        source,
        kind,
        delivery_id: "render",
        entity: None,
    };
    let mut payload = payload.clone();
    crate::inbound::prepare_sample(kind, &mut payload);
    let text = templates
        .render_raw(template, &context(&meta, &payload))
        .map_err(|e| e.to_string())?;
    Ok(fit_message(text.trim_end(), ROAM_MAX_TEXT_BYTES))
}
