//! The admin API on the admin listener: dead letters seen, re-queued and dropped over HTTP.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn dead_letters_are_listed_shown_requeued_and_dropped_over_http() {
    let (app, roam, _dir) = app_with(ROUTE_ALL_GITHUB).await;
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

#[tokio::test]
async fn metrics_count_by_source_route_and_outcome_with_real_histograms() {
    // A grouping route (never reached: all-github matches first) shows its held events.
    let digest = "[[routes]]\nname = \"github-digest\"\nsource = \"github\"\nto = \"G-88bebce7-6cbb-4666-96f9-5c02d73e6661\"\ngroup_by = [\"repository.full_name\"]\n";
    let (app, roam, _dir) = app_with(&format!("{ROUTE_ALL_GITHUB}{digest}")).await;
    roam.script([Reply::Status(503, None), Reply::RateLimited("1")]);
    app.push_accepted("m-1").await;
    app.push_accepted("m-2").await;
    let dup = app
        .github("push", "m-1", &fixture("github/push.json"), SECRET)
        .await;
    assert_eq!(dup.status(), 200);
    let bad = app
        .github("push", "m-3", &fixture("github/push.json"), "wrong")
        .await;
    assert_eq!(bad.status(), 401);
    let unknown = app
        .http
        .post(app.url("/hooks/nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    wait_for("both delivered", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    app.wait_ready(|r| r["outbox"]["pending"] == 0).await;

    let text = app.metrics().await;
    for line in [
        "roam_notify_webhooks_total{source=\"github\",result=\"accepted\"} 2",
        "roam_notify_webhooks_total{source=\"github\",result=\"duplicate\"} 1",
        "roam_notify_webhooks_total{source=\"github\",result=\"unauthorized\"} 1",
        "roam_notify_webhooks_total{source=\"\",result=\"unknown_source\"} 1",
        "roam_notify_events_routed_total{route=\"all-github\"} 2",
        "roam_notify_messages_total{route=\"all-github\",outcome=\"queued\"} 2",
        "roam_notify_messages_total{route=\"all-github\",outcome=\"sent\"} 2",
        "roam_notify_messages_total{route=\"all-github\",outcome=\"retried\"} 1",
        "roam_notify_roam_api_calls_total{endpoint=\"chat.post\",status=\"200\"} 2",
        "roam_notify_roam_api_calls_total{endpoint=\"chat.post\",status=\"503\"} 1",
        "roam_notify_roam_api_calls_total{endpoint=\"chat.post\",status=\"429\"} 1",
        "roam_notify_roam_api_calls_total{endpoint=\"token.info\",status=\"200\"} 1",
        "roam_notify_rate_limited_total 1",
        "roam_notify_roam_pauses_total 1",
        "# TYPE roam_notify_webhook_ack_seconds histogram",
        "roam_notify_webhook_ack_seconds_bucket{le=\"+Inf\"} 5",
        "roam_notify_webhook_ack_seconds_count 5",
        "# TYPE roam_notify_delivery_latency_seconds histogram",
        "roam_notify_delivery_latency_seconds_count 2",
        "roam_notify_outbox_messages{status=\"pending\"} 0",
        "roam_notify_held_events{route=\"github-digest\"} 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Buckets are cumulative and end at the count.
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("roam_notify_webhook_ack_seconds_bucket"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    let paused: f64 = text
        .lines()
        .find(|l| l.starts_with("roam_notify_roam_paused_seconds_total "))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(paused >= 0.99, "the 429's Retry-After counted: {paused}");

    // The shipped dashboard and alert rules only use metrics that exist.
    let names = regex::Regex::new(r"roam_notify_[a-z_]+").unwrap();
    for file in [
        "deploy/grafana/roam-notify.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let text_of =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
                .unwrap();
        for m in names.find_iter(&text_of) {
            assert!(
                text.contains(m.as_str()),
                "{file} uses {} which /metrics does not have",
                m.as_str()
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn silences_are_added_listed_and_expired_over_http_and_apply_at_once() {
    let (app, _roam, _dir) = app_with(ROUTE_ALL_GITHUB).await;
    let http = reqwest::Client::new();
    let r = http
        .post(app.admin_url("/api/silences"))
        .json(&serde_json::json!({
            "matchers": ["ref=refs/tags/simple-tag"],
            "source": "github",
            "duration": "1h",
            "comment": "deploy freeze",
            "created_by": "ops"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // Applied at once, not at the next periodic refresh.
    let reply: Value = app
        .github("push", "sil-1", &fixture("github/push.json"), SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        reply["quiet"][0]
            .as_str()
            .unwrap()
            .contains(&format!("silence #{id} (deploy freeze)")),
        "{reply}"
    );
    let list: Value = http
        .get(app.admin_url("/api/silences"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["silences"][0]["created_by"], "ops");
    assert_eq!(list["silences"][0]["matcher"]["source"], "github");

    // Refused with the reason: no condition, bad regex, no comment.
    for bad in [
        serde_json::json!({"duration": "1h", "comment": "x"}),
        serde_json::json!({"matchers": ["a=~("], "duration": "1h", "comment": "x"}),
        serde_json::json!({"source": "github", "duration": "1h", "comment": " "}),
        serde_json::json!({"source": "github", "comment": "x"}),
    ] {
        let r = http
            .post(app.admin_url("/api/silences"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "bad_request");
    }

    let r = http
        .delete(app.admin_url(&format!("/api/silences/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reply: Value = app
        .github("push", "sil-2", &fixture("github/push.json"), SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert!(reply.get("quiet").is_none(), "expired at once: {reply}");
    assert_eq!(
        http.delete(app.admin_url(&format!("/api/silences/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
    app.stop().await;
}
