//! The offline commands: check, render, healthcheck.

use crate::helpers::*;
use serde_json::Value;

fn repo(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `roam-notify check` on a config shipped in the repository (its secrets from the
/// environment); returns the report, failing the test when the check fails.
fn check_shipped(rel: &str) -> String {
    let out = bin()
        .args(["check", "--config"])
        .arg(repo(rel))
        .env("ROAM_NOTIFY_ROAM_API_KEY", "k")
        .env("GITHUB_WEBHOOK_SECRET", "x")
        .env("ROAM_NOTIFY_ADMIN_TOKEN", "t")
        .current_dir(repo(""))
        .output()
        .unwrap();
    stdout_ok(&out)
}

#[test]
fn check_passes_on_the_example_config_and_renders_every_template() {
    let text = check_shipped("config.toml.example");
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
    let payload = test_files().join("fixtures/github/pull_request.closed.merged.json");
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
    // The card as it reads, then the exact body Roam receives.
    let (preview, body) = text.split_once("\n--- chat.post body").unwrap();
    assert_eq!(
        preview.trim_end(),
        "[good]\n\
         **🟣 Merged: #3 Byao1276 patch 1**\n\
         [#3 Byao1276 patch 1](https://github.com/ailisp/gcbapp-buildconfig-example/pull/3) in **ailisp/gcbapp-buildconfig-example**\n\
         `byao1276-patch-1` → `master` · merged by ailisp\n\
         **Changes:** 4 commits, +6 −0 in 1 file\n\
         cli · by byao1276 · 2019-11-26 07:01 UTC\n\
         [Open pull request](https://github.com/ailisp/gcbapp-buildconfig-example/pull/3) · [Files changed](https://github.com/ailisp/gcbapp-buildconfig-example/pull/3/files)"
    );
    let json: Value = serde_json::from_str(body.split_once('\n').unwrap().1).unwrap();
    assert_eq!(json["color"], "good");
    assert!(crate::blockkit::errors(&json).is_empty(), "{json}");

    // --json: only the body; --format text: the text template, unchanged.
    let out = bin()
        .args(["render", "-t", "github/pull_request", "--json", "-p"])
        .arg(&payload)
        .output()
        .unwrap();
    let only: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(only, json);
    let out = bin()
        .args([
            "render",
            "-t",
            "github/pull_request",
            "--format",
            "text",
            "-p",
        ])
        .arg(&payload)
        .output()
        .unwrap();
    let (text, _) = String::from_utf8_lossy(&out.stdout)
        .split_once("\n--- chat.post body")
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
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
    let payload = test_files().join("fixtures/github/pull_request.closed.json");
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
    let text = stdout_ok(&out);
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
    // The card as it reads, then the exact body.
    assert!(
        text.contains("| **⚪ Closed: #2 Update the README with new information.**"),
        "{text}"
    );
    assert!(
        text.contains("chat.post {\"blocks\":[{\"text\":{\"text\":\"⚪ Closed: #2"),
        "the exact body: {text}"
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
            .contains("unknown source \"nope\" (configured: github, roam)")
    );
}

#[tokio::test]
async fn outbox_commands_show_retry_and_drop_messages() {
    let fake = FakeRoam::start().await;
    fake.script([Reply::Status(403, Some("Bot is not a member of this chat"))]);
    let dir = tempfile::tempdir().unwrap();
    // Slow retries, so a failed message sits still in `pending` while it is dropped.
    let toml = test_config(&fake.url, &dir.path().join("t.db"), ROUTE_ALL_GITHUB)
        .replace("retry_initial = \"50ms\"", "retry_initial = \"30s\"")
        .replace("retry_max = \"200ms\"", "retry_max = \"60s\"");
    let cfg_path = dir.path().join("c.toml");
    std::fs::write(&cfg_path, &toml).unwrap();
    let app = TestApp::spawn(&toml).await;
    app.push_accepted("o1").await;
    app.wait_ready(|r| r["outbox"]["dead"] == 1).await;

    let run = |args: &[&str]| {
        let out = bin()
            .arg("--config")
            .arg(&cfg_path)
            .arg("outbox")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, list, _) = run(&["list", "--status", "dead"]);
    assert_eq!(code, Some(0));
    assert!(
        list.contains("dead")
            && list.contains("all-github")
            && list.contains("Bot is not a member of this chat"),
        "{list}"
    );
    let (_, json, _) = run(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id = rows[0]["id"].as_i64().unwrap();
    let (_, shown, _) = run(&["show", &id.to_string()]);
    assert!(
        shown.contains("\"chat\\\":\\\"G-88bebce7"),
        "the chat.post body is shown: {shown}"
    );

    // Re-queue: the next pass delivers it (a new webhook wakes the worker).
    let (code, out, _) = run(&["retry", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}");
    app.push_accepted("o2").await;
    let ready = app.wait_ready(|r| r["outbox"]["delivered"] == 2).await;
    assert_eq!(ready["outbox"]["dead"], 0, "{ready}");
    let (code, _, err) = run(&["retry", &id.to_string()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not dead or dropped"), "{err}");

    // Drop a message Roam cannot take right now: kept, never sent.
    fake.set_down(true);
    app.push_accepted("o3").await;
    app.wait_ready(|r| r["delivery"]["retried"].as_u64().unwrap_or(0) >= 1)
        .await;
    let (_, json, _) = run(&["list", "--status", "pending", "--json"]);
    let pending: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pid = pending[0]["id"].as_i64().unwrap();
    let (code, out, _) = run(&["drop", &pid.to_string()]);
    assert_eq!(code, Some(0), "{out}");
    fake.set_down(false);
    let ready = app.wait_ready(|r| r["outbox"]["pending"] == 0).await;
    assert_eq!(ready["outbox"]["pending"], 0);
    assert_eq!(
        fake.delivered().len(),
        2,
        "the dropped message was not sent"
    );
    app.stop().await;
}

#[test]
fn check_runs_routing_tests_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        test_files().join("fixtures/github/pull_request.closed.merged.json"),
        dir.path().join("merged.json"),
    )
    .unwrap();
    let cfg = dir.path().join("c.toml");
    let write = |expected_routes: &str, colour: &str| {
        std::fs::write(
            &cfg,
            format!(
                r#"
[[sources]]
name = "github"
kind = "github"
secret = "x"

[[routes]]
name = "merged"
source = "github"
to = "{CHAT_A}"
continue = true
[routes.match]
"pull_request.merged" = true

[[routes]]
name = "all"
source = "github"
to = "{CHAT_B}"

[[tests]]
name = "a merged PR goes to both"
source = "github"
payload = "merged.json"
headers = {{ "X-GitHub-Event" = "pull_request" }}
routes = {expected_routes}
messages = 2
contains = ["🟣 Merged: #3 Byao1276 patch 1"]
color = "{colour}"
buttons = ["https://github.com/ailisp/gcbapp-buildconfig-example/pull/3"]
"#
            ),
        )
        .unwrap();
    };
    write(r#"["merged", "all"]"#, "good");
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("test     ok    a merged PR goes to both"),
        "{text}"
    );

    write(r#"["all"]"#, "danger");
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("test     FAIL  a merged PR goes to both: routes [\"merged\", \"all\"], expected [\"all\"]; colour [\"good\", \"good\"], expected \"danger\""), "{text}");
}

#[test]
fn routes_test_shows_grouping_and_quiet_routes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[storage]
url = "sqlite://{db}"
[[sources]]
name = "am"
kind = "alertmanager"
secret = "u:p"
[[silences]]
comment = "known flapping"
ends = "2999-01-01T00:00:00Z"
routes = ["silenced"]
[[routes]]
name = "grouped"
source = "am"
to = "{CHAT_A}"
group_by = ["commonLabels.alertname"]
continue = true
[[routes]]
name = "silenced"
source = "am"
to = "{CHAT_B}"
"#,
            db = dir.path().join("x.db").display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["routes", "test", "--config"])
        .arg(&cfg)
        .args(["--source", "am", "--payload"])
        .arg(test_files().join("fixtures/alertmanager/firing.two-alerts.zulip.json"))
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    assert!(
        text.contains(
            "→ route grouped holds it in group \"commonLabels.alertname=High CPU Temperature\""
        ),
        "{text}"
    );
    assert!(
        text.contains("| **🔥 FIRING: High CPU Temperature**"),
        "{text}"
    );
    assert!(
        text.contains("→ quiet: route silenced silenced by config silences[0] (known flapping)"),
        "{text}"
    );
}

#[test]
fn the_kubernetes_example_config_passes_check() {
    let text = check_shipped("deploy/kubernetes/config.toml");
    assert!(text.contains("check: ok"), "{text}");
}

#[test]
fn the_compose_example_config_passes_check() {
    let text = check_shipped("deploy/compose/config.toml");
    assert!(text.contains("check: ok"), "{text}");
}

#[test]
fn transcript_routing_is_testable_offline() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::copy(
        repo("templates/roam/transcript.sample.json"),
        dir.path().join("t.json"),
    )
    .unwrap();
    std::fs::write(
        &cfg,
        format!(
            r#"
[storage]
url = "sqlite://{db}"
[transcripts]
internal_domains = ["example.com"]

[[routes]]
name = "with-actions"
source = "roam"
to = "{CHAT_A}"
dm_assignees = true
[routes.when]
all = [ {{ field = "action_items_count", gte = 2 }}, {{ field = "external", equals = false }} ]

[[tests]]
name = "the sample meeting goes to the team and to each assignee"
source = "roam"
payload = "t.json"
routes = ["with-actions"]
messages = 3
contains = ["**Action items (2)**", "Your action item from Meeting"]
"#,
            db = dir.path().join("x.db").display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    assert!(text.contains("test     ok"), "{text}");

    let out = bin()
        .args(["routes", "test", "--config"])
        .arg(&cfg)
        .args(["--source", "roam", "--payload"])
        .arg(dir.path().join("t.json"))
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    assert!(text.contains("event roam.transcript.saved"), "{text}");
    assert!(text.contains("match    with-actions"), "{text}");
    assert!(
        text.contains("posts to U-6a897aa3-0cab-4ba4-a48b-4be14a9585d0"),
        "a DM to Jordan: {text}"
    );
}

/// `check` warns about a path that no sample payload of the route's kind has, naming the
/// route, the key and the path; an alert's label by its bare name (`alertname`) is found,
/// as at run time.
#[test]
fn check_warns_about_paths_no_sample_has() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[storage]
url = "sqlite://{}"
[[sources]]
name = "am"
kind = "alertmanager"
secret = "u:p"
[[routes]]
name = "by-alert"
source = "am"
to = "{CHAT_A}"
group_by = ["alertname", "commonLabels.alertname", "alertnme"]
fingerprint = ["commonLabels.instnace"]
[routes.match]
status = "firing"
[routes.when]
all = [ {{ field = "commonLabels.severity", equals = "critical" }}, {{ field = "labels.team", exists = true }} ]
"#,
            dir.path().join("t.db").display()
        ),
    )
    .unwrap();
    let out = bin()
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    let warns: Vec<&str> = text.lines().filter(|l| l.contains(" warn ")).collect();
    for (key, path) in [
        ("group_by", "alertnme"),
        ("fingerprint", "commonLabels.instnace"),
        ("when", "labels.team"),
    ] {
        assert!(
            warns
                .iter()
                .any(|l| l.contains("by-alert") && l.contains(&format!("{key} reads `{path}`"))),
            "{key} {path} not warned:\n{text}"
        );
    }
    assert_eq!(warns.len(), 3, "only those:\n{text}");
    assert!(
        text.contains("check: ok"),
        "warnings are not failures:\n{text}"
    );
}
