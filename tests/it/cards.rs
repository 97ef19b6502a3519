//! Cards: every payload of every kind becomes a Block Kit card the fake Roam (which
//! checks Roam's rules independently, `blockkit.rs`) accepts, coloured by outcome.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::sources::{CASES, config_with, headers, now, post, secret_of, written_cases};

/// The header and colour of a card body.
fn header_and_colour(body: &Value) -> (String, Option<String>) {
    let header = body["blocks"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "header"))
        .and_then(|b| b["text"]["text"].as_str())
        .unwrap_or("")
        .to_string();
    (header, body["color"].as_str().map(str::to_string))
}

/// Colour by outcome, for the kinds whose payloads say one (event, a word of the
/// header, colour; None: no colour).
const COLOURS: &[(&str, &str, Option<&str>)] = &[
    ("github.workflow_run.completed", "success", Some("good")),
    ("github.workflow_run.completed", "failure", Some("danger")),
    ("github.check_run.completed", "failure", Some("danger")),
    ("github.check_run.completed", "success", Some("good")),
    ("github.pull_request.closed", "Merged", Some("good")),
    ("github.pull_request.opened", "Opened", None),
    ("gitlab.pipeline", "success", Some("good")),
    ("gitlab.pipeline", "failed", Some("danger")),
    ("alertmanager.firing", "FIRING", Some("danger")),
    ("alertmanager.resolved", "RESOLVED", Some("good")),
    ("grafana.firing", "", Some("danger")),
    ("grafana.resolved", "", Some("good")),
    ("pagerduty.incident.triggered", "Triggered", Some("danger")),
    ("pagerduty.incident.resolved", "Resolved", Some("good")),
    ("sentry.issue.created", "New issue", Some("danger")),
    ("sentry.issue.resolved", "Resolved", Some("good")),
    (
        "stripe.invoice.payment_failed",
        "Payment failed",
        Some("danger"),
    ),
    ("hubspot.", "closed won", Some("good")),
    ("hubspot.", "HubSpot deal.creation", None),
    ("buildkite.build.finished.failed", "failed", Some("danger")),
    ("circleci.workflow-completed", "success", Some("good")),
    (
        "datadog.metric_alert_monitor.triggered",
        "Triggered",
        Some("danger"),
    ),
];

#[tokio::test]
async fn every_payload_of_every_kind_is_a_card_roam_accepts_coloured_by_outcome() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config_with(&fake.url, &dir.path().join("t.db"), "card")).await;
    // (event, body) of every message.
    let mut seen: Vec<(String, Value)> = Vec::new();
    for c in CASES {
        let body = fixture(c.fixture);
        let mut hdrs = headers(c.signer, secret_of(c.source), &body, now());
        hdrs.extend(
            c.extra_headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let r = post(&app, c.source, &body, &hdrs).await;
        assert_eq!(r.status(), 202, "{}", c.fixture);
        let n = seen.len() + 1;
        wait_for(c.fixture, Duration::from_secs(10), || {
            fake.delivered().len() >= n
        })
        .await;
        seen.push((c.event.to_string(), fake.delivered()[n - 1].body.clone()));
    }
    for (source, body, signer, extra, event, status, messages, _) in written_cases() {
        let secret = if source == "sf" {
            ""
        } else {
            secret_of(source)
        };
        let mut hdrs = headers(signer, secret, &body, now());
        hdrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let r = post(&app, source, &body, &hdrs).await;
        assert_eq!(r.status(), status, "{source} {event}");
        let n = seen.len() + messages;
        wait_for(event, Duration::from_secs(10), || {
            fake.delivered().len() >= n
        })
        .await;
        let delivered = fake.delivered();
        for d in &delivered[seen.len()..n] {
            seen.push((event.to_string(), d.body.clone()));
        }
    }
    let mut checked = 0;
    for (event, body) in &seen {
        let text = crate::blockkit::readable(body);
        assert!(body.get("blocks").is_some(), "{event}: not a card: {body}");
        assert!(
            !text.contains("template failed"),
            "{event} fell back:\n{text}"
        );
        let (header, colour) = header_and_colour(body);
        assert!(!header.is_empty(), "{event}: no header: {body}");
        for (e, word, want) in COLOURS {
            let event_matches = event == e || (e.ends_with('.') && event.starts_with(e));
            if event_matches && header.contains(word) {
                assert_eq!(colour.as_deref(), *want, "{event} {header:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "colours checked for {checked} messages");
    // Every request passed the fake's chat.json schema and Block Kit rules (a refused
    // one would have been answered 400 and recorded here).
    fake.assert_all_valid();
    assert!(fake.recorded().iter().all(|r| r.status == 200));
    app.stop().await;
}
