//! Durable state behind one API, on SQLite (the embedded default) or
//! PostgreSQL (several replicas), chosen by the URL.
//!
//! Callers only see [`Store`]; no `sqlx` type leaks out of here. Both
//! backends run through sqlx's `Any` driver with the same SQL text, written
//! in the portable subset (`$N` parameters, `CASE` instead of two-argument
//! `MAX`, `CAST(… AS BIGINT)`); only what cannot be shared differs by
//! [`Backend`]: leasing (Postgres locks with `FOR UPDATE SKIP LOCKED`), the
//! SQLite pragmas and checkpoint, and the migrations (`migrations/sqlite`,
//! `migrations/postgres`, kept in step and compared by a test).

mod ci;
mod freeze;
mod intake;
mod limits;
mod plans;
mod retention;
mod reviews;

use std::time::Duration;

use anyhow::Context;

use crate::domain::{AuditAction, Code, JobState};
use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Executor, Row};

pub use ci::{CiExplanation, FailedCheck};
pub use freeze::{Freeze, NameBinding};
pub use limits::Admission;
pub use plans::{ApplyStart, PlanRow, StepRun};
pub use retention::{PruneReport, Retention, PRUNE_BATCH, PRUNE_PAUSE};
pub use reviews::{PullComment, ReviewRun, ReviewStart};

pub use intake::{DeliveryOutcome, NewDelivery, NewJob};

/// Milliseconds since the Unix epoch, the unit of every time in the store.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long SQLite waits for another process's write lock before failing a
/// statement. Writes inside this process are already serialised by the
/// one-connection write pool, so this only matters when two processes (a
/// `replay` next to a `serve`) share the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections serve reads (metrics, lookups). Reads never block
/// writes in WAL mode.
const READ_CONNECTIONS: u32 = 2;
/// Connections of one replica to PostgreSQL (shared by reads and writes).
const POSTGRES_CONNECTIONS: u32 = 10;
/// How long a new connection may take, so that intake answers 503 rather
/// than hanging while the database is away.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Which database is under the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Whether opening the store applies pending migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    Apply,
    /// Another process (`agentic migrate`, another replica) does it.
    Skip,
}

/// Durable state: deliveries, jobs, outputs, audit.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite: exactly one connection, so every write in this process
    /// queues for it in async land (fair, no busy-sleeps) instead of racing
    /// for the file lock. Postgres: the replica's pool.
    write: AnyPool,
    read: AnyPool,
    intake: intake::Batcher,
}

/// A job handed to a worker, with the lease that proves it still owns it.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub id: i64,
    pub delivery_id: String,
    pub kind: String,
    pub subject: String,
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// When the job was queued (ms since the epoch, our clock).
    pub created_at: i64,
    pub lease_token: String,
    /// Set by the worker when `/agentic cancel` asks this job to stop.
    pub cancel: crate::domain::Cancel,
}

/// What one lease statement took.
#[derive(Debug, Default)]
pub struct Leased {
    pub jobs: Vec<LeasedJob>,
    /// How many of them were running elsewhere until their lease ran out.
    pub takeovers: usize,
}

/// A job as stored, for status and tests.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub delivery_id: String,
    /// As stored (see [`NewJob::kind`]).
    pub kind: String,
    pub subject: String,
    pub state: JobState,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// When a queued job may run next (ms since the epoch).
    pub run_after: i64,
}

/// A job `/agentic cancel` reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelledJob {
    pub id: i64,
    pub kind: String,
    /// It was running (flagged, stops within a second) rather than queued
    /// (ended at once).
    pub was_running: bool,
}

/// A delivery as stored.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repo: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
}

/// What claiming a command found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Claimed now, for the first time.
    New,
    /// Already claimed by this job (it is running again).
    Again,
    /// Another job ran it (an earlier version of an edited comment).
    Taken,
}

/// One audit record. `detail` must already be redacted.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub job_id: Option<i64>,
    pub delivery_id: Option<String>,
    pub actor: Option<String>,
    pub action: AuditAction,
    pub detail: Option<serde_json::Value>,
}

/// The URL with its scheme made explicit: a bare path is a SQLite file.
fn normalize(url: &str) -> (Backend, String) {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        (Backend::Postgres, url.to_string())
    } else if url.starts_with("sqlite:") {
        (Backend::Sqlite, url.to_string())
    } else {
        (Backend::Sqlite, format!("sqlite://{url}"))
    }
}

/// `url` with `key=value` added to its query string.
fn with_param(url: &str, key: &str, value: &str) -> String {
    if url.contains(&format!("{key}=")) {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// Pool settings for SQLite: the writer keeps its one connection forever
/// and sets the file to WAL; every connection gets the same pragmas.
fn sqlite_pool(connections: u32, writer: bool) -> AnyPoolOptions {
    let options = AnyPoolOptions::new();
    let options = if writer { signalled(options) } else { options };
    options
        .max_connections(connections)
        .min_connections(if writer { 1 } else { 0 })
        .idle_timeout(if writer {
            None
        } else {
            Some(Duration::from_secs(600))
        })
        .max_lifetime(if writer {
            None
        } else {
            Some(Duration::from_secs(1800))
        })
        .after_connect(move |conn: &mut AnyConnection, _| {
            Box::pin(async move {
                if writer {
                    // WAL lets readers run beside the writer; FULL makes a
                    // delivery we answered 202 for survive power loss, not
                    // only a crash. Group commit pays for it.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                }
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(
                    format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()).as_str(),
                )
                .await?;
                Ok(())
            })
        })
}

/// In a test build (`test-hooks`), every time SQLite's one write connection
/// is given back, [`crate::test_hooks::changed`] is signalled: whatever it
/// wrote has committed. Only the writer signals, so a test reading the
/// store does not wake itself; PostgreSQL's pool serves reads and writes
/// alike and does not signal (its tests drive real processes and poll).
fn signalled(options: AnyPoolOptions) -> AnyPoolOptions {
    #[cfg(feature = "test-hooks")]
    let options = options.after_release(|_, _| {
        Box::pin(async {
            crate::test_hooks::changed();
            Ok(true)
        })
    });
    options
}

impl Store {
    /// Open (creating a SQLite file if needed) and migrate the database at
    /// `url`.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        Store::connect(url, Migrations::Apply).await
    }

    /// Open the database at `url`, applying migrations or not. Safe when
    /// several replicas start at once: Postgres migrations run under an
    /// advisory lock, SQLite's under the file's write lock.
    pub async fn connect(url: &str, migrations: Migrations) -> anyhow::Result<Store> {
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (backend, url) = normalize(url);
        let (write, read) = match backend {
            Backend::Sqlite => {
                let memory = url.contains(":memory:") || url.contains("mode=memory");
                let rwc = if memory {
                    url.clone()
                } else {
                    with_param(&url, "mode", "rwc")
                };
                // The writer's one connection is kept forever: for an
                // in-memory database it *is* the database. (WAL is a no-op
                // there; SQLite keeps the `memory` journal.)
                let write = sqlite_pool(1, true)
                    .connect(&rwc)
                    .await
                    .with_context(|| format!("opening database `{url}`"))?;
                // An in-memory database exists once per connection: readers
                // must share the writer's.
                let read = if memory {
                    write.clone()
                } else {
                    sqlite_pool(READ_CONNECTIONS, false)
                        .connect(&with_param(&url, "mode", "ro"))
                        .await
                        .with_context(|| format!("opening database `{url}` for reading"))?
                };
                (write, read)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect(&url)
                    .await
                    .context("AGENTIC_DATABASE_URL: cannot connect to PostgreSQL")?;
                (pool.clone(), pool)
            }
        };
        if migrations == Migrations::Apply {
            migrate_pool(backend, &write).await?;
        }
        let intake = intake::Batcher::start(write.clone());
        Ok(Store {
            backend,
            write,
            read,
            intake,
        })
    }

    /// Apply pending migrations to the database at `url` (`agentic
    /// migrate`); returns how many were applied.
    pub async fn migrate(url: &str) -> anyhow::Result<usize> {
        let store = Store::connect(url, Migrations::Skip).await?;
        let before = store.applied_migrations().await.unwrap_or(0);
        migrate_pool(store.backend, &store.write).await?;
        let after = store.applied_migrations().await?;
        store.close().await;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> anyhow::Result<usize> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.read)
            .await
            .context("reading the applied migrations")?;
        Ok(n as usize)
    }

    /// Which database is under the store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Store a delivery and its jobs in one transaction, deduplicated on the
    /// delivery id. Returns only once the transaction is committed.
    /// Concurrent calls are grouped into one transaction (group commit).
    pub async fn record_delivery(&self, delivery: NewDelivery) -> anyhow::Result<DeliveryOutcome> {
        self.intake.submit(delivery).await
    }

    /// Take the next runnable job: a queued one whose time has come, or a
    /// running one whose lease ran out (its worker died).
    pub async fn lease_job(&self, lease: Duration) -> anyhow::Result<Option<LeasedJob>> {
        Ok(self.lease_jobs(lease, 1, 1).await?.jobs.pop())
    }

    /// Take up to `max` runnable jobs, fairly: first running jobs whose
    /// lease ran out (their worker died), then the heads of the queues of
    /// the installations with due jobs, one installation after another,
    /// the one served longest ago first. An installation never has more
    /// than `per_installation` jobs running, so one installation's backlog
    /// leaves workers for the others.
    ///
    /// Installations are enumerated by skip-scanning `jobs_fair`, and each
    /// queue is read from its head, so the cost grows with the number of
    /// installations that have due work, not with the length of any queue.
    pub async fn lease_jobs(
        &self,
        lease: Duration,
        max: usize,
        per_installation: usize,
    ) -> anyhow::Result<Leased> {
        let now = now_ms();
        let token = uuid::Uuid::new_v4().to_string();
        // Leases that ran out, for the takeover count (their worker died).
        // Read before the lease's transaction, whose first statement must be
        // its write: SQLite cannot upgrade a reading transaction to writing
        // while another process writes.
        let expired: std::collections::HashSet<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'running' AND lease_until < $1
             ORDER BY lease_until LIMIT $2",
        )
        .bind(now)
        .bind(max as i64)
        .fetch_all(&self.read)
        .await
        .context("reading expired leases")?
        .into_iter()
        .collect();
        let sql = lease_sql(self.backend);
        let mut tx = self.write.begin().await.context("starting a lease")?;
        let rows = sqlx::query(sql)
            .bind(&token)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .bind(max as i64)
            .bind(per_installation.max(1) as i64)
            .fetch_all(&mut *tx)
            .await
            .context("leasing jobs")?;
        let served: std::collections::BTreeSet<i64> =
            rows.iter().map(|r| r.get("installation_id")).collect();
        for installation in served {
            sqlx::query(
                "INSERT INTO installation_turns (installation_id, last_turn)
                 VALUES ($1, (SELECT COALESCE(MAX(last_turn), 0) + 1 FROM installation_turns))
                 ON CONFLICT (installation_id) DO UPDATE SET last_turn = excluded.last_turn",
            )
            .bind(installation)
            .execute(&mut *tx)
            .await
            .context("recording an installation's turn")?;
        }
        tx.commit().await.context("committing a lease")?;
        let jobs = leased_jobs(rows, &token);
        let takeovers = jobs.iter().filter(|j| expired.contains(&j.id)).count();
        Ok(Leased { jobs, takeovers })
    }

    /// Take up to `max` queued `cancel` jobs that are due, ahead of the
    /// queue and outside the per-installation cap: what they stop may be
    /// what fills the worker. (The state is checked again as each row is
    /// updated, so two replicas never take the same one.)
    pub async fn lease_urgent(
        &self,
        lease: Duration,
        max: usize,
    ) -> anyhow::Result<Vec<LeasedJob>> {
        let now = now_ms();
        // Asked on every turn of the worker: a read (on the partial index)
        // first, so that the writer is only taken when there is one.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'queued' AND kind = 'cancel' AND run_after <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.read)
        .await
        .context("looking for cancel jobs")?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let rows = sqlx::query(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = $1,
                 lease_until = $2, updated_at = $3
             WHERE state = 'queued' AND id IN (
                 SELECT id FROM jobs WHERE state = 'queued' AND kind = 'cancel' AND run_after <= $3
                 ORDER BY id LIMIT $4)
             RETURNING id, delivery_id, kind, subject, payload, attempts, created_at",
        )
        .bind(&token)
        .bind(now + lease.as_millis() as i64)
        .bind(now)
        .bind(max as i64)
        .fetch_all(&self.write)
        .await
        .context("leasing cancel jobs")?;
        let jobs = leased_jobs(rows, &token);
        Ok(jobs)
    }

    /// Whether `job`'s lease is still held and unexpired: checked before
    /// every write to GitHub, so a job that lost its lease has no effect.
    pub async fn holds_lease(&self, job: &LeasedJob) -> anyhow::Result<bool> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE id = $1 AND lease_token = $2 AND state = 'running' AND lease_until > $3",
        )
        .bind(job.id)
        .bind(&job.lease_token)
        .bind(now_ms())
        .fetch_optional(&self.read)
        .await
        .context("checking a job lease")?;
        Ok(held.is_some())
    }

    /// Put a job back to run at `run_after_ms` without counting this
    /// attempt: it waits on a rate limit, it did not fail.
    pub async fn defer_job(
        &self,
        job: &LeasedJob,
        run_after_ms: i64,
        reason: &str,
    ) -> anyhow::Result<bool> {
        self.requeue(job, run_after_ms, reason, true).await
    }

    /// Push a running job's lease further out. False if the lease was lost.
    pub async fn extend_lease(&self, job: &LeasedJob, lease: Duration) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_token = $3 AND state = 'running'",
        )
        .bind(now_ms() + lease.as_millis() as i64)
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.write)
        .await
        .context("extending a job lease")?;
        Ok(r.rows_affected() == 1)
    }

    /// Finish a job, only while the lease is still ours, so a job completes
    /// once. It rides in the next group commit; the `jobs_finished` trigger
    /// audits it in the same statement.
    pub async fn complete_job(&self, job: &LeasedJob) -> anyhow::Result<bool> {
        self.intake.complete(job.id, &job.lease_token).await
    }

    /// Put a job back in the queue to run again at `run_after_ms`, keeping
    /// the error; the retry is audited in the same transaction.
    pub async fn retry_job(
        &self,
        job: &LeasedJob,
        run_after_ms: i64,
        error: &str,
    ) -> anyhow::Result<bool> {
        self.requeue(job, run_after_ms, error, false).await
    }

    async fn requeue(
        &self,
        job: &LeasedJob,
        run_after_ms: i64,
        error: &str,
        deferred: bool,
    ) -> anyhow::Result<bool> {
        let now = now_ms();
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', run_after = $1, last_error = $2,
                 attempts = attempts - $6, lease_token = NULL, lease_until = NULL, updated_at = $3
             WHERE id = $4 AND lease_token = $5 AND state = 'running'",
        )
        .bind(run_after_ms)
        .bind(error)
        .bind(now)
        .bind(job.id)
        .bind(&job.lease_token)
        .bind(i64::from(deferred))
        .execute(&mut *tx)
        .await
        .context("requeueing a job")?;
        if r.rows_affected() != 1 {
            tx.rollback().await.ok();
            return Ok(false);
        }
        let detail = serde_json::json!({ "kind": job.kind, "attempt": job.attempts, "error": error, "run_after": run_after_ms });
        insert_audit(
            &mut tx,
            now,
            &AuditEntry {
                job_id: Some(job.id),
                delivery_id: Some(job.delivery_id.clone()),
                actor: None,
                action: if deferred {
                    AuditAction::JobDeferred
                } else {
                    AuditAction::JobRetry
                },
                detail: Some(detail),
            },
        )
        .await?;
        tx.commit().await.context("committing a job retry")?;
        Ok(true)
    }

    /// Give up on a job, keeping the reason. The `jobs_finished` trigger
    /// writes the audit record in the same statement.
    pub async fn kill_job(&self, job: &LeasedJob, error: &str) -> anyhow::Result<bool> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET state = 'dead', last_error = $1, lease_token = NULL,
                 lease_until = NULL, updated_at = $2, finished_at = $2
             WHERE id = $3 AND lease_token = $4 AND state = 'running'",
        )
        .bind(error)
        .bind(now)
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.write)
        .await
        .context("marking a job dead")?;
        Ok(r.rows_affected() == 1)
    }

    /// Ask the jobs on `subject` that came in before job `before` and have
    /// not ended to stop, on behalf of `by`: queued ones end now (done,
    /// with the reason); running ones are flagged, and the worker running
    /// them (on whichever replica) stops them within a second. Installation
    /// jobs are never touched. Audited in the same transaction.
    pub async fn request_cancel(
        &self,
        subject: &str,
        before: i64,
        by: &str,
    ) -> anyhow::Result<Vec<CancelledJob>> {
        let now = now_ms();
        let reason = format!("cancelled by @{by}");
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let queued = sqlx::query(
            "UPDATE jobs SET state = 'done', last_error = $1, cancel_requested_by = $2,
                 updated_at = $3, finished_at = $3
             WHERE subject = $4 AND id < $5 AND state = 'queued' AND kind NOT IN ('installation', 'cancel')
             RETURNING id, kind",
        )
        .bind(&reason)
        .bind(by)
        .bind(now)
        .bind(subject)
        .bind(before)
        .fetch_all(&mut *tx)
        .await
        .context("cancelling queued jobs")?;
        let running = sqlx::query(
            "UPDATE jobs SET cancel_requested_by = $1
             WHERE subject = $2 AND id < $3 AND state = 'running' AND kind NOT IN ('installation', 'cancel')
                 AND cancel_requested_by IS NULL
             RETURNING id, kind",
        )
        .bind(by)
        .bind(subject)
        .bind(before)
        .fetch_all(&mut *tx)
        .await
        .context("asking running jobs to stop")?;
        let mut out = Vec::new();
        for (rows, was_running) in [(queued, false), (running, true)] {
            for r in rows {
                let job = CancelledJob {
                    id: r.get("id"),
                    kind: r.get("kind"),
                    was_running,
                };
                let entry = AuditEntry {
                    job_id: Some(job.id),
                    delivery_id: None,
                    actor: Some(by.to_string()),
                    action: if was_running {
                        AuditAction::JobCancelRequested
                    } else {
                        AuditAction::JobCancelled
                    },
                    detail: Some(serde_json::json!({ "kind": job.kind, "by_job": before })),
                };
                insert_audit(&mut tx, now, &entry).await?;
                out.push(job);
            }
        }
        tx.commit().await.context("committing a cancel")?;
        out.sort_by_key(|j| j.id);
        Ok(out)
    }

    /// Who asked `job` to stop, if anyone has.
    pub async fn cancel_requested(&self, job: &LeasedJob) -> anyhow::Result<Option<String>> {
        let by: Option<Option<String>> =
            sqlx::query_scalar("SELECT cancel_requested_by FROM jobs WHERE id = $1")
                .bind(job.id)
                .fetch_optional(&self.read)
                .await
                .context("reading a job's cancel flag")?;
        Ok(by.flatten())
    }

    /// End a job that stopped because `/agentic cancel` asked it to: done,
    /// with the reason kept (the `jobs_finished` trigger audits it).
    pub async fn finish_cancelled(&self, job: &LeasedJob, by: &str) -> anyhow::Result<bool> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET state = 'done', last_error = $1, lease_token = NULL,
                 lease_until = NULL, updated_at = $2, finished_at = $2
             WHERE id = $3 AND lease_token = $4 AND state = 'running'",
        )
        .bind(format!("cancelled by @{by}"))
        .bind(now)
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.write)
        .await
        .context("ending a cancelled job")?;
        Ok(r.rows_affected() == 1)
    }

    /// Hand a job back without counting the attempt against it (shutdown).
    pub async fn release_job(&self, job: &LeasedJob) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, lease_token = NULL,
                 lease_until = NULL, run_after = $1, updated_at = $1
             WHERE id = $2 AND lease_token = $3 AND state = 'running'",
        )
        .bind(now_ms())
        .bind(job.id)
        .bind(&job.lease_token)
        .execute(&self.write)
        .await
        .context("releasing a job")?;
        Ok(r.rows_affected() == 1)
    }

    /// Write one audit record.
    pub async fn audit(&self, entry: AuditEntry) -> anyhow::Result<()> {
        let mut conn = self
            .write
            .acquire()
            .await
            .context("acquiring a connection")?;
        insert_audit(&mut conn, now_ms(), &entry).await
    }

    /// When the earliest queued job becomes runnable, or a running job's
    /// lease runs out (ms since epoch), if any.
    pub async fn next_due(&self) -> anyhow::Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(t) AS t FROM (
                 SELECT MIN(run_after) AS t FROM jobs WHERE state = 'queued'
                 UNION ALL SELECT MIN(lease_until) FROM jobs WHERE state = 'running') AS due",
        )
        .fetch_one(&self.read)
        .await
        .context("reading the queue")?;
        Ok(row.get::<Option<i64>, _>("t"))
    }

    /// Jobs by state, for metrics.
    pub async fn job_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.read)
            .await
            .context("counting jobs")?;
        Ok(rows.iter().map(|r| (r.get("state"), r.get("n"))).collect())
    }

    /// The jobs a delivery created.
    pub async fn jobs_for_delivery(&self, delivery_id: &str) -> anyhow::Result<Vec<JobRow>> {
        self.jobs_where("WHERE delivery_id = $1", Some(delivery_id))
            .await
    }

    /// Every job, oldest first.
    pub async fn jobs(&self) -> anyhow::Result<Vec<JobRow>> {
        self.jobs_where("", None).await
    }

    /// The jobs in `state`, oldest first (`agentic jobs --state`).
    pub async fn jobs_in_state(&self, state: JobState) -> anyhow::Result<Vec<JobRow>> {
        self.jobs_where("WHERE state = $1", Some(state.as_str()))
            .await
    }

    /// Queue a dead job again with a fresh count of attempts (`agentic jobs
    /// retry`), audited as done by the operator. False unless it was dead.
    pub async fn requeue_dead(&self, job_id: i64, operator: &str) -> anyhow::Result<bool> {
        let now = now_ms();
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $1, updated_at = $1,
                 finished_at = NULL
             WHERE id = $2 AND state = 'dead'",
        )
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await
        .context("requeueing a dead job")?;
        if r.rows_affected() != 1 {
            tx.rollback().await.ok();
            return Ok(false);
        }
        insert_audit(
            &mut tx,
            now,
            &AuditEntry {
                job_id: Some(job_id),
                delivery_id: None,
                actor: Some(operator.to_string()),
                action: AuditAction::JobRequeued,
                detail: None,
            },
        )
        .await?;
        tx.commit().await.context("committing a requeue")?;
        Ok(true)
    }

    async fn jobs_where(&self, filter: &str, arg: Option<&str>) -> anyhow::Result<Vec<JobRow>> {
        let sql = format!(
            "SELECT id, delivery_id, kind, subject, state, attempts, last_error, run_after FROM jobs {filter} ORDER BY id"
        );
        let mut q = sqlx::query(&sql);
        if let Some(arg) = arg {
            q = q.bind(arg);
        }
        let rows = q.fetch_all(&self.read).await.context("reading jobs")?;
        rows.iter()
            .map(|r| {
                Ok(JobRow {
                    id: r.get("id"),
                    delivery_id: r.get("delivery_id"),
                    kind: r.get("kind"),
                    subject: r.get("subject"),
                    state: decode(r, "state")?,
                    attempts: r.get("attempts"),
                    last_error: r.get("last_error"),
                    run_after: r.get("run_after"),
                })
            })
            .collect()
    }

    /// One stored delivery.
    pub async fn delivery(&self, id: &str) -> anyhow::Result<Option<DeliveryRow>> {
        let row = sqlx::query(
            "SELECT id, event, action, installation_id, repo, outcome, reason FROM deliveries WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .context("reading a delivery")?;
        Ok(row.map(|r| DeliveryRow {
            id: r.get("id"),
            event: r.get("event"),
            action: r.get("action"),
            installation_id: r.get("installation_id"),
            repo: r.get("repo"),
            outcome: r.get("outcome"),
            reason: r.get("reason"),
        }))
    }

    /// How many deliveries are stored.
    pub async fn delivery_count(&self) -> anyhow::Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries")
            .fetch_one(&self.read)
            .await
            .context("counting deliveries")?;
        Ok(row.get("n"))
    }

    /// Audit actions recorded for a job, oldest first.
    pub async fn audit_actions(&self, job_id: i64) -> anyhow::Result<Vec<String>> {
        Ok(self
            .audit_records(job_id)
            .await?
            .into_iter()
            .map(|(action, _)| action)
            .collect())
    }

    /// The GitHub id of output `key` of a job (its status comment, …).
    pub async fn output(&self, job_id: i64, key: &str) -> anyhow::Result<Option<u64>> {
        let row = sqlx::query("SELECT github_id FROM outputs WHERE job_id = $1 AND key = $2")
            .bind(job_id)
            .bind(key)
            .fetch_optional(&self.write)
            .await
            .context("reading an output")?;
        Ok(row.map(|r| r.get::<i64, _>("github_id") as u64))
    }

    /// Remember what a job posted, so a retry edits it instead of posting.
    pub async fn save_output(
        &self,
        job_id: i64,
        key: &str,
        kind: &str,
        github_id: u64,
    ) -> anyhow::Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO outputs (job_id, key, kind, github_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (job_id, key) DO UPDATE SET github_id = excluded.github_id, updated_at = excluded.updated_at",
        )
        .bind(job_id)
        .bind(key)
        .bind(kind)
        .bind(github_id as i64)
        .bind(now)
        .execute(&self.write)
        .await
        .context("recording an output")?;
        Ok(())
    }

    /// Claim a command of a comment for a job.
    pub async fn claim_command(
        &self,
        comment_id: u64,
        fingerprint: &str,
        job_id: i64,
    ) -> anyhow::Result<Claim> {
        // The no-op update makes RETURNING yield the existing claim too; a
        // claim made by this statement carries this statement's token.
        let token = uuid::Uuid::new_v4().to_string();
        let (owner, claimed_by): (i64, Option<String>) = sqlx::query_as(
            "INSERT INTO command_runs (comment_id, fingerprint, job_id, created_at, claim_token)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (comment_id, fingerprint) DO UPDATE SET job_id = command_runs.job_id
             RETURNING job_id, claim_token",
        )
        .bind(comment_id as i64)
        .bind(fingerprint)
        .bind(job_id)
        .bind(now_ms())
        .bind(&token)
        .fetch_one(&self.write)
        .await
        .context("claiming a command")?;
        Ok(if owner != job_id {
            Claim::Taken
        } else if claimed_by.as_deref() == Some(token.as_str()) {
            Claim::New
        } else {
            Claim::Again
        })
    }

    /// Audit records of a job: (action, detail JSON), oldest first.
    pub async fn audit_records(
        &self,
        job_id: i64,
    ) -> anyhow::Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query("SELECT action, detail FROM audit WHERE job_id = $1 ORDER BY id")
            .bind(job_id)
            .fetch_all(&self.read)
            .await
            .context("reading the audit log")?;
        Ok(rows
            .iter()
            .map(|r| (r.get("action"), r.get("detail")))
            .collect())
    }

    /// The audit log, oldest first: records at or after `since` (ms since
    /// the epoch), of jobs whose delivery was about `repo` when given, at
    /// most `limit` of the newest.
    pub async fn audit_log(
        &self,
        repo: Option<&str>,
        since: Option<i64>,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT * FROM (
                 SELECT a.id, a.at, a.job_id, a.delivery_id, a.actor, a.action, a.detail, d.repo
                 FROM audit a LEFT JOIN deliveries d ON d.id = a.delivery_id
                 WHERE a.at >= $1 AND ($2 = '' OR d.repo = $2)
                 ORDER BY a.id DESC LIMIT $3) newest
             ORDER BY id",
        )
        .bind(since.unwrap_or(0))
        .bind(repo.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .context("reading the audit log")?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                at: r.get("at"),
                job_id: r.get("job_id"),
                delivery_id: r.get("delivery_id"),
                actor: r.get("actor"),
                action: r.get("action"),
                detail: r
                    .get::<Option<String>, _>("detail")
                    .and_then(|d| serde_json::from_str(&d).ok()),
                repo: r.get("repo"),
            })
            .collect())
    }

    /// Whether the store can take writes now: the group-commit writer runs
    /// and the database answers.
    pub async fn ready(&self) -> anyhow::Result<()> {
        if !self.intake.alive() {
            anyhow::bail!("the group-commit writer has stopped");
        }
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .context("the database does not answer")?;
        Ok(())
    }

    /// Stop the group-commit writer as if it had crashed. A test hook, for
    /// tests of what the server reports then; not in a release build.
    #[cfg(feature = "test-hooks")]
    pub fn stop_writer_for_tests(&self) {
        self.intake.stop();
    }

    /// Flush the write-ahead log into the main file and close connections.
    pub async fn close(&self) {
        if self.backend == Backend::Sqlite {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.write)
                .await;
        }
        self.read.close().await;
        self.write.close().await;
    }
}

/// One audit record, with the repository its delivery was about.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub job_id: Option<i64>,
    pub delivery_id: Option<String>,
    pub actor: Option<String>,
    pub action: String,
    pub detail: Option<serde_json::Value>,
    pub repo: Option<String>,
}

/// The fair choice of jobs, shared by both backends' lease statements
/// (`$3` now, `$5` most running jobs of one installation): the
/// installations with due work (a skip-scan of `jobs_fair`), how many jobs
/// each has running, and — after the backend's own `heads` — the heads
/// ranked so that installations take turns.
const LEASE_INSTALLATIONS: &str = "WITH RECURSIVE
     inst(i) AS (
         SELECT (SELECT installation_id FROM jobs WHERE state = 'queued' AND run_after <= $3
                 ORDER BY installation_id LIMIT 1)
         UNION ALL
         SELECT (SELECT installation_id FROM jobs WHERE state = 'queued' AND run_after <= $3
                   AND installation_id > inst.i ORDER BY installation_id LIMIT 1)
         FROM inst WHERE inst.i IS NOT NULL),
     busy(i, n) AS (SELECT installation_id, COUNT(*) FROM jobs
                    WHERE state = 'running' AND lease_until >= $3 GROUP BY installation_id),";
const LEASE_RANKED: &str = "
     ranked AS (
         SELECT heads.id, heads.due,
                ROW_NUMBER() OVER (PARTITION BY heads.i ORDER BY heads.due, heads.id) AS rn,
                COALESCE(b.n, 0) AS running, COALESCE(t.last_turn, -1) AS turn
         FROM heads LEFT JOIN busy b ON b.i = heads.i
         LEFT JOIN installation_turns t ON t.installation_id = heads.i)";

/// The lease statement for `backend`. `$1` token, `$2` lease end, `$3`
/// now, `$4` most jobs, `$5` most running jobs of one installation.
///
/// SQLite: one statement on the single writer, so nothing else can take
/// the same rows. PostgreSQL, where replicas lease at once: the chosen rows
/// are locked with `FOR UPDATE SKIP LOCKED` (rechecking that they are still
/// free), so two replicas never take one job and neither waits for the
/// other; and each installation's queue head is read with `LATERAL`, since
/// Postgres would run SQLite's `id IN (correlated subquery)` once per job
/// in the table (minutes with 100,000 queued) where SQLite makes it rowid
/// lookups.
/// The jobs a lease statement returned, in id order, under `token` (one
/// token per statement is enough: a lease is checked together with the
/// job id everywhere).
fn leased_jobs(rows: Vec<sqlx::any::AnyRow>, token: &str) -> Vec<LeasedJob> {
    let mut jobs: Vec<LeasedJob> = rows
        .into_iter()
        .map(|r| LeasedJob {
            id: r.get("id"),
            delivery_id: r.get("delivery_id"),
            kind: r.get("kind"),
            subject: r.get("subject"),
            payload: r.get("payload"),
            attempts: r.get("attempts"),
            created_at: r.get("created_at"),
            lease_token: token.to_string(),
            cancel: crate::domain::Cancel::default(),
        })
        .collect();
    jobs.sort_by_key(|j| j.id);
    jobs
}

fn lease_sql(backend: Backend) -> &'static str {
    static SQLITE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match backend {
        Backend::Sqlite => SQLITE.get_or_init(|| {
            format!(
                "{LEASE_INSTALLATIONS}
     heads AS (
         SELECT j.id, j.run_after AS due, j.installation_id AS i FROM inst
         JOIN jobs j ON j.id IN (SELECT id FROM jobs WHERE state = 'queued'
                                 AND installation_id = inst.i AND run_after <= $3
                                 ORDER BY run_after, id LIMIT $5)
         WHERE inst.i IS NOT NULL),{LEASE_RANKED}
     UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = $1,
         lease_until = $2, updated_at = $3
     WHERE id IN (SELECT id FROM (
                     SELECT * FROM (SELECT id, 0 AS rn, -2 AS turn, lease_until AS due FROM jobs
                                    WHERE state = 'running' AND lease_until < $3
                                    ORDER BY lease_until LIMIT $4)
                     UNION ALL
                     SELECT id, rn, turn, due FROM ranked WHERE rn + running <= $5)
                  ORDER BY rn, turn, due, id LIMIT $4)
     RETURNING id, delivery_id, kind, subject, payload, attempts, installation_id, created_at"
            )
        }),
        Backend::Postgres => POSTGRES.get_or_init(|| {
            format!(
                "{LEASE_INSTALLATIONS}
     heads AS (
         SELECT j.id, j.run_after AS due, inst.i AS i FROM inst
         CROSS JOIN LATERAL (SELECT id, run_after FROM jobs WHERE state = 'queued'
                             AND installation_id = inst.i AND run_after <= $3
                             ORDER BY run_after, id LIMIT $5) j
         WHERE inst.i IS NOT NULL),{LEASE_RANKED},
     expired AS (SELECT id, 0 AS rn, -2 AS turn, lease_until AS due FROM jobs
                 WHERE state = 'running' AND lease_until < $3
                 ORDER BY lease_until LIMIT $4),
     chosen AS (SELECT id FROM (SELECT id, rn, turn, due FROM expired
                                UNION ALL
                                SELECT id, rn, turn, due FROM ranked WHERE rn + running <= $5) c
                ORDER BY rn, turn, due, id LIMIT $4),
     locked AS (SELECT id FROM jobs WHERE id IN (SELECT id FROM chosen)
                  AND (state = 'queued' OR (state = 'running' AND lease_until < $3))
                FOR UPDATE SKIP LOCKED)
     UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, lease_token = $1,
         lease_until = $2, updated_at = $3
     FROM locked WHERE jobs.id = locked.id
     RETURNING jobs.id, jobs.delivery_id, jobs.kind, jobs.subject, jobs.payload,
               jobs.attempts, jobs.installation_id, jobs.created_at"
            )
        }),
    }
}

async fn migrate_pool(backend: Backend, pool: &AnyPool) -> anyhow::Result<()> {
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator
        .run(pool)
        .await
        .context("applying database migrations")
}

/// Read column `column` of `row` as the stored word it spells: the one
/// place the store turns its text back into a [`Code`].
pub(crate) fn decode<T: Code>(row: &sqlx::any::AnyRow, column: &str) -> anyhow::Result<T> {
    T::decode(&row.get::<String, _>(column)).with_context(|| format!("column `{column}`"))
}

async fn insert_audit(conn: &mut AnyConnection, now: i64, e: &AuditEntry) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit (at, job_id, delivery_id, actor, action, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now)
    .bind(e.job_id)
    .bind(&e.delivery_id)
    .bind(&e.actor)
    .bind(e.action.as_str())
    .bind(e.detail.as_ref().map(|d| d.to_string()))
    .execute(conn)
    .await
    .context("writing an audit record")?;
    Ok(())
}
