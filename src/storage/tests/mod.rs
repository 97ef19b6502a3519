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
                render: None,
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
    messages_follow_their_events_order_around_redeliveries,
    a_waiting_head_holds_back_its_chat_only,
    prune_keeps_dead_and_pending_and_events_still_referenced,
    a_group_is_flushed_once,
    outbox_admin_and_silences,
    transcript_queue_and_state,
    text_with_nul_from_a_payload_is_stored,
    a_message_rendered_when_sent_keeps_the_body_it_was_sent_with,
);

mod caches;
mod listing;
mod replicas;

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
    assert!(s.mark_sending(due[0].id, None).await.unwrap());
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

/// Keys sort x < y < z, but the batch came y, z, x: messages are numbered in the order
/// their events came, each joins its own event, and neither a redelivery of an earlier
/// batch's event (z) nor a repeat within the batch (y) queues anything.
async fn messages_follow_their_events_order_around_redeliveries(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.commit_events(&[ev("z", &["C9"])]).await.unwrap();
    let r = s
        .commit_events(&[
            ev("y", &["C1", "C2"]),
            ev("z", &["C3"]),
            ev("x", &["C4"]),
            ev("y", &["C5"]),
        ])
        .await
        .unwrap();
    let dup = Committed::Duplicate {
        routes: vec!["r".into()],
    };
    assert!(
        matches!(r[0], Committed::Inserted { messages: 2, .. }),
        "{r:?}"
    );
    assert_eq!(r[1], dup);
    assert!(
        matches!(r[2], Committed::Inserted { messages: 1, .. }),
        "{r:?}"
    );
    assert_eq!(r[3], dup);
    let mut queued = s.claim_due(now_ms() + 1, 100).await.unwrap();
    queued.sort_by_key(|m| m.id);
    let got: Vec<(&str, &str)> = queued
        .iter()
        .map(|m| (m.chat.as_str(), m.delivery_id.as_str()))
        .collect();
    assert_eq!(got, [("C9", "z"), ("C1", "y"), ("C2", "y"), ("C4", "x")]);
    for m in &queued {
        let text = format!("\"text\":\"{}\"", m.delivery_id);
        assert!(
            m.request.contains(&text),
            "{} joined to {}",
            m.request,
            m.delivery_id
        );
    }
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
    assert!(s.mark_sending(a_head.id, None).await.unwrap());
    s.retry_later(a_head.id, now + 60_000, "503", true)
        .await
        .unwrap();
    let ids: Vec<i64> = heads.iter().map(|m| m.id).collect();
    s.release_claims(&ids).await.unwrap();
    let later = s.claim_due(now, 10).await.unwrap();
    assert!(later.iter().all(|m| m.chat != "A"), "{later:?}");
    assert_eq!(later.len(), 2);
    for m in &later {
        assert!(s.mark_sending(m.id, None).await.unwrap());
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
                render: None,
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
    if url.starts_with("postgres") {
        // Stored with NUL as U+FFFD, two delivery ids that differ only there are one: the
        // first event that came is inserted (its row, not the other's, though "n\0" sorts
        // first) and queues its message, the other is a redelivery, in a batch written as
        // one statement too (`postgres/commit.rs`).
        let mut first = ev("n\u{fffd}", &["N1"]);
        first.routes = vec!["first".into()];
        let mut second = ev("n\0", &["N2"]);
        second.routes = vec!["second".into()];
        let r = s.commit_events(&[first, second]).await.unwrap();
        assert!(
            matches!(r[0], Committed::Inserted { messages: 1, .. }),
            "{r:?}"
        );
        assert_eq!(
            r[1],
            Committed::Duplicate {
                routes: vec!["first".into()]
            }
        );
        let chats: Vec<String> = s
            .claim_due(now_ms() + 1, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.chat)
            .collect();
        assert!(chats.contains(&"N1".to_string()), "{chats:?}");
        assert!(!chats.contains(&"N2".to_string()), "{chats:?}");
    }
    s.close().await;
}

/// A message stored with what to render and no body: delivery gets the `render`; the
/// update that marks it `sending` stores its body and template failure and clears the
/// `render`, so a retry (and a restart) sends that body; a message marked `sending`
/// without a body keeps its own.
async fn a_message_rendered_when_sent_keeps_the_body_it_was_sent_with(url: String) {
    let s = Store::open_with(&url, short_lease()).await.unwrap();
    let mut later = ev("later", &["C1"]);
    later.messages[0].request = String::new();
    later.messages[0].render = Some(r#"{"template":"t","format":"text","data":{}}"#.into());
    s.commit_events(&[later, ev("now", &["C2"])]).await.unwrap();
    let due = s.claim_due(now_ms() + 1, 10).await.unwrap();
    let pick = |chat: &str| due.iter().find(|m| m.chat == chat).unwrap().clone();
    let (later, now) = (pick("C1"), pick("C2"));
    assert_eq!(later.request, "");
    assert!(
        later
            .render
            .as_deref()
            .unwrap()
            .contains(r#""template":"t""#)
    );
    assert_eq!(now.render, None);
    let listed = s.get_message(later.id).await.unwrap().unwrap();
    assert_eq!(
        (listed.request.as_str(), listed.render.is_some()),
        ("", true)
    );

    let body = r#"{"chat":"C1","markdown":true,"text":"made when sent"}"#;
    let sent = RenderedBody {
        request: body,
        render_error: Some("template t: oops"),
    };
    assert!(s.mark_sending(later.id, Some(sent)).await.unwrap());
    assert!(s.mark_sending(now.id, None).await.unwrap());
    let got = s.get_message(later.id).await.unwrap().unwrap();
    assert_eq!(got.request, body);
    assert_eq!(got.render, None);
    assert_eq!(got.render_error.as_deref(), Some("template t: oops"));
    let kept = s.get_message(now.id).await.unwrap().unwrap();
    assert!(kept.request.contains(r#""text":"now""#), "{}", kept.request);

    // Roam failed: the retry is claimed with the body it was sent with, nothing to render.
    s.retry_later(later.id, 0, "HTTP 503", true).await.unwrap();
    let again = s.claim_due(now_ms() + 1, 10).await.unwrap();
    let retry = again.iter().find(|m| m.id == later.id).unwrap();
    assert_eq!(
        (retry.request.as_str(), retry.render.as_deref()),
        (body, None)
    );
}
