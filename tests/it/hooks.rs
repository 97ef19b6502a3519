//! The webhook endpoint: verification, parsing, deduplication and the replies.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn signed_github_push_is_delivered_with_the_expected_text() {
    let (app, fake, _dir) = app_with(ROUTE_ALL_GITHUB).await;
    let body = fixture("github/push.new-branch.json");
    let resp = app.github("push", "d-push-1", &body, SECRET).await;
    assert_eq!(resp.status(), 202);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["delivery_id"], "d-push-1");
    assert_eq!(reply["event"], "github.push");
    assert_eq!(reply["routes"], json!(["all-github"]));
    assert_eq!(reply["messages"], 1);

    wait_for("the message to reach Roam", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let sent = &fake.delivered()[0];
    assert_eq!(
        sent.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.body["chat"], CHAT_A);
    let p: Value = serde_json::from_slice(&body).unwrap();
    // A card: a header saying what happened, the details, and a link to the changes.
    let blocks = sent.body["blocks"].as_array().expect("a card");
    assert!(sent.body.get("text").is_none(), "blocks exclude text");
    let branch = p["ref"].as_str().unwrap().trim_start_matches("refs/heads/");
    let pusher = p["pusher"]["name"].as_str().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["text"]["text"],
        format!("⬆️ {pusher} pushed 1 commit to {branch}")
    );
    let text = crate::blockkit::readable(&sent.body);
    assert!(text.contains("(new branch)"), "{text}");
    assert!(
        text.contains(&format!(
            "Compare changes {}",
            p["compare"].as_str().unwrap()
        )),
        "{text}"
    );
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn refused_requests_get_a_status_and_a_json_reason_and_store_nothing() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB).replace(
        "[server]\nlisten = \"127.0.0.1:0\"",
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body = \"8KiB\"",
    );
    let app = TestApp::spawn(&toml).await;
    let body = fixture("github/deployment_status.json");
    assert!(
        body.len() > 8192,
        "fixture must exceed the 8 KiB test limit"
    );
    let small = fixture("github/ping.json");

    // Wrong secret.
    let r = app.github("ping", "d1", &small, "not-the-secret").await;
    assert_eq!(r.status(), 401);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "unauthorized");
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256"),
        "{j}"
    );

    // Missing signature.
    let r = app
        .http
        .post(app.url("/hooks/github"))
        .header("X-GitHub-Event", "ping")
        .body(small.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let j: Value = r.json().await.unwrap();
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("missing X-Hub-Signature-256"),
        "{j}"
    );

    // Tampered body: signed bytes differ from sent bytes.
    let mut tampered = small.clone();
    tampered[10] ^= 1;
    let r = app
        .http
        .post(app.url("/hooks/github"))
        .header("X-GitHub-Event", "ping")
        .header("X-Hub-Signature-256", sign(SECRET, &small))
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Unknown source.
    let r = app
        .http
        .post(app.url("/hooks/gitlab"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "unknown_source");

    // Correctly signed, but not JSON.
    let junk = b"{\"zen\": \"unterminated".to_vec();
    let r = app.github("push", "d-junk", &junk, SECRET).await;
    assert_eq!(r.status(), 400);
    let j: Value = r.json().await.unwrap();
    assert!(
        j["message"].as_str().unwrap().contains("not valid JSON"),
        "{j}"
    );

    // Correctly signed JSON whose string holds a byte that is not UTF-8 (Latin-1 é).
    let latin1 = b"{\"zen\": \"caf\xE9\", \"hook_id\": 1}".to_vec();
    let r = app.github("push", "d-latin1", &latin1, SECRET).await;
    assert_eq!(r.status(), 400);
    let j: Value = r.json().await.unwrap();
    assert!(j["message"].as_str().unwrap().contains("not UTF-8"), "{j}");

    // Larger than server.max_body.
    let r = app
        .github("deployment_status", "d-big", &body, SECRET)
        .await;
    assert_eq!(r.status(), 413);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "payload_too_large");

    // Wrong method, unknown path.
    assert_eq!(
        app.http
            .get(app.url("/hooks/github"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        app.http
            .get(app.url("/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let ready = app.readyz().await;
    assert_eq!(ready["outbox"]["pending"], 0);
    assert_eq!(ready["outbox"]["delivered"], 0);
    assert_eq!(ready["webhooks"]["accepted"], 0);
    assert_eq!(ready["webhooks"]["unauthorized"], 3);
    assert_eq!(ready["webhooks"]["bad_requests"], 3);
    assert!(fake.delivered().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_redelivered_id_yields_one_message() {
    let (app, fake, _dir) = app_with(ROUTE_ALL_GITHUB).await;
    let body = fixture("github/pull_request.closed.merged.json");
    let first = app.github("pull_request", "dup-1", &body, SECRET).await;
    assert_eq!(first.status(), 202);
    for _ in 0..3 {
        let again = app.github("pull_request", "dup-1", &body, SECRET).await;
        assert_eq!(again.status(), 200);
        let j: Value = again.json().await.unwrap();
        assert_eq!(j["status"], "duplicate");
        assert_eq!(
            j["routes"],
            json!(["all-github"]),
            "a duplicate names the routes of the first delivery"
        );
        assert_eq!(j["messages"], 0);
    }
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let ready = app.wait_ready(|r| r["outbox"]["delivered"] == 1).await;
    assert_eq!(ready["outbox"]["pending"], 0);
    assert_eq!(ready["outbox"]["delivered"], 1);
    assert_eq!(fake.delivered().len(), 1);
    let text = &fake.texts()[0];
    assert!(text.starts_with("🟣 Merged"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn ping_is_answered_and_nothing_is_posted() {
    let (app, fake, _dir) = app_with(ROUTE_ALL_GITHUB).await;
    let r = app
        .github("ping", "p1", &fixture("github/ping.json"), SECRET)
        .await;
    assert_eq!(r.status(), 200);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["event"], "github.ping");
    assert_eq!(app.readyz().await["outbox"]["pending"], 0);
    assert!(fake.delivered().is_empty());
    app.stop().await;
}
#[tokio::test]
async fn routes_pick_destinations_by_event_and_field_and_the_reply_names_them() {
    let extra = format!(
        r#"
[[routes]]
name = "merged-to-b"
source = "github"
events = ["github.pull_request.closed"]
to = ["{CHAT_B}"]
continue = true
[routes.match]
"pull_request.merged" = true
"repository.full_name" = "/^ailisp/"

[[routes]]
name = "all-prs"
source = "github"
events = ["github.pull_request.*"]
to = "{CHAT_A}"
"#
    );
    let (app, fake, _dir) = app_with(&extra).await;
    let merged = fixture("github/pull_request.closed.merged.json");
    let j: Value = app
        .github("pull_request", "r1", &merged, SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(j["routes"], json!(["merged-to-b", "all-prs"]));
    assert_eq!(j["messages"], 2);
    let closed = fixture("github/pull_request.closed.json");
    let j: Value = app
        .github("pull_request", "r2", &closed, SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(j["routes"], json!(["all-prs"]));
    let push = fixture("github/push.json");
    let r = app.github("push", "r3", &push, SECRET).await;
    assert_eq!(r.status(), 202, "an event no route wants is still accepted");
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["routes"], json!([]));
    wait_for("3 messages", Duration::from_secs(10), || {
        fake.delivered().len() == 3
    })
    .await;
    let chats: Vec<String> = fake
        .delivered()
        .iter()
        .map(|r| r.body["chat"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(chats.iter().filter(|c| *c == CHAT_B).count(), 1);
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn generic_source_with_bearer_token_and_event_field() {
    let extra = format!(
        r#"
[[sources]]
name = "deploys"
kind = "generic"
auth = "bearer"
secrets = ["old-token", "new-token"]
event_field = "kind"
delivery_id_header = "X-Request-Id"

[[routes]]
name = "deploys"
source = "deploys"
events = ["generic.deploy"]
to = "{CHAT_B}"
"#
    );
    let (app, fake, _dir) = app_with(&extra).await;
    let send = |token: &'static str, id: &'static str, body: Value| {
        app.http
            .post(app.url("/hooks/deploys"))
            .bearer_auth(token)
            .header("X-Request-Id", id)
            .json(&body)
            .send()
    };
    let r = send(
        "new-token",
        "g1",
        json!({"kind": "deploy", "title": "Deployed *api* 1.2", "text": "all green"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let r = send("old-token", "g2", json!({"kind": "other"}))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "the old secret still works during rotation"
    );
    assert_eq!(
        send("wrong", "g3", json!({"kind": "deploy"}))
            .await
            .unwrap()
            .status(),
        401
    );
    let r = send("new-token", "g4", json!({"no_kind": 1}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let j: Value = r.json().await.unwrap();
    assert!(j["message"].as_str().unwrap().contains("kind"), "{j}");
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    // The title is the card's plain-text header: shown as written, nothing to escape.
    let blocks = &fake.delivered()[0].body["blocks"];
    assert_eq!(
        blocks[0]["text"],
        json!({"type": "plain_text", "text": "Deployed *api* 1.2"})
    );
    assert_eq!(
        blocks[1]["text"],
        json!({"type": "mrkdwn", "text": "all green"})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failing_template_still_sends_a_plain_message_and_counts_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("tpl");
    std::fs::create_dir_all(tdir.join("github")).unwrap();
    // A misspelt field: strict mode makes this an error rather than an empty message.
    std::fs::write(tdir.join("github/push.hbs"), "pushed by {{pusher.nmae}}").unwrap();
    let fake = FakeRoam::start().await;
    let extra = format!(
        "[templates]\ndir = \"{}\"\n{ROUTE_ALL_GITHUB}",
        tdir.display()
    );
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), &extra)).await;
    app.push_accepted("t1").await;
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let text = &fake.texts()[0];
    assert!(
        text.contains("github.push")
            && text.contains("template failed")
            && text.contains("pusher.nmae"),
        "{text}"
    );
    assert_eq!(app.readyz().await["webhooks"]["template_errors"], 1);
    fake.assert_all_valid();
    app.stop().await;
}

#[tokio::test]
async fn github_accepts_either_secret_while_rotating() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB).replace(
        &format!("secret = \"{SECRET}\""),
        &format!("secrets = [\"previous-secret\", \"{SECRET}\"]"),
    );
    let app = TestApp::spawn(&toml).await;
    let body = fixture("github/issues.opened.json");
    assert_eq!(
        app.github("issues", "rot-1", &body, "previous-secret")
            .await
            .status(),
        202
    );
    assert_eq!(
        app.github("issues", "rot-2", &body, SECRET).await.status(),
        202
    );
    assert_eq!(
        app.github("issues", "rot-3", &body, "a-third-secret")
            .await
            .status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn generic_source_with_hmac_header_and_event_header() {
    let extra = format!(
        r#"
[[sources]]
name = "ci"
kind = "generic"
auth = "hmac-sha256"
secret = "ci-secret"
signature_header = "X-CI-Signature"
signature_prefix = ""
event_header = "X-CI-Event"
delivery_id_field = "build.id"

[[routes]]
name = "ci"
source = "ci"
events = ["generic.build_*"]
to = "{CHAT_A}"
template = "ci/build"
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("tpl");
    std::fs::create_dir_all(tdir.join("ci")).unwrap();
    // {{{…}}} opts out of escaping: the sender's markdown is kept as is.
    std::fs::write(
        tdir.join("ci/build.hbs"),
        "Build {{build.id}} {{_event.name}}: {{build.note}} / {{{build.note}}}",
    )
    .unwrap();
    let fake = FakeRoam::start().await;
    let extra = format!("[templates]\ndir = \"{}\"\n{extra}", tdir.display());
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), &extra)).await;
    let body = br#"{"build": {"id": 42, "note": "*fast*"}}"#.to_vec();
    let sig = sign("ci-secret", &body);
    let hex_only = sig.trim_start_matches("sha256=").to_string();
    let post = |sig: String, body: Vec<u8>| {
        app.http
            .post(app.url("/hooks/ci"))
            .header("X-CI-Signature", sig)
            .header("X-CI-Event", "build_finished")
            .body(body)
            .send()
    };
    let r = post(hex_only.clone(), body.clone()).await.unwrap();
    assert_eq!(r.status(), 202);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["delivery_id"], "42");
    assert_eq!(j["event"], "generic.build_finished");
    assert_eq!(
        post(hex_only.clone(), body.clone()).await.unwrap().status(),
        200,
        "same build.id is a duplicate"
    );
    assert_eq!(
        post(sig, body.clone()).await.unwrap().status(),
        401,
        "prefix must match the configured one"
    );
    wait_for("delivery", Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    assert_eq!(
        fake.texts()[0],
        "Build 42 generic.build\\_finished: \\*fast\\* / *fast*"
    );
    app.stop().await;
}

#[tokio::test]
async fn github_form_encoded_payloads_are_verified_over_the_raw_form_bytes() {
    let (app, fake, _dir) = app_with(ROUTE_ALL_GITHUB).await;
    let json = fixture("github/push.new-branch.json");
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish();
    let r = app
        .http
        .post(app.url("/hooks/github"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "form-1")
        .header("X-Hub-Signature-256", sign(SECRET, form.as_bytes()))
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // curl's default content type with a JSON body is still read as JSON.
    let r = app
        .http
        .post(app.url("/hooks/github"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "form-2")
        .header("X-Hub-Signature-256", sign(SECRET, &json))
        .body(json.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for("two deliveries", Duration::from_secs(10), || {
        fake.delivered().len() == 2
    })
    .await;
    let texts = fake.texts();
    assert_eq!(texts[0], texts[1], "both forms render the same message");
    app.stop().await;
}
