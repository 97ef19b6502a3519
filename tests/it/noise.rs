//! Noise control against the fake Roam API: threads and in-place updates per entity,
//! grouping (a 10,000-alert storm), dedup within repeat_interval, max_messages digests,
//! resolved alerts sent at once, and a pending group surviving a restart.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;

const AM_AUTH: &str = "am:pw";

fn am_source() -> String {
    format!(
        r#"
[[sources]]
name = "am"
kind = "alertmanager"
secret = "{AM_AUTH}"
"#
    )
}

/// The `am` source and one route from it to CHAT_A with `keys`.
pub(crate) fn am_route(name: &str, keys: &str) -> String {
    format!(
        "{}\n[[routes]]\nname = \"{name}\"\nsource = \"am\"\nto = \"{CHAT_A}\"\n{keys}",
        am_source()
    )
}

/// An Alertmanager (webhook v4) body with one alert, as Alertmanager sends it when it
/// groups by every label (`group_by: ['...']`): one notification per alert.
fn alert(name: &str, instance: &str, status: &str) -> Vec<u8> {
    let labels = json!({"alertname": name, "instance": instance, "severity": "page"});
    serde_json::to_vec(&json!({
        "receiver": "ops",
        "status": status,
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": {"summary": format!("{name} on {instance}")},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{name}\", instance=\"{instance}\"}}"),
        "truncatedAlerts": 0,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {"summary": format!("{name} on {instance}")},
            "startsAt": "2026-11-29T10:00:00Z",
            "endsAt": if status == "resolved" { "2026-11-29T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
            "generatorURL": "http://prometheus:9090/graph",
            // As Alertmanager's: one per label set (FNV-1a of the labels here).
            "fingerprint": format!("{:016x}", format!("{name}\u{0}{instance}").bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))),
        }]
    }))
    .unwrap()
}

pub(crate) async fn post_alert(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    let basic = base64::engine::general_purpose::STANDARD.encode(AM_AUTH);
    app.http
        .post(app.url("/hooks/am"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn held_total(app: &TestApp) -> i64 {
    app.readyz().await["held"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0)
}

fn pending(ready: &Value) -> i64 {
    ready["outbox"]["pending"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn update_edits_the_first_message_and_thread_replies_under_it() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = am_route(
        "alerts",
        r#"update = true
thread = true
"#,
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    // Two alerts: one message each, each its own entity (the alert's fingerprint).
    let firing = fixture("alertmanager/firing.two-alerts.zulip.json");
    assert_eq!(post_alert(&app, firing).await.status(), 202);
    wait_for("the firing messages", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    // The same two alerts (same fingerprints) now resolved.
    let resolved = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/alertmanager.resolved.json"),
    )
    .unwrap();
    assert_eq!(post_alert(&app, resolved).await.status(), 202);
    wait_for(
        "the updates and the thread replies",
        Duration::from_secs(10),
        || roam.updates().len() == 2 && roam.delivered().len() == 4,
    )
    .await;
    roam.assert_all_valid();

    let posts = roam.delivered();
    let keys: Vec<&str> = posts[..2]
        .iter()
        .map(|p| {
            assert_eq!(
                p.body["sync"], true,
                "the first post must be sync to learn its timestamp"
            );
            // The card is red while the alert fires.
            assert_eq!(p.body["color"], "danger");
            p.body["threadKey"]
                .as_str()
                .expect("threaded route posts with a threadKey")
        })
        .collect();
    assert_ne!(keys[0], keys[1], "one thread per alert");
    assert!(keys.iter().all(|k| k.len() <= 64));
    for update in roam.updates() {
        assert_eq!(update.body["chat"], CHAT_A);
        // Each update edits the message Roam gave for that alert, and turns it green.
        let first = posts[..2]
            .iter()
            .find(|p| p.given_ts == update.body["timestamp"].as_i64())
            .expect("edits a message Roam gave us");
        assert!(
            crate::blockkit::readable(&update.body).contains("RESOLVED"),
            "{}",
            update.body
        );
        assert_eq!(update.body["color"], "good");
        assert!(update.body.get("text").is_none(), "{}", update.body);
        let host = |b: &Value| {
            crate::blockkit::readable(b)
                .lines()
                .next()
                .unwrap_or("")
                .replace("RESOLVED", "")
                .replace("FIRING", "")
                .replace(['🔥', '✅'], "")
        };
        assert_eq!(host(&first.body), host(&update.body), "the same alert");
    }
    for reply in &posts[2..] {
        assert!(
            keys.contains(&reply.body["threadKey"].as_str().unwrap()),
            "the change is also a reply in the alert's thread"
        );
        assert!(reply.body.get("sync").is_none());
    }
    app.stop().await;
}

#[tokio::test]
async fn update_falls_back_to_a_new_post_when_the_message_is_gone() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let extra = am_route(
        "alerts",
        r#"update = true
"#,
    );
    let app = TestApp::spawn(&test_config(&roam.url, &db, &extra)).await;
    assert_eq!(
        post_alert(&app, alert("Down", "a", "firing"))
            .await
            .status(),
        202
    );
    wait_for("first post", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    app.stop().await;
    // Roam no longer knows the message (deleted by a user): a fresh fake forgets it.
    let roam2 = FakeRoam::start().await;
    let app = TestApp::spawn(&test_config(&roam2.url, &db, &extra)).await;
    assert_eq!(
        post_alert(&app, alert("Down", "a", "resolved"))
            .await
            .status(),
        202
    );
    wait_for(
        "a new post after the failed update",
        Duration::from_secs(10),
        || roam2.delivered().len() == 1,
    )
    .await;
    let tried: Vec<_> = roam2
        .recorded()
        .into_iter()
        .filter(|r| r.path.ends_with("chat.update"))
        .collect();
    assert_eq!(tried.len(), 1, "it tried to update first");
    assert_eq!(tried[0].status, 404);
    assert_eq!(roam2.delivered()[0].body["sync"], true);
    roam2.assert_all_valid();
    app.stop().await;
}

/// 10,000 alerts in 10,000 webhooks, three alert names. Each group sends its first
/// message after group_wait and then at most one per group_interval while the storm
/// lasts: a handful of messages whose counts add up to exactly 10,000.
#[tokio::test]
async fn alert_storm_becomes_a_few_messages_per_group() {
    const ALERTS: usize = 10_000;
    let names = ["DiskFull", "HighCPU", "InstanceDown"];
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = am_route(
        "storm",
        r#"group_by = ["commonLabels.alertname"]
group_wait = "1s"
group_interval = "3s"
"#,
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    let app = std::sync::Arc::new(app);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for i in (w..ALERTS).step_by(32) {
                let body = alert(names[i % 3], &format!("host-{i}"), "firing");
                let r = post_alert(&app, body).await;
                assert_eq!(r.status(), 202, "alert {i}");
                accepted += 1;
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.unwrap();
    }
    let storm = started.elapsed();
    assert_eq!(accepted, ALERTS);
    let start = std::time::Instant::now();
    while held_total(&app).await > 0 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(held_total(&app).await, 0, "every held alert went out");
    let ready = app.wait_ready(|r| pending(r) == 0).await;
    assert_eq!(pending(&ready), 0, "{ready}");

    let texts = roam.texts();
    eprintln!(
        "storm: {ALERTS} alerts in {storm:?} became {} messages",
        texts.len()
    );
    // group_wait, then one per group_interval during the storm, then the tail.
    let per_group = 2 + (storm.as_secs_f64() / 3.0).ceil() as usize;
    assert!(
        texts.len() >= 3 && texts.len() <= 3 * per_group,
        "{} messages for a {storm:?} storm",
        texts.len()
    );
    let header = regex::Regex::new(r"(?m)^([\d,]+) alerts? on storm$").unwrap();
    for (n, name) in names.iter().enumerate() {
        let expected = ALERTS / 3 + usize::from(n < ALERTS % 3);
        let mut got = 0;
        for t in texts.iter().filter(|t| t.contains(name)) {
            got += match header.captures(t) {
                Some(c) => c[1].replace(',', "").parse::<usize>().unwrap(),
                None => 1, // a group of one is sent as the alert's own message
            };
        }
        assert_eq!(got, expected, "{name}: counts over its messages");
    }
    let first = texts.iter().find(|t| header.is_match(t)).unwrap();
    assert!(
        first.contains("… and ") && first.contains("on host-"),
        "{first}"
    );
    roam.assert_all_valid();
    match std::sync::Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("app still shared"),
    }
}

#[tokio::test]
async fn resolved_alert_flushes_its_group_at_once() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = am_route(
        "grouped",
        r#"group_by = ["commonLabels.alertname"]
group_wait = "1h"
"#,
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    assert_eq!(
        post_alert(&app, alert("Down", "a", "firing"))
            .await
            .status(),
        202
    );
    assert_eq!(
        post_alert(&app, alert("Down", "b", "firing"))
            .await
            .status(),
        202
    );
    assert_eq!(held_total(&app).await, 2, "held for group_wait (1h)");
    assert!(roam.delivered().is_empty());
    assert_eq!(
        post_alert(&app, alert("Down", "a", "resolved"))
            .await
            .status(),
        202
    );
    wait_for("the group sent on resolve", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    let t = &roam.texts()[0];
    assert!(
        t.starts_with("3 alerts on grouped\n")
            && t.contains("firing: 2")
            && t.contains("resolved: 1"),
        "{t}"
    );
    // The digest card is red while any of its alerts still fires.
    assert_eq!(roam.delivered()[0].body["color"], "danger");
    app.stop().await;
}

#[tokio::test]
async fn repeats_within_repeat_interval_are_not_resent() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[routes]]\nname = \"pushes\"\nsource = \"github\"\nto = \"{CHAT_A}\"\nrepeat_interval = \"1h\"\n"
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    app.push_accepted("d-1").await;
    wait_for("first push", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    // The same push again under new delivery ids (a sender re-firing it): same fingerprint.
    app.push_accepted("d-2").await;
    app.push_accepted("d-3").await;
    let start = std::time::Instant::now();
    while held_total(&app).await > 0 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        held_total(&app).await,
        0,
        "the repeats were looked at and dropped"
    );
    let ready = app.wait_ready(|r| pending(r) == 0).await;
    assert_eq!(pending(&ready), 0);
    assert_eq!(roam.delivered().len(), 1, "{:#?}", roam.texts());
    // A different push (another ref) is a different event.
    let mut other: Value = serde_json::from_slice(&fixture("github/push.json")).unwrap();
    other["ref"] = json!("refs/heads/other");
    let body = serde_json::to_vec(&other).unwrap();
    assert_eq!(app.github("push", "d-4", &body, SECRET).await.status(), 202);
    wait_for("the other push", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn over_max_messages_the_rest_is_one_digest() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = am_route(
        "capped",
        r#"max_messages = 2
max_messages_interval = "3s"
"#,
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    for (i, n) in [1, 2].iter().enumerate() {
        assert_eq!(
            post_alert(&app, alert("Down", &format!("h{i}"), "firing"))
                .await
                .status(),
            202
        );
        wait_for(
            "a message within the budget",
            Duration::from_secs(10),
            || roam.delivered().len() == *n,
        )
        .await;
    }
    for i in 2..7 {
        assert_eq!(
            post_alert(&app, alert("Down", &format!("h{i}"), "firing"))
                .await
                .status(),
            202
        );
    }
    wait_for(
        "the digest when the window ends",
        Duration::from_secs(15),
        || roam.delivered().len() == 3,
    )
    .await;
    let ready = app.wait_ready(|r| pending(r) == 0).await;
    assert_eq!(pending(&ready), 0);
    assert_eq!(held_total(&app).await, 0);
    let texts = roam.texts();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(
        texts[2].starts_with("5 more alerts on capped\n"),
        "{}",
        texts[2]
    );
    for i in 2..7 {
        assert!(texts[2].contains(&format!("h{i}")), "{}", texts[2]);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_pending_group_survives_a_restart_and_is_sent_once() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let extra = am_route(
        "grouped",
        r#"group_by = ["commonLabels.alertname"]
group_wait = "3s"
"#,
    );
    let cfg = test_config(&roam.url, &db, &extra);
    let app = TestApp::spawn(&cfg).await;
    for h in ["a", "b", "c"] {
        assert_eq!(
            post_alert(&app, alert("Down", h, "firing")).await.status(),
            202
        );
    }
    assert_eq!(held_total(&app).await, 3);
    app.stop().await;
    assert!(
        roam.delivered().is_empty(),
        "stopped before group_wait ended"
    );
    let app = TestApp::spawn(&cfg).await;
    wait_for(
        "the group after the restart",
        Duration::from_secs(15),
        || roam.delivered().len() == 1,
    )
    .await;
    let ready = app.wait_ready(|r| pending(r) == 0).await;
    assert_eq!(pending(&ready), 0);
    app.stop().await;
    // A third start finds nothing left to send.
    let app = TestApp::spawn(&cfg).await;
    assert_eq!(held_total(&app).await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.stop().await;
    assert_eq!(roam.delivered().len(), 1);
    assert!(
        roam.texts()[0].starts_with("3 alerts on grouped\n"),
        "{}",
        roam.texts()[0]
    );
}

/// A group whose stored settings cannot be read (a hand-edited database) is parked with
/// its events instead of being retried in a tight loop.
#[tokio::test]
async fn an_unreadable_group_is_parked_not_spun_on() {
    use roam_notify::grouping::flusher::{Flusher, Step};
    use roam_notify::storage::{HeldItem, NewEvent, Store, now_ms};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display()))
        .await
        .unwrap();
    let held = HeldItem {
        route: "r".into(),
        key: "k".into(),
        spec: "{\"not\": \"a spec\"}".into(),
        fingerprint: "f".into(),
        item: "{}".into(),
        wait_ms: 0,
        interval_ms: 0,
        flush_at: None,
    };
    store
        .commit_events(&[NewEvent {
            source: "s".into(),
            delivery_id: "d".into(),
            name: "x.y".into(),
            entity: None,
            routes: vec!["r".into()],
            messages: vec![],
            held: vec![held],
        }])
        .await
        .unwrap();
    let cfg = roam_notify::config::Config::from_toml_str("", "t.toml").unwrap();
    let pipeline = roam_notify::ingest::Pipeline::compile(&cfg, Default::default()).unwrap();
    let flusher = Flusher::new(
        store.clone(),
        roam_notify::ingest::Pipeline::current_templates(&Arc::new(
            arc_swap::ArcSwap::from_pointee(pipeline),
        )),
        Default::default(),
        Default::default(),
        Default::default(),
    );
    assert_eq!(flusher.step(now_ms() + 1).await.unwrap(), Step::Worked(1));
    assert_eq!(
        flusher.step(now_ms() + 1).await.unwrap(),
        Step::Idle { next_due_ms: None },
        "parked: no longer due"
    );
    assert_eq!(
        store.held_counts().await.unwrap(),
        vec![("r".to_string(), 1)],
        "its event is kept"
    );
}

/// An absurdly long group_interval is a wait, not an arithmetic overflow in the flusher.
#[tokio::test]
async fn huge_intervals_do_not_overflow() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = am_route(
        "forever",
        "group_by = []\ngroup_wait = \"0s\"\ngroup_interval = \"300000000y\"\nmax_messages = 5\nmax_messages_interval = \"300000000y\"\n",
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    assert_eq!(
        post_alert(&app, alert("Down", "a", "firing"))
            .await
            .status(),
        202
    );
    wait_for("the first group message", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    assert_eq!(
        post_alert(&app, alert("Down", "b", "firing"))
            .await
            .status(),
        202
    );
    assert_eq!(
        held_total(&app).await,
        1,
        "the next waits for group_interval"
    );
    app.stop().await;
}
