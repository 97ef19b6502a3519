//! The storage suite: every test runs on SQLite and on PostgreSQL (a fresh schema per
//! test; skipped with a printed reason when no server is reachable, see `testing`).
//! The `replicas` tests are PostgreSQL only: two stores on one schema stand for two
//! replicas.

use std::time::Duration;

use super::*;

pub(super) fn ev(id: &str, chats: &[&str]) -> NewEvent {
    NewEvent {
        source: "gh".into(),
        delivery_id: id.into(),
        name: "github.push".into(),
        entity: None,
        routes: vec!["r".into()],
        messages: chats
            .iter()
            .map(|c| NewMessage {
                route: "r".into(),
                chat: c.to_string(),
                request: serde_json::json!({"chat": c, "text": id}).to_string(),
                render_error: None,
                op: MessageOp::Post,
                entity_key: None,
            })
            .collect(),
        held: vec![],
    }
}

fn held(id: &str, route: &str, key: &str) -> NewEvent {
    NewEvent {
        held: vec![HeldItem {
            route: route.into(),
            key: key.into(),
            spec: "{}".into(),
            fingerprint: format!("fp-{id}"),
            item: serde_json::json!({ "title": id }).to_string(),
            wait_ms: 0,
            interval_ms: 1000,
            flush_at: None,
        }],
        ..ev(id, &[])
    }
}

/// Each test is an `async fn(url)`; this makes a `sqlite` and a `postgres` test of it.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$test(format!("sqlite://{}/x/t.db", dir.path().display())).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(url) = crate::storage::testing::postgres_url(stringify!($test)).await {
                    super::$test(url).await;
                }
            }
        }
    )*};
}

on_both_backends!(
    duplicates_and_per_chat_order,
    a_waiting_head_holds_back_its_chat_only,
    prune_keeps_dead_and_pending_and_events_still_referenced,
    a_group_is_flushed_once,
    outbox_admin_and_silences,
    transcript_queue_and_state,
    text_with_nul_from_a_payload_is_stored,
);

mod caches;
mod listing;
mod lock_order;

/// Claims last 1 ms here, so a reopened store sees the earlier one's sends as cut short.
fn short_lease() -> ReplicaSettings {
    ReplicaSettings {
        lease: Duration::from_millis(1),
    }
}

async fn duplicates_and_per_chat_order(url: String) {
    let s = Store::open_with(&url, short_lease()).await.unwrap();
    let r = s
        .commit_events(&[ev("a", &["C1", "C2"]), ev("b", &["C1"]), ev("a", &["C1"])])
        .await
        .unwrap();
    assert!(matches!(r[0], Committed::Inserted { messages: 2, .. }));
    assert!(matches!(r[1], Committed::Inserted { messages: 1, .. }));
    assert_eq!(
        r[2],
        Committed::Duplicate {
            routes: vec!["r".into()]
        }
    );
    let due = s.claim_due(now_ms() + 1, 10).await.unwrap();
    // One head per chat: message a->C1 and a->C2; b->C1 waits behind a->C1.
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|m| m.source == "gh" && m.delivery_id == "a"));
    assert!(s.mark_sending(due[0].id).await.unwrap());
    s.release_claims(&[due[0].id, due[1].id]).await.unwrap();
    // Reopen: the in-flight one is recovered and flagged; the released one is not.
    s.close().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let s = Store::open(&url).await.unwrap();
    assert_eq!(s.recover_in_flight().await.unwrap(), vec![due[0].id]);
    let again = s.claim_due(now_ms() + 1, 10).await.unwrap();
    let flagged: Vec<(i64, bool)> = again.iter().map(|m| (m.id, m.maybe_duplicate)).collect();
    assert!(flagged.contains(&(due[0].id, true)), "{flagged:?}");
    assert!(flagged.contains(&(due[1].id, false)), "{flagged:?}");
    let st = s.stats().await.unwrap();
    assert_eq!(st.pending, 3);
    s.close().await;
}

async fn a_waiting_head_holds_back_its_chat_only(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.commit_events(&[ev("1", &["A", "B"]), ev("2", &["A", "B"]), ev("3", &["C"])])
        .await
        .unwrap();
    let now = now_ms() + 1;
    let heads = s.claim_due(now, 10).await.unwrap();
    let mut got: Vec<(String, String)> = heads
        .iter()
        .map(|m| (m.chat.clone(), m.request.clone()))
        .collect();
    got.sort();
    assert_eq!(got.len(), 3);
    assert!(got[0].1.contains("\"text\":\"1\"") && got[0].0 == "A");
    // A's head must wait a minute: A's second message is not offered, B and C are.
    let a_head = heads.iter().find(|m| m.chat == "A").unwrap();
    assert!(s.mark_sending(a_head.id).await.unwrap());
    s.retry_later(a_head.id, now + 60_000, "503", true)
        .await
        .unwrap();
    let ids: Vec<i64> = heads.iter().map(|m| m.id).collect();
    s.release_claims(&ids).await.unwrap();
    let later = s.claim_due(now, 10).await.unwrap();
    assert!(later.iter().all(|m| m.chat != "A"), "{later:?}");
    assert_eq!(later.len(), 2);
    for m in &later {
        assert!(s.mark_sending(m.id).await.unwrap());
        s.mark_delivered(m.id, None).await.unwrap();
    }
    // B's second message is now its head; A still waits; C is done.
    let next = s.claim_due(now, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].chat, "B");
    s.mark_delivered(next[0].id, None).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(now + 60_000));
    let st = s.stats().await.unwrap();
    assert_eq!((st.pending, st.delivered, st.dead), (2, 3, 0));
    let a = s.get_message(a_head.id).await.unwrap().unwrap();
    assert_eq!((a.attempts, a.last_error.as_deref()), (1, Some("503")));
    s.close().await;
}

async fn prune_keeps_dead_and_pending_and_events_still_referenced(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.commit_events(&[
        ev("a", &["A"]),
        ev("b", &["B"]),
        ev("c", &["C"]),
        ev("d", &[]),
    ])
    .await
    .unwrap();
    let due = s.claim_due(now_ms() + 1, 10).await.unwrap();
    let by_chat = |c: &str| due.iter().find(|m| m.chat == c).unwrap().id;
    s.mark_delivered(by_chat("A"), None).await.unwrap();
    s.mark_dead(by_chat("B"), "403").await.unwrap();
    s.release_claims(&[by_chat("C")]).await.unwrap();
    // C stays pending.
    let (m, e) = s.prune(now_ms() + 60_000).await.unwrap();
    assert_eq!(
        (m, e),
        (1, 2),
        "A's message, then events a (now empty) and d (never had one)"
    );
    let st = s.stats().await.unwrap();
    assert_eq!((st.pending, st.dead, st.delivered), (1, 1, 0));
    // Pruned events no longer deduplicate; kept ones still do.
    let again = s
        .commit_events(&[ev("a", &[]), ev("b", &[])])
        .await
        .unwrap();
    assert!(matches!(again[0], Committed::Inserted { .. }));
    assert!(matches!(again[1], Committed::Duplicate { .. }));
    s.close().await;
}

async fn a_group_is_flushed_once(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.commit_events(&[
        held("1", "r", "k"),
        held("2", "r", "k"),
        held("2", "r", "k"),
    ])
    .await
    .unwrap();
    assert_eq!(s.held_counts().await.unwrap(), vec![("r".to_string(), 2)]);
    let due = s.due_groups(now_ms() + 1, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let items = s.group_items(&[due[0].id]).await.unwrap();
    assert_eq!(items.len(), 2);
    let flush = GroupFlush {
        route: "r".into(),
        group_ids: vec![due[0].id],
        upto_item_id: items[1].id,
        items: 2,
        messages: vec![(
            items[1].event_id,
            NewMessage {
                route: "r".into(),
                chat: "G".into(),
                request: "{\"chat\":\"G\",\"text\":\"2 items\"}".into(),
                render_error: None,
                op: MessageOp::Post,
                entity_key: None,
            },
        )],
        fingerprints: vec!["fp-1".into(), "fp-2".into()],
        window: Some((5, 1)),
        interval_ms: 1000,
    };
    assert!(s.apply_flush(&flush).await.unwrap());
    // A second flush of the same items (another replica's, say) writes nothing.
    assert!(!s.apply_flush(&flush).await.unwrap());
    assert_eq!(s.stats().await.unwrap().pending, 1);
    assert!(s.held_counts().await.unwrap().is_empty());
    assert_eq!(s.route_window("r").await.unwrap(), Some((5, 1)));
    let fps = s.sent_fingerprints("r", 0).await.unwrap();
    assert!(fps.contains("fp-1") && fps.contains("fp-2"));
    assert_eq!(s.next_group_due().await.unwrap(), None);
    // The overflow digest takes other groups' items.
    s.commit_events(&[held("3", "r", "k2")]).await.unwrap();
    let g2 = s.due_groups(now_ms() + 1, 10).await.unwrap()[0].id;
    s.merge_groups("r", "digest", "{}", &[g2], now_ms() + 5000)
        .await
        .unwrap();
    let due = s.due_groups(now_ms() + 10_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].key, "digest");
    assert_eq!(s.group_items(&[due[0].id]).await.unwrap().len(), 1);
    s.park_group(due[0].id).await.unwrap();
    assert_eq!(s.next_group_due().await.unwrap(), None);
    s.close().await;
}

async fn outbox_admin_and_silences(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.commit_events(&[ev("a", &["A"]), ev("b", &["B"])])
        .await
        .unwrap();
    let due = s.claim_due(now_ms() + 1, 10).await.unwrap();
    s.mark_dead(due[0].id, "403 forbidden").await.unwrap();
    s.release_claims(&[due[1].id]).await.unwrap();
    let list = |status: Option<&'static str>| MessageQuery {
        status,
        limit: 10,
        ..Default::default()
    };
    let dead = s.list_messages(&list(Some("dead"))).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("403 forbidden"));
    assert_eq!(
        s.list_messages(&list(Some("pending"))).await.unwrap().len(),
        1
    );
    let all = s.list_messages(&list(None)).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].id > all[1].id, "newest first");
    assert!(s.requeue(due[0].id).await.unwrap());
    assert!(!s.requeue(due[0].id).await.unwrap(), "not dead any more");
    assert!(s.drop_message(due[0].id).await.unwrap());
    let m = s.get_message(due[0].id).await.unwrap().unwrap();
    assert_eq!(m.status, "dropped");
    assert_eq!(s.requeue_all_dead().await.unwrap(), 0);
    assert!(s.get_message(999_999).await.unwrap().is_none());

    let id = s
        .add_silence("{}", 0, now_ms() + 60_000, "deploy", "ops")
        .await
        .unwrap();
    let list = s.list_silences(false).await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(!list[0].expired);
    assert!(s.expire_silence(id).await.unwrap());
    assert!(!s.expire_silence(id).await.unwrap());
    assert!(s.list_silences(false).await.unwrap().is_empty());
    assert!(s.list_silences(true).await.unwrap()[0].expired);
    s.close().await;
}

async fn transcript_queue_and_state(url: String) {
    let s = Store::open(&url).await.unwrap();
    assert!(s.enqueue_transcript("t1").await.unwrap());
    assert!(!s.enqueue_transcript("t1").await.unwrap());
    s.transcript_failed("t1", "503").await.unwrap();
    let q = s.queued_transcripts().await.unwrap();
    assert_eq!((q[0].id.as_str(), q[0].attempts), ("t1", 1));
    s.dequeue_transcript("t1").await.unwrap();
    assert!(s.queued_transcripts().await.unwrap().is_empty());
    s.set_transcript_state(&[("checkpoint", "x".into()), ("last_run_ok", "1".into())])
        .await
        .unwrap();
    s.set_transcript_state(&[("checkpoint", "y".into())])
        .await
        .unwrap();
    assert_eq!(
        s.transcript_state("checkpoint").await.unwrap().as_deref(),
        Some("y")
    );
    assert!(!s.has_event("gh", "a").await.unwrap());
    s.commit_events(&[ev("a", &[])]).await.unwrap();
    assert!(s.has_event("gh", "a").await.unwrap());
    s.close().await;
}

/// A payload may carry NUL (JSON "\u0000") into names, entities, delivery ids and group
/// keys; PostgreSQL text cannot hold it. Such an event must still commit (not 503 on
/// every retry), deduplicate, and be found again.
async fn text_with_nul_from_a_payload_is_stored(url: String) {
    let s = Store::open(&url).await.unwrap();
    let mut e = ev("d\0x", &["A"]);
    e.name = "x.\0y".into();
    e.entity = Some("ent\0ity".into());
    e.messages[0].render_error = Some("bad \0 template".into());
    e.messages[0].entity_key = Some("r\0A\0ent".into());
    e.messages[0].op = MessageOp::Upsert;
    let mut h = held("h\0", "r", "k=\0");
    h.entity = Some("\0".into());
    let r = s.commit_events(&[e.clone(), h, e]).await.unwrap();
    assert!(
        matches!(r[0], Committed::Inserted { messages: 1, .. }),
        "{r:?}"
    );
    assert!(matches!(r[1], Committed::Inserted { held: 1, .. }), "{r:?}");
    assert!(matches!(r[2], Committed::Duplicate { .. }), "{r:?}");
    assert!(s.has_event("gh", "d\0x").await.unwrap());
    let m = s.claim_due(now_ms() + 1, 10).await.unwrap().remove(0);
    s.mark_delivered(
        m.id,
        Some(EntityMessage {
            entity_key: m.entity_key.as_deref().unwrap(),
            chat: "A",
            timestamp: 7,
        }),
    )
    .await
    .unwrap();
    assert_eq!(s.entity_message("r\0A\0ent").await.unwrap(), Some(7));
    assert_eq!(s.held_counts().await.unwrap(), vec![("r".to_string(), 1)]);
    s.commit_events(&[ev("again\0", &["A"])]).await.unwrap();
    let m = s.claim_due(now_ms() + 1, 10).await.unwrap().remove(0);
    s.mark_dead(m.id, "roam said \0").await.unwrap();
    s.close().await;
}

/// Several replicas on one PostgreSQL database.
mod replicas {
    use super::*;

    async fn two(test: &str, lease: Duration) -> Option<(Store, Store)> {
        let url = crate::storage::testing::postgres_url(test).await?;
        let a = Store::open_with(&url, ReplicaSettings { lease })
            .await
            .unwrap();
        let b = Store::open_with(&url, ReplicaSettings { lease })
            .await
            .unwrap();
        assert_ne!(a.replica_id(), b.replica_id());
        Some((a, b))
    }

    #[tokio::test]
    async fn each_message_is_claimed_by_one_replica() {
        let Some((a, b)) = two(
            "each_message_is_claimed_by_one_replica",
            Duration::from_secs(60),
        )
        .await
        else {
            return;
        };
        let events: Vec<NewEvent> = (0..60)
            .map(|i| ev(&i.to_string(), &[&format!("C{i}")]))
            .collect();
        a.commit_events(&events).await.unwrap();
        let (mut got_a, mut got_b) = (vec![], vec![]);
        loop {
            let (ca, cb) = tokio::join!(a.claim_due(now_ms() + 1, 7), b.claim_due(now_ms() + 1, 7));
            let (ca, cb) = (ca.unwrap(), cb.unwrap());
            if ca.is_empty() && cb.is_empty() {
                break;
            }
            got_a.extend(ca.iter().map(|m| m.id));
            got_b.extend(cb.iter().map(|m| m.id));
        }
        let mut all: Vec<i64> = got_a.iter().chain(&got_b).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            got_a.len() + got_b.len(),
            "a message was claimed twice"
        );
        assert_eq!(all.len(), 60);
        // A replica cannot send what the other claimed.
        assert!(!b.mark_sending(got_a[0]).await.unwrap());
        assert!(a.mark_sending(got_a[0]).await.unwrap());
        // Releasing gives them back to anyone.
        a.release_claims(&got_a).await.unwrap();
        let back = b.claim_due(now_ms() + 1, 100).await.unwrap();
        assert_eq!(back.len(), got_a.len() - 1, "all but the one being sent");
    }

    #[tokio::test]
    async fn a_dead_replicas_claims_are_taken_over() {
        let Some((a, b)) = two(
            "a_dead_replicas_claims_are_taken_over",
            Duration::from_millis(300),
        )
        .await
        else {
            return;
        };
        a.commit_events(&[ev("1", &["A"]), ev("2", &["A"]), ev("3", &["B"])])
            .await
            .unwrap();
        let claimed = a.claim_due(now_ms() + 1, 10).await.unwrap();
        assert_eq!(claimed.len(), 2);
        let sending = claimed.iter().find(|m| m.chat == "A").unwrap().id;
        assert!(a.mark_sending(sending).await.unwrap());
        // While A's claims are live, B gets nothing: not even A's second message for chat A.
        assert!(b.claim_due(now_ms() + 1, 10).await.unwrap().is_empty());
        // A "dies": its leases run out.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let taken = b.claim_due(now_ms() + 1, 10).await.unwrap();
        let flags: Vec<(String, bool)> = taken
            .iter()
            .map(|m| (m.chat.clone(), m.maybe_duplicate))
            .collect();
        assert_eq!(taken.len(), 2, "{flags:?}");
        assert!(
            flags.contains(&("A".into(), true)),
            "was being sent: maybe a duplicate"
        );
        assert!(
            flags.contains(&("B".into(), false)),
            "only claimed: never sent"
        );
        assert!(!a.mark_sending(sending).await.unwrap(), "A's claim is gone");
    }

    #[tokio::test]
    async fn redeliveries_racing_on_two_replicas_insert_once() {
        let Some((a, b)) = two(
            "redeliveries_racing_on_two_replicas_insert_once",
            Duration::from_secs(60),
        )
        .await
        else {
            return;
        };
        let mut forward: Vec<NewEvent> = (0..200).map(|i| ev(&i.to_string(), &["X"])).collect();
        let backward: Vec<NewEvent> = forward.iter().rev().cloned().collect();
        forward.push(ev("7", &["X"]));
        let (ra, rb) = tokio::join!(a.commit_events(&forward), b.commit_events(&backward));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let inserted = ra
            .iter()
            .chain(&rb)
            .filter(|c| matches!(c, Committed::Inserted { .. }))
            .count();
        assert_eq!(inserted, 200);
        assert_eq!(a.stats().await.unwrap().pending, 200);
    }

    #[tokio::test]
    async fn leases_and_scheduled_runs() {
        let Some((a, b)) = two("leases_and_scheduled_runs", Duration::from_secs(60)).await else {
            return;
        };
        let ttl = Duration::from_secs(30);
        assert!(a.try_lease("bg", a.replica_id(), ttl).await.unwrap());
        assert!(!b.try_lease("bg", b.replica_id(), ttl).await.unwrap());
        assert!(
            a.try_lease("bg", a.replica_id(), ttl).await.unwrap(),
            "renewal"
        );
        // A resigns (ttl 0): B takes over.
        a.try_lease("bg", a.replica_id(), Duration::ZERO)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(b.try_lease("bg", b.replica_id(), ttl).await.unwrap());
        assert!(!a.try_lease("bg", a.replica_id(), ttl).await.unwrap());

        assert!(a.claim_tick("sweep", 1000).await.unwrap());
        assert!(!b.claim_tick("sweep", 1000).await.unwrap());
        assert!(!a.claim_tick("sweep", 900).await.unwrap(), "an older run");
        assert!(b.claim_tick("sweep", 2000).await.unwrap());
        // An interrupted run is given back by its holder and can be run again, by anyone.
        a.release_tick("sweep", 2000).await.unwrap();
        assert!(
            !a.claim_tick("sweep", 2000).await.unwrap(),
            "only its holder releases it"
        );
        assert!(!b.claim_tick("sweep", 2000).await.unwrap(), "still running");
        b.release_tick("sweep", 2000).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(a.claim_tick("sweep", 2000).await.unwrap());
    }

    /// A commit adding an item to a group while the group is being flushed: the flush
    /// waits for it and leaves the group scheduled, so the new item is not stranded.
    #[tokio::test]
    async fn a_flush_racing_a_commit_keeps_the_new_item_scheduled() {
        use sqlx::Connection;
        let test = "a_flush_racing_a_commit_keeps_the_new_item_scheduled";
        let Some(url) = crate::storage::testing::postgres_url(test).await else {
            return;
        };
        let s = Store::open(&url).await.unwrap();
        s.commit_events(&[held("1", "r", "k")]).await.unwrap();
        let g = s.due_groups(now_ms() + 1, 10).await.unwrap().remove(0);
        let items = s.group_items(&[g.id]).await.unwrap();
        // A commit in progress: it has upserted the group (row locked) and added an item.
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        let mut tx = other.begin().await.unwrap();
        sqlx::query("UPDATE groups SET spec = spec WHERE id = $1")
            .bind(g.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO group_items (group_id, event_id, fingerprint, item, received_at)
             VALUES ($1, $2, 'fp-2', '{}', 0)",
        )
        .bind(g.id)
        .bind(items[0].event_id)
        .execute(&mut *tx)
        .await
        .unwrap();
        let flush = GroupFlush {
            route: "r".into(),
            group_ids: vec![g.id],
            upto_item_id: items[0].id,
            items: 1,
            messages: vec![],
            fingerprints: vec![],
            window: None,
            interval_ms: 1000,
        };
        let flusher = tokio::spawn({
            let s = s.clone();
            async move { s.apply_flush(&flush).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.commit().await.unwrap();
        assert!(flusher.await.unwrap());
        assert_eq!(s.held_counts().await.unwrap(), vec![("r".to_string(), 1)]);
        assert!(
            s.next_group_due().await.unwrap().is_some(),
            "the group with the new item must stay scheduled"
        );
    }

    #[tokio::test]
    async fn the_roam_rate_limit_is_shared() {
        let Some((a, b)) = two("the_roam_rate_limit_is_shared", Duration::from_secs(60)).await
        else {
            return;
        };
        // A slow rate: the bucket does not refill noticeably during the test.
        let (rate, burst) = (0.01, 4.0);
        let mut taken = 0;
        for _ in 0..5 {
            for s in [&a, &b] {
                if s.take_roam_token(rate, burst).await.unwrap().is_none() {
                    taken += 1;
                }
            }
        }
        assert_eq!(taken, 4, "the burst is for both replicas together");
        let wait = b.take_roam_token(rate, burst).await.unwrap().unwrap();
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        // A 429 seen by A pauses B.
        let (rate, burst) = (1000.0, 10.0);
        a.pause_roam(Duration::from_secs(30)).await.unwrap();
        let wait = b.take_roam_token(rate, burst).await.unwrap().unwrap();
        assert!(wait > Duration::from_secs(25), "{wait:?}");
    }
}
