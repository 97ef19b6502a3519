//! What the console reads: messages filtered and paged by id, and deliveries and dead
//! letters per period.

use super::ev;
use crate::storage::*;

on_both_backends!(messages_are_filtered_paged_and_counted_per_period);

async fn messages_are_filtered_paged_and_counted_per_period(url: String) {
    let s = Store::open(&url).await.unwrap();
    s.commit_events(&[ev("a", &["A"]), ev("b", &["B"]), ev("c", &["C"])])
        .await
        .unwrap();
    let due = s.claim_due(now_ms() + 1, 10).await.unwrap();
    s.mark_dead(due[0].id, "403 forbidden").await.unwrap();
    s.mark_delivered(due[1].id, None).await.unwrap();
    s.release_claims(&[due[2].id]).await.unwrap();
    let all = s
        .list_messages(&MessageQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        all[0].id > all[1].id && all[1].id > all[2].id,
        "newest first"
    );
    let by = |chat: Option<&str>, source: Option<&str>, before: Option<i64>| MessageQuery {
        chat: chat.map(String::from),
        source: source.map(String::from),
        route: Some("r".into()),
        before,
        limit: 1,
        ..Default::default()
    };
    let b = s.list_messages(&by(Some("B"), None, None)).await.unwrap();
    assert_eq!((b.len(), b[0].chat.as_str()), (1, "B"));
    let page2 = s
        .list_messages(&by(None, Some("gh"), Some(all[0].id)))
        .await
        .unwrap();
    assert_eq!(page2[0].id, all[1].id, "the page before the newest");
    assert!(
        s.list_messages(&by(None, Some("other"), None))
            .await
            .unwrap()
            .is_empty()
    );
    // One dead letter and one delivery in the latest hour, none earlier.
    let act = s.activity(now_ms() + 10, 3_600_000, 24).await.unwrap();
    assert_eq!(act.delivered.len(), 24);
    assert_eq!((act.dead[0], act.dead.iter().sum::<i64>()), (1, 1));
    assert_eq!(
        (act.delivered[0], act.delivered.iter().sum::<i64>()),
        (1, 1)
    );
    // Seen from two hours later, they fall in the third period.
    let later = s
        .activity(now_ms() + 2 * 3_600_000 + 10, 3_600_000, 24)
        .await
        .unwrap();
    assert_eq!((later.delivered[2], later.dead[2]), (1, 1));
    s.close().await;
}
