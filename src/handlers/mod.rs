//! One handler per workflow, dispatched by job kind.
//!
//! The workflows themselves (commands, review, infrastructure tasks) arrive
//! in later issues. Until then every kind is *received*: the handler checks
//! that the stored event still parses, and the worker's completion record
//! says that it ran, which is what the queue's crash-and-restart guarantees are tested on.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::event::Event;
use crate::jobs::JobKind;
use crate::store::{LeasedJob, Store};

/// Everything a handler may use, passed as one value.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub config: Arc<Config>,
}

/// Why a job attempt failed, which decides whether it runs again.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (a 5xx, a timeout, a rate limit).
    #[error("{reason}")]
    Transient {
        reason: String,
        /// What the other side asked us to wait (`retry-after`), if it did.
        retry_after: Option<Duration>,
    },
    /// Will fail the same way every time; the job is dead at once.
    #[error("{0}")]
    Permanent(String),
}

impl From<anyhow::Error> for JobError {
    /// Our own failures (the store) are worth retrying.
    fn from(e: anyhow::Error) -> Self {
        JobError::Transient {
            reason: format!("{e:#}"),
            retry_after: None,
        }
    }
}

/// Run one attempt of a job.
pub async fn run(ctx: &JobContext, job: &LeasedJob) -> Result<(), JobError> {
    let kind = JobKind::parse(&job.kind)
        .ok_or_else(|| JobError::Permanent(format!("unknown job kind `{}`", job.kind)))?;
    let event: Event = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Permanent(format!("stored event does not parse: {e}")))?;
    match kind {
        JobKind::Command
        | JobKind::Review
        | JobKind::InfraTask
        | JobKind::CheckRunAction
        | JobKind::Installation => receive(ctx, job, kind, &event).await,
    }
}

/// Accept a job of `kind` whose workflow does not exist yet. The worker's
/// completion record (`job.completed`, with the kind) is the trace that it
/// ran; see the module comment.
async fn receive(
    ctx: &JobContext,
    _job: &LeasedJob,
    kind: JobKind,
    event: &Event,
) -> Result<(), JobError> {
    if let Some(delay) = ctx.config.test_job_delay {
        tokio::time::sleep(delay).await;
    }
    tracing::debug!(
        kind = kind.as_str(),
        action = event.action(),
        "no workflow for this job kind yet"
    );
    Ok(())
}
