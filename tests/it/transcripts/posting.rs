//! What a transcript's messages say and where they go: routes by meeting name, guest
//! domain and action items; a backfill from the command line; the lookback; a failing
//! template; the console's page and its "Run now".

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_meeting_name_guest_domain_and_action_items() {
    let roam = FakeRoam::start().await;
    roam.add_user("jordan.smith@acme.com", U_JORDAN);
    roam.add_transcript(transcript(1, "Sales sync", 50, true, &[], &[]));
    roam.add_transcript(transcript(
        2,
        "Customer call",
        40,
        true,
        &["kim@client.io"],
        &[],
    ));
    roam.add_transcript(transcript(
        3,
        "Standup",
        30,
        true,
        &[],
        &[
            ("Ship it", U_ALEX),
            ("Write notes", "jordan.smith@acme.com"),
        ],
    ));
    roam.add_transcript(transcript(4, "Coffee", 20, true, &[], &[]));
    let mut long = transcript(5, "Planning", 10, true, &[], &[]);
    long["summary"] = json!(format!(
        "{} End of planning #5.",
        "A long discussion. ".repeat(700)
    ));
    roam.add_transcript(long);
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        r#"[routes.match]
"meeting.name" = "/(?i)^(sales sync|planning)/"

[[routes]]
name = "account-team"
source = "roam"
to = "{CHAT_B}"
[routes.when]
all = [ {{ field = "external", equals = true }} ]

[[routes]]
name = "with-actions"
source = "roam"
to = "{CHAT_C}"
dm_assignees = true
[routes.when]
all = [ {{ field = "action_items_count", gt = 0 }} ]
"#
    );
    let app = TestApp::spawn(&config(&roam, dir.path(), 200.0, &routes)).await;
    app.wait_ready(|r| r["transcripts"]["last_run_ok"] == true && r["outbox"]["pending"] == 0)
        .await;
    wait_for("messages", Duration::from_secs(10), || {
        roam.delivered().len() >= 7
    })
    .await;
    app.wait_ready(|r| r["outbox"]["pending"] == 0).await;
    let sent = roam.delivered();
    let to = |chat: &str| -> Vec<String> {
        sent.iter()
            .filter(|r| r.body["chat"] == chat)
            .map(|r| crate::blockkit::readable(&r.body))
            .collect()
    };
    let a = to(CHAT_A);
    assert!(a.iter().any(|t| t.contains("📝 Sales sync")), "{a:#?}");
    // The long planning summary is split into the first message and thread replies.
    let planning: Vec<&Recorded> = sent
        .iter()
        .filter(|r| {
            r.body["chat"] == CHAT_A && !crate::blockkit::readable(&r.body).contains("Sales sync")
        })
        .collect();
    assert!(planning.len() >= 2, "split: {}", planning.len());
    assert!(
        planning
            .iter()
            .all(|r| r.body["threadKey"] == planning[0].body["threadKey"])
    );
    assert!(planning.iter().all(|r| r.body.to_string().len() <= 8000));
    let b = to(CHAT_B);
    assert_eq!(b.len(), 1, "{b:#?}");
    assert!(
        b[0].contains("📝 Customer call") && b[0].contains("Guest kim@client.io (guest)"),
        "{}",
        b[0]
    );
    let c = to(CHAT_C);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert!(
        c[0].contains("**Action items (2)**") && c[0].contains("Ship it — Alex Chen"),
        "{}",
        c[0]
    );
    let alex = to(U_ALEX);
    assert_eq!(alex.len(), 1);
    assert!(
        alex[0].contains("Your action item from Standup") && alex[0].contains("Ship it"),
        "{}",
        alex[0]
    );
    let jordan = to(U_JORDAN);
    assert_eq!(
        jordan.len(),
        1,
        "the email assignee is found with user.lookup"
    );
    assert!(jordan[0].contains("Write notes"));
    assert!(
        sent.iter()
            .all(|r| !crate::blockkit::readable(&r.body).contains("Coffee")),
        "no route takes the coffee chat"
    );
    roam.assert_all_valid();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_from_the_command_line_dry_run_then_for_real() {
    let roam = FakeRoam::start().await;
    roam.add_transcript(transcript(1, "Old review", 60 * 24 * 20, true, &[], &[]));
    roam.add_transcript(transcript(2, "Older review", 60 * 24 * 25, true, &[], &[]));
    roam.add_transcript(transcript(3, "Recent", 30, true, &[], &[]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        config(&roam, dir.path(), 200.0, "").replace("enabled = true", "enabled = false"),
    )
    .unwrap();
    let since = (chrono::Utc::now() - chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let until = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    let run = |extra: &'static [&'static str]| {
        let (path, since, until) = (path.clone(), since.clone(), until.clone());
        tokio::task::spawn_blocking(move || {
            bin()
                .args(["transcripts", "backfill", "--config"])
                .arg(&path)
                .args(["--since", &since, "--until", &until])
                .args(extra)
                .output()
                .unwrap()
        })
    };
    let out = run(&["--dry-run"]).await.unwrap();
    let text = stdout_ok(&out);
    assert!(
        text.starts_with("dry run: 2 listed, 2 would be posted"),
        "{text}"
    );
    assert!(
        text.contains("📝 Old review")
            && text.contains("📝 Older review")
            && !text.contains("Recent"),
        "{text}"
    );

    let out = run(&[]).await.unwrap();
    let text = stdout_ok(&out);
    assert!(text.starts_with("backfill: 2 listed, 2 posted"), "{text}");
    let again = run(&[]).await.unwrap();
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.starts_with("backfill: 2 listed, 0 posted, 2 already posted"),
        "{text}"
    );

    // A daemon on that database delivers what the backfill queued; its own first sweep
    // (7-day lookback) adds the recent one and repeats neither backfilled transcript.
    let cfg = std::fs::read_to_string(&path)
        .unwrap()
        .replace("enabled = false", "enabled = true");
    let app = TestApp::spawn(&cfg).await;
    wait_for("backfilled and recent", Duration::from_secs(10), || {
        roam.delivered().len() == 3
    })
    .await;
    app.wait_ready(|r| r["transcripts"]["last_run_ok"] == true)
        .await;
    app.stop().await;
    for n in 1..=3 {
        assert_eq!(posts_of(&roam, n), 1, "transcript {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookback_longer_than_history_means_everything() {
    let roam = FakeRoam::start().await;
    roam.add_transcript(transcript(1, "Old", 60 * 24 * 400, true, &[], &[]));
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        config(&roam, dir.path(), 200.0, "").replace("lookback = \"7d\"", "lookback = \"100000y\"");
    let app = TestApp::spawn(&cfg).await;
    wait_for("the year-old transcript", Duration::from_secs(10), || {
        roam.delivered().len() == 1
    })
    .await;
    let listed = roam.calls("transcript.list");
    assert_eq!(listed[0].body["after"], "1970-01-01T00:00:00Z");
    app.stop().await;
}

/// Transcripts go through the same ingest step as webhooks: a template that fails still
/// posts the plain fallback, and the failure is logged and counted by route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_transcript_template_is_counted_like_a_webhook_one() {
    let roam = FakeRoam::start().await;
    roam.transcript_listing(10, false);
    roam.add_transcript(transcript(1, "Weekly", 60, true, &[], &[]));
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("tpl");
    std::fs::create_dir_all(tdir.join("roam")).unwrap();
    // A misspelt field: strict mode makes it an error.
    std::fs::write(tdir.join("roam/broken.hbs"), "{{meeting.nmae}}").unwrap();
    let extra = format!(
        "template = \"roam/broken\"\n\n[templates]\ndir = \"{}\"\n",
        tdir.display()
    );
    let app = TestApp::spawn(&config(&roam, dir.path(), 200.0, &extra)).await;
    wait_for("the transcript posted", Duration::from_secs(20), || {
        roam.delivered().len() == 1
    })
    .await;
    let text = &roam.texts()[0];
    assert!(
        text.contains("template failed") && text.contains("meeting.nmae"),
        "{text}"
    );
    let ready = app
        .wait_ready(|r| r["transcripts"]["last_run_ok"] == true)
        .await;
    assert_eq!(ready["webhooks"]["template_errors"], 1, "{ready}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("roam_notify_template_render_errors_total{route=\"meetings\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

/// The console's transcripts page: the schedule and checkpoint, and "Run now" posting a
/// transcript that arrived since the last run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_runs_and_runs_one_now() {
    let roam = FakeRoam::start().await;
    roam.add_transcript(transcript(1, "Standup", 90, true, &[], &[]));
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&roam, dir.path(), 200.0, "")).await;
    wait_for("the start-up catch-up run", Duration::from_secs(10), || {
        posts_of(&roam, 1) == 1
    })
    .await;
    roam.add_transcript(transcript(2, "Retro", 30, true, &[], &[]));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(app.admin_url("/transcripts"))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Next run") && html.contains("Checkpoint"),
        "{html}"
    );
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = html[at..].split('"').next().unwrap();
    let r = http
        .post(app.admin_url("/transcripts/run"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.contains("posted=1"), "{to}");
    wait_for("transcript 2 posted", Duration::from_secs(10), || {
        posts_of(&roam, 2) == 1
    })
    .await;
    let after = http.get(app.admin_url(&to)).send().await.unwrap();
    let html = after.text().await.unwrap();
    assert!(html.contains("Run finished:"), "{html}");
    assert!(html.contains(", 1 posted,"), "{html}");
    assert_eq!(posts_of(&roam, 1), 1, "nothing posted twice");
    app.stop().await;
}
