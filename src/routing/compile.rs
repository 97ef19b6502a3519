//! Compiling `[[routes]]`, `[[mute_windows]]` and a route's grouping keys; every problem
//! names its file and key.

use std::sync::Arc;
use std::time::Duration;

use handlebars::Handlebars;

use super::quiet::{self, MuteWindow};
use super::targets::Targets;
use super::{Glob, Route, Router, when};
use crate::config::{Config, ConfigError, RouteConfig};
use crate::directory::Destination;
use crate::fieldpath::FieldPath;
use crate::grouping::Hold;
use crate::inbound::Source;
use crate::render::{Format, Templates};

impl Router {
    pub fn compile(
        cfg: &Config,
        sources: &[Source],
        templates: &Templates,
    ) -> Result<Router, ConfigError> {
        let mut exprs = Handlebars::new();
        exprs.register_escape_fn(handlebars::no_escape);
        let windows = compile_mute_windows(cfg)?;
        let mut routes = Vec::with_capacity(cfg.routes.len());
        for (i, rc) in cfg.routes.iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
            let d = &cfg.route_defaults;
            let Some(source) = rc.source.clone().or_else(|| d.source.clone()) else {
                return Err(cfg.error(
                    &key("source"),
                    "missing (set it here or in [route_defaults])",
                ));
            };
            if !sources.iter().any(|s| s.name == source) {
                let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
                return Err(cfg.error(
                    &key("source"),
                    format!(
                        "unknown source {:?} (configured: {})",
                        source,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            let events = match &rc.events {
                None => None,
                Some(list) if list.is_empty() => {
                    return Err(cfg.error(
                        &key("events"),
                        "empty list: leave `events` out to match every event",
                    ));
                }
                Some(list) => Some(list.iter().map(|e| Glob::new(e)).collect()),
            };
            let matches =
                when::match_table(rc.match_.iter().map(|(p, v)| (p.as_str(), v.0.as_str())))
                    .map_err(|(k, p)| cfg.error(&format!("routes[{i}].match.{k}"), p))?;
            let Some(to_names) = rc.to.as_ref().or(d.to.as_ref()).map(|t| t.to_vec()) else {
                return Err(cfg.error(&key("to"), "missing (set it here or in [route_defaults])"));
            };
            if to_names.is_empty() {
                return Err(cfg.error(&key("to"), "needs at least one destination"));
            }
            let to = destinations(cfg, &to_names, &key("to"))?;
            let fallback = destinations(
                cfg,
                &rc.fallback.as_ref().map(|f| f.to_vec()).unwrap_or_default(),
                &key("fallback"),
            )?;
            if !fallback.is_empty() && !to.iter().any(|d| matches!(d, Destination::Template(_))) {
                return Err(cfg.error(
                    &key("fallback"),
                    "only a route whose `to` has an {{expression}} can have no destination",
                ));
            }
            let mention_list = rc
                .mentions
                .clone()
                .or_else(|| d.mentions.clone())
                .unwrap_or_default();
            let mut mentions = Vec::new();
            for m in &mention_list {
                let parsed = match m.as_str() {
                    "all" => Ok(Destination::Id("all".into())),
                    other => Destination::parse(other),
                };
                match parsed {
                    Ok(Destination::Id(id)) if id == "all" || id.starts_with("U-") => {
                        mentions.push(Destination::Id(id))
                    }
                    Ok(d @ (Destination::Email(_) | Destination::Template(_))) => mentions.push(d),
                    _ => {
                        return Err(cfg.error(
                            &key("mentions"),
                            format!("{m:?}: mention a Roam user id (U-…), an email, an {{{{expression}}}} or \"all\""),
                        ));
                    }
                }
            }
            let targets = Targets {
                to,
                fallback,
                mentions,
            };
            for t in targets.expressions() {
                if !exprs.has_template(t) {
                    exprs
                        .register_template_string(t, t)
                        .map_err(|e| cfg.error(&key("to"), format!("{t:?}: {e}")))?;
                }
            }
            let template = rc.template.clone().or_else(|| d.template.clone());
            if let Some(t) = &template
                && !templates.has(t)
            {
                return Err(cfg.error(
                    &key("template"),
                    format!(
                        "unknown template {t:?} (add templates/{t}.hbs or pick a built-in one)"
                    ),
                ));
            }
            let when = match &rc.when {
                None => None,
                Some(v) => Some(when::compile(v).map_err(|(k, problem)| {
                    let full = if k.is_empty() {
                        format!("routes[{i}].when")
                    } else {
                        format!("routes[{i}].when.{k}")
                    };
                    cfg.error(&full, problem)
                })?),
            };
            let hold = compile_hold(cfg, i, rc, templates)?;
            let mut mute = Vec::new();
            for (n, w) in rc.mute.iter().flatten().enumerate() {
                match windows.iter().find(|x| x.name == *w) {
                    Some(x) => mute.push(x.clone()),
                    None => {
                        let known: Vec<&str> = windows.iter().map(|x| x.name.as_str()).collect();
                        return Err(cfg.error(
                            &format!("routes[{i}].mute[{n}]"),
                            format!(
                                "no [[mute_windows]] named {w:?} (configured: {})",
                                if known.is_empty() {
                                    "none".into()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        ));
                    }
                }
            }
            if rc.mute_summary == Some(true) && mute.is_empty() {
                return Err(cfg.error(&key("mute_summary"), "has no effect without `mute`"));
            }
            // Transcripts default to one thread each, long summaries split into replies.
            let transcripts = sources.iter().any(|s| s.name == source && s.kind == "roam");
            if rc.dm_assignees == Some(true) && !transcripts {
                return Err(cfg.error(
                    &key("dm_assignees"),
                    "only routes of a roam (transcript) source have action items to send",
                ));
            }
            routes.push(Route {
                mute,
                mute_summary: rc.mute_summary.unwrap_or(false),
                dm_assignees: rc.dm_assignees.unwrap_or(false),
                thread: rc.thread.unwrap_or(transcripts),
                update: rc.update.unwrap_or(false),
                hold,
                name: rc.name.clone(),
                source,
                events,
                matches,
                when,
                targets,
                template,
                format: Format::parse(rc.format.as_deref().or(d.format.as_deref()))
                    .map_err(|e| cfg.error(&key("format"), e))?,
                continue_: rc.continue_.or(d.continue_).unwrap_or(false),
                split_long: match rc.long.as_deref().or(d.long.as_deref()) {
                    None => transcripts,
                    Some("cut") => false,
                    Some("thread") => true,
                    Some(other) => {
                        return Err(cfg.error(
                            &key("long"),
                            format!("{other:?}: use \"cut\" (default) or \"thread\""),
                        ));
                    }
                },
            });
        }
        Ok(Router { routes, exprs })
    }
}

/// A list of destinations as written: each a Roam id, `#Name`, email or expression, or
/// a `[destinations]` name standing for several.
fn destinations(cfg: &Config, list: &[String], key: &str) -> Result<Vec<Destination>, ConfigError> {
    let mut out = Vec::new();
    for t in list {
        if let Some(named) = cfg.destinations.get(t) {
            for d in named.to_vec() {
                out.push(
                    Destination::parse(&d)
                        .map_err(|e| cfg.error(&format!("destinations.{t}"), e))?,
                );
            }
            continue;
        }
        out.push(
            Destination::parse(t)
                .map_err(|e| cfg.error(key, format!("{e}, nor a name in [destinations]")))?,
        );
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|d| seen.insert(format!("{d:?}")));
    Ok(out)
}

fn compile_mute_windows(cfg: &Config) -> Result<Vec<Arc<MuteWindow>>, ConfigError> {
    let mut out: Vec<Arc<MuteWindow>> = Vec::new();
    for (i, w) in cfg.mute_windows.iter().enumerate() {
        let key = |k: &str| format!("mute_windows[{i}].{k}");
        if out.iter().any(|x| x.name == w.name) {
            return Err(cfg.error(&key("name"), format!("{:?} is used twice", w.name)));
        }
        let tz: chrono_tz::Tz = match &w.timezone {
            None => chrono_tz::UTC,
            Some(t) => t.parse().map_err(|_| {
                cfg.error(
                    &key("timezone"),
                    format!("{t:?} is not an IANA time zone name like \"Europe/Berlin\""),
                )
            })?,
        };
        let mut days = [w.weekdays.is_none(); 7];
        for (n, d) in w.weekdays.iter().flatten().enumerate() {
            let lower = d.trim().to_ascii_lowercase();
            let Some(ix) = quiet::WEEKDAYS.iter().position(|x| lower.starts_with(x)) else {
                return Err(cfg.error(
                    &format!("mute_windows[{i}].weekdays[{n}]"),
                    format!("{d:?}: use mon, tue, wed, thu, fri, sat or sun"),
                ));
            };
            days[ix] = true;
        }
        out.push(Arc::new(MuteWindow {
            name: w.name.clone(),
            tz,
            days,
            start: quiet::parse_time_of_day(&w.start).map_err(|e| cfg.error(&key("start"), e))?,
            end: quiet::parse_time_of_day(&w.end).map_err(|e| cfg.error(&key("end"), e))?,
        }));
    }
    Ok(out)
}

/// Defaults as in Alertmanager for grouping routes; a route that only deduplicates or
/// caps sends each event as soon as the flusher sees it.
const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
const DEFAULT_MAX_MESSAGES_INTERVAL: Duration = Duration::from_secs(600);
const DEFAULT_GROUP_SHOWN: u32 = 10;

fn compile_hold(
    cfg: &Config,
    i: usize,
    rc: &RouteConfig,
    templates: &Templates,
) -> Result<Option<Hold>, ConfigError> {
    let key = |k: &str| format!("routes[{i}].{k}");
    let holds = rc.group_by.is_some()
        || rc.group_wait.is_some()
        || rc.group_interval.is_some()
        || rc.repeat_interval.is_some()
        || rc.max_messages.is_some();
    if !holds {
        for (set, k) in [
            (rc.fingerprint.is_some(), "fingerprint"),
            (rc.group_template.is_some(), "group_template"),
            (rc.group_shown.is_some(), "group_shown"),
            (rc.max_messages_interval.is_some(), "max_messages_interval"),
        ] {
            if set {
                return Err(cfg.error(&key(k), "has no effect without group_by, group_wait, group_interval, repeat_interval or max_messages"));
            }
        }
        return Ok(None);
    }
    let paths = |k: &str, list: &[String]| -> Result<Vec<FieldPath>, ConfigError> {
        list.iter()
            .enumerate()
            .map(|(n, p)| {
                FieldPath::parse(p).map_err(|e| cfg.error(&format!("routes[{i}].{k}[{n}]"), e))
            })
            .collect()
    };
    let group_by = match &rc.group_by {
        None => None,
        Some(list) => Some(paths("group_by", list)?),
    };
    let grouping = group_by.is_some();
    let ms = |d: Duration| d.as_millis().min(i64::MAX as u128) as i64;
    let wait = rc.group_wait.unwrap_or(if grouping {
        DEFAULT_GROUP_WAIT
    } else {
        Duration::ZERO
    });
    let interval = rc.group_interval.unwrap_or(if grouping {
        DEFAULT_GROUP_INTERVAL
    } else {
        Duration::ZERO
    });
    if rc.max_messages == Some(0) {
        return Err(cfg.error(&key("max_messages"), "must be at least 1"));
    }
    if let Some(t) = &rc.group_template
        && !templates.has(t)
    {
        return Err(cfg.error(
            &key("group_template"),
            format!("unknown template {t:?} (add templates/{t}.hbs or use the built-in \"group\")"),
        ));
    }
    let window = rc
        .max_messages_interval
        .unwrap_or(DEFAULT_MAX_MESSAGES_INTERVAL);
    if window.is_zero() {
        return Err(cfg.error(&key("max_messages_interval"), "must be longer than 0s"));
    }
    Ok(Some(Hold {
        group_by,
        wait_ms: ms(wait),
        interval_ms: ms(interval),
        repeat_ms: rc.repeat_interval.map(ms),
        max_messages: rc.max_messages,
        max_window_ms: ms(window),
        template: rc.group_template.clone(),
        shown: rc.group_shown.unwrap_or(DEFAULT_GROUP_SHOWN).max(1) as usize,
        fingerprint: paths("fingerprint", rc.fingerprint.as_deref().unwrap_or(&[]))?,
    }))
}
