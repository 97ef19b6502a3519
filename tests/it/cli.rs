//! The offline commands: check, render, healthcheck.

use std::process::Command;

use crate::helpers::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roam-notify"));
    c.env_remove("ROAM_NOTIFY_CONFIG")
        .env_remove("ROAM_NOTIFY_ROAM_API_KEY");
    c
}

fn repo(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn check_passes_on_the_example_config_and_renders_every_template() {
    let out = bin()
        .args(["check", "--config"])
        .arg(repo("config.toml.example"))
        .env("GITHUB_WEBHOOK_SECRET", "x")
        .current_dir(repo(""))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for t in [
        "default",
        "github/push",
        "github/pull_request",
        "github/default",
        "generic/default",
    ] {
        assert!(
            text.contains(&format!("template ok    {t} ")),
            "{t} missing from:\n{text}"
        );
    }
    assert!(text.contains("route    ok    merged-prs"), "{text}");
    assert!(text.trim_end().ends_with("check: ok"), "{text}");
}

#[test]
fn check_fails_on_a_template_with_a_misspelt_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tpl/github")).unwrap();
    std::fs::write(
        dir.path().join("tpl/github/push.hbs"),
        "{{pusher.nmae}} pushed",
    )
    .unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[templates]\ndir = \"{}\"\n",
            dir.path().join("tpl").display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("template FAIL  github/push") && text.contains("pusher.nmae"),
        "{text}"
    );
    assert!(text.contains("check: 1 problem(s)"), "{text}");
}

#[test]
fn check_reports_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[roam]\nburst = 0\n").unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("config   FAIL") && text.contains("roam.burst"),
        "{text}"
    );
}

#[test]
fn render_prints_the_message_for_a_payload_file() {
    let payload = shared().join("fixtures/github/pull_request.closed.merged.json");
    let out = bin()
        .args(["render", "--template", "github/pull_request", "--payload"])
        .arg(&payload)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.trim_end(),
        "🟣 Merged [#3 Byao1276 patch 1](https://github.com/ailisp/gcbapp-buildconfig-example/pull/3) in **ailisp/gcbapp-buildconfig-example**\n\
         by byao1276 · byao1276-patch-1 → master · merged by ailisp"
    );
    let out = bin()
        .args(["render", "--template", "nope", "--payload"])
        .arg(&payload)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown template"));
}

#[tokio::test]
async fn healthcheck_succeeds_against_a_running_daemon_and_fails_without_one() {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), "")).await;
    let addr = app.addr.to_string();
    let ok = tokio::task::spawn_blocking(move || {
        bin()
            .args(["healthcheck", "--addr", &addr])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(ok.success());
    let addr = app.addr.to_string();
    app.stop().await;
    let down = tokio::task::spawn_blocking(move || {
        bin()
            .args(["healthcheck", "--addr", &addr])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(down.status.code(), Some(1));
}

#[test]
fn routes_test_explains_matches_misses_and_the_messages() {
    let payload = shared().join("fixtures/github/pull_request.closed.json");
    let out = bin()
        .args(["routes", "test", "--config"])
        .arg(repo("config.toml.example"))
        .args([
            "--source",
            "github",
            "--header",
            "X-GitHub-Event: pull_request",
            "--payload",
        ])
        .arg(&payload)
        .env("GITHUB_WEBHOOK_SECRET", "x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("event github.pull_request.closed"), "{text}");
    assert!(
        text.contains(
            "no       merged-prs: field `pull_request.merged` is \"false\", not \"true\""
        ),
        "{text}"
    );
    assert!(
        text.contains("match    everything-else-from-github"),
        "{text}"
    );
    assert!(
        text.contains(
            "→ route everything-else-from-github posts to G-00000000-0000-4000-8000-000000000002:"
        ),
        "{text}"
    );
    assert!(
        text.contains("| ⚪ Closed [#2 Update the README with new information.]"),
        "{text}"
    );

    let out = bin()
        .args(["routes", "test", "--config"])
        .arg(repo("config.toml.example"))
        .args(["--source", "nope", "--payload"])
        .arg(&payload)
        .env("GITHUB_WEBHOOK_SECRET", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unknown source \"nope\" (configured: github)")
    );
}
