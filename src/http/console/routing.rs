//! `/routing`: the routing tree as loaded (sources with their URLs and authentication,
//! routes in order with their conditions, destinations by name and id, grouping,
//! threads and updates, mute windows) and `/routing/explain`: a payload run through the
//! live pipeline without committing anything (`ingest::simulate`), showing each route's
//! verdict and the messages that would be sent, rendered.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use chrono::Utc;
use maud::{Markup, html};

use super::session::Viewer;
use super::{Console, Nav, Problem, csrf, page, preview, span};
use crate::config::{RouteConfig, SourceConfig};
use crate::directory::{Destination, Snapshot};
use crate::ingest::Pipeline;
use crate::ingest::simulate::simulate;
use crate::routing::Route;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/routing", get(tree))
        .route("/routing/explain", get(explain_page).post(explain))
}

async fn tree(State(c): State<Console>, v: Viewer) -> Html<String> {
    let cfg = c.app.reloader.config().await;
    let pipeline = c.app.pipeline.load();
    let dir = pipeline.directory.snapshot();
    let body = html! {
        h1 { "Routing" }
        p { "As loaded now. " a href="/routing/explain" { "Explain a payload →" } }
        section aria-labelledby="sources" {
            h2 id="sources" { "Sources" }
            div.scroll { table {
                thead { tr { th scope="col" { "Source" } th scope="col" { "Kind" } th scope="col" { "URL" } th scope="col" { "Authentication" } th scope="col" { "Limits" } } }
                tbody {
                    @for s in &cfg.sources {
                        tr {
                            th scope="row" { (s.name) }
                            td { (s.kind) }
                            td { code { "POST /hooks/" (s.name) } }
                            td { (auth_of(s)) }
                            td { (limits_of(s)) }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="routes" {
            h2 id="routes" { "Routes, in order" }
            p.muted { "An event goes down this list; the first route that matches takes it, and the search stops there unless that route says continue." }
            ol.routes {
                @for r in pipeline.router.routes() {
                    li { (route_card(r, cfg.routes.iter().find(|x| x.name == r.name), &dir)) }
                }
            }
        }
        @if !cfg.mute_windows.is_empty() {
            section aria-labelledby="mute" {
                h2 id="mute" { "Mute windows" }
                ul {
                    @for w in &cfg.mute_windows {
                        li {
                            strong { (w.name) } ": " (w.start) "–" (w.end) " "
                            (w.timezone.as_deref().unwrap_or("UTC"))
                            @if let Some(days) = &w.weekdays { " on " (days.join(", ")) }
                        }
                    }
                }
            }
        }
    };
    page(&v, "Routing", Nav::Routing, None, body)
}

fn auth_of(s: &SourceConfig) -> String {
    crate::inbound::auth_summary(&s.kind, s.auth.as_deref())
}

fn limits_of(s: &SourceConfig) -> String {
    let mut out = Vec::new();
    if let Some(ips) = &s.allow_ips {
        out.push(format!("from {}", ips.join(", ")));
    }
    if let Some(r) = &s.rate_limit {
        out.push(format!("{r}/s"));
    }
    if out.is_empty() {
        "—".into()
    } else {
        out.join("; ")
    }
}

/// One destination as written, with what it stands for now.
fn destination(d: &Destination, dir: &Snapshot) -> Markup {
    let (written, resolved) = match d {
        Destination::Id(id) => (id.clone(), None),
        Destination::Name(n) => (
            format!("#{n}"),
            Some(match dir.chat(n) {
                Ok(hit) if hit.stale => {
                    format!("{} (last known id; not in Roam's latest listing)", hit.id)
                }
                Ok(hit) => hit.id.to_string(),
                Err(e) => format!("unresolved: {e}"),
            }),
        ),
        Destination::Email(e) => (
            e.clone(),
            Some(
                dir.user(e)
                    .map_or_else(|| "looked up when sent".to_string(), String::from),
            ),
        ),
        Destination::Template(t) => (t.clone(), Some("per event".to_string())),
    };
    html! {
        li { code { (written) } @if let Some(r) = resolved { " → " (r) } }
    }
}

fn route_card(r: &Route, raw: Option<&RouteConfig>, dir: &Snapshot) -> Markup {
    let now = Utc::now();
    let muted: Vec<String> = r
        .mute
        .iter()
        .filter_map(|w| {
            w.active_until(now)
                .map(|u| format!("{} (until {u})", w.name))
        })
        .collect();
    let raw_events = raw.and_then(|x| x.events.clone());
    let matches: Vec<(String, String)> = raw
        .map(|x| {
            x.match_
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect()
        })
        .unwrap_or_default();
    let when = raw.and_then(|x| x.when.as_ref()).map(|w| w.to_string());
    html! {
        article.route id=(format!("route-{}", r.name)) {
            h3 { (r.name) @if r.continue_ { " " span.pill { "continue" } } }
            dl.facts {
                dt { "Source" } dd { (r.source) }
                dt { "Events" } dd { @match &raw_events { Some(e) => { (e.join(", ")) } None => { "any" } } }
                @if !matches.is_empty() {
                    dt { "Match" } dd { ul { @for (k, v) in &matches { li { code { (k) " = " (v) } } } } }
                }
                @if let Some(w) = &when { dt { "When" } dd { code { (w) } } }
                dt { "To" } dd { ul.plain { @for d in &r.targets.to { (destination(d, dir)) } } }
                @if !r.targets.fallback.is_empty() {
                    dt { "Fallback" } dd { ul.plain { @for d in &r.targets.fallback { (destination(d, dir)) } } }
                }
                @if !r.targets.mentions.is_empty() {
                    dt { "Mentions" } dd { ul.plain { @for d in &r.targets.mentions { (destination(d, dir)) } } }
                }
                dt { "Message" } dd {
                    (r.template.as_deref().unwrap_or("the event's default template"))
                    " as " (format!("{:?}", r.format).to_lowercase())
                    @if r.thread { ", threaded per entity" }
                    @if r.update { ", updated in place" }
                    @if r.split_long { ", long ones continued in a thread" }
                }
                @if let Some(h) = &r.hold {
                    dt { "Grouping" } dd {
                        @match &h.group_by {
                            Some(g) if g.is_empty() => { "one group" }
                            Some(g) => { "by " (g.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")) }
                            None => { "each event alone" }
                        }
                        @if h.wait_ms > 0 { ", wait " (span(h.wait_ms as f64 / 1000.0)) }
                        @if h.interval_ms > 0 { ", every " (span(h.interval_ms as f64 / 1000.0)) }
                        @if let Some(rp) = h.repeat_ms { ", repeat after " (span(rp as f64 / 1000.0)) }
                        @if let Some(m) = h.max_messages { ", at most " (m) " per " (span(h.max_window_ms as f64 / 1000.0)) }
                    }
                }
                @if !r.mute.is_empty() {
                    dt { "Muted" } dd {
                        (r.mute.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", "))
                        @if r.mute_summary { " (summary after)" }
                        @if !muted.is_empty() { " — " strong { "now muted: " (muted.join(", ")) } }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct ExplainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    headers: String,
    #[serde(default)]
    payload: String,
}

async fn explain_page(State(c): State<Console>, v: Viewer) -> Html<String> {
    let pipeline = c.app.pipeline.load();
    let body = explain_body(&v, &pipeline, &ExplainForm::default(), None);
    page(&v, "Explain", Nav::Routing, None, body)
}

async fn explain(
    State(c): State<Console>,
    v: Viewer,
    axum::Form(f): axum::Form<ExplainForm>,
) -> Result<Html<String>, Problem> {
    v.check(&f.csrf)?;
    let pipeline = c.app.pipeline.load();
    let mut headers = Vec::new();
    let mut problem = None;
    for line in f.headers.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((k, val)) => headers.push((k.trim().to_string(), val.trim().to_string())),
            None => problem = Some(format!("header line {line:?} is not \"Name: value\"")),
        }
    }
    let event = Some(f.event.trim()).filter(|e| !e.is_empty());
    let result = match problem {
        Some(p) => Err(p),
        None => simulate(&pipeline, &f.source, event, f.payload.as_bytes(), &headers),
    };
    let out = outcome(result);
    let body = explain_body(&v, &pipeline, &f, Some(out));
    Ok(page(&v, "Explain", Nav::Routing, None, body))
}

fn explain_body(v: &Viewer, p: &Pipeline, f: &ExplainForm, out: Option<Markup>) -> Markup {
    let mut sources: Vec<&str> = p.sources.keys().map(String::as_str).collect();
    sources.sort_unstable();
    html! {
        p { a href="/routing" { "← Routing" } }
        h1 { "Explain" }
        p { "Paste what a sender posts: nothing is stored or sent, and the signature is not checked. Each route's verdict and the messages that would go out are shown." }
        form.explain method="post" action="/routing/explain" {
            (csrf(v))
            div.row {
                label { "Source "
                    select name="source" required {
                        @for s in &sources { option value=(s) selected[f.source == *s] { (s) } }
                    }
                }
                label { "Event name (optional, overrides the sender's) " input name="event" value=(f.event); }
            }
            label for="headers" { "Headers, one per line (" code { "X-GitHub-Event: push" } ")" }
            textarea id="headers" name="headers" rows="3" { (f.headers) }
            label for="payload" { "Payload" }
            textarea id="payload" name="payload" rows="10" required { (f.payload) }
            button.primary type="submit" { "Explain" }
        }
        @if let Some(o) = out { section.result aria-live="polite" { (o) } }
    }
}

fn outcome(r: Result<Option<Vec<crate::ingest::simulate::Simulated>>, String>) -> Markup {
    match r {
        Err(e) => html! { p.problem role="alert" { (e) } },
        Ok(None) => html! { p { "A connectivity check (ping): answered, nothing is posted." } },
        Ok(Some(events)) => html! {
            @if events.is_empty() { p { "The source makes no event of this request." } }
            @for ev in &events {
                article.event {
                    h2 { "Event " code { (ev.event) } }
                    p.muted { "delivery " code { (ev.delivery_id) } @if let Some(e) = &ev.entity { ", entity " code { (e) } } }
                    table.verdicts {
                        thead { tr { th scope="col" { "Route" } th scope="col" { "Verdict" } } }
                        tbody {
                            @for vd in &ev.verdicts {
                                tr {
                                    th scope="row" { (vd.route) }
                                    @match &vd.failed {
                                        None => { td { span.pill.ok { "match" } } }
                                        Some(why) if why.starts_with("not reached") => { td { span.pill.muted { "not reached" } " " (why) } }
                                        Some(why) => { td { span.pill.bad { "no" } " " (why) } }
                                    }
                                }
                            }
                        }
                    }
                    @for q in &ev.quiet { p.notice { "Quiet: " (q) } }
                    @if ev.messages.is_empty() && ev.held.is_empty() && ev.quiet.is_empty() {
                        p { "No message: no route takes this event." }
                    }
                    @for (route, group, text) in &ev.held {
                        div.sim {
                            h3 { "Route " (route) " holds it in group " (group) }
                            pre { (text) }
                        }
                    }
                    @for m in &ev.messages {
                        div.sim {
                            h3 { "Route " (m.route) " posts to " code { (m.chat) } }
                            @if let Some(e) = &m.error { p.problem { "Template failed: " (e) } }
                            (preview::message(&m.request))
                            details { summary { "Exact request" } pre.json { code { (preview::exact(&m.request)) } } }
                        }
                    }
                }
            }
        },
    }
}
