//! `/transcripts`: post-meeting transcript processing: on or why not, the last and next
//! run, the checkpoint, counts, the last error, and "run now".

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use maud::html;

use super::session::Viewer;
use super::{Confirmed, Console, Nav, Problem, csrf, page};

pub fn router() -> Router<Console> {
    Router::new()
        .route("/transcripts", get(show))
        .route("/transcripts/run", post(run))
}

/// A finished run's counts, shown after "run now" (numbers only: nothing typed in a
/// link reaches the page).
#[derive(Debug, serde::Deserialize)]
struct Ran {
    listed: Option<usize>,
    posted: Option<usize>,
    already: Option<usize>,
    live: Option<usize>,
    failed: Option<usize>,
}

async fn show(State(c): State<Console>, v: Viewer, Query(n): Query<Ran>) -> Html<String> {
    let run = c.app.transcript_status.snapshot();
    let m = &c.app.metrics;
    let counts = [
        ("Runs that finished", m.transcript_runs.get(&["ok"])),
        ("Runs that failed", m.transcript_runs.get(&["failed"])),
        ("Transcripts posted", m.transcripts.get(&["processed"])),
        (
            "Skipped (meeting still live)",
            m.transcripts.get(&["skipped_live"]),
        ),
        ("Transcripts failed", m.transcripts.get(&["failed"])),
    ];
    let body = html! {
        h1 { "Transcripts" }
        @match &run.disabled {
            Some(why) => { p.notice { "Transcript processing is off: " (why) } }
            None => {
                dl.facts {
                    dt { "Last run" } dd {
                        (run.last_run_at.as_deref().unwrap_or("not yet"))
                        @match run.last_run_ok { Some(true) => { " " span.pill.ok { "ok" } } Some(false) => { " " span.pill.bad { "failed" } } None => {} }
                    }
                    dt { "Next run" } dd { (run.next_run_at.as_deref().unwrap_or("not scheduled")) }
                    dt { "Checkpoint" } dd { (run.checkpoint.as_deref().unwrap_or("none yet")) }
                    @if let Some(e) = &run.last_error { dt { "Last error" } dd.error { (e) } }
                }
                form method="post" action="/transcripts/run" {
                    (csrf(&v))
                    button.primary type="submit" { "Run now" }
                }
            }
        }
        h2 { "Since this process started" }
        table {
            tbody {
                @for (label, n) in counts { tr { th scope="row" { (label) } td.num { (n) } } }
            }
        }
    };
    let notice = n.listed.map(|listed| {
        format!(
            "Run finished: {listed} listed, {} posted, {} already done, {} still live, {} failed.",
            n.posted.unwrap_or(0),
            n.already.unwrap_or(0),
            n.live.unwrap_or(0),
            n.failed.unwrap_or(0)
        )
    });
    page(&v, "Transcripts", Nav::Transcripts, notice.as_deref(), body)
}

async fn run(State(c): State<Console>, ok: Confirmed) -> Result<Redirect, Problem> {
    let Some(sweeper) = &c.app.transcripts else {
        let why = c
            .app
            .transcript_status
            .snapshot()
            .disabled
            .unwrap_or_default();
        return Err(Problem::Conflict(format!(
            "Transcript processing is off: {why}"
        )));
    };
    tracing::info!(client = %ok.client, "transcript run requested from the console");
    let never = tokio_util::sync::CancellationToken::new();
    match sweeper.run_logged("console", &never).await {
        Some(r) => Ok(Redirect::to(&format!(
            "/transcripts?listed={}&posted={}&already={}&live={}&failed={}",
            r.listed, r.processed, r.already, r.skipped_live, r.failed
        ))),
        None => Err(Problem::Conflict(
            "A run is already going, or it failed; see the last error.".into(),
        )),
    }
}
