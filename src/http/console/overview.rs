//! `/`: is the daemon doing its job? Readiness, dry-run, Roam's pause and last error,
//! the outbox, deliveries over the last day, webhooks by source and result, and which
//! replica this is.

use std::time::Duration;

use axum::extract::State;
use axum::response::Html;
use maud::{Markup, html};

use super::session::Viewer;
use super::{Console, Nav, page, span};
use crate::metrics::WEBHOOK_RESULTS;
use crate::storage::{Activity, now_ms};

const HOUR_MS: i64 = 3_600_000;

pub async fn show(State(c): State<Console>, v: Viewer) -> Html<String> {
    let st = &c.app;
    let stats = tokio::time::timeout(Duration::from_secs(2), st.store.stats()).await;
    let (ready, why) = match &stats {
        Ok(Ok(_)) => (true, None),
        Ok(Err(e)) => (false, Some(format!("storage error: {e}"))),
        Err(_) => (false, Some("storage did not answer within 2 s".to_string())),
    };
    let stats = stats.ok().and_then(Result::ok).unwrap_or_default();
    let activity = st
        .store
        .activity(now_ms(), HOUR_MS, 24)
        .await
        .unwrap_or_default();
    let paused = st.pacer.paused_for();
    let last_error = st.delivery.last_error();
    let pipeline = st.pipeline.load();
    let mut sources: Vec<&str> = pipeline
        .sources
        .values()
        .filter(|s| !s.internal)
        .map(|s| s.name.as_str())
        .collect();
    sources.sort_unstable();
    let m = &st.metrics;
    let rows: Vec<(&str, Vec<(&str, u64)>)> = sources
        .iter()
        .map(|s| {
            let counts = WEBHOOK_RESULTS
                .iter()
                .map(|r| (*r, m.webhooks.get(&[s, r])))
                .filter(|(_, n)| *n > 0)
                .collect();
            (*s, counts)
        })
        .collect();
    let unknown = m.webhooks.get(&["", "unknown_source"]);

    let body = html! {
        h1 { "Overview" }
        section.cards aria-label="Status" {
            div.card.(if ready { "ok" } else { "bad" }) {
                h2 { "Ready" }
                p.big { (if ready { "Yes" } else { "No" }) }
                @if let Some(w) = &why { p { (w) } }
            }
            div.card.(if st.dry_run { "warn" } else { "ok" }) {
                h2 { "Sending" }
                @if st.dry_run {
                    p.big { "Dry run" }
                    p { "No Roam API key: messages are logged, not posted." }
                } @else {
                    p.big { "To Roam" }
                }
            }
            div.card.(if paused.is_some() || last_error.is_some() { "warn" } else { "ok" }) {
                h2 { "Roam" }
                @match paused {
                    Some(p) => { p.big { "Paused" } p { "for " (span(p.as_secs_f64())) " more (Roam asked us to slow down or is failing)" } }
                    None => { p.big { "Flowing" } }
                }
                @if let Some(e) = &last_error { p { "Last error: " code { (e) } } }
            }
            div.card.(if stats.dead > 0 { "bad" } else { "ok" }) {
                h2 { "Outbox" }
                p.big { (stats.pending) " pending" }
                p {
                    a href="/outbox?status=dead" { (stats.dead) " dead" }
                    @if let Some(age) = stats.oldest_pending_age_seconds {
                        " · oldest waiting " (span(age))
                    }
                }
            }
            div.card {
                h2 { "Replica" }
                p.big { code { (st.store.replica_id()) } }
                p {
                    (if st.store.is_shared() { "PostgreSQL, shared" } else { "SQLite" })
                    " · " (if st.leader.leading() { "leads background work" } else { "follows" })
                }
            }
        }
        section aria-labelledby="activity" {
            h2 id="activity" { "Messages" }
            p {
                "Last hour: " strong { (activity.delivered[0]) } " sent, " strong { (activity.dead[0]) } " failed. "
                "Last day: " strong { (activity.delivered.iter().sum::<i64>()) } " sent, "
                strong { (activity.dead.iter().sum::<i64>()) } " failed."
            }
            (chart(&activity))
        }
        section aria-labelledby="webhooks" {
            h2 id="webhooks" { "Webhooks since this process started" }
            table {
                thead { tr { th scope="col" { "Source" } th scope="col" { "Results" } } }
                tbody {
                    @for (s, counts) in &rows {
                        tr {
                            th scope="row" { (s) }
                            td {
                                @if counts.is_empty() { span.muted { "none yet" } }
                                @for (r, n) in counts {
                                    span.pill.(result_class(r)) { (r.replace('_', " ")) " " (n) }
                                }
                            }
                        }
                    }
                    @if unknown > 0 {
                        tr { th scope="row" { em { "unknown source" } } td { span.pill.bad { (unknown) } } }
                    }
                }
            }
        }
    };
    page(&v, "Overview", Nav::Overview, None, body)
}

fn result_class(r: &str) -> &'static str {
    match r {
        "accepted" | "duplicate" | "ping" => "ok",
        "rate_limited" | "too_large" => "warn",
        _ => "bad",
    }
}

/// 24 hourly bars, oldest on the left: delivered (green) stacked on failed (red).
fn chart(a: &Activity) -> Markup {
    let n = a.delivered.len();
    let max = (0..n)
        .map(|i| a.delivered[i] + a.dead[i])
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h, gap) = (12.0_f64, 80.0_f64, 3.0_f64);
    let width = n as f64 * (w + gap);
    let label = format!(
        "Messages per hour over the last {n} hours: {} sent, {} failed",
        a.delivered.iter().sum::<i64>(),
        a.dead.iter().sum::<i64>()
    );
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {width} {}", h + 14.0)) role="img" aria-label=(label) preserveAspectRatio="none" {
                @for slot in 0..n {
                    @let i = n - 1 - slot;
                    @let x = slot as f64 * (w + gap);
                    @let sent = a.delivered[i] as f64 / max as f64 * h;
                    @let dead = a.dead[i] as f64 / max as f64 * h;
                    g {
                        title { (if i == 0 { "the last hour".to_string() } else { format!("{}–{} hours ago", i, i + 1) }) ": " (a.delivered[i]) " sent, " (a.dead[i]) " failed" }
                        rect.bg x=(x) y="0" width=(w) height=(h) {}
                        rect.sent x=(x) y=(h - sent) width=(w) height=(sent) {}
                        rect.dead x=(x) y=(h - sent - dead) width=(w) height=(dead) {}
                    }
                }
                text x="0" y=(h + 12.0) { "24 h ago" }
                text x=(width) y=(h + 12.0) text-anchor="end" { "now" }
            }
            figcaption { span.key.sent {} " sent " span.key.dead {} " failed (dead letters) · per hour" }
        }
    }
}
