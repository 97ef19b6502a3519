//! `/outbox`: messages newest first, filtered by status, route, source and chat, paged
//! by id (so page 1,000 costs what page 1 does); one message with its event, attempts,
//! last error and the exact request, previewed; retry, retry all dead, and drop, each
//! behind a confirmation.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use maud::html;

use super::session::Viewer;
use super::{Confirmed, Console, Nav, Problem, ago, csrf, page, preview, urlencode, when};
use crate::storage::{MessageQuery, MessageRecord, status_filter};

const PAGE: i64 = 50;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/outbox", get(list))
        .route("/outbox/retry-dead", post(retry_dead))
        .route("/outbox/{id}", get(show))
        .route("/outbox/{id}/retry", post(retry))
        .route("/outbox/{id}/drop", post(drop_one))
}

#[derive(Debug, Default, serde::Deserialize)]
struct Filter {
    status: Option<String>,
    route: Option<String>,
    source: Option<String>,
    chat: Option<String>,
    before: Option<i64>,
    notice: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn notice(code: Option<&str>) -> Option<String> {
    Some(match code? {
        "retried" => "Re-queued: the delivery worker sends it now.".to_string(),
        "dropped" => "Dropped: it will not be sent.".to_string(),
        n if n.starts_with("retried-") => {
            format!(
                "Re-queued {} dead message(s).",
                n.trim_start_matches("retried-")
            )
        }
        _ => return None,
    })
}

async fn list(
    State(c): State<Console>,
    v: Viewer,
    Query(f): Query<Filter>,
) -> Result<Html<String>, Problem> {
    let status = status_filter(nonempty(&f.status).as_deref()).map_err(Problem::BadInput)?;
    let q = MessageQuery {
        status,
        route: nonempty(&f.route),
        source: nonempty(&f.source),
        chat: nonempty(&f.chat),
        before: f.before,
        limit: PAGE,
    };
    let rows = c.app.store.list_messages(&q).await?;
    let dead = c.app.store.stats().await.map(|s| s.dead).unwrap_or(0);
    let older = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|m| m.id))
        .flatten();
    let keep = |extra: &str| {
        let mut parts = Vec::new();
        for (k, val) in [
            ("status", status.map(String::from)),
            ("route", q.route.clone()),
            ("source", q.source.clone()),
            ("chat", q.chat.clone()),
        ] {
            if let Some(val) = val {
                parts.push(format!("{k}={}", urlencode(&val)));
            }
        }
        if !extra.is_empty() {
            parts.push(extra.to_string());
        }
        format!("/outbox?{}", parts.join("&"))
    };
    let body = html! {
        h1 { "Outbox" }
        form.filters method="get" action="/outbox" role="search" {
            label { "Status "
                select name="status" {
                    @for s in ["all", "pending", "dead", "delivered", "dropped"] {
                        option value=(s) selected[status.unwrap_or("all") == s] { (s) }
                    }
                }
            }
            label { "Route " input name="route" value=[q.route.as_deref()] size="12"; }
            label { "Source " input name="source" value=[q.source.as_deref()] size="10"; }
            label { "Chat " input name="chat" value=[q.chat.as_deref()] size="14"; }
            button type="submit" { "Filter" }
            " " a href="/outbox" { "Clear" }
        }
        @if dead > 0 {
            details.confirm {
                summary { "Retry all " (dead) " dead message(s)…" }
                form method="post" action="/outbox/retry-dead" {
                    (csrf(&v))
                    p { "Every dead message goes back in the queue with fresh retries." }
                    button.danger type="submit" { "Yes, retry all " (dead) }
                }
            }
        }
        @if rows.is_empty() {
            p.muted { "No messages match." }
        } @else {
            div.scroll {
                table.outbox {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Status" } th scope="col" { "Event" }
                        th scope="col" { "Route" } th scope="col" { "Chat" } th scope="col" { "Attempts" }
                        th scope="col" { "Queued" } th scope="col" { "Last error" }
                    } }
                    tbody {
                        @for m in &rows {
                            tr {
                                td { a href=(format!("/outbox/{}", m.id)) { (m.id) } }
                                td { span.pill.(status_class(&m.status)) { (m.status) } }
                                td { (m.source) " · " (m.event) }
                                td { (m.route) }
                                td { code { (m.chat) } }
                                td.num { (m.attempts) }
                                td { (ago(m.created_at)) }
                                td.error { (m.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if f.before.is_some() { a href=(keep("")) { "← Newest" } }
            @if let Some(id) = older { a href=(keep(&format!("before={id}"))) rel="next" { "Older →" } }
        }
    };
    let n = notice(f.notice.as_deref());
    Ok(page(&v, "Outbox", Nav::Outbox, n.as_deref(), body))
}

fn status_class(s: &str) -> &'static str {
    match s {
        "delivered" => "ok",
        "dead" => "bad",
        "dropped" => "muted",
        _ => "warn",
    }
}

async fn show(
    State(c): State<Console>,
    v: Viewer,
    Path(id): Path<i64>,
    Query(f): Query<Filter>,
) -> Result<Html<String>, Problem> {
    let Some(mut m) = c.app.store.get_message(id).await? else {
        return Err(Problem::NotFound(format!("There is no message {id}.")));
    };
    crate::compose::fill_preview(&c.app.pipeline.load().templates, &mut m);
    let body = detail(&v, &m);
    let n = notice(f.notice.as_deref());
    Ok(page(
        &v,
        &format!("Message {id}"),
        Nav::Outbox,
        n.as_deref(),
        body,
    ))
}

fn detail(v: &Viewer, m: &MessageRecord) -> maud::Markup {
    let can_retry = matches!(m.status.as_str(), "dead" | "dropped");
    let can_drop = matches!(m.status.as_str(), "pending" | "dead");
    html! {
        p { a href="/outbox" { "← Outbox" } }
        h1 { "Message " (m.id) " " span.pill.(status_class(&m.status)) { (m.status) } }
        dl.facts {
            dt { "Event" } dd { (m.event) " from " (m.source) }
            dt { "Delivery id" } dd { code { (m.delivery_id) } }
            dt { "Route" } dd { (m.route) }
            dt { "Chat" } dd { code { (m.chat) } }
            dt { "Queued" } dd { (when(m.created_at)) " (" (ago(m.created_at)) ")" }
            dt { "Attempts" } dd { (m.attempts) }
            @if m.status != "delivered" && m.status != "dropped" {
                dt { "Next attempt" } dd { (when(m.next_attempt_at)) }
            }
            @if let Some(d) = m.delivered_at { dt { "Delivered" } dd { (when(d)) } }
            @if let Some(e) = &m.last_error { dt { "Last error" } dd.error { (e) } }
            @if let Some(e) = &m.render_error { dt { "Template error" } dd.error { (e) } }
            @if m.maybe_duplicate {
                dt { "Note" } dd { "A send was cut short before: Roam may already have this message." }
            }
        }
        @if can_retry || can_drop {
            div.actions {
                @if can_retry {
                    details.confirm {
                        summary { "Retry…" }
                        form method="post" action=(format!("/outbox/{}/retry", m.id)) {
                            (csrf(v))
                            p { "Message " (m.id) " goes back in the queue with fresh retries." }
                            button type="submit" { "Yes, retry message " (m.id) }
                        }
                    }
                }
                @if can_drop {
                    details.confirm {
                        summary { "Drop…" }
                        form method="post" action=(format!("/outbox/{}/drop", m.id)) {
                            (csrf(v))
                            p { "Message " (m.id) " will never be sent. It stays listed as dropped and can be retried later." }
                            button.danger type="submit" { "Yes, drop message " (m.id) }
                        }
                    }
                }
            }
        }
        section.request {
            h2 { "As it will look" }
            @if m.render.is_some() {
                p.muted { "Rendered when it is sent; shown here with the templates in force now." }
            }
            (preview::message(&m.request))
            h2 { "Exact request (" code { "chat.post" } ")" }
            pre.json { code { (preview::exact(&m.request)) } }
        }
    }
}

async fn retry(
    State(c): State<Console>,
    Path(id): Path<i64>,
    ok: Confirmed,
) -> Result<Redirect, Problem> {
    if !c.app.store.requeue(id).await? {
        return Err(Problem::Conflict(format!(
            "Message {id} does not exist or is not dead or dropped."
        )));
    }
    c.app.wake_delivery.notify_one();
    tracing::info!(message_id = id, client = %ok.client, "re-queued from the console");
    Ok(Redirect::to(&format!("/outbox/{id}?notice=retried")))
}

async fn retry_dead(State(c): State<Console>, ok: Confirmed) -> Result<Redirect, Problem> {
    let n = c.app.store.requeue_all_dead().await?;
    c.app.wake_delivery.notify_one();
    tracing::info!(messages = n, client = %ok.client, "dead letters re-queued from the console");
    Ok(Redirect::to(&format!("/outbox?notice=retried-{n}")))
}

async fn drop_one(
    State(c): State<Console>,
    Path(id): Path<i64>,
    ok: Confirmed,
) -> Result<Redirect, Problem> {
    if !c.app.store.drop_message(id).await? {
        return Err(Problem::Conflict(format!(
            "Message {id} does not exist or is not pending or dead."
        )));
    }
    tracing::info!(message_id = id, client = %ok.client, "dropped from the console");
    Ok(Redirect::to(&format!("/outbox/{id}?notice=dropped")))
}
