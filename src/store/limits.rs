//! Rate limits kept in the database, so that they hold across replicas:
//! N replicas with a limiter each would allow N times the limit.
//!
//! Each limited key has one row with its GCRA "theoretical arrival time"
//! (`tat`): a limit of `burst` requests refilled one every `interval` lets a
//! request through at `now` if `max(tat, now) + interval - now <= burst *
//! interval`, and then moves `tat` to `max(tat, now) + interval`. The test
//! and the move are one conditional upsert, atomic on both backends.

use std::time::Duration;

use anyhow::Context;

use super::{now_ms, Store};

/// What a limit said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Let through (and counted).
    Allowed,
    /// Over the limit; room again in this long. Nothing was counted.
    Wait(Duration),
}

impl Store {
    /// Count `cells` requests under `key` against a limit of `burst`
    /// requests, refilled one every `interval`, if they fit now.
    pub async fn admit(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        cells: u32,
    ) -> anyhow::Result<Admission> {
        let now = now_ms();
        let step = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let cells = i64::from(cells.clamp(1, burst.max(1)));
        let tolerance = step.saturating_mul(i64::from(burst.max(1)));
        let add = step.saturating_mul(cells);
        let moved: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rate_limits (key, tat) VALUES ($1, CAST($2 AS BIGINT) + CAST($3 AS BIGINT))
             ON CONFLICT (key) DO UPDATE
                 SET tat = (CASE WHEN rate_limits.tat > $2 THEN rate_limits.tat ELSE $2 END) + $3
                 WHERE (CASE WHEN rate_limits.tat > $2 THEN rate_limits.tat ELSE $2 END) + $3 - $2
                       <= CAST($4 AS BIGINT)
             RETURNING tat",
        )
        .bind(key)
        .bind(now)
        .bind(add)
        .bind(tolerance)
        .fetch_optional(&self.write)
        .await
        .context("counting against a rate limit")?;
        if moved.is_some() {
            return Ok(Admission::Allowed);
        }
        let tat: Option<i64> = sqlx::query_scalar("SELECT tat FROM rate_limits WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.read)
            .await
            .context("reading a rate limit")?;
        let wait = tat.map_or(0, |tat| tat.max(now) + add - now - tolerance);
        Ok(Admission::Wait(Duration::from_millis(wait.max(1) as u64)))
    }
}
