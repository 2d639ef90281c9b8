//! Retention: what is finished and old enough is deleted, in small batches,
//! so a busy installation does not grow the store without bound.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::{now_ms, Store};

/// GitHub lets an operator redeliver a delivery for 30 days; its id must
/// be known that long (and a day more) to be deduplicated.
const REDELIVERY_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);
/// A rate-limit row whose time has passed this long ago says nothing a
/// missing row would not.
const RATE_LIMIT_IDLE: Duration = Duration::from_secs(24 * 3600);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// How long things are kept (`AGENTIC_RETENTION_DAYS`,
/// `AGENTIC_AUDIT_RETENTION_DAYS`); 0 keeps them forever.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished jobs with their outputs and command claims, and ignored
    /// deliveries.
    pub days: u32,
    pub audit_days: u32,
}

/// What a prune deleted (or, dry, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub jobs: u64,
    pub outputs: u64,
    pub command_runs: u64,
    pub deliveries: u64,
    pub audit: u64,
    pub rate_limits: u64,
    /// Review runs that ended and were not touched since.
    pub reviews: u64,
}
/// Rows deleted per statement by a prune, and the pause between two, so a
/// prune never holds the writer long.
pub const PRUNE_BATCH: usize = 500;
pub const PRUNE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

impl Store {
    /// Delete what `retention` no longer keeps, `batch` rows at a time,
    /// pausing `pause` between batches so intake keeps the writer. With
    /// `dry_run`, count instead.
    pub async fn prune(
        &self,
        retention: Retention,
        batch: usize,
        pause: Duration,
        dry_run: bool,
    ) -> anyhow::Result<PruneReport> {
        let now = now_ms();
        let mut report = PruneReport::default();
        if retention.days > 0 {
            let jobs_before = now - i64::from(retention.days) * DAY_MS;
            // A delivery id is kept at least through GitHub's redelivery
            // window, however short the retention.
            let deliveries_before = jobs_before.min(now - REDELIVERY_WINDOW.as_millis() as i64);
            if dry_run {
                self.count_finished(jobs_before, deliveries_before, &mut report)
                    .await?;
            } else {
                self.prune_finished(jobs_before, deliveries_before, batch, pause, &mut report)
                    .await?;
            }
        }
        if retention.days > 0 {
            let before = now - i64::from(retention.days) * DAY_MS;
            // A run still working is never pruned, however old.
            report.reviews = if dry_run {
                self.count(
                    "SELECT COUNT(*) FROM reviews WHERE updated_at < $1 AND state NOT IN ('running', 'posting')",
                    &[before],
                )
                .await?
            } else {
                self.delete_batches(
                    "DELETE FROM reviews WHERE id IN (
                         SELECT id FROM reviews WHERE updated_at < $1
                           AND state NOT IN ('running', 'posting') ORDER BY id LIMIT $2)",
                    before,
                    batch,
                    pause,
                )
                .await?
            };
        }
        if retention.audit_days > 0 {
            let before = now - i64::from(retention.audit_days) * DAY_MS;
            if dry_run {
                report.audit = self
                    .count("SELECT COUNT(*) FROM audit WHERE at < $1", &[before])
                    .await?;
            } else {
                report.audit = self
                    .delete_batches(
                        "DELETE FROM audit WHERE id IN (
                             SELECT id FROM audit WHERE at < $1 ORDER BY id LIMIT $2)",
                        before,
                        batch,
                        pause,
                    )
                    .await?;
            }
        }
        let idle = now - RATE_LIMIT_IDLE.as_millis() as i64;
        report.rate_limits = if dry_run {
            self.count("SELECT COUNT(*) FROM rate_limits WHERE tat < $1", &[idle])
                .await?
        } else {
            self.delete(
                "DELETE FROM rate_limits WHERE key IN (
                     SELECT key FROM rate_limits WHERE tat < $1 LIMIT $2)",
                idle,
                batch,
            )
            .await?
        };
        Ok(report)
    }

    /// Count into `report` the finished jobs older than `jobs_before`, what
    /// hangs off them, and the deliveries a real prune would delete with them.
    async fn count_finished(
        &self,
        jobs_before: i64,
        deliveries_before: i64,
        report: &mut PruneReport,
    ) -> anyhow::Result<()> {
        report.jobs = self
            .count(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('done', 'dead') AND finished_at < $1",
                &[jobs_before],
            )
            .await?;
        report.outputs = self
            .count(
                "SELECT COUNT(*) FROM outputs o JOIN jobs j ON j.id = o.job_id
                     WHERE j.state IN ('done', 'dead') AND j.finished_at < $1",
                &[jobs_before],
            )
            .await?;
        report.command_runs = self
            .count(
                "SELECT COUNT(*) FROM command_runs c JOIN jobs j ON j.id = c.job_id
                     WHERE j.state IN ('done', 'dead') AND j.finished_at < $1",
                &[jobs_before],
            )
            .await?;
        // Deliveries old enough whose jobs all go (or that had
        // none): what the real prune deletes once the jobs are gone.
        report.deliveries = self
            .count(
                "SELECT COUNT(*) FROM deliveries d WHERE d.received_at < $1 AND NOT EXISTS (
                             SELECT 1 FROM jobs j WHERE j.delivery_id = d.id
                               AND NOT (j.state IN ('done', 'dead') AND j.finished_at < $2))",
                &[deliveries_before, jobs_before],
            )
            .await?;
        Ok(())
    }

    /// Delete, batch after batch, the finished jobs older than `jobs_before`
    /// with what hangs off them, then the deliveries left without jobs;
    /// the counts go into `report`.
    async fn prune_finished(
        &self,
        jobs_before: i64,
        deliveries_before: i64,
        batch: usize,
        pause: Duration,
        report: &mut PruneReport,
    ) -> anyhow::Result<()> {
        loop {
            let (jobs, outputs, runs) = self.prune_jobs(jobs_before, batch).await?;
            report.jobs += jobs;
            report.outputs += outputs;
            report.command_runs += runs;
            if jobs < batch as u64 {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        report.deliveries = self
            .delete_batches(
                "DELETE FROM deliveries WHERE id IN (
                             SELECT d.id FROM deliveries d WHERE d.received_at < $1
                               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.delivery_id = d.id)
                             LIMIT $2)",
                deliveries_before,
                batch,
                pause,
            )
            .await?;
        Ok(())
    }

    /// One batch of finished jobs older than `before`, with what hangs off
    /// them, in one transaction: (jobs, outputs, command claims) deleted.
    async fn prune_jobs(&self, before: i64, batch: usize) -> anyhow::Result<(u64, u64, u64)> {
        let mut tx = self.write.begin().await.context("starting a prune")?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state IN ('done', 'dead') AND finished_at < $1
             ORDER BY finished_at LIMIT $2",
        )
        .bind(before)
        .bind(batch as i64)
        .fetch_all(&mut *tx)
        .await
        .context("choosing jobs to prune")?;
        if ids.is_empty() {
            return Ok((0, 0, 0));
        }
        let list = (1..=ids.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut deleted = [0u64; 3];
        for (i, table) in ["outputs", "command_runs", "jobs"].iter().enumerate() {
            let column = if *table == "jobs" { "id" } else { "job_id" };
            let sql = format!("DELETE FROM {table} WHERE {column} IN ({list})");
            let mut q = sqlx::query(&sql);
            for id in &ids {
                q = q.bind(*id);
            }
            deleted[i] = q
                .execute(&mut *tx)
                .await
                .with_context(|| format!("pruning {table}"))?
                .rows_affected();
        }
        tx.commit().await.context("committing a prune")?;
        Ok((deleted[2], deleted[0], deleted[1]))
    }

    async fn count(&self, sql: &str, params: &[i64]) -> anyhow::Result<u64> {
        let mut query = sqlx::query_scalar(sql);
        for p in params {
            query = query.bind(*p);
        }
        let n: i64 = query
            .fetch_one(&self.read)
            .await
            .context("counting what a prune would delete")?;
        Ok(n as u64)
    }

    /// Run a `DELETE … LIMIT $2` batch after batch, pausing between two,
    /// until a batch deletes fewer than `batch` rows; how many went.
    async fn delete_batches(
        &self,
        sql: &str,
        before: i64,
        batch: usize,
        pause: Duration,
    ) -> anyhow::Result<u64> {
        let mut total = 0;
        loop {
            let n = self.delete(sql, before, batch).await?;
            total += n;
            if n < batch as u64 {
                return Ok(total);
            }
            tokio::time::sleep(pause).await;
        }
    }

    async fn delete(&self, sql: &str, before: i64, batch: usize) -> anyhow::Result<u64> {
        Ok(sqlx::query(sql)
            .bind(before)
            .bind(batch as i64)
            .execute(&self.write)
            .await
            .context("pruning")?
            .rows_affected())
    }
}
