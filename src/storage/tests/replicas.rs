//! Several replicas on one PostgreSQL database (two stores on one schema stand for two
//! replicas); skipped with a printed reason when no server is reachable.

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
    assert!(!b.mark_sending(got_a[0], None).await.unwrap());
    assert!(a.mark_sending(got_a[0], None).await.unwrap());
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
    assert!(a.mark_sending(sending, None).await.unwrap());
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
    assert!(
        !a.mark_sending(sending, None).await.unwrap(),
        "A's claim is gone"
    );
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
    let Some((a, b)) = two("the_roam_rate_limit_is_shared", Duration::from_secs(60)).await else {
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

/// A batch of one event whose items go to groups `keys`, in that order.
fn holding(id: &str, keys: &[&str]) -> NewEvent {
    let one = |k: &&str| held(id, "r", k).held.remove(0);
    NewEvent {
        held: keys.iter().map(one).collect(),
        ..ev(id, &[])
    }
}

/// Two replicas' batches hold items for the same groups, each in its own order of
/// events: the groups must be locked in one order, or the two transactions wait on each
/// other until PostgreSQL breaks the cycle (after `deadlock_timeout`, 1 s) by failing one
/// batch, whose senders get 503.
#[tokio::test]
async fn replicas_holding_items_for_the_same_groups_never_deadlock() {
    let test = "replicas_holding_items_for_the_same_groups_never_deadlock";
    let Some((a, b)) = two(test, Duration::from_secs(60)).await else {
        return;
    };
    let keys: Vec<String> = (0..6).map(|k| format!("k{k}")).collect();
    let forward: Vec<&str> = keys.iter().map(String::as_str).collect();
    let backward: Vec<&str> = forward.iter().rev().copied().collect();
    // The groups exist, so every later batch takes their rows' locks (an upsert's update).
    a.commit_events(&[holding("setup", &forward)])
        .await
        .unwrap();
    for round in 0..10 {
        let (ea, eb) = (
            [holding(&format!("a{round}"), &forward)],
            [holding(&format!("b{round}"), &backward)],
        );
        let (ra, rb) = tokio::join!(a.commit_events(&ea), b.commit_events(&eb));
        assert!(ra.is_ok() && rb.is_ok(), "round {round}: {ra:?} / {rb:?}");
    }
    let held: i64 = a.held_counts().await.unwrap().iter().map(|(_, n)| n).sum();
    assert_eq!(held, 6 * 21, "every item of every batch is held");
}
