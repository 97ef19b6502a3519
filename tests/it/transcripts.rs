//! Transcript processing against a fake Roam API serving `transcript.list` pages (cursors,
//! live meetings, an `after` filter comparing either start or end) and `transcript.info`
//! bodies shaped like chat.json's `Transcript`.
//!
//! tokio-cron-scheduler needs a multi-threaded runtime, hence the test flavour.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CHAT_C: &str = "G-33333333-3333-4333-8333-333333333333";
const U_ALEX: &str = "U-0cc74785-e31e-4403-aa5e-0cc7c1897e66";
const U_JORDAN: &str = "U-6a897aa3-0cab-4ba4-a48b-4be14a9585d0";

fn tid(n: u32) -> String {
    format!("f9274881-c48f-4838-865d-{n:012}")
}

/// A `transcript.info` body (chat.json `Transcript`). `minutes_ago`: when it started;
/// `ended`: None while live.
fn transcript(
    n: u32,
    name: &str,
    minutes_ago: i64,
    ended: bool,
    guests: &[&str],
    items: &[(&str, &str)],
) -> Value {
    let start = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let mut participants = vec![
        json!({"name": "Alex Chen", "email": "alex.chen@acme.com", "user": U_ALEX, "type": "member"}),
        json!({"name": "Jordan Smith", "email": "jordan.smith@acme.com", "user": U_JORDAN, "type": "member"}),
    ];
    for g in guests {
        participants
            .push(json!({"name": format!("Guest {g}"), "unconfirmedEmail": g, "type": "guest"}));
    }
    let mut t = json!({
        "id": tid(n),
        "meetingId": format!("dde68f39-3eb0-42ef-9873-{n:012}"),
        "start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventName": name,
        "participants": participants,
        "summary": format!("Summary of {name} #{n}."),
        "cues": [{"speaker": "Alex Chen", "text": "Hello.", "startOffset": 0, "endOffset": 900}],
        "actionItems": items.iter().map(|(title, who)| json!({"title": title, "assignee": who})).collect::<Vec<_>>(),
    });
    if ended {
        t["end"] = json!(
            (start + chrono::Duration::minutes(25))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    t
}

fn config(roam: &FakeRoam, dir: &std::path::Path, rate: f64, extra: &str) -> String {
    test_config(
        &roam.url,
        &dir.join("t.db"),
        &format!(
            r#"
[transcripts]
enabled = true
schedule = "0 0 1 1 *"
timezone = "Europe/Berlin"
lookback = "7d"
overlap = "1h"
internal_domains = ["acme.com"]

[[routes]]
name = "meetings"
source = "roam"
to = "{CHAT_A}"
{extra}"#
        ),
    )
    .replace(
        "rate_per_second = 200",
        &format!("rate_per_second = {rate}"),
    )
}

/// Runs a sweep through the admin API (waiting out one already running).
async fn sweep(app: &TestApp) -> Value {
    let start = Instant::now();
    loop {
        let r = app
            .http
            .post(app.admin_url("/-/transcripts/run"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            return r.json().await.unwrap();
        }
        assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sweep stayed busy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// chat.post messages per transcript number (by the summary text, `… #N.`).
fn posts_of(roam: &FakeRoam, n: u32) -> usize {
    let needle = format!("#{n}.");
    roam.texts().iter().filter(|t| t.contains(&needle)).count()
}

async fn pages_live_meetings_and_the_checkpoint(after_compares_end: bool) {
    let roam = FakeRoam::start().await;
    roam.transcript_listing(2, after_compares_end);
    for n in 1..=5 {
        roam.add_transcript(transcript(
            n,
            "Weekly",
            600 - i64::from(n) * 60,
            true,
            &[],
            &[],
        ));
    }
    roam.add_transcript(transcript(6, "Long one", 30, false, &[], &[]));
    // Older than the 7-day lookback: a new install does not post the whole history.
    roam.add_transcript(transcript(7, "Ancient", 60 * 24 * 10, true, &[], &[]));
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&roam, dir.path(), 200.0, "")).await;
    // No run recorded yet: the schedule catches up at start-up.
    wait_for("five transcripts posted", Duration::from_secs(20), || {
        roam.delivered().len() == 5
    })
    .await;
    let ready = app
        .wait_ready(|r| r["transcripts"]["last_run_ok"] == true)
        .await;
    assert_eq!(ready["transcripts"]["enabled"], true, "{ready}");
    assert!(
        ready["transcripts"]["next_run_at"]
            .as_str()
            .unwrap()
            .starts_with("20"),
        "{ready}"
    );
    assert!(
        roam.calls("transcript.list").len() >= 3,
        "followed nextCursor over 3 pages"
    );
    assert!(
        roam.calls("transcript.info")
            .iter()
            .all(|c| c.body["id"] != tid(6).as_str()),
        "a live meeting is not fetched"
    );
    for n in 1..=5 {
        assert_eq!(posts_of(&roam, n), 1, "transcript {n}");
    }
    let first = &roam.delivered()[0];
    assert_eq!(
        first.body["threadKey"]
            .as_str()
            .map(|k| k.starts_with("rn-t-")),
        Some(true),
        "one thread per transcript"
    );
    assert!(crate::blockkit::readable(&first.body).contains("📝 Weekly"));

    // The meeting ends; the next run posts it, and nothing else again.
    roam.update_transcript(transcript(6, "Long one", 30, true, &[], &[]));
    let report = sweep(&app).await;
    assert_eq!(report["processed"], 1, "{report}");
    wait_for("the sixth", Duration::from_secs(10), || {
        roam.delivered().len() == 6
    })
    .await;
    let report = sweep(&app).await;
    assert_eq!(report["processed"], 0, "{report}");
    assert_eq!(
        roam.calls("transcript.info").len(),
        6,
        "committed transcripts are not fetched again"
    );
    assert_eq!(roam.delivered().len(), 6);
    assert_eq!(posts_of(&roam, 7), 0, "outside the lookback");
    roam.assert_all_valid();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_pages_skips_live_meetings_when_after_compares_start() {
    pages_live_meetings_and_the_checkpoint(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_pages_skips_live_meetings_when_after_compares_end() {
    pages_live_meetings_and_the_checkpoint(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_is_retried_and_a_restart_mid_sweep_posts_each_once() {
    let roam = FakeRoam::start().await;
    for n in 1..=6 {
        roam.add_transcript(transcript(
            n,
            "Sync",
            300 - i64::from(n) * 30,
            true,
            &[],
            &[],
        ));
    }
    roam.fail_transcript(&tid(2), true);
    // list, info 1, info 2 (fails), info 3, then info 4 hangs for 3 s: the daemon is
    // stopped while the catch-up sweep is in the middle of it.
    roam.script_transcripts([
        Reply::Ok,
        Reply::Ok,
        Reply::Ok,
        Reply::Ok,
        Reply::Slow(Duration::from_secs(3)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&roam, dir.path(), 200.0, "");
    let app = TestApp::spawn(&cfg).await;
    wait_for("1 and 3 posted", Duration::from_secs(20), || {
        roam.delivered().len() == 2
    })
    .await;
    app.stop().await;
    assert_eq!(
        roam.delivered().len(),
        2,
        "stopped in the middle of the sweep"
    );
    assert!(
        roam.calls("transcript.info")
            .iter()
            .any(|c| c.status == 503),
        "transcript 2 failed"
    );

    roam.fail_transcript(&tid(2), false);
    let app = TestApp::spawn(&cfg).await;
    // The interrupted run recorded nothing, so start-up catches up; 2 is fetched again.
    wait_for("all six", Duration::from_secs(30), || {
        roam.delivered().len() == 6
    })
    .await;
    let ready = app
        .wait_ready(|r| r["transcripts"]["last_run_ok"] == true && r["outbox"]["pending"] == 0)
        .await;
    for n in 1..=6 {
        assert_eq!(posts_of(&roam, n), 1, "transcript {n}: {ready}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_racing_a_sweep_posts_once() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("\n[[sources]]\nname = \"roam\"\nkind = \"roam\"\nsecret = \"{WHSEC}\"\n");
    let app = TestApp::spawn(&config(&roam, dir.path(), 200.0, &extra)).await;
    app.wait_ready(|r| r["transcripts"]["last_run_ok"] == true)
        .await;
    for round in 1..=5u32 {
        let t = transcript(round, "Race", 10, true, &[], &[]);
        roam.add_transcript(t.clone());
        // The webhook carries metadata only (webhooks.json: Transcript without cues).
        let body = serde_json::to_vec(&json!({"id": t["id"], "meetingId": t["meetingId"], "start": t["start"], "end": t["end"], "participants": t["participants"]})).unwrap();
        let id = format!("msg_race_{round}");
        let ts = chrono::Utc::now().timestamp().to_string();
        let hook = app
            .http
            .post(app.url("/hooks/roam"))
            .header("webhook-id", &id)
            .header("webhook-timestamp", &ts)
            .header(
                "webhook-signature",
                sign_standard_webhooks(WHSEC, &id, &ts, &body),
            )
            .body(body)
            .send();
        let (hook, report) = tokio::join!(hook, sweep(&app));
        let hook = hook.unwrap();
        assert_eq!(hook.status(), 202);
        let j: Value = hook.json().await.unwrap();
        assert_eq!(j["transcript"], tid(round).as_str(), "{j}");
        assert!(report["failed"] == 0, "{report}");
        wait_for("the transcript posted", Duration::from_secs(10), || {
            posts_of(&roam, round) >= 1
        })
        .await;
    }
    // Let the queue settle, then count.
    app.wait_ready(|r| r["outbox"]["pending"] == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 1..=5 {
        assert_eq!(posts_of(&roam, n), 1, "transcript {n} posted once");
    }
    // A bad signature is refused and queues nothing.
    let r = app
        .http
        .post(app.url("/hooks/roam"))
        .header("webhook-id", "x")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,AAAA")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_during_a_sweep_pauses_and_nothing_is_lost() {
    let roam = FakeRoam::start().await;
    for n in 1..=3 {
        roam.add_transcript(transcript(n, "Busy", 100 - i64::from(n), true, &[], &[]));
    }
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&config(&roam, dir.path(), 200.0, "")).await;
    wait_for("first run", Duration::from_secs(20), || {
        roam.delivered().len() == 3
    })
    .await;
    for n in 4..=6 {
        roam.add_transcript(transcript(n, "Busy", 10 - i64::from(n), true, &[], &[]));
    }
    // The listing, then the first fetch, are refused with 429 once each.
    roam.script_transcripts([Reply::RateLimited("1"), Reply::Ok, Reply::RateLimited("1")]);
    let report = sweep(&app).await;
    assert_eq!(report["processed"], 3, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    wait_for("all six", Duration::from_secs(10), || {
        roam.delivered().len() == 6
    })
    .await;
    // Retry-After was honoured: the call after each 429 came at least ~1 s later.
    let calls: Vec<Recorded> = roam
        .recorded()
        .into_iter()
        .filter(|r| r.path.contains("transcript."))
        .collect();
    for (i, c) in calls.iter().enumerate() {
        if c.status == 429 {
            let next = &calls[i + 1];
            assert!(
                next.at - c.at >= Duration::from_millis(900),
                "call after a 429 came {:?} later",
                next.at - c.at
            );
        }
    }
    assert_eq!(calls.iter().filter(|c| c.status == 429).count(), 2);
    app.stop().await;
}

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
