//! Group commit for webhook intake.
//!
//! Each accepted delivery must be durable before GitHub gets its answer, and
//! a SQLite commit with `synchronous=FULL` costs an fsync. Committing each
//! request on its own caps intake at the disk's fsync rate, so concurrent
//! deliveries are gathered here and written in one transaction; each caller
//! is still answered only after the transaction holding its row committed.

use std::collections::HashSet;

use anyhow::Context;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::now_ms;

/// Most deliveries written in one transaction. Large enough that a burst is
/// absorbed in a few commits, small enough that one transaction stays short
/// and its statements stay under SQLite's limit of bound parameters
/// (8 per delivery, 8 per job: ~4,000 here against 32,766).
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

/// Write a batch in one transaction with two statements, whatever its size:
/// a multi-row insert of the deliveries that returns the ids it stored (a
/// known id is skipped by `ON CONFLICT DO NOTHING`), then one multi-row
/// insert of the jobs of those. Per-statement overhead, not the disk, is
/// what limits intake, so statements are what this saves.
async fn write_batch<'a>(
    pool: &SqlitePool,
    batch: impl ExactSizeIterator<Item = &'a NewDelivery> + Clone,
) -> anyhow::Result<Vec<DeliveryOutcome>> {
    let now = now_ms();
    let mut tx = pool
        .begin()
        .await
        .context("starting the intake transaction")?;
    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO deliveries (id, event, action, installation_id, repo, outcome, reason, received_at) ",
    );
    insert.push_values(batch.clone(), |mut row, d| {
        row.push_bind(&d.id)
            .push_bind(&d.event)
            .push_bind(&d.action)
            .push_bind(d.installation_id.map(|i| i as i64))
            .push_bind(&d.repo)
            .push_bind(d.outcome)
            .push_bind(&d.reason)
            .push_bind(now);
    });
    insert.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
    let stored: HashSet<String> = insert
        .build_query_scalar::<String>()
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
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO jobs (delivery_id, kind, subject, payload, state, run_after, created_at, updated_at) ",
        );
        insert.push_values(jobs, |mut row, (delivery_id, job)| {
            row.push_bind(delivery_id)
                .push_bind(&job.kind)
                .push_bind(&job.subject)
                .push_bind(&job.payload)
                .push_bind("queued")
                .push_bind(now)
                .push_bind(now)
                .push_bind(now);
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .context("enqueueing jobs")?;
    }
    tx.commit().await.context("committing deliveries")?;
    Ok(outcomes)
}
