//! What the real binary writes to its log: plain text off a terminal, JSON lines that name
//! the delivery and route, and never a configured secret, at any level.

use std::time::{Duration, Instant};

use super::{routes_by_event, write_config};
use crate::helpers::*;

/// Logs read through `docker logs`, journald or a file: plain text, no colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &fake, ROUTE_ALL_GITHUB);
    let port = free_port();
    let log = dir.path().join("daemon.log");
    let d = Daemon::start(&config, port, &log, &[]).await;
    assert_eq!(
        d.github("push", "plain-1", &fixture("github/push.json"))
            .await,
        202
    );
    wait_for("the accepted line", Duration::from_secs(10), || {
        d.log().contains("accepted")
    })
    .await;
    let log = d.log();
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file:\n{log:?}"
    );
    assert!(log.contains("delivery_id=plain-1"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_from_the_environment_keeps_its_digits_and_never_appears_in_logs() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("db/x.db"), ROUTE_ALL_GITHUB)
        .replace(&format!("api_key = \"{KEY}\"\n"), "");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml).unwrap();
    let port = free_port();
    let log = dir.path().join("daemon.log");
    let d = Daemon::start(
        &config,
        port,
        &log,
        &[("ROAM_NOTIFY_ROAM_API_KEY", "0123456789")],
    )
    .await;
    assert_eq!(
        d.github("push", "env-1", &fixture("github/push.json"))
            .await,
        202
    );
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    assert_eq!(
        fake.delivered()[0].authorization.as_deref(),
        Some("Bearer 0123456789")
    );
    let log = d.log();
    d.kill9();
    assert!(
        !log.contains("0123456789"),
        "API key leaked into the log:\n{log}"
    );
    assert!(!log.contains(SECRET), "webhook secret leaked into the log");
}

/// A full run at debug level with every kind of secret configured (some from the
/// environment and a file), accepted and refused requests: no secret appears in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_configured_secret_appears_in_a_debug_log() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file_secret = dir.path().join("gitlab-token");
    std::fs::write(&file_secret, "gl-file-secret-5150\n").unwrap();
    let secrets = [
        "gl-file-secret-5150",
        "am-password-7781",
        "pd-secret-3392",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "slack-url-token-0427",
        "env-bearer-token-9911",
        "whsec_cm9hbS13ZWJob29rLXNlY3JldC0xMjM0",
        "cm9hbS13ZWJob29rLXNlY3JldC0xMjM0",
        "admin-token-6620-fedcba",
        KEY,
        SECRET,
    ];
    let extra = format!(
        r#"
[log]
level = "debug"
[[sources]]
name = "gl"
kind = "gitlab"
secret = "${{file:{}}}"
[[sources]]
name = "am"
kind = "alertmanager"
secret = "am:am-password-7781"
[[sources]]
name = "pd"
kind = "pagerduty"
secret = "pd-secret-3392"
[[sources]]
name = "sw"
kind = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[sources]]
name = "slack"
kind = "slack"
secret = "slack-url-token-0427"
[[sources]]
name = "deploys"
kind = "generic"
auth = "bearer"
secret = "${{env:ROAM_NOTIFY_TEST_BEARER}}"
[[sources]]
name = "roam"
kind = "roam"
secret = "whsec_cm9hbS13ZWJob29rLXNlY3JldC0xMjM0"
{ROUTE_ALL_GITHUB}
"#,
        file_secret.display()
    );
    let config = write_config(dir.path(), &fake, &extra);
    let port = free_port();
    let admin_port = free_port();
    let log = dir.path().join("daemon.log");
    let d = Daemon::start(
        &config,
        port,
        &log,
        &[
            ("ROAM_NOTIFY_TEST_BEARER", "env-bearer-token-9911"),
            (
                "ROAM_NOTIFY__SERVER__ADMIN_TOKEN",
                "admin-token-6620-fedcba",
            ),
            (
                "ROAM_NOTIFY__SERVER__ADMIN_LISTEN",
                &format!("127.0.0.1:{admin_port}"),
            ),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    // Accepted and refused traffic for each source.
    assert_eq!(
        d.github("push", "s1", &fixture("github/push.json")).await,
        202
    );
    let body = fixture("gitlab/push.json");
    for token in ["gl-file-secret-5150", "wrong"] {
        http.post(url("/hooks/gl"))
            .header("X-Gitlab-Token", token)
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }
    for auth in [
        "Basic YW06YW0tcGFzc3dvcmQtNzc4MQ==",
        "Bearer am-password-7781x",
    ] {
        http.post(url("/hooks/am"))
            .header("Authorization", auth)
            .body(fixture("alertmanager/firing.am-0.21.wire.json"))
            .send()
            .await
            .unwrap();
    }
    http.post(url("/hooks/pd"))
        .header("X-PagerDuty-Signature", "v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    http.post(url("/hooks/sw"))
        .header("webhook-id", "x")
        .header("webhook-timestamp", "1")
        .header("webhook-signature", "v1,AA==")
        .body("{}")
        .send()
        .await
        .unwrap();
    http.post(url("/hooks/roam"))
        .header("webhook-id", "y")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,AA==")
        .body("{\"id\":\"t\",\"meetingId\":\"m\",\"end\":\"x\"}")
        .send()
        .await
        .unwrap();
    http.post(url("/hooks/slack/slack-url-token-0427"))
        .body(fixture("slack-incoming/text.zulip.json"))
        .send()
        .await
        .unwrap();
    http.post(url("/hooks/slack/slack-url-token-0427x"))
        .body("{}")
        .send()
        .await
        .unwrap();
    http.post(url("/hooks/deploys"))
        .bearer_auth("env-bearer-token-9911")
        .body("{\"x\":1}")
        .send()
        .await
        .unwrap();
    http.post(url("/hooks/deploys"))
        .bearer_auth("env-bearer-token-991")
        .body("{\"x\":1}")
        .send()
        .await
        .unwrap();
    // The admin API with a wrong and the right token, and a state change through it.
    let admin = |p: &str| format!("http://127.0.0.1:{admin_port}{p}");
    for token in ["admin-token-6620-fedcbax", "admin-token-6620-fedcba"] {
        let r = http
            .post(admin("/api/silences"))
            .bearer_auth(token)
            .json(&serde_json::json!({"matchers": ["a=b"], "duration": "1m", "comment": "c", "created_by": "ops-alice"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), if token.ends_with('x') { 401 } else { 201 });
    }
    wait_for("the github delivery", Duration::from_secs(10), || {
        !fake.delivered().is_empty()
    })
    .await;
    let text = d.log();
    d.kill9();
    assert!(text.contains("DEBUG"), "debug logging was on");
    assert!(
        text.contains("admin request refused") && text.contains("/api/silences"),
        "the refused admin request is logged:\n{text}"
    );
    assert!(
        text.contains("silence added by the admin API") && text.contains("ops-alice"),
        "who added the silence is logged:\n{text}"
    );
    for s in secrets {
        assert!(
            !text.contains(s),
            "secret {s:?} leaked into the log:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_delivery_id_and_route_on_every_line_about_an_event() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &fake, &routes_by_event());
    let log = dir.path().join("daemon.log");
    let d = Daemon::start(
        &config,
        free_port(),
        &log,
        &[("ROAM_NOTIFY__LOG__FORMAT", "json")],
    )
    .await;
    assert_eq!(
        d.github("push", "json-log-1", &fixture("github/push.json"))
            .await,
        202
    );
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let start = Instant::now();
    while !d.log().contains("\"delivered\"") {
        assert!(start.elapsed() < Duration::from_secs(5), "{}", d.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines: Vec<serde_json::Value> = d
        .log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let about: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l.to_string().contains("json-log-1"))
        .collect();
    let accepted = about
        .iter()
        .find(|l| l["fields"]["message"] == "accepted")
        .expect("an accepted line");
    assert_eq!(accepted["fields"]["delivery_id"], "json-log-1");
    assert_eq!(accepted["fields"]["routes"], "[\"pushes\"]");
    let delivered = lines
        .iter()
        .find(|l| l["fields"]["message"] == "delivered")
        .expect("a delivered line");
    assert_eq!(
        delivered["span"]["delivery_id"], "json-log-1",
        "{delivered}"
    );
    assert_eq!(delivered["span"]["route"], "pushes");
    assert_eq!(delivered["span"]["source"], "github");
    d.sigterm();
}
