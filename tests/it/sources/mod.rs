//! Every fixture in tests/fixtures for the implemented kinds, signed the way its sender
//! signs, through the real HTTP path to the fake Roam; and for each signed kind, a wrong
//! secret, a tampered body, a stale timestamp and a missing header are refused.
//!
//! `signing`: how each sender signs; `cases`: the fixtures of shared payloads and what
//! each must post; `written`: the payloads this repository wrote, batches and SOAP.

mod cases;
mod signing;
mod written;

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
pub(crate) use cases::CASES;
pub(crate) use signing::{HUBSPOT_URL, Signer, headers, now};
use written::data;
pub(crate) use written::written_cases;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const SOURCES: &str = r#"
[[sources]]
name = "gl"
kind = "gitlab"
secret = "gitlab-token"

[[sources]]
name = "gl-signed"
kind = "gitlab"
auth = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[sources]]
name = "am"
kind = "alertmanager"
secret = "am:pw"

[[sources]]
name = "graf"
kind = "grafana"
auth = "hmac-sha256"
secret = "grafana-secret"

[[sources]]
name = "graf-ts"
kind = "grafana"
auth = "hmac-sha256"
secret = "grafana-secret"
timestamp_header = "X-Grafana-Alerting-Timestamp"

[[sources]]
name = "pd"
kind = "pagerduty"
secret = "pd-secret"

[[sources]]
name = "sentry"
kind = "sentry"
secret = "sentry-secret"

[[sources]]
name = "circle"
kind = "circleci"
secret = "circle-secret"

[[sources]]
name = "stripe"
kind = "stripe"
secret = "whsec_stripe_test_secret"

[[sources]]
name = "jenkins"
kind = "jenkins"
secret = "ci:jenkins-pw"

[[sources]]
name = "sw"
kind = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[sources]]
name = "bk"
kind = "buildkite"
secret = "bk-token"

[[sources]]
name = "bk-signed"
kind = "buildkite"
auth = "hmac-sha256"
secret = "bk-token"

[[sources]]
name = "dd"
kind = "datadog"
secret = "dd:dd-pw"

[[sources]]
name = "pipedrive"
kind = "pipedrive"
secret = "pd-user:pd-pw"

[[sources]]
name = "hubspot"
kind = "hubspot"
secret = "hubspot-client-secret"
public_url = "https://hooks.example.com/hooks/hubspot"

[[sources]]
name = "sf"
kind = "salesforce"
organization_id = "012345678901234"

[[sources]]
name = "slack"
kind = "slack"
secret = "T0001-B0001-slacktoken"

[[routes]]
name = "everything"
source = "gl"
to = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"
"#;

pub(crate) fn secret_of(source: &str) -> &'static str {
    match source {
        "github" => SECRET,
        "gl" => "gitlab-token",
        "gl-signed" | "sw" => WHSEC,
        "am" => "am:pw",
        "graf" | "graf-ts" => "grafana-secret",
        "pd" => "pd-secret",
        "sentry" => "sentry-secret",
        "circle" => "circle-secret",
        "stripe" => "whsec_stripe_test_secret",
        "jenkins" => "ci:jenkins-pw",
        "bk" | "bk-signed" => "bk-token",
        "dd" => "dd:dd-pw",
        "pipedrive" => "pd-user:pd-pw",
        "hubspot" => "hubspot-client-secret",
        other => panic!("no secret for {other}"),
    }
}

/// One route per source, all to CHAT_A, so each fixture produces one message.
/// Every source with a route to CHAT_A; the routes send text, as the text templates'
/// expectations in `cases` read (the cards of the same payloads: `cards.rs`).
fn config(roam: &str, db: &std::path::Path) -> String {
    config_with(roam, db, "text")
}

pub(crate) fn config_with(roam: &str, db: &std::path::Path, format: &str) -> String {
    let mut routes = String::new();
    for s in [
        "slack",
        "bk",
        "bk-signed",
        "dd",
        "pipedrive",
        "hubspot",
        "sf",
        "gl-signed",
        "am",
        "graf",
        "graf-ts",
        "pd",
        "sentry",
        "circle",
        "stripe",
        "jenkins",
        "sw",
    ] {
        routes.push_str(&format!(
            "\n[[routes]]\nname = \"{s}\"\nsource = \"{s}\"\nto = \"{CHAT_A}\"\n"
        ));
    }
    routes.push_str(&format!(
        "\n[[routes]]\nname = \"gh\"\nsource = \"github\"\nto = \"{CHAT_A}\"\n"
    ));
    test_config(
        roam,
        db,
        &format!("{SOURCES}{routes}\n[route_defaults]\nformat = \"{format}\"\n"),
    )
}

pub(crate) async fn post(
    app: &TestApp,
    source: &str,
    body: &[u8],
    hdrs: &[(String, String)],
) -> reqwest::Response {
    let mut rb = app
        .http
        .post(app.url(&format!("/hooks/{source}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in hdrs {
        rb = rb.header(k.as_str(), v.as_str());
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn every_fixture_is_verified_routed_and_rendered() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&fake.url, &dir.path().join("t.db"))).await;
    let mut sent = 0;
    for c in CASES {
        let (body, hdrs) = c.request();
        let r = post(&app, c.source, &body, &hdrs).await;
        let status = r.status();
        let reply: Value = r.json().await.unwrap();
        assert_eq!(status, 202, "{}: {reply}", c.fixture);
        assert_eq!(reply["event"], c.event, "{}", c.fixture);
        // An alert notification is one message per alert.
        let n = sent + reply["messages"].as_u64().unwrap() as usize;
        wait_for(c.fixture, Duration::from_secs(10), || {
            fake.delivered().len() >= n
        })
        .await;
        let text = fake.texts()[sent..n].join("\n");
        sent = n;
        for line in c.expect {
            assert!(
                text.contains(line),
                "{}: expected {line:?} in:\n{text}",
                c.fixture
            );
        }
        assert!(
            !text.contains("template failed"),
            "{}: fell back:\n{text}",
            c.fixture
        );
    }
    fake.assert_all_valid();
    app.stop().await;
}

/// For each signed kind: wrong secret, tampered body, missing header, stale timestamp.
#[tokio::test]
async fn signed_kinds_refuse_wrong_secret_tampering_missing_headers_and_stale_timestamps() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&fake.url, &dir.path().join("t.db"))).await;
    let kinds: &[(&str, Signer, &str, bool)] = &[
        ("github", Signer::GitHub, "github/push.json", false),
        ("gl", Signer::GitLabToken, "gitlab/push.json", false),
        ("gl-signed", Signer::GitLabSigned, "gitlab/push.json", true),
        (
            "am",
            Signer::Basic,
            "alertmanager/firing.am-0.21.wire.json",
            false,
        ),
        (
            "graf",
            Signer::GrafanaHmac,
            "grafana/webhook.firing.docs.json",
            false,
        ),
        (
            "graf-ts",
            Signer::GrafanaHmacTs,
            "grafana/webhook.firing.docs.json",
            true,
        ),
        (
            "pd",
            Signer::PagerDuty,
            "pagerduty/incident.triggered.zulip.json",
            false,
        ),
        (
            "sentry",
            Signer::Sentry,
            "sentry/issue.created.zulip.json",
            false,
        ),
        (
            "circle",
            Signer::CircleCi,
            "circleci/workflow-completed.github.zulip.json",
            false,
        ),
        (
            "stripe",
            Signer::Stripe,
            "stripe/invoice.payment_failed.zulip.json",
            true,
        ),
        (
            "jenkins",
            Signer::Basic,
            "jenkins/notification-plugin.help-example.json",
            false,
        ),
        ("sw", Signer::StandardWebhooks, "gitlab/release.json", true),
        ("bk", Signer::BuildkiteToken, "gitlab/release.json", false),
        (
            "bk-signed",
            Signer::BuildkiteSigned,
            "gitlab/release.json",
            true,
        ),
        ("dd", Signer::Basic, "gitlab/release.json", false),
        ("pipedrive", Signer::Basic, "gitlab/release.json", false),
        ("hubspot", Signer::HubSpot, "gitlab/release.json", true),
    ];
    for &(source, signer, fx, timestamped) in kinds {
        let body = fixture(fx);
        let wrong = match signer {
            Signer::GitLabSigned | Signer::StandardWebhooks => "whsec_dGhpcyBpcyBub3QgdGhlIGtleQ==",
            Signer::Basic => "am:wrong",
            _ => "not-the-secret",
        };
        // Wrong secret.
        let r = post(&app, source, &body, &headers(signer, wrong, &body, now())).await;
        assert_eq!(r.status(), 401, "{source}: wrong secret accepted");
        let j: Value = r.json().await.unwrap();
        assert_eq!(j["error"], "unauthorized", "{source}");
        // Tampered body (signed the original, sent one byte changed).
        let good = headers(signer, secret_of(source), &body, now());
        let mut tampered = body.clone();
        let last = tampered
            .iter()
            .rposition(|b| b.is_ascii_alphanumeric())
            .unwrap();
        tampered[last] ^= 0x01;
        let r = post(&app, source, &tampered, &good).await;
        let token_only = matches!(
            signer,
            Signer::GitLabToken | Signer::Basic | Signer::BuildkiteToken
        );
        if token_only {
            // A shared token does not cover the body; nothing to tamper with.
            assert_ne!(r.status(), 401, "{source}");
        } else {
            assert_eq!(r.status(), 401, "{source}: tampered body accepted");
        }
        // Missing authentication header(s).
        let stripped: Vec<(String, String)> = good
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                !(k.contains("signature")
                    || k == "authorization"
                    || k == "x-gitlab-token"
                    || k == "x-buildkite-token")
            })
            .cloned()
            .collect();
        let r = post(&app, source, &body, &stripped).await;
        assert_eq!(r.status(), 401, "{source}: missing header accepted");
        let j: Value = r.json().await.unwrap();
        assert!(
            j["message"].as_str().unwrap().contains("missing"),
            "{source}: {j}"
        );
        // Stale timestamp, correctly signed.
        if timestamped {
            let r = post(
                &app,
                source,
                &body,
                &headers(signer, secret_of(source), &body, now() - 3600),
            )
            .await;
            assert_eq!(r.status(), 401, "{source}: stale timestamp accepted");
            let j: Value = r.json().await.unwrap();
            assert!(
                j["message"].as_str().unwrap().contains("replay window"),
                "{source}: {j}"
            );
        }
    }
    // Nothing refused reached the outbox (only the token-only tampered bodies were accepted).
    let ready = app.readyz().await;
    assert!(
        ready["webhooks"]["unauthorized"].as_u64().unwrap() >= 30,
        "{ready}"
    );
    app.stop().await;
}

#[tokio::test]
async fn slack_format_bodies_are_converted_and_answered_ok() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&fake.url, &dir.path().join("t.db"))).await;
    let cases: &[(&str, &[&str])] = &[
        ("slack-incoming/text.zulip.json", &["Hello, world."]),
        (
            "slack-incoming/blocks.zulip.json",
            &[
                "Danny Torrence left the following review for your property:",
                "[Overlook Hotel](https://example.com)",
                "**Average Rating**\n1.0",
            ],
        ),
        (
            "slack-incoming/attachment_fields.zulip.json",
            &[
                "Build bla bla succeeded\n**Requested by**: Some user\n**Duration**: 00:02:03",
                "**Title without value**\nValue without title",
            ],
        ),
    ];
    for (n, (fx, expect)) in cases.iter().enumerate() {
        let r = post(&app, "slack/T0001-B0001-slacktoken", &fixture(fx), &[]).await;
        assert_eq!(r.status(), 200, "{fx}");
        assert_eq!(
            r.text().await.unwrap(),
            "ok",
            "Slack senders expect the body `ok`"
        );
        wait_for(fx, Duration::from_secs(10), || fake.delivered().len() > n).await;
        let text = fake.texts()[n].clone();
        for e in *expect {
            assert!(text.contains(e), "{fx}: expected {e:?} in:\n{text}");
        }
    }
    let body = fixture("slack-incoming/text.zulip.json");
    assert_eq!(
        post(&app, "slack/wrong-token", &body, &[]).await.status(),
        401
    );
    assert_eq!(post(&app, "slack", &body, &[]).await.status(), 401);
    fake.assert_all_valid();
    app.stop().await;
}

/// GitHub fixtures, the kinds without shared fixtures (payloads in tests/data, written
/// from the senders' documented schemas), HubSpot batches and Salesforce SOAP.
#[tokio::test]
async fn github_fixtures_written_payloads_batches_and_soap() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&fake.url, &dir.path().join("t.db"))).await;
    let mut expected_messages = 0;
    let cases = written_cases();
    for (source, body, signer, extra, event, status, messages, expect) in cases {
        let mut hdrs = headers(
            signer,
            if source == "sf" {
                ""
            } else {
                secret_of(source)
            },
            &body,
            now(),
        );
        hdrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let r = post(&app, source, &body, &hdrs).await;
        assert_eq!(r.status(), status, "{source} {event}");
        let reply = r.text().await.unwrap();
        if source == "sf" {
            // Exactly the Ack body Salesforce documents (shared fixture), so it stops retrying.
            let ack = String::from_utf8(fixture(
                "salesforce/outbound-message.ack-response.aspnet.xml",
            ))
            .unwrap();
            assert_eq!(reply.trim(), ack.trim(), "Salesforce needs its SOAP Ack");
        } else {
            let j: Value = serde_json::from_str(&reply).unwrap();
            assert_eq!(j["event"], event, "{reply}");
        }
        expected_messages += messages;
        wait_for(event, Duration::from_secs(10), || {
            fake.delivered().len() >= expected_messages
        })
        .await;
        if messages > 0 {
            let text = fake.texts().last().cloned().unwrap();
            assert!(
                text.contains(expect),
                "{source} {event}: expected {expect:?} in:\n{text}"
            );
            assert!(!text.contains("template failed"), "{text}");
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fake.delivered().len(),
        expected_messages,
        "ping posted nothing, batches posted one message per event"
    );
    // The same HubSpot batch again: both events are duplicates.
    let body = data("hubspot.events.json");
    let r = post(
        &app,
        "hubspot",
        &body,
        &headers(Signer::HubSpot, secret_of("hubspot"), &body, now()),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Salesforce from another organization is refused.
    let other = String::from_utf8(fixture("salesforce/outbound-message.contact.aspnet.xml"))
        .unwrap()
        .replace("012345678901234", "00D000000000001");
    assert_eq!(post(&app, "sf", other.as_bytes(), &[]).await.status(), 401);
    fake.assert_all_valid();
    app.stop().await;
}
