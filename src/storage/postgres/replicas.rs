//! What only matters with several replicas: leases (the background leader, one replica
//! per scheduled run) and the Roam rate limit every replica shares, in the database's
//! clock.

use std::time::Duration;

use super::{PgStore, TICK_LEASE};
use crate::storage::StoreError;

impl PgStore {
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl = ttl.as_millis().min(i64::MAX as u128) as i64;
        let got: Option<String> = sqlx::query_scalar(concat!(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, ",
            db_now!(),
            " + $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
             WHERE leases.holder = excluded.holder OR leases.until < ",
            db_now!(),
            " RETURNING holder"
        ))
        .bind(name)
        .bind(holder)
        .bind(ttl)
        .fetch_optional(&self.pool)
        .await?;
        Ok(got.is_some())
    }

    pub async fn claim_tick(&self, name: &str, tick: i64) -> Result<bool, StoreError> {
        let got: Option<i64> = sqlx::query_scalar(concat!(
            "INSERT INTO leases (name, holder, until, tick) VALUES ($1, $3, ",
            db_now!(),
            " + $4, $2)
             ON CONFLICT (name) DO UPDATE SET tick = excluded.tick, holder = excluded.holder,
                 until = excluded.until
             WHERE leases.tick < excluded.tick
                OR (leases.tick = excluded.tick AND leases.until < ",
            db_now!(),
            ") RETURNING tick"
        ))
        .bind(format!("tick:{name}"))
        .bind(tick)
        .bind(&*self.replica)
        .bind(TICK_LEASE.as_millis() as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(got.is_some())
    }

    pub async fn release_tick(&self, name: &str, tick: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET until = 0 WHERE name = $1 AND tick = $2 AND holder = $3")
            .bind(format!("tick:{name}"))
            .bind(tick)
            .bind(&*self.replica)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn take_roam_token(
        &self,
        rate_per_second: f64,
        burst: f64,
    ) -> Result<Option<Duration>, StoreError> {
        // FOR UPDATE makes a replica waiting on the row read the state the previous
        // taker left, so two replicas can never both take the last token.
        let (took, paused_ms, tokens): (bool, i64, f64) = sqlx::query_as(concat!(
            "WITH cur AS (
                 SELECT paused_until, updated_at, t,
                        LEAST($2, tokens + GREATEST(0, t - updated_at) * $1 / 1000.0) AS tokens
                 FROM roam_pacer, LATERAL (SELECT ",
            db_now!(),
            " AS t) now
                 WHERE name = 'roam' FOR UPDATE OF roam_pacer
             )
             UPDATE roam_pacer p SET
                 tokens = CASE WHEN cur.paused_until <= cur.t AND cur.tokens >= 1
                               THEN cur.tokens - 1 ELSE cur.tokens END,
                 updated_at = GREATEST(cur.updated_at, cur.t)
             FROM cur WHERE p.name = 'roam'
             RETURNING cur.paused_until <= cur.t AND cur.tokens >= 1,
                       GREATEST(cur.paused_until - cur.t, 0), cur.tokens"
        ))
        .bind(rate_per_second)
        .bind(burst)
        .fetch_one(&self.pool)
        .await?;
        if took {
            return Ok(None);
        }
        if paused_ms > 0 {
            return Ok(Some(Duration::from_millis(paused_ms as u64)));
        }
        let wait = (1.0 - tokens) / rate_per_second;
        Ok(Some(
            Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(1)),
        ))
    }

    pub async fn pause_roam(&self, d: Duration) -> Result<(), StoreError> {
        let ms = d.as_millis().min(i64::MAX as u128 / 2) as i64;
        sqlx::query(concat!(
            "UPDATE roam_pacer SET paused_until = GREATEST(paused_until, ",
            db_now!(),
            " + $1) WHERE name = 'roam'"
        ))
        .bind(ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
