//! Roam's own webhooks as Roam sends them today: v0 bodies and the v1 envelope, the
//! same event delivered twice under one `webhook-id` (legacy body, then envelope), and
//! v1's `meeting.ended` starting the transcript fetch.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TID: &str = "f9274881-c48f-4838-865d-000000000042";

async fn app(roam: &FakeRoam, dir: &std::path::Path) -> TestApp {
    let extra = format!(
        r#"
[transcripts]
enabled = true
schedule = "0 0 1 1 *"
lookback = "1h"

[[sources]]
name = "roam"
kind = "roam"
secret = "{WHSEC}"

[[routes]]
name = "roam-events"
source = "roam"
to = "{CHAT_A}"
"#
    );
    TestApp::spawn(&test_config(&roam.url, &dir.join("t.db"), &extra)).await
}

async fn deliver(app: &TestApp, id: &str, body: &Value) -> reqwest::Response {
    let body = serde_json::to_vec(body).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    app.http
        .post(app.url("/hooks/roam"))
        .header("webhook-id", id)
        .header("webhook-timestamp", &ts)
        .header(
            "webhook-signature",
            sign_standard_webhooks(WHSEC, id, &ts, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

fn transcript() -> Value {
    let start = chrono::Utc::now() - chrono::Duration::minutes(40);
    json!({
        "id": TID,
        "meetingId": "dde68f39-3eb0-42ef-9873-000000000042",
        "start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "end": (start + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventName": "Pipeline review",
        "participants": [],
        "summary": "Summary of the pipeline review.",
        "actionItems": [],
    })
}

/// A daemon whose first (catch-up) sweep has run, and then a finished meeting in Roam
/// that only a webhook announces.
async fn with_transcript_after_first_sweep() -> (FakeRoam, TestApp, tempfile::TempDir) {
    let roam = FakeRoam::start().await;
    roam.transcript_listing(10, false);
    let dir = tempfile::tempdir().unwrap();
    let app = app(&roam, dir.path()).await;
    app.wait_ready(|r| r["transcripts"]["last_run_ok"] == true)
        .await;
    roam.add_transcript(transcript());
    (roam, app, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_delivered_twice_under_one_webhook_id_posts_once() {
    let (roam, app, _dir) = with_transcript_after_first_sweep().await;
    let t = transcript();
    let metadata = json!({"id": t["id"], "meetingId": t["meetingId"], "start": t["start"], "end": t["end"], "participants": []});
    // The legacy (v0, bare) body, then the v1 envelope, under one webhook-id.
    let first = deliver(&app, "msg_dual_1", &metadata).await;
    assert_eq!(first.status(), 202);
    let envelope = json!({"type": "transcript:saved", "eventId": "msg_dual_1",
        "timestamp": chrono::Utc::now().to_rfc3339(), "apiVersion": "2026-07-07", "data": metadata});
    let second = deliver(&app, "msg_dual_1", &envelope).await;
    assert!(second.status().is_success(), "{}", second.status());
    wait_for("the transcript posted", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    app.wait_ready(|r| r["outbox"]["pending"] == 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(roam.delivered().len(), 1, "posted once");
    assert!(roam.texts()[0].contains("Pipeline review"));
    app.stop().await;
}

#[tokio::test]
async fn a_chat_event_delivered_twice_under_one_webhook_id_posts_once() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&roam, dir.path()).await;
    let message = json!({"chat": "C-295155ae-7df5-4ed5-9ebc-89a170559c81",
        "sender": {"id": "U-0cc74785-e31e-4403-aa5e-0cc7c1897e66", "name": "Alex Chen"},
        "text": "ship it", "timestamp": 1765602474760032i64});
    let mut legacy = message.clone();
    legacy["type"] = json!("message");
    let r = deliver(&app, "msg_dual_2", &legacy).await;
    assert_eq!(r.status(), 202);
    let envelope = json!({"type": "chat.message", "eventId": "msg_dual_2",
        "timestamp": chrono::Utc::now().to_rfc3339(), "apiVersion": "2026-07-07", "data": message});
    let r = deliver(&app, "msg_dual_2", &envelope).await;
    assert_eq!(r.status(), 200);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["status"], "duplicate", "{j}");
    wait_for("one message", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(roam.delivered().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_ended_with_a_transcript_fetches_and_posts_it() {
    let (roam, app, _dir) = with_transcript_after_first_sweep().await;
    let envelope = json!({"type": "meeting.ended", "eventId": "msg_end_1",
        "timestamp": chrono::Utc::now().to_rfc3339(), "apiVersion": "2026-07-07",
        "data": {"meetingId": "dde68f39-3eb0-42ef-9873-000000000042", "transcriptId": TID}});
    let r = deliver(&app, "msg_end_1", &envelope).await;
    assert_eq!(r.status(), 202);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["transcript"], TID, "{j}");
    wait_for("the transcript posted", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    assert!(
        roam.calls("/v0/transcript.info")
            .iter()
            .any(|c| c.body["id"] == TID)
    );
    app.stop().await;
}

/// A config with the roam source at `public_url` and the fake Roam.
fn subscribe_config(roam: &FakeRoam, dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[roam]
base_url = "{}"
[storage]
url = "sqlite://{}"
[[sources]]
name = "roam"
kind = "roam"
secret = "{WHSEC}"
public_url = "https://notify.example.com/hooks/roam"
{extra}"#,
            roam.url,
            dir.join("t.db").display()
        ),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roam_subscribe_and_unsubscribe_from_the_command_line() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = subscribe_config(&roam, dir.path(), "");
    let run = |args: &[&str]| {
        bin()
            .arg("roam")
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .env("ROAM_NOTIFY_ROAM_API_KEY", KEY)
            .output()
            .unwrap()
    };
    // Default URL: the roam source's public_url; the event: transcript.saved.
    let text = stdout_ok(&run(&["subscribe"]));
    let subs = roam.subscriptions();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["url"], "https://notify.example.com/hooks/roam");
    assert_eq!(subs[0]["event"], "transcript.saved");
    let id = subs[0]["id"].as_str().unwrap().to_string();
    assert!(
        text.contains(&id) && text.contains("roam-notify roam unsubscribe"),
        "{text}"
    );
    // Again: the same subscription, updated.
    stdout_ok(&run(&["subscribe"]));
    assert_eq!(roam.subscriptions().len(), 1);
    // A URL Roam refuses: one clear line.
    let out = run(&["subscribe", "--url", "http://notify.example.com/hooks/roam"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("400") && err.contains("HTTPS"), "{err}");
    // Unsubscribe (a form POST), then again: Roam has none.
    let text = stdout_ok(&run(&["unsubscribe", &id]));
    assert!(text.contains("unsubscribed"), "{text}");
    assert!(roam.subscriptions().is_empty());
    let out = run(&["unsubscribe", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no subscription"));
    for c in roam.calls("/v0/webhook.subscribe") {
        if c.status == 200 {
            assert!(c.schema_errors.is_empty(), "{:?}", c.schema_errors);
        }
    }
}

#[tokio::test]
async fn transcripts_subscribe_subscribes_at_start_up() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = subscribe_config(
        &roam,
        dir.path(),
        "[transcripts]\nenabled = true\nsubscribe = true\n",
    );
    let config = roam_notify::config::Config::load_with_env(
        Some(&cfg),
        roam_notify::config::EnvStrings::from_vars(vec![(
            "ROAM_NOTIFY_ROAM_API_KEY".to_string(),
            KEY.to_string(),
        )]),
    )
    .unwrap();
    let app = TestApp::start_config(config).await;
    let subs = roam.subscriptions();
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["url"], "https://notify.example.com/hooks/roam");
    app.stop().await;
    // Without a public_url to give Roam, the option is a config error naming the key.
    let e = roam_notify::config::Config::from_toml_str(
        "[transcripts]\nenabled = true\nsubscribe = true\n",
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("transcripts.subscribe") && e.contains("public_url"),
        "{e}"
    );
}

#[tokio::test]
async fn roam_s_subscription_check_is_answered_with_its_challenge() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(&roam, dir.path()).await;
    let check = json!({"type": "webhook.verification", "eventId": "msg_verify",
        "timestamp": chrono::Utc::now().to_rfc3339(), "apiVersion": "2026-07-23",
        "data": {"challenge": "c-8f3a2b"}});
    let r = deliver(&app, "msg_verify", &check).await;
    assert_eq!(r.status(), 200);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["challenge"], "c-8f3a2b");
    // An unsigned one is refused like any other request.
    let r = app
        .http
        .post(app.url("/hooks/roam"))
        .body(check.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(roam.delivered().is_empty());
    app.stop().await;
}
