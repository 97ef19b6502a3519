//! Several replicas on one PostgreSQL database: two daemon processes behind a
//! "load balancer" (the test's senders), one of them killed with SIGKILL under load.
//! Skipped with a printed reason when no PostgreSQL is reachable (see
//! `roam_notify::storage::testing`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::helpers::*;

const EVENTS: usize = 240;
const RATE: f64 = 50.0;
const BURST: f64 = 10.0;

/// Posts a push to whichever live replica answers, starting with the `i`th, as a load
/// balancer would: a refused or cut connection goes to the next one. Returns the status.
async fn post_any(
    http: &reqwest::Client,
    ports: &Mutex<Vec<u16>>,
    i: usize,
    delivery: &str,
    body: &[u8],
) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in i.. {
        let live = ports.lock().unwrap().clone();
        let port = live[attempt % live.len()];
        let sent = http
            .post(format!("http://127.0.0.1:{port}/hooks/github"))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", sign(SECRET, body))
            .body(body.to_vec())
            .send()
            .await;
        if let Ok(r) = sent {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            if status < 500 {
                return (status, text);
            }
        }
        assert!(Instant::now() < deadline, "no replica accepted {delivery}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_one_killed_under_load_post_every_message_once() {
    let test = "two_replicas_with_one_killed_under_load_post_every_message_once";
    let Some(db) = roam_notify::storage::testing::postgres_url(test).await else {
        return;
    };
    let fake = FakeRoam::start().await;
    // Sends take a while, so the kill is likely to land while one is in flight.
    fake.set_latency(Duration::from_millis(15));
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl");
    std::fs::create_dir_all(&tpl).unwrap();
    std::fs::write(tpl.join("replica.hbs"), "{{_event.delivery_id}}").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[roam]
base_url = "{roam}"
api_key = "{KEY}"
rate_per_second = {RATE}
burst = {BURST}
request_timeout = "1s"
[storage]
url = "{db}"
lease = "3s"
[delivery]
retry_initial = "50ms"
retry_max = "200ms"
[templates]
dir = "{tpl}"
[[sources]]
name = "github"
kind = "github"
secret = "{SECRET}"
[[routes]]
name = "all"
source = "github"
to = ["{CHAT_A}", "{CHAT_B}"]
template = "replica"
"#,
            roam = fake.url,
            tpl = tpl.display()
        ),
    )
    .unwrap();
    let log = |n: &str| dir.path().join(format!("{n}.log"));
    let a = Daemon::start(&config, free_port(), &log("a"), &[]).await;
    let b = Daemon::start(&config, free_port(), &log("b"), &[]).await;
    let ports = Arc::new(Mutex::new(vec![a.port, b.port]));
    let body = fixture("github/push.json");
    let started = Instant::now();

    // 8 senders; every 8th delivery is sent again to the other replica (a redelivery).
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for s in 0..8 {
        let (ports, body, accepted) = (ports.clone(), body.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut dups = 0;
            for i in (s..EVENTS).step_by(8) {
                let delivery = format!("d-{i:04}");
                // 200 "duplicate" when a replica committed it but died before answering,
                // and the balancer's retry reached another one.
                let (status, text) = post_any(&http, &ports, i, &delivery, &body).await;
                assert!(
                    status == 202 || (status == 200 && text.contains("duplicate")),
                    "{delivery}: {status} {text}"
                );
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i % 8 == 0 {
                    let (status, text) = post_any(&http, &ports, i + 1, &delivery, &body).await;
                    assert!(
                        status == 200 && text.contains("duplicate"),
                        "{status} {text}"
                    );
                    dups += 1;
                }
            }
            dups
        }));
    }
    // Kill A (SIGKILL) a third of the way through, and bring up a replacement.
    wait_for("a third of the load", Duration::from_secs(60), || {
        accepted.load(std::sync::atomic::Ordering::Relaxed) >= EVENTS / 3
    })
    .await;
    let posted_before_kill = fake.delivered().len();
    ports.lock().unwrap().retain(|p| *p != a.port);
    let a_log = a.log.clone();
    let a_pid = a.child.id();
    a.kill9();
    let killed_at = Instant::now();
    // What A held when it died: claimed or being sent, released only by its lease.
    let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
    let held_by_a: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE status IN ('claimed', 'sending') AND claimed_by LIKE $1",
    )
    .bind(format!("%:{a_pid}:%"))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let c = Daemon::start(&config, free_port(), &log("c"), &[]).await;
    ports.lock().unwrap().push(c.port);
    let mut redeliveries = 0;
    for s in senders {
        redeliveries += s.await.unwrap();
    }
    let accepted_in = started.elapsed();

    wait_for("every message posted", Duration::from_secs(90), || {
        let texts: std::collections::HashSet<(String, String)> = fake
            .delivered()
            .iter()
            .map(|r| {
                (
                    r.body["chat"].as_str().unwrap_or("").to_string(),
                    crate::blockkit::readable(&r.body),
                )
            })
            .collect();
        texts.len() == 2 * EVENTS
    })
    .await;
    let all_posted_in = started.elapsed();
    // Roam having every text is not the end: a message A was sending when it died may have
    // reached Roam, yet stays 'sending' under A's claim until the 3 s lease runs out and a
    // live replica sends it again (flagged). Wait for the database to say every message is
    // delivered before counting what Roam got; a message left undelivered fails here.
    let expected = vec![("delivered".to_string(), 2 * EVENTS as i64)];
    let deadline = Instant::now() + Duration::from_secs(30);
    let statuses = loop {
        let statuses: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        if statuses == expected || Instant::now() > deadline {
            break statuses;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(statuses, expected);
    fake.assert_all_valid();

    // Exactly once, except a message the killed replica was sending at that instant: Roam
    // got it, A died before recording it, its lease ran out and another replica re-sent it.
    let mut count: HashMap<(String, String), usize> = HashMap::new();
    for r in fake.delivered() {
        let key = (
            r.body["chat"].as_str().unwrap().to_string(),
            crate::blockkit::readable(&r.body),
        );
        *count.entry(key).or_default() += 1;
    }
    let twice: Vec<&(String, String)> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(count.values().all(|n| *n <= 2), "{count:?}");
    // Different chats are sent side by side, each chat one message at a time: at most one
    // message per chat was in flight when A died.
    let mut chats_twice: Vec<&String> = twice.iter().map(|(chat, _)| chat).collect();
    chats_twice.sort();
    let resent = chats_twice.len();
    chats_twice.dedup();
    assert!(
        chats_twice.len() == resent,
        "a replica sends one message per chat at a time, so at most one per chat was in flight: {twice:?}"
    );
    for (chat, text) in &twice {
        let delivery = text.trim();
        let flagged: bool = sqlx::query_scalar(
            "SELECT m.maybe_duplicate FROM messages m JOIN events e ON e.id = m.event_id
             WHERE e.delivery_id = $1 AND m.chat = $2",
        )
        .bind(delivery)
        .bind(chat)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{delivery:?} to {chat}: {e}"));
        assert!(
            flagged,
            "{delivery} to {chat} was sent twice without being flagged"
        );
    }
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        events, EVENTS as i64,
        "redeliveries deduplicated across replicas"
    );

    // The Roam rate limit held for both replicas together: no 1-second window saw more
    // than the burst plus a second's worth (with 20% for network jitter). Two separate
    // buckets would allow twice that.
    let mut at: Vec<Instant> = fake.delivered().iter().map(|r| r.at).collect();
    at.sort();
    let mut max_in_a_second = 0;
    let mut lo = 0;
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= Duration::from_secs(1) {
            lo += 1;
        }
        max_in_a_second = max_in_a_second.max(hi - lo + 1);
    }
    let limit = (BURST + RATE * 1.2) as usize;
    assert!(
        max_in_a_second <= limit,
        "{max_in_a_second} posts in one second, limit {limit}"
    );

    // Exactly one live replica runs the background work (the flusher, queue retries,
    // pruning), also when the killed one held the lease: it is taken over when it runs
    // out (15 s after A's last renewal).
    let mut leaders = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        leaders = 0;
        for d in [&b, &c] {
            let r: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{}/readyz", d.port))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["replica"]["storage"], "postgres");
            if r["replica"]["leads_background_work"] == true {
                leaders += 1;
            }
        }
        if leaders == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(leaders, 1, "one live replica leads");
    let one_leader_after_kill = killed_at.elapsed();
    let a_log = std::fs::read_to_string(a_log).unwrap_or_default();
    println!(
        "two replicas: {EVENTS} events ({redeliveries} redelivered to the other replica) accepted in {:.1}s; \
         A killed after {posted_before_kill} posts at {:.1}s holding {held_by_a} claims; all {} messages posted by {:.1}s \
         ({:.1}s after the kill); posted twice: {} (flagged); most posts in one second: {max_in_a_second} \
         (rate {RATE}/s, burst {BURST}); one live leader {:.1}s after the kill; A's log: {} lines",
        accepted_in.as_secs_f64(),
        (killed_at - started).as_secs_f64(),
        2 * EVENTS,
        all_posted_in.as_secs_f64(),
        (all_posted_in - (killed_at - started)).as_secs_f64(),
        twice.len(),
        one_leader_after_kill.as_secs_f64(),
        a_log.lines().count(),
    );
    // b and c are stopped (killed) when dropped.
    drop((b, c));
}

/// Two replicas with the same transcript schedule (every 2 s): each scheduled sweep runs
/// on one of them, never on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scheduled_sweep_runs_on_one_replica() {
    let test = "each_scheduled_sweep_runs_on_one_replica";
    let Some(db) = roam_notify::storage::testing::postgres_url(test).await else {
        return;
    };
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(
        &roam.url,
        &dir.path().join("unused.db"),
        r#"
[transcripts]
enabled = true
schedule = "*/2 * * * * *"
timezone = "UTC"
"#,
    );
    let cfg = cfg
        .lines()
        .map(|l| {
            if l.starts_with("url = ") {
                format!("url = \"{db}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    let from = wall();
    let a = TestApp::spawn(&cfg).await;
    let b = TestApp::spawn(&cfg).await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let runs = |r: &serde_json::Value| {
        r["transcripts"]["runs_ok"].as_u64().unwrap()
            + r["transcripts"]["runs_failed"].as_u64().unwrap()
    };
    let (ra, rb) = (runs(&a.readyz().await), runs(&b.readyz().await));
    a.stop().await;
    b.stop().await;
    // Counted after both stopped, so no run comes later; 100 ms of slack for a timer that
    // fires a little before the wall clock reaches its time.
    let to = wall() + 100;
    // Scheduled times in the window, plus the catch-up at start-up (claimed like a tick).
    let ticks = (to / 2000 - from / 2000) as u64 + 1;
    let lists = roam.calls("transcript.list").len() as u64;
    println!(
        "two replicas, sweeps every 2 s for 9 s: {ticks} scheduled times (with the catch-up), runs {ra} + {rb} (before stopping), transcript.list calls {lists}"
    );
    assert!(ra + rb >= 3, "the schedule runs at all: {ra} + {rb}");
    assert!(
        lists <= ticks,
        "{lists} sweeps (transcript.list calls) for {ticks} scheduled times: a sweep ran on both replicas"
    );
}
