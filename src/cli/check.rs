//! Offline checks behind `roam-notify check` and `roam-notify render`: find broken
//! configuration and templates before they reach production.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::compose::{Addressing, outbox_messages};
use crate::config::Config;
use crate::ingest::Pipeline;
use crate::ingest::simulate::simulate;
use crate::render::{Content, EventMeta, Format, TemplateOrigin, Templates, context};
use crate::roam::blocks::readable;

/// A readable report and the number of problems found.
#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    pub problems: usize,
}

impl Report {
    pub(super) fn line(&mut self, s: impl AsRef<str>) {
        let _ = writeln!(self.text, "{}", s.as_ref());
    }

    pub(super) fn fail(&mut self, s: impl AsRef<str>) {
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
    let compiled = Pipeline::compile(&cfg, Default::default()).and_then(|p| {
        crate::transcripts::schedule::Schedule::from_config(&cfg)?;
        Ok(p)
    });
    let pipeline = match compiled {
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
    for s in pipeline.sources.values().filter(|s| s.unauthenticated()) {
        r.line(format!(
            "source   warn  {}: auth = \"none\", anyone who can reach the URL can post",
            s.name
        ));
    }
    check_templates(&pipeline.templates, &mut r);
    check_field_paths(&pipeline, &mut r);
    super::names::check_names(&cfg, &mut r);
    run_config_tests(&cfg, &pipeline, &mut r);
    for route in pipeline.router.routes() {
        if let Some(t) = &route.template {
            r.line(format!(
                "route    ok    {} -> template {t}, {} destination(s)",
                route.name,
                route.targets.written()
            ));
        } else {
            r.line(format!(
                "route    ok    {} -> default template per event, {} destination(s)",
                route.name,
                route.targets.written()
            ));
        }
    }
    finish(r)
}

/// Warns about a path in a route's `match`, `when`, `group_by` or `fingerprint` that
/// resolves to nothing in every sample payload of its source's kind (a typo, or a label
/// that lives elsewhere, like Alertmanager's `alertname` under `commonLabels`).
fn check_field_paths(pipeline: &Pipeline, r: &mut Report) {
    for route in pipeline.router.routes() {
        let Some(kind) = pipeline.sources.get(&route.source).map(|s| s.kind) else {
            continue;
        };
        let prefix = format!("{kind}/");
        let samples: Vec<Value> = pipeline
            .templates
            .names()
            .filter(|(name, _)| name.starts_with(&prefix))
            .filter_map(|(_, info)| info.sample())
            .map(|mut s| {
                crate::inbound::prepare_sample(kind, &mut s);
                s
            })
            .collect();
        if samples.is_empty() {
            continue;
        }
        for (key, path) in route.field_paths() {
            let found = samples
                .iter()
                .any(|s| path.lookup(s).is_some_and(|v| !v.is_null()));
            if !found {
                r.line(format!(
                    "route    warn  {}: {key} reads `{path}`, which is in none of the {} {kind} sample payloads",
                    route.name,
                    samples.len()
                ));
            }
        }
    }
}

fn check_templates(t: &Templates, r: &mut Report) {
    for (name, info) in t.names() {
        let forms = [(&info.text, Format::Text), (&info.card, Format::Card)];
        for (origin, format) in forms {
            let Some(origin) = origin else { continue };
            let form = match format {
                Format::Card => " card",
                Format::Text => "",
            };
            let origin = match origin {
                TemplateOrigin::BuiltIn => "built-in".to_string(),
                TemplateOrigin::File(p) => p.display().to_string(),
            };
            let Some(sample) = info.sample() else {
                r.line(format!("template ok    {name}{form} ({origin}) compiled; no {name}.sample.json to render it against"));
                continue;
            };
            match render_sample(t, name, format, &sample) {
                Ok((Content::Card(card), missing)) => {
                    let fitted = card.blocks(false);
                    r.line(format!(
                        "template ok    {name}{form} ({origin}) renders its sample: {} blocks, colour {}",
                        fitted.blocks.len(),
                        fitted.color.as_deref().unwrap_or("none")
                    ));
                    for m in missing {
                        r.line(format!(
                            "template note  {name}{form}: {m} of the sample, so this part is left out (as for any payload without it)"
                        ));
                    }
                }
                Ok((Content::Text(text), _)) => r.line(format!(
                    "template ok    {name}{form} ({origin}) renders its sample ({} bytes)",
                    text.len()
                )),
                Err(e) => r.fail(format!("template FAIL  {name}{form} ({origin}): {e}")),
            }
        }
    }
}

/// Renders `name` in `format` against its sample, strictly: any part that fails (a
/// misspelt field, a colour Roam does not know) is an error.
fn render_sample(
    t: &Templates,
    name: &str,
    format: Format,
    sample: &Value,
) -> Result<(Content, Vec<String>), String> {
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
    t.render_checked(name, format, &context(&meta, &sample))
        .map_err(|e| e.to_string())
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

/// What `roam-notify render` shows: the message as it reads, and the exact `chat.post`
/// bodies Roam receives (several when it is continued in a thread).
pub struct Preview {
    pub readable: String,
    pub requests: Vec<String>,
}

/// The destination shown in `render`'s request bodies (a route's `to` goes there).
pub const RENDER_CHAT: &str = "<to>";

/// `roam-notify render`: the message `template` makes of `payload`, as it would be posted.
pub fn render(
    templates: &Templates,
    template: &str,
    format: Format,
    event: &str,
    source: &str,
    payload: &Value,
) -> Result<Preview, String> {
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
    let content = templates
        .render(template, format, &context(&meta, &payload))
        .map_err(|e| e.to_string())?;
    let to = [RENDER_CHAT.to_string()];
    let requests: Vec<String> = outbox_messages(&Addressing::plain("render", &to), &content, None)
        .into_iter()
        .map(|m| m.request)
        .collect();
    let readable = requests
        .iter()
        .map(|r| readable(r))
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok(Preview { readable, requests })
}

/// `roam-notify routes test`: what the configured routes do with a payload, offline.
/// For each event the source makes of it: every route's verdict (matched, or the first
/// condition that failed), then the message each matching route would send and where.
pub fn explain_routes(
    config_path: Option<&Path>,
    source: &str,
    event: Option<&str>,
    body: &[u8],
    headers: &[(String, String)],
) -> Result<String, String> {
    let cfg = Config::load(config_path).map_err(|e| format!("config error: {e}"))?;
    let pipeline =
        Pipeline::compile(&cfg, Default::default()).map_err(|e| format!("config error: {e}"))?;
    let mut out = String::new();
    let Some(events) = simulate(&pipeline, source, event, body, headers)? else {
        let _ = writeln!(
            out,
            "a connectivity check (ping): answered; nothing is posted"
        );
        return Ok(out);
    };
    for ev in events {
        let _ = writeln!(
            out,
            "event {} (source {}, delivery {}{})",
            ev.event,
            source,
            ev.delivery_id,
            ev.entity
                .as_deref()
                .map(|e| format!(", entity {e}"))
                .unwrap_or_default()
        );
        for v in &ev.verdicts {
            match &v.failed {
                None => {
                    let _ = writeln!(out, "  match    {}", v.route);
                }
                Some(why) => {
                    let _ = writeln!(out, "  no       {}: {why}", v.route);
                }
            }
        }
        for q in &ev.quiet {
            let _ = writeln!(out, "  → quiet: {q}");
        }
        if ev.messages.is_empty() && ev.held.is_empty() && ev.quiet.is_empty() {
            let _ = writeln!(out, "  → no message: no route takes this event");
        }
        for (route, group, text) in &ev.held {
            let _ = writeln!(
                out,
                "  → route {route} holds it in group {group} (grouping, dedup or max_messages); alone it reads:"
            );
            for line in text.lines() {
                let _ = writeln!(out, "    | {line}");
            }
        }
        for m in &ev.messages {
            let _ = writeln!(out, "  → route {} posts to {}:", m.route, m.chat);
            for line in readable(&m.request).lines() {
                let _ = writeln!(out, "    | {line}");
            }
            let _ = writeln!(out, "    chat.post {}", m.request);
            if let Some(e) = &m.error {
                let _ = writeln!(out, "    (template failed: {e})");
            }
        }
    }
    Ok(out)
}

/// Runs the config's `[[tests]]`: each names a source, a payload file (relative to the
/// config file) and what must happen; a failure is a `check` problem.
fn run_config_tests(cfg: &Config, pipeline: &Pipeline, r: &mut Report) {
    let base = cfg
        .file()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for t in &cfg.tests {
        let path = base.join(&t.payload);
        let body = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                r.fail(format!(
                    "test     FAIL  {}: cannot read {}: {e}",
                    t.name,
                    path.display()
                ));
                continue;
            }
        };
        let headers: Vec<(String, String)> = t
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let events = match simulate(pipeline, &t.source, t.event.as_deref(), &body, &headers) {
            Ok(e) => e.unwrap_or_default(),
            Err(e) => {
                r.fail(format!("test     FAIL  {}: {e}", t.name));
                continue;
            }
        };
        let mut routes: Vec<String> = Vec::new();
        for ev in &events {
            for v in ev.verdicts.iter().filter(|v| v.failed.is_none()) {
                routes.push(v.route.clone());
            }
        }
        let texts: Vec<String> = events
            .iter()
            .flat_map(|e| {
                e.messages
                    .iter()
                    .map(|m| readable(&m.request))
                    .chain(e.held.iter().map(|h| h.2.clone()))
            })
            .collect();
        let bodies: Vec<Value> = events
            .iter()
            .flat_map(|e| e.messages.iter())
            .filter_map(|m| serde_json::from_str(&m.request).ok())
            .collect();
        let mut problems = Vec::new();
        if let Some(want) = &t.routes
            && *want != routes
        {
            problems.push(format!("routes {routes:?}, expected {want:?}"));
        }
        if let Some(n) = t.messages
            && n != texts.len()
        {
            problems.push(format!("{} message(s), expected {n}", texts.len()));
        }
        for c in &t.contains {
            if !texts.iter().any(|x| x.contains(c.as_str())) {
                problems.push(format!("no message contains {c:?}"));
            }
        }
        if let Some(want) = &t.color {
            let colors: Vec<&str> = bodies
                .iter()
                .map(|b| b["color"].as_str().unwrap_or("none"))
                .collect();
            if !colors.contains(&want.as_str()) {
                problems.push(format!("colour {colors:?}, expected {want:?}"));
            }
        }
        for want in &t.buttons {
            let has = bodies.iter().any(|b| {
                b["blocks"].as_array().into_iter().flatten().any(|block| {
                    block["elements"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|e| e["url"].as_str() == Some(want.as_str()))
                })
            });
            if !has {
                problems.push(format!("no button links to {want:?}"));
            }
        }
        if problems.is_empty() {
            r.line(format!("test     ok    {}", t.name));
        } else {
            r.fail(format!(
                "test     FAIL  {}: {}",
                t.name,
                problems.join("; ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_renders_its_sample() {
        let t = Templates::builtin().unwrap();
        for (name, info) in t.names() {
            let sample = info
                .sample()
                .unwrap_or_else(|| panic!("{name} has no sample"));
            for (has, format) in [(&info.text, Format::Text), (&info.card, Format::Card)] {
                if has.is_some() {
                    render_sample(&t, name, format, &sample)
                        .unwrap_or_else(|e| panic!("{name} ({format:?}): {e}"));
                }
            }
        }
    }
}
