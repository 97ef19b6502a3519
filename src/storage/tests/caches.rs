//! The caches: the directory (names and emails) and CRM enrichment answers.

use crate::storage::*;

on_both_backends!(the_directory_cache_keeps_and_updates_rows);

/// The directory cache: rows are added and updated by kind and key, never deleted, and
/// survive reopening.
async fn the_directory_cache_keeps_and_updates_rows(url: String) {
    let s = Store::open(&url).await.unwrap();
    let chat = |name: &str, seen_at: i64| DirEntry {
        kind: "chat".into(),
        key: "C-1".into(),
        id: "C-1".into(),
        label: name.into(),
        group: Some("G-1".into()),
        chat_kind: Some("channel".into()),
        seen_at,
    };
    let user = DirEntry {
        kind: "user".into(),
        key: "ann@example.com".into(),
        id: "U-1".into(),
        label: "ann@example.com".into(),
        group: None,
        chat_kind: None,
        seen_at: 1,
    };
    s.put_directory(&[chat("Deploys", 1), user.clone()])
        .await
        .unwrap();
    s.put_directory(&[chat("Deploys (old)", 2)]).await.unwrap();
    s.put_cached("hubspot:deal:1", "{}", 5).await.unwrap();
    s.put_cached("hubspot:deal:1", "{\"a\":1}", 6)
        .await
        .unwrap();
    s.close().await;
    let s = Store::open(&url).await.unwrap();
    assert_eq!(
        s.directory().await.unwrap(),
        vec![chat("Deploys (old)", 2), user]
    );
    assert_eq!(
        s.cached("hubspot:deal:1").await.unwrap(),
        Some(("{\"a\":1}".into(), 6))
    );
    assert_eq!(s.cached("hubspot:deal:2").await.unwrap(), None);
    s.close().await;
}
