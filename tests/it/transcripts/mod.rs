//! Transcript processing against a fake Roam API serving `transcript.list` pages (cursors,
//! live meetings, an `after` filter comparing either start or end) and `transcript.info`
//! bodies shaped like chat.json's `Transcript`.
//!
//! tokio-cron-scheduler needs a multi-threaded runtime, hence the test flavour.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

mod posting;

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
