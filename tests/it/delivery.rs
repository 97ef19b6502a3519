//! Delivery to Roam: pacing, 429, outages, refusals, the key check, dry-run.

use std::time::Duration;

use serde_json::{Value, json};

use roam_notify::config::Config;
use roam_notify::{Application, StartError};

use crate::helpers::*;

fn two_chat_routes() -> String {
    format!(
        r#"
[[routes]]
name = "to-a"
source = "github"
events = ["github.push"]
to = "{CHAT_A}"
[[routes]]
name = "to-b"
source = "github"
to = "{CHAT_B}"
"#
    )
}

#[tokio::test]
async fn a_429_pauses_all_sending_for_retry_after_then_delivers() {
    let fake = FakeRoam::start().await;
    fake.script([Reply::RateLimited("1")]);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(
        &fake.url,
        &dir.path().join("t.db"),
        &two_chat_routes(),
    ))
    .await;
    app.push_accepted("a").await;
    wait_for("the 429", Duration::from_secs(10), || {
        fake.recorded().iter().any(|r| r.status == 429)
    })
    .await;
    // A message for another chat, queued during the pause, must wait too.
    assert_eq!(
        app.github("issues", "b", &fixture("github/issues.opened.json"), SECRET)
            .await
            .status(),
        202
    );
    wait_for("both delivered", Duration::from_secs(10), || {
        fake.delivered().len() == 2
    })
    .await;
    let rec: Vec<Recorded> = fake
        .recorded()
        .into_iter()
        .filter(|r| r.path.ends_with("chat.post"))
        .collect();
    let limited = rec.iter().find(|r| r.status == 429).unwrap();
    for r in rec.iter().filter(|r| r.status == 200) {
        assert!(
            r.at.duration_since(limited.at) >= Duration::from_millis(950),
            "sent {:?} after the 429, before Retry-After",
            r.at.duration_since(limited.at)
        );
    }
    let ready = app.wait_ready(|r| r["outbox"]["delivered"] == 2).await;
    assert_eq!(ready["delivery"]["rate_limited"], 1);
    assert_eq!(ready["outbox"]["delivered"], 2);
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn roam_down_for_a_while_then_up_delivers_everything_once_in_order() {
    let fake = FakeRoam::start().await;
    fake.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(
        &fake.url,
        &dir.path().join("t.db"),
        &two_chat_routes(),
    ))
    .await;
    let push = fixture("github/push.json");
    for i in 0u32..6 {
        let event = if i.is_multiple_of(2) {
            "push"
        } else {
            "issues"
        };
        let body = if i.is_multiple_of(2) {
            push.clone()
        } else {
            fixture("github/issues.opened.json")
        };
        assert_eq!(
            app.github(event, &format!("down-{i}"), &body, SECRET)
                .await
                .status(),
            202
        );
    }
    wait_for("several failed attempts", Duration::from_secs(10), || {
        fake.recorded().iter().filter(|r| r.status == 503).count() >= 6
    })
    .await;
    let ready = app
        .wait_ready(|r| {
            r["delivery"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("503"))
        })
        .await;
    assert_eq!(ready["outbox"]["pending"], 6);
    assert!(
        ready["delivery"]["last_error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{ready}"
    );
    fake.set_down(false);
    wait_for("all delivered", Duration::from_secs(15), || {
        fake.delivered().len() == 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.delivered().len(), 6, "nothing delivered twice");
    // Per chat, the order of acceptance is kept: chat A gets its three pushes in order.
    let ready = app.wait_ready(|r| r["outbox"]["pending"] == 0).await;
    assert_eq!(ready["outbox"]["pending"], 0);
    assert_eq!(ready["outbox"]["dead"], 0);
    let a: Vec<Value> = fake
        .delivered()
        .iter()
        .filter(|r| r.body["chat"] == CHAT_A)
        .map(|r| r.body.clone())
        .collect();
    let b: Vec<Value> = fake
        .delivered()
        .iter()
        .filter(|r| r.body["chat"] == CHAT_B)
        .map(|r| r.body.clone())
        .collect();
    assert_eq!((a.len(), b.len()), (3, 3));
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn a_4xx_from_roam_dead_letters_the_message_and_the_rest_still_flows() {
    let fake = FakeRoam::start().await;
    fake.script([Reply::Status(403, Some("Bot is not a member of this chat"))]);
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(
        &fake.url,
        &dir.path().join("t.db"),
        ROUTE_ALL_GITHUB,
    ))
    .await;
    app.push_accepted("x1").await;
    assert_eq!(
        app.github(
            "push",
            "x2",
            &fixture("github/push.new-branch.json"),
            SECRET
        )
        .await
        .status(),
        202
    );
    wait_for("second delivered", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let ready = app
        .wait_ready(|r| r["outbox"]["delivered"] == 1 && r["outbox"]["dead"] == 1)
        .await;
    assert_eq!(ready["outbox"]["dead"], 1);
    assert_eq!(ready["outbox"]["delivered"], 1);
    assert_eq!(ready["delivery"]["dead_lettered"], 1);
    // Only one attempt at the refused message: 4xx is not retried.
    assert_eq!(
        fake.recorded().iter().filter(|r| r.status == 403).count(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn retries_stop_at_give_up_after_and_dead_letter_with_the_reason() {
    let fake = FakeRoam::start().await;
    fake.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB)
        .replace("give_up_after = \"1h\"", "give_up_after = \"500ms\"");
    let app = TestApp::spawn(&toml).await;
    app.push_accepted("g1").await;
    let ready = app.wait_ready(|r| r["outbox"]["dead"] == 1).await;
    assert_eq!(ready["outbox"]["dead"], 1, "{ready}");
    assert!(
        fake.recorded().iter().filter(|r| r.status == 503).count() >= 2,
        "it retried before giving up"
    );
    app.stop().await;
}

#[tokio::test]
async fn start_up_refuses_a_revoked_key_or_a_personal_token_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRoam::start().await;
    fake.set_token_info(
        401,
        json!({"error": "Token revoked: owner archived", "code": "token_revoked"}),
    );
    let cfg = Config::from_toml_str(
        &test_config(&fake.url, &dir.path().join("a.db"), ""),
        "t.toml",
    )
    .unwrap();
    let err = Application::build(cfg)
        .await
        .err()
        .expect("start-up must fail");
    assert!(matches!(err, StartError::RoamKey(_)), "{err}");
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(
        msg.contains("token_revoked") && msg.contains("organization API key"),
        "{msg}"
    );
    assert!(!msg.contains(KEY), "the key must never be printed");

    // A personal token, told by Roam's 403 or by token.info naming a user (U-) address.
    let personal = [
        (
            403,
            json!({"error": "This endpoint requires full access. Personal access tokens are not supported.", "code": "access_mode_not_supported"}),
        ),
        (
            200,
            json!({"addr": "U-b893c426-6d54-4d9a-8e71-6bd53b26124e", "scopes": ["chat:send_message"], "roam": {"id": "X", "name": "Y", "imageUrl": "https://a", "iconUrl": "https://b"}}),
        ),
    ];
    for (n, (status, body)) in personal.into_iter().enumerate() {
        let fake = FakeRoam::start().await;
        fake.set_token_info(status, body);
        let db = dir.path().join(format!("p{n}.db"));
        let cfg = Config::from_toml_str(&test_config(&fake.url, &db, ""), "t.toml").unwrap();
        let msg = Application::build(cfg)
            .await
            .err()
            .expect("must fail")
            .to_string();
        assert!(msg.contains("personal access token"), "{msg}");
    }
}

#[tokio::test]
async fn start_up_goes_on_when_roam_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/v0", l.local_addr().unwrap());
    drop(l);
    let app = TestApp::spawn(&test_config(
        &dead,
        &dir.path().join("t.db"),
        ROUTE_ALL_GITHUB,
    ))
    .await;
    app.push_accepted("u1").await;
    let ready = app
        .wait_ready(|r| r["delivery"]["last_error"].is_string())
        .await;
    assert!(
        ready["delivery"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach Roam"),
        "{ready}"
    );
    assert_eq!(
        ready["outbox"]["pending"], 1,
        "the message waits in the outbox"
    );
    app.stop().await;
}

#[tokio::test]
async fn dry_run_logs_instead_of_posting_and_says_so_in_readyz() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB)
        .replace(&format!("api_key = \"{KEY}\"\n"), "");
    let app = TestApp::spawn(&toml).await;
    app.push_accepted("dr1").await;
    let ready = app.wait_ready(|r| r["outbox"]["delivered"] == 1).await;
    assert_eq!(ready["dry_run"], true);
    assert_eq!(ready["outbox"]["delivered"], 1, "{ready}");
    assert!(fake.recorded().is_empty(), "dry-run must not call Roam");
    app.stop().await;
}

#[tokio::test]
async fn a_roam_call_that_times_out_is_retried() {
    let fake = FakeRoam::start().await;
    fake.script([Reply::Slow(Duration::from_secs(3))]);
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB)
        .replace("request_timeout = \"10s\"", "request_timeout = \"300ms\"")
        .replace("request_timeout = \"2s\"", "request_timeout = \"300ms\"");
    let app = TestApp::spawn(&toml).await;
    app.push_accepted("slow-1").await;
    let ready = app.wait_ready(|r| r["outbox"]["delivered"] == 1).await;
    assert_eq!(ready["outbox"]["delivered"], 1, "{ready}");
    assert!(
        ready["delivery"]["retried"].as_u64().unwrap() >= 1,
        "{ready}"
    );
    app.stop().await;
}

/// Messages to different chats are sent side by side; each chat still gets its own
/// messages in the order they were accepted.
#[tokio::test]
async fn chats_are_sent_to_side_by_side_each_in_order() {
    let chats: Vec<String> = (1..=4)
        .map(|n| format!("G-88bebce7-6cbb-4666-96f9-{n:012}"))
        .collect();
    let route = format!(
        "[[routes]]\nname = \"fan-out\"\nsource = \"github\"\nto = {}\n",
        serde_json::to_string(&chats).unwrap()
    );
    let (app, roam, _dir) = app_with(&route).await;
    roam.set_down(true);
    let push = String::from_utf8(fixture("github/push.json")).unwrap();
    for n in 1..=3 {
        let body = push.replace("refs/tags/simple-tag", &format!("refs/heads/order-{n}"));
        let r = app
            .github("push", &format!("side-{n}"), body.as_bytes(), SECRET)
            .await;
        assert_eq!(r.status(), 202);
    }
    roam.set_latency(Duration::from_millis(150));
    roam.set_down(false);
    wait_for("12 deliveries", Duration::from_secs(20), || {
        roam.delivered().len() == 12
    })
    .await;
    assert!(
        roam.max_in_flight() >= 2,
        "one message at a time: {}",
        roam.max_in_flight()
    );
    for chat in &chats {
        let order: Vec<usize> = roam
            .delivered()
            .iter()
            .filter(|r| r.body["chat"] == chat.as_str())
            .filter_map(|r| {
                let text = r.body.to_string();
                (1..=3).find(|n| text.contains(&format!("order-{n}")))
            })
            .collect();
        assert_eq!(order, vec![1, 2, 3], "chat {chat}");
    }
    app.stop().await;
}
