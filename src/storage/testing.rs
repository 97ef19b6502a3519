//! PostgreSQL for tests: a fresh, empty schema per test on the server named by
//! `ROAM_NOTIFY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Without a reachable server the tests that need one print why and pass as skipped,
//! unless `ROAM_NOTIFY_TEST_POSTGRES_REQUIRED=1` (set by `.ci/run`), where they fail.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Schemas made by test runs older than this are dropped when a new one is made.
const STALE_SECS: u64 = 3600;

/// The URL of a new empty schema, or `None` (after printing why) when no server answers.
pub async fn postgres_url(test: &str) -> Option<String> {
    let base = std::env::var("ROAM_NOTIFY_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_URL.into());
    let required = std::env::var("ROAM_NOTIFY_TEST_POSTGRES_REQUIRED").is_ok_and(|v| v == "1");
    let mut conn = match PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) if !required => {
            eprintln!(
                "SKIPPED {test}: no PostgreSQL at {base} ({e}); set ROAM_NOTIFY_TEST_POSTGRES to run it"
            );
            return None;
        }
        Err(e) => panic!(
            "{test}: PostgreSQL is required (ROAM_NOTIFY_TEST_POSTGRES_REQUIRED=1) but {base} fails: {e}"
        ),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Tidy up after earlier runs (a test's schema outlives it so a failure can be looked at).
    let old: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'rn_test_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    for name in old {
        let made: u64 = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if made + STALE_SECS < now {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    let schema = format!("rn_test_{now}_{:08x}", fastrand::u32(..));
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
    {
        panic!("{test}: cannot create schema {schema} on {base}: {e}");
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options[search_path]={schema}"))
}
