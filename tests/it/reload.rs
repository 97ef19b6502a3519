//! Hot reload under load: a valid config is swapped in, an invalid one is refused with
//! its reason, and every webhook accepted meanwhile is posted exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

const TEAM_B: &str = r#"
[[routes]]
name = "team-b"
source = "github"
to = "C-11111111-2222-4333-8444-555555555555"
"#;

#[tokio::test]
async fn reload_under_load_swaps_valid_and_refuses_invalid_without_losing_anything() {
    const PUSHES: usize = 300;
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let db = dir.path().join("t.db");
    // The first route continues, so a route added behind it also matches.
    let v1 = test_config(
        &roam.url,
        &db,
        &ROUTE_ALL_GITHUB.replace("to =", "continue = true\nto ="),
    );
    std::fs::write(&path, &v1).unwrap();
    let app = Arc::new(TestApp::spawn_file(&path).await);

    let sent = Arc::new(AtomicUsize::new(0));
    let to_b = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for w in 0..8 {
        let (app, sent, to_b) = (app.clone(), sent.clone(), to_b.clone());
        load.push(tokio::spawn(async move {
            for i in (w..PUSHES).step_by(8) {
                let r = app
                    .github(
                        "push",
                        &format!("load-{i}"),
                        &fixture("github/push.json"),
                        SECRET,
                    )
                    .await;
                assert_eq!(r.status(), 202, "push {i} during reloads");
                let body: Value = r.json().await.unwrap();
                if body["routes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == "team-b")
                {
                    to_b.fetch_add(1, Ordering::Relaxed);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let http = reqwest::Client::new();
    wait_for("a third of the load", Duration::from_secs(30), || {
        sent.load(Ordering::Relaxed) >= PUSHES / 3
    })
    .await;
    std::fs::write(&path, format!("{v1}{TEAM_B}")).unwrap();
    let r = http.post(app.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "reloaded");
    assert_eq!(body["routes"], 2);
    assert_eq!(body["restart_needed"], serde_json::json!([]));

    wait_for("two thirds of the load", Duration::from_secs(30), || {
        sent.load(Ordering::Relaxed) >= 2 * PUSHES / 3
    })
    .await;
    let broken = format!("{v1}{TEAM_B}template = \"no/such\"\n");
    std::fs::write(&path, broken).unwrap();
    let r = http.post(app.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_config");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains(&path.display().to_string())
            && msg.contains("routes[1].template")
            && msg.contains("no/such"),
        "{msg}"
    );

    for t in load {
        t.await.unwrap();
    }
    let to_b = to_b.load(Ordering::Relaxed);
    assert!(
        to_b > 0 && to_b < PUSHES,
        "the new route took the pushes after the reload: {to_b}"
    );
    wait_for(
        "every accepted push delivered",
        Duration::from_secs(60),
        || roam.delivered().len() == PUSHES + to_b,
    )
    .await;
    let ready = app.wait_ready(|r| r["outbox"]["pending"] == 0).await;
    assert_eq!(
        ready["config"]["routes"], 2,
        "the refused config did not replace the good one"
    );
    let delivered = roam.delivered();
    assert_eq!(
        delivered
            .iter()
            .filter(|r| r.body["chat"] == CHAT_A)
            .count(),
        PUSHES,
        "each push once on the first route"
    );
    assert_eq!(
        delivered
            .iter()
            .filter(|r| r.body["chat"] == CHAT_B)
            .count(),
        to_b
    );

    let metrics = http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("roam_notify_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roam_notify_config_reloads_total{result=\"invalid\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "roam_notify_webhooks_total{{source=\"github\",result=\"accepted\"}} {PUSHES}"
        )),
        "{metrics}"
    );

    // Keys read at start-up are reported, not silently ignored.
    std::fs::write(
        &path,
        format!("{v1}{TEAM_B}").replace("[server]\n", "[server]\nmax_body = \"2MiB\"\n"),
    )
    .unwrap();
    let body: Value = http
        .post(app.admin_url("/-/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["restart_needed"],
        serde_json::json!(["server.max_body"]),
        "{body}"
    );

    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("app still shared"),
    }
}

#[tokio::test]
async fn admin_endpoints_are_not_on_the_public_port() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(
        &roam.url,
        &dir.path().join("t.db"),
        ROUTE_ALL_GITHUB,
    ))
    .await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(app.url("/metrics")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        http.post(app.url("/-/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let m = http.get(app.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(
        m.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    // Started from an in-memory config: nothing to re-read, and it says so.
    let r = http.post(app.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("in-memory config"),
        "{body}"
    );
    app.stop().await;
}

/// Rendering when sent: a message is rendered with the templates in force when it is
/// first sent, and keeps that body for its retries. With Roam down, the first push is
/// tried (rendered with v1) and waits to be retried; the second waits behind it in the
/// same chat, untried, shown by the admin API as v1 would render it. The template is
/// reloaded as v2: Roam comes back, the first goes out as it was tried (v1), the second
/// with v2, and each stored row then holds the body it was sent with. `outbox show`
/// shows the waiting one as the templates on disk make it.
#[tokio::test]
async fn a_template_reloaded_while_a_message_waits_is_the_one_it_is_sent_with() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("tpl");
    std::fs::create_dir_all(tdir.join("github")).unwrap();
    let template = tdir.join("github/push.hbs");
    std::fs::write(&template, "v1: {{_event.delivery_id}} by {{pusher.name}}").unwrap();
    let path = dir.path().join("config.toml");
    let extra = format!(
        "[templates]\ndir = \"{}\"\n{ROUTE_ALL_GITHUB}",
        tdir.display()
    );
    std::fs::write(
        &path,
        test_config(&roam.url, &dir.path().join("t.db"), &extra),
    )
    .unwrap();
    let app = TestApp::spawn_file(&path).await;
    let http = reqwest::Client::new();

    roam.set_down(true);
    app.push_accepted("first").await;
    first_post_tried(&roam).await;
    app.push_accepted("second").await;
    let waiting = outbox(&app, "pending").await;
    let second = row(&waiting, "second");
    assert!(second["render"].is_string(), "{second}");
    let preview: Value = serde_json::from_str(second["request"].as_str().unwrap()).unwrap();
    assert_eq!(preview["text"], "v1: second by Codertocat", "{second}");
    let first = row(&waiting, "first");
    assert!(first["render"].is_null(), "tried, so rendered: {first}");

    // `outbox show` renders it with the templates the config names, as they are now, or
    // says why it cannot.
    let show = || {
        let out = bin()
            .args(["--config", path.to_str().unwrap(), "outbox", "show"])
            .arg(second["id"].to_string())
            .output()
            .unwrap();
        serde_json::from_str::<Value>(&stdout_ok(&out)).unwrap()
    };
    std::fs::write(&template, "v2: {{#if pusher}}").unwrap();
    let shown = show();
    assert_eq!(shown["request"], "", "{shown}");
    assert!(
        shown["render_error"]
            .as_str()
            .unwrap()
            .contains("the templates cannot be loaded"),
        "{shown}"
    );
    std::fs::write(&template, "v2: {{_event.delivery_id}} by {{pusher.name}}").unwrap();
    let shown = show();
    let preview: Value = serde_json::from_str(shown["request"].as_str().unwrap()).unwrap();
    assert_eq!(preview["text"], "v2: second by Codertocat", "{shown}");
    let r = http.post(app.admin_url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    roam.set_down(false);
    wait_for("both delivered", Duration::from_secs(20), || {
        roam.delivered().len() == 2
    })
    .await;
    assert_eq!(
        roam.texts(),
        ["v1: first by Codertocat", "v2: second by Codertocat"]
    );
    for m in outbox(&app, "delivered").await {
        let id = m["delivery_id"].as_str().unwrap();
        let sent: Value = serde_json::from_str(m["request"].as_str().unwrap()).unwrap();
        assert!(m["render"].is_null(), "{m}");
        assert!(
            sent["text"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{id} by Codertocat"))
        );
    }
    roam.assert_all_valid();
    app.stop().await;
}

/// What a message rendered when sent may keep is bounded: with the catch-all `default`
/// template (`{{json this}}` reads the whole 7.3 KB push) it would keep the whole
/// payload, so it is rendered when accepted instead. Checked on messages that wait
/// untried behind a failing one in the same chat: the push's row holds its body and
/// nothing to render; an issue's row from a second GitHub source, whose builtin template
/// reads a few fields, holds what to render and no body.
#[tokio::test]
async fn a_message_that_would_keep_a_large_payload_is_rendered_when_accepted() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[sources]]\nname = \"gh2\"\nkind = \"github\"\nsecret = \"{SECRET}\"\n\
         [[routes]]\nname = \"pushes\"\nsource = \"github\"\ntemplate = \"default\"\n\
         to = \"{CHAT_A}\"\n\
         [[routes]]\nname = \"issues\"\nsource = \"gh2\"\nto = \"{CHAT_A}\"\n"
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    roam.set_down(true);
    let issue = fixture("github/issues.opened.json");
    let post_issue = |delivery: &'static str| {
        app.http
            .post(app.url("/hooks/gh2"))
            .header("X-GitHub-Event", "issues")
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", sign(SECRET, &issue))
            .body(issue.clone())
            .send()
    };
    assert_eq!(post_issue("head").await.unwrap().status(), 202);
    first_post_tried(&roam).await;
    app.push_accepted("push").await;
    assert_eq!(post_issue("issue").await.unwrap().status(), 202);
    let waiting = outbox(&app, "pending").await;
    let (push, issue) = (row(&waiting, "push"), row(&waiting, "issue"));
    assert_eq!(
        (push["attempts"].as_i64(), issue["attempts"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(push["render"].is_null(), "{push}");
    assert!(
        push["request"]
            .as_str()
            .unwrap()
            .contains("Codertocat/Hello-World"),
        "{push}"
    );
    assert!(issue["render"].is_string(), "{issue}");
    app.stop().await;
}

/// Waits until Roam was sent a first `chat.post` (tried, whatever it answered).
async fn first_post_tried(roam: &FakeRoam) {
    wait_for("a first chat.post tried", Duration::from_secs(10), || {
        roam.recorded()
            .iter()
            .any(|r| r.path.ends_with("chat.post"))
    })
    .await;
}

/// The admin API's outbox listing of messages with this status.
async fn outbox(app: &TestApp, status: &str) -> Vec<Value> {
    let url = app.admin_url(&format!("/api/outbox?status={status}"));
    let r: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    r["messages"].as_array().unwrap().clone()
}

/// The listed message of this delivery id.
fn row<'a>(rows: &'a [Value], delivery_id: &str) -> &'a Value {
    rows.iter()
        .find(|m| m["delivery_id"] == delivery_id)
        .unwrap_or_else(|| panic!("no message of {delivery_id} in {rows:?}"))
}
