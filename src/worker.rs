//! The worker: leases jobs, runs them with bounded concurrency, retries
//! transient failures with exponential backoff and jitter, kills jobs that
//! keep failing, and drains gracefully on shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::domain::{AuditAction, JobKind};
use crate::handlers::{self, JobContext, JobError};
use crate::metrics::Metrics;
use crate::store::{now_ms, LeasedJob};

/// The first retry waits about this long; each further one doubles it.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// No retry waits longer than this (unless `retry-after` asks for more).
const BACKOFF_CAP: Duration = Duration::from_secs(600);
/// Longest idle sleep between looks at the queue. Wake-ups normally come
/// from intake's notify or the next due time; this bounds the damage if one
/// is missed (another replica's jobs, a lease expiring elsewhere).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// Pause between tries to record that a job is done while the database is
/// away.
const RECORD_RETRY: Duration = Duration::from_millis(500);
/// Most `/agentic cancel` jobs taken at once, outside the slots.
const URGENT_AT_ONCE: usize = 4;
/// How often a running job looks whether `/agentic cancel` asked it to stop.
const CANCEL_POLL: Duration = Duration::from_secs(1);
/// After a store error, wait this long before leasing again.
const STORE_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The worker pool's settings and shared handles.
#[derive(Clone)]
pub struct Worker {
    pub ctx: JobContext,
    pub metrics: Arc<Metrics>,
    /// Poked by intake when new jobs are committed.
    pub wake: Arc<Notify>,
}

/// The time (ms since the epoch) `delay` from now, saturating: a huge
/// `retry-after` must not wrap into the past.
pub fn due_after(now_ms: i64, delay: Duration) -> i64 {
    let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_add(delay)
}

/// Delay before retry number `attempt` (1-based): exponential, capped, with
/// "equal jitter" (half fixed, half random) so retries of a burst spread out.
pub fn backoff(attempt: i64, retry_after: Option<Duration>) -> Duration {
    let delay =
        crate::backoff::equal_jitter(BACKOFF_BASE, BACKOFF_CAP, attempt.clamp(1, 20) as u32);
    match retry_after {
        Some(asked) if asked > delay => asked,
        _ => delay,
    }
}

impl Worker {
    /// Run until `shutdown` is cancelled, then give running jobs the grace
    /// period to finish and hand back the leases of the rest.
    pub async fn run(self, shutdown: CancellationToken) {
        let config = self.ctx.config.clone();
        let permits = Arc::new(Semaphore::new(config.worker_concurrency));
        let mut tasks = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, LeasedJob> = HashMap::new();
        loop {
            while let Some(done) = tasks.try_join_next_with_id() {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                running.remove(&id);
            }
            // `/agentic cancel` first, whatever fills the slots.
            match self
                .ctx
                .store
                .lease_urgent(config.lease, URGENT_AT_ONCE)
                .await
            {
                Ok(urgent) => {
                    for job in urgent {
                        let this = self.clone();
                        let leased = job.clone();
                        let handle = tasks.spawn(async move { this.attempt(job).await });
                        running.insert(handle.id(), leased);
                    }
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot lease cancel jobs"),
            }
            let first = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                // New work while every slot is busy: it may be a cancel.
                _ = self.wake.notified() => continue,
                _ = shutdown.cancelled() => break,
            };
            // Lease as many jobs as there are free slots, in one statement.
            let mut slots = vec![first];
            while let Ok(p) = permits.clone().try_acquire_owned() {
                slots.push(p);
            }
            match self
                .ctx
                .store
                .lease_jobs(config.lease, slots.len(), config.max_jobs_per_installation)
                .await
            {
                Ok(leased) if !leased.jobs.is_empty() => {
                    if leased.takeovers > 0 {
                        tracing::info!(
                            jobs = leased.takeovers,
                            "took over jobs whose lease ran out"
                        );
                        self.metrics.takeovers(leased.takeovers);
                    }
                    for (job, permit) in leased.jobs.into_iter().zip(slots.drain(..)) {
                        let this = self.clone();
                        let leased = job.clone();
                        let handle = tasks.spawn(async move {
                            this.attempt(job).await;
                            drop(permit);
                        });
                        running.insert(handle.id(), leased);
                    }
                    // Unused slots go back as `slots` drops.
                }
                Ok(_) => {
                    drop(slots);
                    let wait = match self.ctx.store.next_due().await {
                        Ok(Some(due)) => Duration::from_millis((due - now_ms()).max(0) as u64 + 1),
                        _ => IDLE_POLL,
                    }
                    .min(IDLE_POLL);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Err(e) => {
                    drop(slots);
                    tracing::error!(error = %format!("{e:#}"), "cannot lease jobs");
                    tokio::select! {
                        _ = tokio::time::sleep(STORE_ERROR_PAUSE) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
        self.drain(tasks, running).await;
    }

    async fn drain(
        &self,
        mut tasks: JoinSet<()>,
        mut running: HashMap<tokio::task::Id, LeasedJob>,
    ) {
        let grace = self.ctx.config.shutdown_grace;
        if !tasks.is_empty() {
            tracing::info!(
                jobs = tasks.len(),
                grace_secs = grace.as_secs(),
                "waiting for running jobs"
            );
        }
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
                Ok(Some(Ok((id, ())))) => {
                    running.remove(&id);
                }
                Ok(Some(Err(e))) => {
                    running.remove(&e.id());
                }
                Ok(None) => break,
                Err(_) => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        for job in running.values() {
            match self.ctx.store.release_job(job).await {
                Ok(true) => {
                    self.metrics.attempt(kind_name(&job.kind), "released");
                    tracing::info!(job_id = job.id, "released unfinished job");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(job_id = job.id, error = %format!("{e:#}"), "cannot release job; its lease will expire")
                }
            }
        }
    }

    /// Run jobs one at a time until none is runnable now (`agentic replay`).
    pub async fn run_until_idle(&self) -> anyhow::Result<usize> {
        let mut ran = 0;
        while let Some(job) = self.ctx.store.lease_job(self.ctx.config.lease).await? {
            self.attempt(job).await;
            ran += 1;
        }
        Ok(ran)
    }

    /// One attempt of one job, with its lease kept alive while it runs.
    async fn attempt(&self, job: LeasedJob) {
        let span = tracing::info_span!(
            "job",
            job_id = job.id,
            kind = %job.kind,
            subject = %job.subject,
            delivery_id = %job.delivery_id,
            attempt = job.attempts
        );
        async {
            let store = &self.ctx.store;
            let config = &self.ctx.config;
            let kind = kind_name(&job.kind);
            if job.attempts > config.max_attempts as i64 {
                // Its lease ran out repeatedly: the process running it died
                // every time. Stop before it takes another one down.
                let reason = format!(
                    "gave up after {} attempts (lease expired)",
                    job.attempts - 1
                );
                tracing::error!(%reason, "job is dead");
                self.metrics.attempt(kind, "dead");
                if let Err(e) = store.kill_job(&job, &reason).await {
                    tracing::error!(error = %format!("{e:#}"), "cannot mark job dead");
                }
                return;
            }
            let Some(result) = self.run_leased(&job).await else {
                return;
            };
            let Some(recorded) = self.record(&job, &result).await else {
                return;
            };
            self.check_recorded(&job, &result, recorded).await;
        }
        .instrument(span)
        .await
    }

    /// Run the job's work, renewing its lease and looking for `/agentic
    /// cancel` meanwhile; `None` when the lease was lost (recorded so).
    async fn run_leased(&self, job: &LeasedJob) -> Option<Result<(), JobError>> {
        let store = &self.ctx.store;
        let config = &self.ctx.config;
        let work = handlers::run(&self.ctx, job);
        tokio::pin!(work);
        let mut heartbeat = tokio::time::interval(config.lease / 3);
        heartbeat.tick().await;
        // Until when the lease is surely ours: a renewal that fails
        // leaves the old deadline standing, and the work stops a
        // little before it, whatever the store says by then.
        let margin = config.lease / 10;
        let mut held_until = tokio::time::Instant::now() + config.lease - margin;
        // The first look is at once: a job taken over after a crash
        // may have been cancelled meanwhile.
        let mut cancel_poll = tokio::time::interval(CANCEL_POLL);
        loop {
            tokio::select! {
                r = &mut work => break Some(r),
                _ = cancel_poll.tick(), if job.cancel.requested_by().is_none() => {
                    match store.cancel_requested(job).await {
                        Ok(Some(by)) => {
                            tracing::info!(by = %by, "asked to stop");
                            job.cancel.cancel(&by);
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot read the job's cancel flag"),
                    }
                }
                _ = tokio::time::sleep_until(held_until) => {
                    tracing::warn!("lease could not be renewed in time; stopping this attempt");
                    self.lease_lost(job, "lease could not be renewed").await;
                    return None;
                }
                _ = heartbeat.tick() => {
                    let asked = tokio::time::Instant::now();
                    match store.extend_lease(job, config.lease).await {
                        Ok(true) => held_until = asked + config.lease - margin,
                        Ok(false) => {
                            tracing::warn!("lease lost to another worker; abandoning this attempt");
                            self.lease_lost(job, "lease taken over").await;
                            return None;
                        }
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot extend lease; will stop if it cannot be renewed in time"),
                    }
                }
            }
        }
    }

    /// Record the attempt's result on the job: deferred, cancelled, done,
    /// retried or dead. `None` when the lease was lost first (recorded so).
    async fn record(
        &self,
        job: &LeasedJob,
        result: &Result<(), JobError>,
    ) -> Option<anyhow::Result<bool>> {
        let store = &self.ctx.store;
        let kind = kind_name(&job.kind);
        let recorded = match result {
            Err(JobError::LeaseLost) => {
                tracing::warn!("lease lost before a write; abandoning this attempt");
                self.lease_lost(job, "lease lost before a write").await;
                return None;
            }
            Err(JobError::Deferred {
                reason,
                retry_after,
            }) => {
                tracing::info!(%reason, retry_in_ms = retry_after.as_millis() as u64, "job waits on a rate limit");
                self.metrics.attempt(kind, "deferred");
                store
                    .defer_job(job, due_after(now_ms(), *retry_after), reason)
                    .await
            }
            Err(JobError::Cancelled(by)) => {
                tracing::info!(by = %by, "job cancelled");
                self.metrics.attempt(kind, "cancelled");
                store.finish_cancelled(job, by).await
            }
            Ok(()) => {
                tracing::info!("job done");
                self.metrics.attempt(kind, "done");
                store.complete_job(job).await
            }
            Err(JobError::Transient {
                reason,
                retry_after,
            }) if !self.ctx.last_attempt(job) => {
                let delay = backoff(job.attempts, *retry_after);
                tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
                self.metrics.attempt(kind, "retry");
                store
                    .retry_job(job, due_after(now_ms(), delay), reason)
                    .await
            }
            Err(e) => {
                let reason = match e {
                    JobError::Transient { reason, .. } => {
                        format!("{reason} (gave up after {} attempts)", job.attempts)
                    }
                    JobError::Permanent(reason) => reason.clone(),
                    other => other.to_string(),
                };
                tracing::error!(%reason, "job is dead");
                self.metrics.attempt(kind, "dead");
                store.kill_job(job, &reason).await
            }
        };
        Some(recorded)
    }

    /// Log how recording the result went; a job whose work is done but
    /// could not be recorded is recorded again while the lease lasts.
    async fn check_recorded(
        &self,
        job: &LeasedJob,
        result: &Result<(), JobError>,
        recorded: anyhow::Result<bool>,
    ) {
        let store = &self.ctx.store;
        let config = &self.ctx.config;
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::warn!("lease was lost before the result was recorded"),
            Err(e) if matches!(result, Ok(())) => {
                // The work is done; a database that is away for a moment
                // must not make it run again. Keep trying while the
                // lease lasts.
                tracing::warn!(error = %format!("{e:#}"), "cannot record that the job is done; trying again");
                let until =
                    tokio::time::Instant::now() + config.lease.saturating_sub(config.lease / 10);
                loop {
                    tokio::time::sleep(RECORD_RETRY).await;
                    match store.complete_job(job).await {
                        Ok(_) => break,
                        Err(e) if tokio::time::Instant::now() + RECORD_RETRY >= until => {
                            tracing::error!(error = %format!("{e:#}"), "cannot record job result; its lease will expire and it will run again");
                            break;
                        }
                        Err(_) => {}
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot record job result; its lease will expire and it will run again")
            }
        }
    }
}

impl Worker {
    /// Record that an attempt stopped because its lease was gone. The job
    /// itself is not touched: whoever holds it now decides its fate.
    async fn lease_lost(&self, job: &LeasedJob, why: &str) {
        self.metrics.attempt(kind_name(&job.kind), "lease_lost");
        let entry = crate::store::AuditEntry {
            job_id: Some(job.id),
            delivery_id: Some(job.delivery_id.clone()),
            actor: None,
            action: AuditAction::JobLeaseLost,
            detail: Some(serde_json::json!({ "attempt": job.attempts, "why": why })),
        };
        if let Err(e) = self.ctx.store.audit(entry).await {
            tracing::error!(error = %format!("{e:#}"), "cannot write the audit log");
        }
    }
}

/// A static label for metrics; unknown kinds share one.
fn kind_name(kind: &str) -> &'static str {
    JobKind::parse(kind)
        .map(JobKind::as_str)
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        for attempt in 1..=30 {
            let full = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow((attempt.min(20) - 1) as u32))
                .min(BACKOFF_CAP);
            let d = backoff(attempt, None);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert_eq!(
            backoff(1, Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        assert!(backoff(10, Some(Duration::from_millis(1))) >= BACKOFF_CAP / 2);
    }

    #[test]
    fn a_huge_delay_saturates_instead_of_wrapping() {
        let now = 1_764_000_000_000;
        assert_eq!(due_after(now, Duration::MAX), i64::MAX);
        assert_eq!(due_after(now, Duration::from_secs(u64::MAX)), i64::MAX);
        assert_eq!(due_after(now, Duration::from_secs(2)), now + 2000);
    }
}
