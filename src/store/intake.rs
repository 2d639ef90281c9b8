//! Group commit for webhook intake (and for finished jobs, which share it).
//!
//! Each accepted delivery must be durable before GitHub gets its answer, and
//! a SQLite commit with `synchronous=FULL` costs an fsync. Committing each
//! request on its own caps intake at the disk's fsync rate, so concurrent
//! deliveries are gathered here and written in one transaction; each caller
//! is still answered only after the transaction holding its row committed.

use std::collections::HashSet;

use anyhow::Context;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::now_ms;

/// Most deliveries written in one transaction. Large enough that a burst is
/// absorbed in a few commits, small enough that one transaction stays short
/// and its statements stay under SQLite's limit of bound parameters
/// (8 per delivery, 9 per job: ~4,400 here against 32,766).
const MAX_BATCH: usize = 256;

/// Requests waiting for the writer. Past this, callers wait for room
/// (backpressure) rather than growing memory without bound.
const QUEUE_DEPTH: usize = 4096;

/// A delivery to store, with the jobs it creates.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub repo: Option<String>,
    /// `accepted` when it has jobs, otherwise `ignored`.
    pub outcome: &'static str,
    pub reason: Option<String>,
    pub jobs: Vec<NewJob>,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The installation it works for (0 for none), for fair leasing.
    pub installation_id: u64,
    /// A [`crate::domain::JobKind`]'s spelling. Kept as text in the queue: a job of a
    /// kind one release does not know (written by a newer replica) must
    /// still be listed, and end dead with its reason, not break the queue.
    pub kind: String,
    pub subject: String,
    pub payload: String,
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// New delivery, stored with its jobs.
    Stored,
    /// The id was already stored; nothing was written.
    Duplicate,
}

type Reply = oneshot::Sender<Result<DeliveryOutcome, String>>;

/// One write for the group commit.
enum Op {
    /// Store a delivery and its jobs.
    Deliver(NewDelivery, Reply),
    /// Mark a job done, if the lease (`token`) is still the holder's.
    Complete {
        job_id: i64,
        token: String,
        reply: oneshot::Sender<Result<bool, String>>,
    },
}

/// The writer task's front door. Cloned with the store; the task ends when
/// the last clone is dropped, after writing what it was given.
#[derive(Clone)]
pub(super) struct Batcher {
    tx: mpsc::Sender<Op>,
    task: tokio::task::AbortHandle,
}

impl Batcher {
    pub(super) fn start(pool: AnyPool) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let task = tokio::spawn(run(pool, rx)).abort_handle();
        Batcher { tx, task }
    }

    /// Whether the writer task still takes work (it ends only if it
    /// panicked or was stopped; then nothing can be stored).
    pub(super) fn alive(&self) -> bool {
        !self.tx.is_closed() && !self.task.is_finished()
    }

    /// Stop the writer, as a crash of it would (tests of readiness).
    #[cfg(feature = "test-hooks")]
    pub(super) fn stop(&self) {
        self.task.abort();
    }

    async fn send<T>(
        &self,
        op: Op,
        answer: oneshot::Receiver<Result<T, String>>,
    ) -> anyhow::Result<T> {
        self.tx
            .send(op)
            .await
            .map_err(|_| anyhow::anyhow!("the store is closed"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the store writer stopped"))?
            .map_err(|e| anyhow::anyhow!(e))
    }

    pub(super) async fn submit(&self, delivery: NewDelivery) -> anyhow::Result<DeliveryOutcome> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Deliver(delivery, reply), answer).await
    }

    /// Finished jobs share the intake's transactions: under load the worker
    /// then costs intake one statement per batch instead of one commit per job.
    pub(super) async fn complete(&self, job_id: i64, token: &str) -> anyhow::Result<bool> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Complete {
            job_id,
            token: token.to_string(),
            reply,
        };
        self.send(op, answer).await
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let mut deliveries = Vec::new();
        let mut completions = Vec::new();
        for op in batch.drain(..) {
            match op {
                Op::Deliver(d, reply) => deliveries.push((d, reply)),
                Op::Complete {
                    job_id,
                    token,
                    reply,
                } => completions.push(((job_id, token), reply)),
            }
        }
        let result = write_batch(
            &pool,
            deliveries.iter().map(|(d, _)| d),
            completions.iter().map(|(c, _)| c),
        )
        .await;
        match result {
            Ok((outcomes, completed)) => {
                for ((_, reply), outcome) in deliveries.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                for ((job_id, _), reply) in completions {
                    let _ = reply.send(Ok(completed.contains(&job_id)));
                }
            }
            Err(e) => {
                // One bad row must not fail its neighbours: retry each write
                // in a transaction of its own.
                tracing::warn!(error = %format!("{e:#}"), "group commit failed; writing one by one");
                for (delivery, reply) in deliveries {
                    let result = write_batch(&pool, std::iter::once(&delivery), std::iter::empty())
                        .await
                        .map(|(mut o, _)| o.remove(0))
                        .map_err(|e| format!("{e:#}"));
                    let _ = reply.send(result);
                }
                for (completion, reply) in completions {
                    let result =
                        write_batch(&pool, std::iter::empty(), std::iter::once(&completion))
                            .await
                            .map(|(_, done)| done.contains(&completion.0))
                            .map_err(|e| format!("{e:#}"));
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Write a batch in one transaction with at most three statements, whatever
/// its size: one update of the finished jobs (whose audit records the
/// `jobs_finished` trigger writes), a multi-row insert of the deliveries that
/// returns the ids it stored (a known id is skipped by `ON CONFLICT DO
/// NOTHING`), and one multi-row insert of the jobs of those. Per-statement
/// overhead, not the disk, is what limits intake, so statements are what
/// this saves.
async fn write_batch<'a>(
    pool: &AnyPool,
    batch: impl ExactSizeIterator<Item = &'a NewDelivery> + Clone,
    completions: impl ExactSizeIterator<Item = &'a (i64, String)>,
) -> anyhow::Result<(Vec<DeliveryOutcome>, HashSet<i64>)> {
    let now = now_ms();
    let mut tx = pool
        .begin()
        .await
        .context("starting the intake transaction")?;
    let completed: HashSet<i64> = if completions.len() == 0 {
        HashSet::new()
    } else {
        // The casts give Postgres the types of the VALUES columns.
        let sql = format!(
            "UPDATE jobs SET state = 'done', lease_token = NULL, lease_until = NULL, updated_at = $1,
                 finished_at = $1
             WHERE state = 'running' AND (id, lease_token) IN (VALUES {}) RETURNING id",
            rows_sql(completions.len(), &["CAST({} AS BIGINT)", "CAST({} AS TEXT)"], 2)
        );
        let mut update = sqlx::query_scalar::<_, i64>(&sql).bind(now);
        for (job_id, token) in completions {
            update = update.bind(*job_id).bind(token.as_str());
        }
        update
            .fetch_all(&mut *tx)
            .await
            .context("finishing jobs")?
            .into_iter()
            .collect()
    };
    if batch.len() == 0 {
        tx.commit().await.context("committing finished jobs")?;
        return Ok((Vec::new(), completed));
    }
    let sql = format!(
        "INSERT INTO deliveries (id, event, action, installation_id, repo, outcome, reason, received_at)
         VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
        rows_sql(batch.len(), &["{}"; 8], 1)
    );
    let mut insert = sqlx::query_scalar::<_, String>(&sql);
    for d in batch.clone() {
        insert = insert
            .bind(d.id.as_str())
            .bind(d.event.as_str())
            .bind(d.action.as_deref())
            .bind(d.installation_id.map(|i| i as i64))
            .bind(d.repo.as_deref())
            .bind(d.outcome)
            .bind(d.reason.as_deref())
            .bind(now);
    }
    let stored: HashSet<String> = insert
        .fetch_all(&mut *tx)
        .await
        .context("storing deliveries")?
        .into_iter()
        .collect();
    // Rows are inserted in order, so of two deliveries with the same id in
    // one batch the first is the stored one.
    let mut claimed = HashSet::new();
    let outcomes: Vec<DeliveryOutcome> = batch
        .clone()
        .map(|d| {
            if stored.contains(&d.id) && claimed.insert(d.id.as_str()) {
                DeliveryOutcome::Stored
            } else {
                DeliveryOutcome::Duplicate
            }
        })
        .collect();
    let jobs: Vec<(&str, &NewJob)> = batch
        .zip(&outcomes)
        .filter(|(_, o)| **o == DeliveryOutcome::Stored)
        .flat_map(|(d, _)| d.jobs.iter().map(move |j| (d.id.as_str(), j)))
        .collect();
    if !jobs.is_empty() {
        let sql = format!(
            "INSERT INTO jobs (delivery_id, installation_id, kind, subject, payload, state, run_after,
                               created_at, updated_at)
             VALUES {}",
            rows_sql(jobs.len(), &["{}", "{}", "{}", "{}", "{}", "'queued'", "$1", "$1", "$1"], 2)
        );
        let mut insert = sqlx::query(&sql).bind(now);
        for (delivery_id, job) in jobs {
            insert = insert
                .bind(delivery_id)
                .bind(job.installation_id as i64)
                .bind(job.kind.as_str())
                .bind(job.subject.as_str())
                .bind(job.payload.as_str());
        }
        insert.execute(&mut *tx).await.context("enqueueing jobs")?;
    }
    tx.commit().await.context("committing deliveries")?;
    Ok((outcomes, completed))
}

/// `(…), (…)`: `rows` rows of the column templates `columns`, each `{}` in
/// them replaced by the next numbered parameter, counting from `$first`.
/// (sqlx's `Any` driver cannot number parameters for Postgres itself.)
fn rows_sql(rows: usize, columns: &[&str], first: usize) -> String {
    let mut n = first;
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for (c, template) in columns.iter().enumerate() {
            if c > 0 {
                out.push_str(", ");
            }
            if template.contains("{}") {
                out.push_str(&template.replace("{}", &format!("${n}")));
                n += 1;
            } else {
                out.push_str(template);
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rows_sql;

    #[test]
    fn rows_are_numbered_in_order() {
        assert_eq!(
            rows_sql(2, &["CAST({} AS BIGINT)", "'x'", "{}"], 3),
            "(CAST($3 AS BIGINT), 'x', $4), (CAST($5 AS BIGINT), 'x', $6)"
        );
    }
}
