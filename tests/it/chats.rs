//! `roam-notify chats` (every page of chat.list, against the fake) and the
//! `Roam-Version` header on every call to Roam.

use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) fn chats() -> Vec<Value> {
    vec![
        json!({"id": "C-295155ae-7df5-4ed5-9ebc-89a170559c81", "started": "2025-12-13T05:07:54Z", "name": "Engineering Team", "group": "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"}),
        json!({"id": "C-f2976612-ffdc-4240-8ff6-6dda54bc4917", "started": "2025-11-13T22:21:51Z", "name": "Sales Team", "group": "G-c6040d77-a61c-4834-a939-fe3e687ffd72"}),
        json!({"id": "D-53b8a72b-b442-4da2-94ea-41b6116c14ea", "started": "2025-10-18T23:29:25Z", "name": "Alex Chen"}),
        json!({"id": "P-0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "started": "2025-10-01T08:00:00Z", "name": "Alex Chen, Jordan Smith, Kim Lee"}),
        json!({"id": "C-11111111-2222-4333-8444-555555555555", "started": "2025-09-01T08:00:00Z", "name": "Deploys", "group": "G-33333333-3333-4333-8333-333333333333"}),
    ]
}

fn config(fake: &FakeRoam, dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            "[roam]\nbase_url = \"{}\"\n[storage]\nurl = \"sqlite://{}\"\n",
            fake.url,
            dir.join("t.db").display()
        ),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_lists_every_page_with_kinds_and_ids() {
    let fake = FakeRoam::start().await;
    fake.set_chats(chats(), 2);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&fake, dir.path());
    // The command blocks; the fake answers on the runtime's other worker.
    let run = |args: &[&str]| {
        bin()
            .arg("chats")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("ROAM_NOTIFY_ROAM_API_KEY", KEY)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let text = stdout_ok(&out);
    for (name, kind, id) in [
        (
            "Engineering Team",
            "channel",
            "C-295155ae-7df5-4ed5-9ebc-89a170559c81",
        ),
        (
            "Sales Team",
            "channel",
            "C-f2976612-ffdc-4240-8ff6-6dda54bc4917",
        ),
        ("Alex Chen", "DM", "D-53b8a72b-b442-4da2-94ea-41b6116c14ea"),
        (
            "Alex Chen, Jordan Smith, Kim Lee",
            "multi-DM",
            "P-0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        ),
        (
            "Deploys",
            "channel",
            "C-11111111-2222-4333-8444-555555555555",
        ),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")) && l.contains(id))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert!(line.contains(kind), "{line}");
    }
    assert!(
        text.contains("G-88bebce7-6cbb-4666-96f9-5c02d73e6661"),
        "{text}"
    );
    assert!(text.contains("5 chat(s)"), "{text}");
    let calls = fake.calls("/v0/chat.list");
    assert_eq!(calls.len(), 3, "three pages of two");
    assert!(
        calls
            .iter()
            .all(|c| c.roam_version.as_deref() == Some("2026-07-07")),
        "Roam-Version on every call"
    );

    let out = run(&["--filter", "TEAM", "--json"]);
    let list: Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Engineering Team", "Sales Team"]);
}

#[test]
fn chats_without_a_key_says_one_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "").unwrap();
    let out = bin()
        .arg("chats")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("roam.api_key") && err.contains("chat:read"),
        "{err}"
    );
}

#[tokio::test]
async fn every_call_to_roam_names_the_api_version() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB)
        .replace("burst = 50", "burst = 50\napi_version = \"2026-08-07\"");
    let app = TestApp::spawn(&toml).await;
    app.push_accepted("v-1").await;
    wait_for("delivery", std::time::Duration::from_secs(10), || {
        fake.delivered().len() == 1
    })
    .await;
    let calls = fake.recorded();
    assert!(calls.len() >= 2, "token.info and chat.post");
    for c in &calls {
        assert_eq!(c.roam_version.as_deref(), Some("2026-08-07"), "{}", c.path);
    }
    app.stop().await;
    let e =
        roam_notify::config::Config::from_toml_str("[roam]\napi_version = \"latest\"", "t.toml")
            .unwrap_err()
            .to_string();
    assert!(
        e.contains("roam.api_version") && e.contains("2026-07-07"),
        "{e}"
    );
}
