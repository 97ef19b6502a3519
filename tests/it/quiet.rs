//! Quiet time against the fake Roam API: silences from the config and from
//! `roam-notify silence` while the daemon runs, and a mute window that summarises.
//! (Mute windows across DST changes are unit-tested in `routing::quiet`.)

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// The push fixture on another branch, so it is a different event.
fn push_on(branch: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("github/push.json")).unwrap();
    v["ref"] = json!(format!("refs/heads/{branch}"));
    serde_json::to_vec(&v).unwrap()
}

async fn push(app: &TestApp, delivery: &str, branch: &str) -> Value {
    let r = app.github("push", delivery, &push_on(branch), SECRET).await;
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_config_silence_holds_back_what_it_matches_and_says_so() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"{ROUTE_ALL_GITHUB}
[[silences]]
comment = "release freeze noise"
ends = "2999-01-01T00:00:00Z"
source = "github"
match = {{ ref = "/^refs/heads/release-/" }}
"#
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    let reply = push(&app, "s-1", "release-1.2").await;
    assert_eq!(reply["messages"], 0, "{reply}");
    let quiet = reply["quiet"][0].as_str().unwrap();
    assert!(
        quiet.contains("silenced by config silences[0] (release freeze noise)"),
        "{quiet}"
    );
    let reply = push(&app, "s-2", "main").await;
    assert_eq!(reply["messages"], 1, "{reply}");
    wait_for("the unsilenced push", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    let ready = app.readyz().await;
    assert_eq!(ready["webhooks"]["silenced"], 1);
    assert!(roam.texts()[0].contains("main"));
    app.stop().await;
}

#[tokio::test]
async fn silence_added_from_the_cli_applies_to_the_running_daemon_and_expires() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&roam.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB);
    let cfg_path = dir.path().join("config.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let app = TestApp::spawn(&cfg).await;

    let out = bin()
        .args(["silence", "add", "--config"])
        .arg(&cfg_path)
        .args([
            "--match",
            "ref=refs/heads/noisy",
            "--source",
            "github",
            "--duration",
            "1h",
        ])
        .args(["--comment", "flaky branch", "--by", "tester"])
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    assert!(text.starts_with("silence #1 added"), "{text}");

    // Applied within the refresh interval: poll with new deliveries until one is silenced.
    let mut n = 0;
    let silenced = loop {
        n += 1;
        let reply = push(&app, &format!("c-{n}"), "noisy").await;
        if reply.get("quiet").is_some() {
            break reply;
        }
        assert!(n < 100, "the silence never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        silenced["quiet"][0]
            .as_str()
            .unwrap()
            .contains("silence #1 (flaky branch)"),
        "{silenced}"
    );
    let sent_before = n - 1;

    let list = bin()
        .args(["silence", "list", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("#1 active") && listed.contains("by tester: flaky branch"),
        "{listed}"
    );
    assert!(listed.contains("refs/heads/noisy"), "{listed}");

    // Bad input gets a clear answer and stores nothing.
    let bad = bin()
        .args(["silence", "add", "--config"])
        .arg(&cfg_path)
        .args(["--match", "ref=~([", "--duration", "1h", "--comment", "x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("regex"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let everything = bin()
        .args(["silence", "add", "--config"])
        .arg(&cfg_path)
        .args(["--duration", "1h", "--comment", "x"])
        .output()
        .unwrap();
    assert!(!everything.status.success());
    assert!(String::from_utf8_lossy(&everything.stderr).contains("silence everything"));

    let exp = bin()
        .args(["silence", "expire", "1", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(
        exp.status.success(),
        "{}",
        String::from_utf8_lossy(&exp.stderr)
    );
    let mut m = 0;
    loop {
        m += 1;
        let reply = push(&app, &format!("e-{m}"), "noisy").await;
        if reply.get("quiet").is_none() {
            break;
        }
        assert!(m < 100, "the expired silence still applies");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = sent_before + 1;
    wait_for(
        "deliveries before and after the silence",
        Duration::from_secs(10),
        || roam.delivered().len() == expected,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_mute_window_holds_events_and_summarises_them_when_it_ends() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A window around now, ending in 3 seconds (UTC, so the test is the same anywhere).
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::seconds(30)).format("%H:%M:%S");
    let end = (now + chrono::Duration::seconds(3)).format("%H:%M:%S");
    let extra = format!(
        r#"
[[mute_windows]]
name = "now"
timezone = "UTC"
start = "{start}"
end = "{end}"

[[routes]]
name = "summarised"
source = "github"
to = "{CHAT_A}"
mute = ["now"]
mute_summary = true
continue = true

[[routes]]
name = "dropped"
source = "github"
to = "{CHAT_B}"
mute = ["now"]
"#
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    let reply = push(&app, "m-1", "a").await;
    assert_eq!(reply["messages"], 0, "{reply}");
    let quiet: Vec<&str> = reply["quiet"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        quiet[0].contains("route summarised muted by window now")
            && quiet[0].ends_with("summarised then"),
        "{quiet:?}"
    );
    assert!(
        quiet[1].contains("route dropped muted") && quiet[1].ends_with("not sent"),
        "{quiet:?}"
    );
    push(&app, "m-2", "b").await;
    assert!(roam.delivered().is_empty());
    wait_for(
        "the summary when the window ends",
        Duration::from_secs(15),
        || roam.delivered().len() == 1,
    )
    .await;
    let sent = &roam.delivered()[0];
    assert_eq!(
        sent.body["chat"], CHAT_A,
        "only the summarising route sends"
    );
    let t = crate::blockkit::readable(&sent.body);
    assert!(
        t.starts_with("While muted (now): 2 events on summarised"),
        "{t}"
    );
    assert_eq!(app.readyz().await["webhooks"]["muted"], 4);
    // After the window, events flow again on both routes.
    push(&app, "m-3", "c").await;
    wait_for("messages after the window", Duration::from_secs(10), || {
        roam.delivered().len() == 3
    })
    .await;
    app.stop().await;
}
