//! The admin API on the admin listener: dead letters seen, re-queued and dropped over HTTP.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn dead_letters_are_listed_shown_requeued_and_dropped_over_http() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(
        &roam.url,
        &dir.path().join("t.db"),
        ROUTE_ALL_GITHUB,
    ))
    .await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(app.admin_url(path)).send();
    roam.script([
        Reply::Status(403, Some("bot is not a member of this chat")),
        Reply::Status(403, Some("bot is not a member of this chat")),
    ]);
    app.push_accepted("adm-1").await;
    app.push_accepted("adm-2").await;
    app.wait_ready(|r| r["outbox"]["dead"] == 2).await;

    let list: Value = get("/api/outbox?status=dead")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dead = list["messages"].as_array().unwrap();
    assert_eq!(dead.len(), 2, "{list}");
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("bot is not a member"),
        "{list}"
    );
    let id = dead[1]["id"].as_i64().unwrap();
    let shown: Value = get(&format!("/api/outbox/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "dead");
    assert_eq!(shown["delivery_id"], "adm-1");
    assert!(shown["request"].as_str().unwrap().contains(CHAT_A));

    // Retry wakes the worker: delivered without waiting for its idle pass.
    let r = http
        .post(app.admin_url(&format!("/api/outbox/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for("the re-queued message", Duration::from_secs(5), || {
        roam.delivered().len() == 1
    })
    .await;
    let r = http
        .post(app.admin_url(&format!("/api/outbox/{id}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a delivered message cannot be re-queued");

    let other = dead[0]["id"].as_i64().unwrap();
    let r = http
        .post(app.admin_url(&format!("/api/outbox/{other}/drop")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = http
        .post(app.admin_url("/api/outbox/retry-dead"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["count"], 0, "the dropped one is no longer dead");
    let shown: Value = get(&format!("/api/outbox/{other}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "dropped");

    let r = get("/api/outbox/999999").await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let r = get("/api/outbox?status=lost").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown status"));
    app.stop().await;
}
