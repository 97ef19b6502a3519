//! Routing: which routes an event matches, in order, and why not.
//!
//! A route matches when its `source` is the event's source, one of its `events` patterns
//! (`*` matches any run of characters) matches the normalised event name, and every
//! `match` condition holds. Routes are tried in file order; the first match wins unless
//! it sets `continue = true`. [`Router::explain`] reports, for every route, the first
//! condition that failed, for debug logs and the CLI.

pub mod quiet;
pub mod when;

use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use crate::config::{Config, ConfigError, RouteConfig};
use crate::fieldpath::FieldPath;
use crate::grouping::Hold;
use crate::inbound::Source;
use crate::render::Templates;
use quiet::MuteWindow;

/// Roam's tagged ids: a chat, group or address (`chat.json` `TaggedUUID`).
const TAGGED_ID: &str =
    r"^[BUVGMDPC]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub source: String,
    events: Option<Vec<Glob>>,
    /// `match`: exact texts or regexes, all of which must hold.
    matches: Option<when::Cond>,
    when: Option<when::Cond>,
    pub to: Vec<String>,
    pub template: Option<String>,
    pub continue_: bool,
    /// Prepended to the message as Roam mentions (`<@U-…>`, `<@all>`).
    pub mentions: Vec<String>,
    /// Over Roam's size cap: split into a thread (true) instead of cutting.
    pub split_long: bool,
    pub thread: bool,
    pub update: bool,
    /// Grouping, dedup and caps; None: one message per event, at once.
    pub hold: Option<Hold>,
    /// Mute windows during which this route sends nothing.
    pub mute: Vec<Arc<MuteWindow>>,
    /// Muted events are summarised in one message when the window ends.
    pub mute_summary: bool,
    /// Transcripts: direct messages to action-item assignees.
    pub dm_assignees: bool,
}

impl Route {
    /// The mute window `now` falls in and when it ends (unix ms), if any.
    pub fn muted_at(&self, now_ms: i64) -> Option<(&MuteWindow, i64)> {
        let at = chrono::DateTime::from_timestamp_millis(now_ms)?;
        self.mute.iter().find_map(|w| {
            w.active_until(at)
                .map(|end| (w.as_ref(), end.timestamp_millis()))
        })
    }
}

/// An event-name pattern; `*` matches any run of characters.
#[derive(Debug, Clone)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.trim().to_string())
    }

    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with single-star backtracking: O(len(p) * len(s)) worst case.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether and why a route matched an event.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub route: String,
    /// None: matched. Some: the first condition that failed.
    pub failed: Option<String>,
}

#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn compile(
        cfg: &Config,
        sources: &[Source],
        templates: &Templates,
    ) -> Result<Router, ConfigError> {
        let tagged = Regex::new(TAGGED_ID).map_err(|e| cfg.error("routes", e.to_string()))?;
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
                return Err(cfg.error(&key("to"), "needs at least one Roam chat, group or user id"));
            }
            let mut to = Vec::new();
            for t in &to_names {
                if tagged.is_match(t) {
                    to.push(t.clone());
                } else if let Some(ids) = cfg.destinations.get(t) {
                    for id in ids.to_vec() {
                        if !tagged.is_match(&id) {
                            return Err(cfg.error(
                                &format!("destinations.{t}"),
                                format!("{id:?} is not a Roam id like G-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"),
                            ));
                        }
                        to.push(id);
                    }
                } else {
                    return Err(cfg.error(
                        &key("to"),
                        format!("{t:?} is neither a Roam id like G-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (group), C-… (chat) or U-… (user) nor a name in [destinations]"),
                    ));
                }
            }
            // A chat named twice (directly and through a destination) gets one message.
            let mut seen = std::collections::HashSet::new();
            to.retain(|id| seen.insert(id.clone()));
            let mentions = rc
                .mentions
                .clone()
                .or_else(|| d.mentions.clone())
                .unwrap_or_default();
            for m in &mentions {
                if m != "all" && !(m.starts_with("U-") && tagged.is_match(m)) {
                    return Err(cfg.error(
                        &key("mentions"),
                        format!("{m:?}: mention a Roam user id (U-…) or \"all\""),
                    ));
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
                to,
                template,
                continue_: rc.continue_.or(d.continue_).unwrap_or(false),
                mentions,
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
        Ok(Router { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Routes that take this event, in order, honouring `continue`.
    pub fn matching(&self, source: &str, event: &str, payload: &Value) -> Vec<&Route> {
        let mut out = Vec::new();
        for r in &self.routes {
            if r.reject_reason(source, event, payload).is_none() {
                out.push(r);
                if !r.continue_ {
                    break;
                }
            }
        }
        out
    }

    /// Every route's verdict, in order. Routes after a matching route without
    /// `continue` are reported as not reached.
    pub fn explain(&self, source: &str, event: &str, payload: &Value) -> Vec<Verdict> {
        let mut out = Vec::new();
        let mut stopped_by: Option<&str> = None;
        for r in &self.routes {
            let failed = match stopped_by {
                Some(prev) => Some(format!(
                    "not reached: route {prev:?} matched first (set continue = true on it to go on)"
                )),
                None => r.reject_reason(source, event, payload),
            };
            if failed.is_none() && !r.continue_ {
                stopped_by = Some(&r.name);
            }
            out.push(Verdict {
                route: r.name.clone(),
                failed,
            });
        }
        out
    }
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

impl Route {
    fn reject_reason(&self, source: &str, event: &str, payload: &Value) -> Option<String> {
        if self.source != source {
            return Some(format!(
                "source is {source:?}, route wants {:?}",
                self.source
            ));
        }
        if let Some(globs) = &self.events
            && !globs.iter().any(|g| g.matches(event))
        {
            let list: Vec<&str> = globs.iter().map(|g| g.0.as_str()).collect();
            return Some(format!(
                "event {event:?} is not in events [{}]",
                list.join(", ")
            ));
        }
        self.matches
            .as_ref()
            .and_then(|m| m.check(payload))
            .or_else(|| self.when.as_ref().and_then(|w| w.check(payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn router(toml: &str) -> Result<Router, ConfigError> {
        let cfg = Config::from_toml_str(toml, "test.toml")?;
        let sources = crate::inbound::build_sources(&cfg)?;
        let templates = Templates::builtin().unwrap();
        Router::compile(&cfg, &sources, &templates)
    }

    const SRC: &str = "[[sources]]\nname = \"gh\"\nkind = \"github\"\nsecret = \"s\"\n";
    const G: &str = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661";

    #[test]
    fn first_match_wins_unless_continue() {
        let r = router(&format!(
            "{SRC}[[routes]]\nname = \"a\"\nsource = \"gh\"\nevents = [\"github.push\"]\nto = \"{G}\"\ncontinue = true\n\
             [[routes]]\nname = \"b\"\nsource = \"gh\"\nevents = [\"github.*\"]\nto = \"{G}\"\n\
             [[routes]]\nname = \"c\"\nsource = \"gh\"\nto = \"{G}\"\n"
        ))
        .unwrap();
        let names: Vec<_> = r
            .matching("gh", "github.push", &json!({}))
            .iter()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let ex = r.explain("gh", "github.issues.opened", &json!({}));
        assert!(ex[0].failed.as_ref().unwrap().contains("not in events"));
        assert!(ex[1].failed.is_none());
        assert!(ex[2].failed.as_ref().unwrap().contains("not reached"));
    }

    #[test]
    fn match_exact_and_regex() {
        let r = router(&format!(
            "{SRC}[[routes]]\nname = \"fail\"\nsource = \"gh\"\nto = \"{G}\"\n[routes.match]\n\"workflow_run.conclusion\" = \"/^(failure|timed_out)$/\"\n\"workflow_run.head_branch\" = \"main\"\n"
        ))
        .unwrap();
        let hit = json!({"workflow_run": {"conclusion": "failure", "head_branch": "main"}});
        let miss = json!({"workflow_run": {"conclusion": "success", "head_branch": "main"}});
        assert_eq!(
            r.matching("gh", "github.workflow_run.completed", &hit)
                .len(),
            1
        );
        assert!(
            r.matching("gh", "github.workflow_run.completed", &miss)
                .is_empty()
        );
        let why = r.explain("gh", "x", &json!({})).remove(0).failed.unwrap();
        assert!(why.contains("missing"), "{why}");
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = router(&format!(
            "{SRC}[[routes]]\nname = \"x\"\nsource = \"nope\"\nto = \"{G}\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            (e.origin.as_str(), e.key.as_str()),
            ("test.toml", "routes[0].source")
        );
        let e = router(&format!("{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\n[routes.match]\n\"a\" = \"/(/\"\n")).unwrap_err();
        assert!(
            e.key.starts_with("routes[0].match") && e.problem.contains("invalid regex"),
            "{e}"
        );
        let e = router(&format!(
            "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\ntemplate = \"nope\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "routes[0].template");
        let e = router(&format!(
            "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"general\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "routes[0].to");
    }

    #[test]
    fn destinations_defaults_and_mentions() {
        let r = router(&format!(
            r#"{SRC}
[destinations]
oncall = "{G}"
sales = ["C-11111111-2222-4333-8444-555555555555", "{G}"]

[route_defaults]
source = "gh"
to = "oncall"
continue = true
mentions = ["all"]

[[routes]]
name = "a"

[[routes]]
name = "b"
to = ["sales", "oncall"]
mentions = ["U-b893c426-6d54-4d9a-8e71-6bd53b26124e"]
continue = false
"#
        ))
        .unwrap();
        let rs = r.routes();
        assert_eq!(
            (rs[0].source.as_str(), rs[0].to.clone(), rs[0].continue_),
            ("gh", vec![G.to_string()], true)
        );
        assert_eq!(rs[0].mentions, ["all"]);
        assert_eq!(
            rs[1].to,
            vec![
                "C-11111111-2222-4333-8444-555555555555".to_string(),
                G.to_string()
            ]
        );
        assert!(!rs[1].continue_);
        let e = router(&format!(
            "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"nobody\"\n"
        ))
        .unwrap_err();
        assert!(e.problem.contains("nor a name in [destinations]"), "{e}");
        let e = router(&format!("{SRC}[[routes]]\nname = \"x\"\nto = \"{G}\"\n")).unwrap_err();
        assert_eq!(e.key, "routes[0].source");
        let e = router(&format!(
            "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\nmentions = [\"bob\"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "routes[0].mentions");
    }

    #[test]
    fn included_files_add_routes_and_name_themselves_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("routes.d")).unwrap();
        let main = dir.path().join("main.toml");
        std::fs::write(&main, format!("include = \"routes.d/*.toml\"\n{SRC}[[routes]]\nname = \"main\"\nsource = \"gh\"\nto = \"{G}\"\ncontinue = true\n")).unwrap();
        std::fs::write(dir.path().join("routes.d/a-team.toml"), format!("[destinations]\nteam-a = \"{G}\"\n[[routes]]\nname = \"a\"\nsource = \"gh\"\nto = \"team-a\"\n")).unwrap();
        std::fs::write(dir.path().join("routes.d/notes.txt"), "ignored").unwrap();
        let env = crate::config::EnvStrings::from_vars(Vec::<(String, String)>::new());
        let cfg = Config::load_with_env(Some(&main), env).unwrap();
        let sources = crate::inbound::build_sources(&cfg).unwrap();
        let r = Router::compile(&cfg, &sources, &Templates::builtin().unwrap()).unwrap();
        let names: Vec<&str> = r.routes().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["main", "a"]);

        let b = dir.path().join("routes.d/b-team.toml");
        std::fs::write(
            &b,
            format!("[[routes]]\nname = \"b\"\nsource = \"nope\"\nto = \"{G}\"\n"),
        )
        .unwrap();
        let env = crate::config::EnvStrings::from_vars(Vec::<(String, String)>::new());
        let cfg = Config::load_with_env(Some(&main), env).unwrap();
        let sources = crate::inbound::build_sources(&cfg).unwrap();
        let e = Router::compile(&cfg, &sources, &Templates::builtin().unwrap()).unwrap_err();
        assert_eq!(
            (e.origin.as_str(), e.key.as_str()),
            (b.display().to_string().as_str(), "routes[0].source"),
            "{e}"
        );

        std::fs::write(&b, "[[routes]]\nname = \"b\"\nsorce = \"gh\"\n").unwrap();
        let env = crate::config::EnvStrings::from_vars(Vec::<(String, String)>::new());
        let e = Config::load_with_env(Some(&main), env).unwrap_err();
        assert_eq!(e.origin, b.display().to_string(), "{e}");
        assert!(e.key.contains("sorce"), "{e}");
    }

    #[test]
    fn when_conditions_from_toml() {
        let r = router(&format!(
            r#"{SRC}
[[routes]]
name = "ci-failures"
source = "gh"
events = ["github.workflow_run.*"]
to = "{G}"
[routes.when]
all = [
  {{ field = "workflow_run.conclusion", in = ["failure", "timed_out"] }},
  {{ not = {{ field = "workflow_run.head_branch", regex = "^dependabot/" }} }},
  {{ field = "workflow_run.run_attempt", gte = 1 }},
]
"#
        ))
        .unwrap();
        let run = |c: &str, b: &str| json!({"workflow_run": {"conclusion": c, "head_branch": b, "run_attempt": 1}});
        assert_eq!(
            r.matching(
                "gh",
                "github.workflow_run.completed",
                &run("failure", "main")
            )
            .len(),
            1
        );
        let why = r
            .explain(
                "gh",
                "github.workflow_run.completed",
                &run("failure", "dependabot/x"),
            )
            .remove(0)
            .failed
            .unwrap();
        assert!(why.contains("not[...] fails"), "{why}");
        let why = r
            .explain(
                "gh",
                "github.workflow_run.completed",
                &run("success", "main"),
            )
            .remove(0)
            .failed
            .unwrap();
        assert!(why.contains("not one of"), "{why}");
        let e = router(&format!(
            "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\n[routes.when]\nany = [ {{ field = \"a\", regex = \"(\" }} ]\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "routes[0].when.any[0].regex", "{e}");
        assert_eq!(e.origin, "test.toml");
    }

    proptest! {
        #[test]
        fn glob_star_matches_like_a_regex(p in "[ab*.]{0,8}", s in "[ab.]{0,10}") {
            let re = format!("^{}$", regex::escape(&p).replace("\\*", ".*"));
            prop_assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), Regex::new(&re).unwrap().is_match(&s));
        }
    }
}
