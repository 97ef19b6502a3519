//! `/silences`: active, pending and expired silences; add one with the checks the CLI
//! and the JSON API use (`silences::validate`), after a preview of which recently
//! accepted webhooks it would have silenced; expire one. A change applies at once.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};

use super::session::Viewer;
use super::{Confirmed, Console, Nav, Problem, ago, csrf, page, when};
use crate::ingest::simulate::parse_events;
use crate::silences::{self, SilenceRequest};
use crate::storage::now_ms;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/silences", get(list).post(add))
        .route("/silences/{id}/expire", post(expire))
}

#[derive(Debug, serde::Deserialize)]
struct Notice {
    notice: Option<String>,
    id: Option<i64>,
}

/// The add form as typed (kept when the page is shown again with a preview or a
/// problem).
#[derive(Debug, Default, Clone, serde::Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    matchers: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    events: String,
    #[serde(default)]
    routes: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    created_by: String,
    /// `preview` or `add`.
    #[serde(default)]
    action: String,
}

fn list_of(s: &str) -> Vec<String> {
    s.split([',', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

impl AddForm {
    fn request(&self) -> SilenceRequest {
        SilenceRequest {
            matchers: self
                .matchers
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            source: Some(self.source.trim().to_string()).filter(|s| !s.is_empty()),
            events: list_of(&self.events),
            routes: list_of(&self.routes),
            starts: None,
            duration: Some(self.duration.trim().to_string()),
            until: None,
            comment: self.comment.trim().to_string(),
            created_by: Some(self.created_by.trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "console".into()),
        }
    }
}

async fn list(
    State(c): State<Console>,
    v: Viewer,
    Query(n): Query<Notice>,
) -> Result<Html<String>, Problem> {
    let form = AddForm {
        duration: "2h".into(),
        ..Default::default()
    };
    let notice = match (n.notice.as_deref(), n.id) {
        (Some("added"), Some(id)) => Some(format!("Silence #{id} added; it applies now.")),
        (Some("expired"), Some(id)) => Some(format!("Silence #{id} expired.")),
        _ => None,
    };
    render(&c, &v, &form, None, notice.as_deref()).await
}

/// The page: the form (with its problem or preview) and the three lists.
async fn render(
    c: &Console,
    v: &Viewer,
    form: &AddForm,
    below_form: Option<Markup>,
    notice: Option<&str>,
) -> Result<Html<String>, Problem> {
    let all = c.app.store.list_silences(true).await?;
    let now = now_ms();
    let (mut active, mut pending, mut expired) = (Vec::new(), Vec::new(), Vec::new());
    for s in all {
        if s.expired || s.ends_at <= now {
            expired.push(s);
        } else if s.starts_at > now {
            pending.push(s);
        } else {
            active.push(s);
        }
    }
    expired.truncate(50);
    let mut sources: Vec<String> = c
        .app
        .pipeline
        .load()
        .sources
        .values()
        .map(|s| s.name.clone())
        .collect();
    sources.sort_unstable();
    let table = |rows: &[crate::storage::Silence], can_expire: bool| {
        html! {
            @if rows.is_empty() {
                p.muted { "None." }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Matches" } th scope="col" { "From" }
                        th scope="col" { "Until" } th scope="col" { "Comment" } th scope="col" { "By" }
                        @if can_expire { th scope="col" { span.sr { "Actions" } } }
                    } }
                    tbody {
                        @for s in rows {
                            tr {
                                td { (s.id) }
                                td { code { (s.matcher) } }
                                td { (when(s.starts_at)) }
                                td { (when(s.ends_at)) " (" (ago(s.ends_at)) ")" }
                                td { (s.comment) }
                                td { (s.created_by) }
                                @if can_expire {
                                    td {
                                        form method="post" action=(format!("/silences/{}/expire", s.id)) {
                                            (csrf(v))
                                            button type="submit" aria-label=(format!("Expire silence {}", s.id)) { "Expire" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    };
    let body = html! {
        h1 { "Silences" }
        section aria-labelledby="add" {
            h2 id="add" { "Add a silence" }
            form.silence method="post" action="/silences" {
                (csrf(v))
                label for="matchers" { "Field matchers, one per line (" code { "path=value" } ", " code { "path!=value" } ", " code { "path=~regex" } ", " code { "path!~regex" } ")" }
                textarea id="matchers" name="matchers" rows="3" { (form.matchers) }
                div.row {
                    label { "Source "
                        select name="source" {
                            option value="" { "any" }
                            @for s in &sources { option value=(s) selected[form.source == *s] { (s) } }
                        }
                    }
                    label { "Events (globs, comma-separated) " input name="events" value=(form.events); }
                    label { "Routes (comma-separated) " input name="routes" value=(form.routes); }
                }
                div.row {
                    label { "Duration " input name="duration" value=(form.duration) required size="6"; }
                    label { "By " input name="created_by" value=(form.created_by) placeholder="console" size="12"; }
                }
                label for="comment" { "Comment (why)" }
                input id="comment" name="comment" value=(form.comment) required;
                div.row {
                    button type="submit" name="action" value="preview" { "Preview" }
                    button.primary type="submit" name="action" value="add" { "Add silence" }
                }
            }
            @if let Some(b) = below_form { (b) }
        }
        section aria-labelledby="active" { h2 id="active" { "Active" } (table(&active, true)) }
        section aria-labelledby="pending" { h2 id="pending" { "Pending" } (table(&pending, true)) }
        section aria-labelledby="expired" { h2 id="expired" { "Expired (latest 50)" } (table(&expired, false)) }
    };
    Ok(page(v, "Silences", Nav::Silences, notice, body))
}

async fn add(
    State(c): State<Console>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    v: Viewer,
    axum::Form(form): axum::Form<AddForm>,
) -> Result<Response, Problem> {
    v.check(&form.csrf)?;
    let req = form.request();
    if form.action != "add" {
        let shown = match silences::validate(&req) {
            Ok(valid) => preview(&c, &valid.compiled),
            Err(e) => problem(&e),
        };
        return Ok(render(&c, &v, &form, Some(shown), None)
            .await?
            .into_response());
    }
    let what = format!(
        "matchers {:?}, source {:?}, events {:?}, routes {:?}",
        req.matchers, req.source, req.events, req.routes
    );
    let (by, comment) = (req.created_by.clone(), req.comment.clone());
    match silences::create(&c.app.store, req).await {
        Ok((id, starts_at, ends_at)) => {
            c.app.apply_silences().await;
            tracing::info!(silence = id, created_by = %by, client = %client, starts_at, ends_at, comment = %comment,
                matcher = %what, "silence added from the console");
            Ok(Redirect::to(&format!("/silences?notice=added&id={id}")).into_response())
        }
        Err(e) => {
            let page = render(&c, &v, &form, Some(problem(&e)), None).await?;
            Ok((axum::http::StatusCode::BAD_REQUEST, page).into_response())
        }
    }
}

fn problem(e: &str) -> Markup {
    html! { p.problem role="alert" { "Not added: " (e) } }
}

/// Which of the recently accepted webhooks (this process's memory of them) the silence
/// would have covered, and on which routes.
fn preview(c: &Console, s: &silences::CompiledSilence) -> Markup {
    let pipeline = c.app.pipeline.load();
    let recent = c.app.recent.snapshot();
    let seen = recent.len();
    let mut hits = Vec::new();
    for r in &recent {
        let Ok((_, Some(events))) = parse_events(&pipeline, &r.source, &r.body, &r.headers) else {
            continue;
        };
        for ev in events {
            let routes: Vec<String> = pipeline
                .router
                .matching(&r.source, &ev.name, &ev.payload)
                .into_iter()
                .filter(|route| {
                    s.silences(s.starts_at, &r.source, &ev.name, &route.name, &ev.payload)
                })
                .map(|route| route.name.clone())
                .collect();
            if !routes.is_empty() {
                hits.push((r.at_ms, r.source.clone(), ev.name, ev.delivery_id, routes));
            }
        }
    }
    html! {
        section.preview aria-live="polite" {
            h3 { "Preview" }
            p {
                "Of the last " (seen) " webhooks this process accepted, this silence would have silenced "
                strong { (hits.len()) } " event(s)."
                " It would last until " (when(s.ends_at)) "."
            }
            @if !hits.is_empty() {
                ul {
                    @for (at, source, name, delivery, routes) in hits.iter().take(50) {
                        li { (ago(*at)) ": " (source) " · " (name) " " code { (delivery) } " on " (routes.join(", ")) }
                    }
                }
            }
        }
    }
}

async fn expire(
    State(c): State<Console>,
    Path(id): Path<i64>,
    ok: Confirmed,
) -> Result<Redirect, Problem> {
    if !c.app.store.expire_silence(id).await? {
        return Err(Problem::Conflict(format!(
            "There is no active silence {id}."
        )));
    }
    c.app.apply_silences().await;
    tracing::info!(silence = id, client = %ok.client, "silence expired from the console");
    Ok(Redirect::to(&format!("/silences?notice=expired&id={id}")))
}
