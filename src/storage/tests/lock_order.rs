//! Two replicas' batches hold items for the same groups, each in its own order of
//! events: the groups must be locked in one order, or the two transactions wait on
//! each other until PostgreSQL breaks the cycle (after `deadlock_timeout`, 1 s) by
//! failing one batch, whose senders get 503.

use super::*;

/// A batch of one event whose items go to groups `keys`, in that order.
fn holding(id: &str, keys: &[&str]) -> NewEvent {
    let one = |k: &&str| held(id, "r", k).held.remove(0);
    NewEvent {
        held: keys.iter().map(one).collect(),
        ..ev(id, &[])
    }
}

#[tokio::test]
async fn replicas_holding_items_for_the_same_groups_never_deadlock() {
    let test = "replicas_holding_items_for_the_same_groups_never_deadlock";
    let Some(url) = crate::storage::testing::postgres_url(test).await else {
        return;
    };
    let (a, b) = (
        Store::open(&url).await.unwrap(),
        Store::open(&url).await.unwrap(),
    );
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
