//! The console in a real browser: `tests/console/e2e.mjs` drives Debian's Chromium with
//! playwright-core through sign-in, the overview, a dead letter retried from the page,
//! a payload carrying HTML, a silence previewed, added and expired, an explain run and
//! sign-out. This test sets the scene against a fake Roam, runs the script, and then
//! checks what the browser's clicks did to the daemon.
//!
//! Needs `chromium` and `npm ci` in `tests/console` (CI installs both and sets
//! `ROAM_NOTIFY_TEST_BROWSER_REQUIRED=1`, so there it cannot skip). With
//! `UPDATE_SCREENSHOTS=1` the pages are saved to `docs/console/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::console::{TOKEN, console_app};
use crate::helpers::*;

const XSS_TITLE: &str = "<script>window.__xss=1</script><img src=x onerror=window.__xss=1>";

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// Whether the browser and the driver are installed; with the requirement set, their
/// absence fails the test instead.
fn browser_ready() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some("chromium (apt-get install chromium)"),
        (!script_dir().join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci in tests/console)"),
        Command::new("node")
            .arg("--version")
            .output()
            .is_err()
            .then_some("node"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("ROAM_NOTIFY_TEST_BROWSER_REQUIRED").is_none(),
        "browser tests required but missing: {missing:?}"
    );
    eprintln!("skipped: the browser test needs {missing:?}");
    false
}

/// A JSON API answer, with the admin token.
async fn api(app: &TestApp, path: &str) -> Value {
    let r = app.http.get(app.admin_url(path)).bearer_auth(TOKEN).send();
    r.await.unwrap().json().await.unwrap()
}

/// The id of the newest message of a delivery, from the JSON API.
async fn message_id(app: &TestApp, delivery: &str) -> i64 {
    let list = api(app, "/api/outbox?limit=100").await;
    list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["delivery_id"] == delivery)
        .and_then(|m| m["id"].as_i64())
        .unwrap_or_else(|| panic!("no message for {delivery}: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    if !browser_ready() {
        return;
    }
    let (app, roam, dir) = console_app(Some(TOKEN)).await;
    // The first send is refused for good: a dead letter.
    roam.script([Reply::Status(403, Some("bot is not a member of this chat"))]);
    let issue = fixture("github/issues.opened.json");
    let r = app.github("issues", "browser-dead", &issue, SECRET).await;
    assert_eq!(r.status(), 202);
    app.wait_ready(|r| r["outbox"]["dead"] == 1).await;
    let escaped = serde_json::to_string(XSS_TITLE).unwrap();
    let xss = String::from_utf8(issue.clone())
        .unwrap()
        .replace("\"Spelling error in the README file\"", &escaped);
    assert!(xss.contains("<script>"));
    let r = app
        .github("issues", "browser-xss", xss.as_bytes(), SECRET)
        .await;
    assert_eq!(r.status(), 202);
    app.push_accepted("browser-push").await;
    wait_for("two deliveries", Duration::from_secs(10), || {
        roam.delivered().len() == 2
    })
    .await;
    let dead = message_id(&app, "browser-dead").await;
    let xss_id = message_id(&app, "browser-xss").await;

    let payload = dir.path().join("explain.json");
    std::fs::write(&payload, &issue).unwrap();
    let shots = match std::env::var_os("UPDATE_SCREENSHOTS") {
        Some(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console"),
        None => dir.path().join("screenshots"),
    };
    let base = format!("http://{}", app.admin.unwrap());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("e2e.mjs")
            .current_dir(script_dir())
            .env("CONSOLE_URL", base)
            .env("CONSOLE_TOKEN", TOKEN)
            .env("DEAD_ID", dead.to_string())
            .env("XSS_ID", xss_id.to_string())
            .env("XSS_TITLE", XSS_TITLE)
            .env("EXPLAIN_PAYLOAD", payload)
            .env("SCREENSHOTS", &shots)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "signed in",
        "overview",
        "dead letter retried and delivered",
        "payload HTML shown as text",
        "silence added and expired",
        "explain",
        "transcripts",
        "signed out",
    ] {
        assert!(
            stdout.contains(&format!("step: {step}\n")),
            "{step} not reached:\n{stdout}"
        );
    }

    // What the clicks did: the dead letter reached Roam on its retry.
    let delivered = roam.delivered();
    assert_eq!(delivered.len(), 3, "the retried message was posted once");
    let again = api(&app, &format!("/api/outbox/{dead}")).await;
    assert_eq!(again["status"], "delivered");
    // The silence was stored and then expired.
    let silences: Value = api(&app, "/api/silences?all=true").await;
    let list = silences["silences"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{silences}");
    assert_eq!(list[0]["comment"], "browser test: maintenance");
    assert_eq!(list[0]["expired"], true, "{silences}");
    assert_eq!(list[0]["created_by"], "console");
    app.stop().await;
}
