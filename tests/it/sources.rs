//! Every fixture in tests/fixtures for the implemented kinds, signed the way its sender
//! signs, through the real HTTP path to the fake Roam; and for each signed kind, a wrong
//! secret, a tampered body, a stale timestamp and a missing header are refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::helpers::*;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(crate) const HUBSPOT_URL: &str = "https://hooks.example.com/hooks/hubspot";

/// A payload the repository wrote (tests/data), for senders tests/fixtures lacks.
fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How a sender authenticates a body; `ts` lets tests send a stale timestamp.
#[derive(Clone, Copy)]
pub(crate) enum Signer {
    GitHub,
    GitLabToken,
    GitLabSigned,
    Basic,
    GrafanaHmac,
    GrafanaHmacTs,
    PagerDuty,
    Sentry,
    CircleCi,
    Stripe,
    StandardWebhooks,
    BuildkiteToken,
    BuildkiteSigned,
    HubSpot,
    Nothing,
}

pub(crate) fn headers(signer: Signer, secret: &str, body: &[u8], ts: u64) -> Vec<(String, String)> {
    let h = |k: &str, v: String| (k.to_string(), v);
    match signer {
        Signer::GitHub => vec![h(
            "X-Hub-Signature-256",
            format!("sha256={}", hmac_hex(secret.as_bytes(), &[body])),
        )],
        Signer::GitLabToken => vec![h("X-Gitlab-Token", secret.to_string())],
        Signer::GitLabSigned | Signer::StandardWebhooks => {
            let id = format!("msg_{}", hmac_hex(b"id", &[body]).get(..12).unwrap());
            let t = ts.to_string();
            let sig = sign_standard_webhooks(secret, &id, &t, body);
            vec![
                h("webhook-id", id),
                h("webhook-timestamp", t),
                h("webhook-signature", sig),
            ]
        }
        Signer::Basic => vec![h("Authorization", format!("Basic {}", B64.encode(secret)))],
        Signer::GrafanaHmac => vec![h(
            "X-Grafana-Alerting-Signature",
            hmac_hex(secret.as_bytes(), &[body]),
        )],
        Signer::GrafanaHmacTs => {
            let t = ts.to_string();
            vec![
                h(
                    "X-Grafana-Alerting-Signature",
                    hmac_hex(secret.as_bytes(), &[t.as_bytes(), b":", body]),
                ),
                h("X-Grafana-Alerting-Timestamp", t),
            ]
        }
        Signer::PagerDuty => vec![
            // Two signatures, as during a secret rotation: one with an old secret.
            h(
                "X-PagerDuty-Signature",
                format!(
                    "v1={},v1={}",
                    hmac_hex(b"old-secret", &[body]),
                    hmac_hex(secret.as_bytes(), &[body])
                ),
            ),
            h(
                "X-Webhook-Id",
                format!("wh-{}", &hmac_hex(b"id", &[body])[..10]),
            ),
        ],
        Signer::Sentry => vec![
            h(
                "Sentry-Hook-Signature",
                hmac_hex(secret.as_bytes(), &[body]),
            ),
            h("Sentry-Hook-Resource", "issue".into()),
            h("Sentry-Hook-Timestamp", ts.to_string()),
        ],
        Signer::CircleCi => vec![
            h(
                "circleci-signature",
                format!("v1={}", hmac_hex(secret.as_bytes(), &[body])),
            ),
            h("Circleci-Event-Type", "workflow-completed".into()),
        ],
        Signer::BuildkiteToken => vec![
            h("X-Buildkite-Token", secret.to_string()),
            h("X-Buildkite-Event", "build.finished".into()),
        ],
        Signer::BuildkiteSigned => {
            let t = ts.to_string();
            vec![
                h(
                    "X-Buildkite-Signature",
                    format!(
                        "timestamp={t},signature={}",
                        hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", body])
                    ),
                ),
                h("X-Buildkite-Event", "build.finished".into()),
            ]
        }
        Signer::HubSpot => {
            let t = (ts * 1000).to_string();
            let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            for p in [
                b"POST".as_slice(),
                HUBSPOT_URL.as_bytes(),
                body,
                t.as_bytes(),
            ] {
                m.update(p);
            }
            vec![
                h(
                    "X-HubSpot-Signature-v3",
                    B64.encode(m.finalize().into_bytes()),
                ),
                h("X-HubSpot-Request-Timestamp", t),
            ]
        }
        Signer::Nothing => vec![],
        Signer::Stripe => {
            let t = ts.to_string();
            vec![h(
                "Stripe-Signature",
                format!(
                    "t={t},v1={}",
                    hmac_hex(secret.as_bytes(), &[t.as_bytes(), b".", body])
                ),
            )]
        }
    }
}

pub(crate) struct Case {
    pub fixture: &'static str,
    pub source: &'static str,
    pub signer: Signer,
    pub extra_headers: &'static [(&'static str, &'static str)],
    pub event: &'static str,
    /// Lines the posted message must contain (as a user would read it in Roam).
    pub expect: &'static [&'static str],
}

impl Case {
    /// The fixture's bytes and the headers its sender would send with them, signed now.
    pub(crate) fn request(&self) -> (Vec<u8>, Vec<(String, String)>) {
        let body = fixture(self.fixture);
        let mut hdrs = headers(self.signer, secret_of(self.source), &body, now());
        hdrs.extend(
            self.extra_headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        (body, hdrs)
    }
}

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
/// expectations below read (the cards of the same payloads: `cards.rs`).
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

pub(crate) const CASES: &[Case] = &[
    Case {
        fixture: "gitlab/push.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[("X-Gitlab-Event", "Push Hook")],
        event: "gitlab.push",
        expect: &[
            "⬆️ **John Smith** pushed 4 commits to **master** in [mike/diaspora](http://example.com/mike/diaspora)",
            "fixed readme · GitLab dev user",
        ],
    },
    Case {
        fixture: "gitlab/tag_push.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.tag_push",
        expect: &[
            "🏷️ **John Smith** pushed tag **v1.0.0** in [jsmith/example](http://example.com/jsmith/example)",
        ],
    },
    Case {
        fixture: "gitlab/merge_request.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.merge_request.open",
        expect: &[
            "🟢 Opened merge request [!1 MS-Viewport](http://example.com/diaspora/merge\\_requests/1) in **gitlabhq/gitlab-test**",
            "by User1 · ms-viewport → master",
        ],
    },
    Case {
        fixture: "gitlab/pipeline.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.pipeline.success",
        expect: &[
            "✅ Pipeline [#31](http://192.168.64.1:3005/gitlab-org/gitlab-test/-/pipelines/31) **success** on **master**",
            "after 63s",
        ],
    },
    Case {
        fixture: "gitlab/job.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.job.success",
        expect: &["✅ Job **auto\\_deploy:start** (coordinated:tag) **success** on **main**"],
    },
    Case {
        fixture: "gitlab/deployment.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.deployment.success",
        expect: &["✅ Deployment to **staging** **success** in [root/test-deployment-webhooks]"],
    },
    Case {
        fixture: "gitlab/release.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.release.create",
        expect: &[
            "📦 Release **[1.0.0](http://example.com/exm-namespace/example-project/-/releases/1.0.0)** (1.0.0) published",
        ],
    },
    Case {
        fixture: "gitlab/issue.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.issue.open",
        expect: &[
            "📝 **Administrator** opened issue [#23 New API: create/update/delete file](http://example.com/diaspora/issues/23)",
        ],
    },
    Case {
        fixture: "gitlab/note_merge_request.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.note.mergerequest",
        expect: &[
            "💬 **Administrator** commented on merge request !1",
            "> This MR needs work.",
        ],
    },
    Case {
        fixture: "gitlab/pipeline.json",
        source: "gl-signed",
        signer: Signer::GitLabSigned,
        extra_headers: &[],
        event: "gitlab.pipeline.success",
        expect: &["✅ Pipeline [#31]"],
    },
    Case {
        fixture: "alertmanager/firing.am-0.21.wire.json",
        source: "am",
        signer: Signer::Basic,
        extra_headers: &[],
        event: "alertmanager.firing",
        expect: &[
            "🔥 **FIRING** **DemoAlert** · 1 firing, 0 resolved · severity critical",
            "• ❌ DemoAlert: This is a demo",
            "[Open Alertmanager](http://n3:9093)",
        ],
    },
    Case {
        fixture: "alertmanager/firing.two-alerts.zulip.json",
        source: "am",
        signer: Signer::Basic,
        extra_headers: &[],
        event: "alertmanager.firing",
        // One message per alert.
        expect: &["🔥 **FIRING** **High CPU Temperature** · 1 firing, 0 resolved"],
    },
    Case {
        fixture: "grafana/webhook.firing.docs.json",
        source: "graf",
        signer: Signer::GrafanaHmac,
        extra_headers: &[],
        event: "grafana.firing",
        expect: &[
            "🔥 **\\[FIRING:2\\]  (blue)** · 1 firing, 0 resolved",
            "• ❌ High memory usage: This alert was triggered for zone us-1",
        ],
    },
    Case {
        fixture: "grafana/webhook.resolved.v9.zulip.json",
        source: "graf-ts",
        signer: Signer::GrafanaHmacTs,
        extra_headers: &[],
        event: "grafana.resolved",
        expect: &["✅ **\\[RESOLVED\\]  (Test alert true)** · 0 firing, 1 resolved"],
    },
    Case {
        fixture: "pagerduty/incident.triggered.zulip.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.incident.triggered",
        expect: &[
            "🚨 Incident #9 [Test Incident 3](https://pig208.pagerduty.com/incidents/PFQZPSY) **triggered** · high urgency",
            "Assigned to PIG 208",
        ],
    },
    Case {
        fixture: "pagerduty/incident.resolved.zulip.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.incident.resolved",
        expect: &[
            "✅ Incident #6 [Test Incident](https://pig208.pagerduty.com/incidents/PCPZE64) **resolved**",
        ],
    },
    Case {
        fixture: "pagerduty/incident.priority_updated.docs.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.incident.priority_updated",
        expect: &[
            "Incident #2 [A little bump in the road](https://acme.pagerduty.com/incidents/PGR0VU2)",
            "· P1",
        ],
    },
    Case {
        fixture: "pagerduty/service.updated.docs.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.service.updated",
        expect: &[
            "🔔 **service.updated**: [testing service updates](https://acme.pagerduty.com/services/PF9KMXH)",
        ],
    },
    Case {
        fixture: "sentry/issue.created.zulip.json",
        source: "sentry",
        signer: Signer::Sentry,
        extra_headers: &[("Request-ID", "sentry-req-1")],
        event: "sentry.issue.created",
        expect: &[
            "🐞 New issue **ZULIP-INTEGRATION-TESTING-2** Exception: Custom exception! in **zulip-integration-testing**",
        ],
    },
    Case {
        fixture: "sentry/issue.resolved.zulip.json",
        source: "sentry",
        signer: Signer::Sentry,
        extra_headers: &[("Request-ID", "sentry-req-2")],
        event: "sentry.issue.resolved",
        expect: &["✅ Resolved", "by Hemanth V. Alluri"],
    },
    Case {
        fixture: "circleci/workflow-completed.github.zulip.json",
        source: "circle",
        signer: Signer::CircleCi,
        extra_headers: &[],
        event: "circleci.workflow-completed.success",
        expect: &[
            "✅ Workflow **[sample](https://app.circleci.com/pipelines/github/zulip-testing/circleci-webhook-test/4/workflows/7381218b-d04c-4aa3-b8b8-8c00a9319d1f)** **success**",
            ".circleci: Update Webhook URL. · Hari Prashant Bhimaraju",
        ],
    },
    Case {
        fixture: "stripe/invoice.payment_failed.zulip.json",
        source: "stripe",
        signer: Signer::Stripe,
        extra_headers: &[],
        event: "stripe.invoice.payment_failed",
        expect: &["🧾 Invoice in\\_00000000000000 · **invoice.payment\\_failed** · 0.00 AUD"],
    },
    Case {
        fixture: "stripe/customer.source.created.aspnet.json",
        source: "stripe",
        signer: Signer::Stripe,
        extra_headers: &[],
        event: "stripe.customer.source.created",
        expect: &["💳 **customer.source.created**"],
    },
    Case {
        fixture: "jenkins/notification-plugin.help-example.json",
        source: "jenkins",
        signer: Signer::Basic,
        extra_headers: &[],
        event: "jenkins.started.failed",
        expect: &["❌ Jenkins **JobName** #1 **FAILED**"],
    },
];

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

/// (source, body, signer, extra headers, event, status, messages, text expected in the
/// last message).
pub(crate) type Delivery = (
    &'static str,
    Vec<u8>,
    Signer,
    Vec<(&'static str, &'static str)>,
    &'static str,
    u16,
    usize,
    &'static str,
);

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

/// The cases of `github_fixtures_written_payloads_batches_and_soap`.
pub(crate) fn written_cases() -> Vec<Delivery> {
    vec![
        (
            "github",
            fixture("github/push.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "push")],
            "github.push",
            202,
            1,
            "🗑️ **Codertocat** deleted **simple-tag**",
        ),
        (
            "github",
            fixture("github/push.new-branch.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "push")],
            "github.push",
            202,
            1,
            "pushed 1 commit to **master** (new branch)",
        ),
        (
            "github",
            fixture("github/pull_request.opened.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "pull_request")],
            "github.pull_request.opened",
            202,
            1,
            "🟢 Opened [#2 Update the README with new information.]",
        ),
        (
            "github",
            fixture("github/pull_request.closed.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "pull_request")],
            "github.pull_request.closed",
            202,
            1,
            "⚪ Closed",
        ),
        (
            "github",
            fixture("github/pull_request.closed.merged.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "pull_request")],
            "github.pull_request.closed",
            202,
            1,
            "🟣 Merged [#3 Byao1276 patch 1]",
        ),
        (
            "github",
            fixture("github/workflow_run.completed.success.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "workflow_run")],
            "github.workflow_run.completed",
            202,
            1,
            "✅ Workflow **[run #163]",
        ),
        (
            "github",
            data("github.workflow_run.completed.failure.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "workflow_run")],
            "github.workflow_run.completed",
            202,
            1,
            "❌ Workflow **[CI]",
        ),
        (
            "github",
            fixture("github/workflow_job.completed.failure.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "workflow_job")],
            "github.workflow_job.completed",
            202,
            1,
            "• ❌ Run yarn run format-check",
        ),
        (
            "github",
            fixture("github/check_run.completed.success.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "check_run")],
            "github.check_run.completed",
            202,
            1,
            "✅ Check **[Octocoders-linter]",
        ),
        (
            "github",
            fixture("github/check_run.completed.failure.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "check_run")],
            "github.check_run.completed",
            202,
            1,
            "❌ Check **[Octocoders-linter]",
        ),
        (
            "github",
            fixture("github/release.published.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "release")],
            "github.release.published",
            202,
            1,
            "📦 Release **[0.0.1]",
        ),
        (
            "github",
            fixture("github/issues.opened.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "issues")],
            "github.issues.opened",
            202,
            1,
            "📝 **Codertocat** opened issue [#1 Spelling error in the README file]",
        ),
        (
            "github",
            fixture("github/deployment_status.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "deployment_status")],
            "github.deployment_status.created",
            202,
            1,
            "✅ Deployment to **production** **success**",
        ),
        (
            "github",
            fixture("github/ping.json"),
            Signer::GitHub,
            vec![("X-GitHub-Event", "ping")],
            "github.ping",
            200,
            0,
            "",
        ),
        (
            "circle",
            data("circleci.job-completed.json"),
            Signer::CircleCi,
            vec![],
            "circleci.job-completed.failed",
            202,
            1,
            "❌ Job **test** **failed** in workflow [sample]",
        ),
        (
            "sw",
            fixture("gitlab/release.json"),
            Signer::StandardWebhooks,
            vec![],
            "standard-webhooks.event",
            202,
            1,
            "**standard-webhooks.event** from sw",
        ),
        (
            "am",
            data("alertmanager.resolved.json"),
            Signer::Basic,
            vec![],
            "alertmanager.resolved",
            202,
            2,
            "✅ **RESOLVED** **High CPU Temperature** · 0 firing, 1 resolved",
        ),
        (
            "bk",
            data("buildkite.build.finished.json"),
            Signer::BuildkiteToken,
            vec![],
            "buildkite.build.finished.failed",
            202,
            1,
            "❌ Build [#1204](https://buildkite.com/acme/api/builds/1204) **failed** in **API** on main",
        ),
        (
            "bk-signed",
            data("buildkite.build.finished.json"),
            Signer::BuildkiteSigned,
            vec![("X-Request-Id", "bk-2")],
            "buildkite.build.finished.failed",
            202,
            1,
            "**failed** in **API**",
        ),
        (
            "dd",
            data("datadog.triggered.json"),
            Signer::Basic,
            vec![],
            "datadog.metric_alert_monitor.triggered",
            202,
            1,
            "CPU usage is 93.4% on host web-3",
        ),
        (
            "pipedrive",
            data("pipedrive.deal.change.json"),
            Signer::Basic,
            vec![],
            "pipedrive.deal.change",
            202,
            1,
            "💼 Deal **Acme Corp renewal** updated · 48,000 EUR · open · stage 4 (was 3)",
        ),
        (
            "hubspot",
            data("hubspot.events.json"),
            Signer::HubSpot,
            vec![],
            "hubspot.deal.creation",
            202,
            2,
            "dealstage → **closedwon**",
        ),
        (
            "sf",
            fixture("salesforce/outbound-message.contact.aspnet.xml"),
            Signer::Nothing,
            vec![
                ("content-type", "text/xml; charset=utf-8"),
                ("SOAPAction", "\"\""),
            ],
            "",
            200,
            2,
            "☁️ Salesforce **Contact** Doug Bunting",
        ),
    ]
}
