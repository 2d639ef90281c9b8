//! Group commit for webhook intake.
//!
//! Each accepted delivery must be durable before GitHub gets its answer, and
//! a SQLite commit with `synchronous=FULL` costs an fsync. Committing each
//! request on its own caps intake at the disk's fsync rate, so concurrent
//! deliveries are gathered here and written in one transaction; each caller
//! is still answered only after the transaction holding its row committed.

use anyhow::Context;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::now_ms;

/// Most deliveries written in one transaction. Large enough that a burst is
/// absorbed in a few commits, small enough that one transaction stays short.
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

/// The writer task's front door. Cloned with the store; the task ends when
/// the last clone is dropped, after writing what it was given.
#[derive(Clone)]
pub(super) struct Batcher {
    tx: mpsc::Sender<(NewDelivery, Reply)>,
}

impl Batcher {
    pub(super) fn start(pool: SqlitePool) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(pool, rx));
        Batcher { tx }
    }

    pub(super) async fn submit(&self, delivery: NewDelivery) -> anyhow::Result<DeliveryOutcome> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((delivery, reply))
            .await
            .map_err(|_| anyhow::anyhow!("the store is closed"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the store writer stopped"))?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<(NewDelivery, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        match write_batch(&pool, batch.iter().map(|(d, _)| d)).await {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                // One bad row must not fail its neighbours: retry each
                // delivery in a transaction of its own.
                tracing::warn!(error = %format!("{e:#}"), size = batch.len(), "group commit failed; writing one by one");
                for (delivery, reply) in batch.drain(..) {
                    let result = write_batch(&pool, std::iter::once(&delivery))
                        .await
                        .map(|mut o| o.remove(0))
                        .map_err(|e| format!("{e:#}"));
                    let _ = reply.send(result);
                }
            }
        }
    }
}

async fn write_batch<'a>(
    pool: &SqlitePool,
    batch: impl ExactSizeIterator<Item = &'a NewDelivery>,
) -> anyhow::Result<Vec<DeliveryOutcome>> {
    let now = now_ms();
    let mut tx = pool
        .begin()
        .await
        .context("starting the intake transaction")?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for d in batch {
        let inserted = sqlx::query(
            "INSERT INTO deliveries (id, event, action, installation_id, repo, outcome, reason, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&d.id)
        .bind(&d.event)
        .bind(&d.action)
        .bind(d.installation_id.map(|i| i as i64))
        .bind(&d.repo)
        .bind(d.outcome)
        .bind(&d.reason)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("storing a delivery")?
        .rows_affected()
            == 1;
        if !inserted {
            outcomes.push(DeliveryOutcome::Duplicate);
            continue;
        }
        for job in &d.jobs {
            sqlx::query(
                "INSERT INTO jobs (delivery_id, kind, subject, payload, state, run_after, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5, ?5)",
            )
            .bind(&d.id)
            .bind(&job.kind)
            .bind(&job.subject)
            .bind(&job.payload)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("enqueueing a job")?;
        }
        outcomes.push(DeliveryOutcome::Stored);
    }
    tx.commit().await.context("committing deliveries")?;
    Ok(outcomes)
}
