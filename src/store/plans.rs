//! Plans, their approvals, and what each step of an apply did.

use anyhow::Context;
use sqlx::Row;

use super::decode;
use super::{insert_audit, now_ms, AuditEntry, Store};
use crate::domain::{Code, JobState, PlanStatus, StepState};
use crate::plan::{Approval, PlanStep, Refusal};

/// A plan as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    pub id: i64,
    /// The job that made it (its status comment shows the plan).
    pub job_id: i64,
    pub repo: String,
    pub number: u64,
    /// The requester's login, for display.
    pub requester: String,
    /// The requester's GitHub user id (`None` for plans stored before ids
    /// were recorded; those cannot be applied).
    pub requester_id: Option<u64>,
    pub head_sha: Option<String>,
    pub steps: Vec<PlanStep>,
    pub hash: String,
    pub status: PlanStatus,
    pub created_at: i64,
    pub expires_at: i64,
    /// The `agentic plan` check run with its Apply button.
    pub check_run_id: Option<u64>,
    /// Who asked its apply to stop after the step it is on.
    pub cancel_requested_by: Option<String>,
    /// The job applying it (the last one to start or take over the apply).
    pub apply_job_id: Option<i64>,
    /// When the plan was shown on its thread, by GitHub's clock (ms).
    pub shown_at: Option<i64>,
    /// What change tools refused while it was made, shown under its steps.
    pub refusals: Vec<Refusal>,
}

/// How an attempt to start an apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyStart {
    /// The plan is `applying` by this job, and holds all its locks.
    Started,
    /// The plan was no longer waiting (another apply started it first).
    NotWaiting,
    /// Another plan holds one of the resources; nothing changed.
    Locked(i64),
}

/// What one step of an apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRun {
    pub step: i64,
    pub state: StepState,
    pub result: Option<String>,
}

const COLUMNS: &str = "id, job_id, repo, number, requester, requester_id, head_sha, steps, hash, status, created_at, expires_at, check_run_id, cancel_requested_by, apply_job_id, shown_at, refusals";

fn plan_of(r: &sqlx::any::AnyRow) -> anyhow::Result<PlanRow> {
    let steps: String = r.get("steps");
    let steps: Vec<PlanStep> =
        serde_json::from_str(&steps).context("a stored plan's steps do not parse")?;
    // Everything that acts derives the service from the action; a row
    // whose two disagree was not written by this code.
    if let Some(s) = steps.iter().find(|s| s.service != s.action.service()) {
        anyhow::bail!(
            "a stored plan's step names service `{}` for `{}`",
            s.service,
            s.action.iam_action()
        );
    }
    Ok(PlanRow {
        id: r.get("id"),
        job_id: r.get("job_id"),
        repo: r.get("repo"),
        number: r.get::<i64, _>("number") as u64,
        requester: r.get("requester"),
        requester_id: r.get::<Option<i64>, _>("requester_id").map(|v| v as u64),
        head_sha: r.get("head_sha"),
        steps,
        hash: r.get("hash"),
        status: decode(r, "status")?,
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        check_run_id: r.get::<Option<i64>, _>("check_run_id").map(|v| v as u64),
        cancel_requested_by: r.get("cancel_requested_by"),
        apply_job_id: r.get("apply_job_id"),
        shown_at: r.get("shown_at"),
        refusals: match r.get::<Option<String>, _>("refusals") {
            Some(json) => {
                serde_json::from_str(&json).context("a stored plan's refusals do not parse")?
            }
            None => Vec::new(),
        },
    })
}

impl Store {
    /// Store the plan job `job_id` made (again the same plan when the job
    /// is retried); its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_plan(
        &self,
        job_id: i64,
        repo: &str,
        number: u64,
        requester: (&str, u64),
        head_sha: Option<&str>,
        steps: &[PlanStep],
        expires_at: i64,
    ) -> anyhow::Result<i64> {
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO plans (repo, number, requester, head_sha, steps, hash, status, job_id,
                                created_at, expires_at, updated_at, requester_id)
             VALUES ($1, $2, $3, $4, $5, $6, $11, $7, $8, $9, $8, $10)
             ON CONFLICT (job_id) DO UPDATE SET job_id = plans.job_id
             RETURNING id",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(requester.0)
        .bind(head_sha)
        .bind(serde_json::to_string(steps)?)
        .bind(crate::plan::hash(steps))
        .bind(job_id)
        .bind(now)
        .bind(expires_at)
        .bind(requester.1 as i64)
        .bind(PlanStatus::Proposed.as_str())
        .fetch_one(&self.write)
        .await
        .context("storing a plan")?;
        Ok(id)
    }

    /// Keep beside plan `id` what change tools refused while it was made.
    pub async fn set_plan_refusals(&self, id: i64, refusals: &[Refusal]) -> anyhow::Result<()> {
        let json = serde_json::to_string(refusals).context("refusals to JSON")?;
        sqlx::query("UPDATE plans SET refusals = $1, updated_at = $2 WHERE id = $3")
            .bind(json)
            .bind(now_ms())
            .bind(id)
            .execute(&self.write)
            .await
            .context("store a plan's refusals")?;
        Ok(())
    }

    pub async fn plan(&self, id: i64) -> anyhow::Result<Option<PlanRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM plans WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.write)
            .await
            .context("reading a plan")?;
        row.as_ref().map(plan_of).transpose()
    }

    /// The plans of an issue or pull request, oldest first.
    pub async fn plans(&self, repo: &str, number: u64) -> anyhow::Result<Vec<PlanRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM plans WHERE repo = $1 AND number = $2 ORDER BY id"
        ))
        .bind(repo)
        .bind(number as i64)
        .fetch_all(&self.write)
        .await
        .context("reading plans")?;
        rows.iter().map(plan_of).collect()
    }

    /// Record the plan's check run.
    pub async fn set_plan_check_run(&self, id: i64, check_run_id: u64) -> anyhow::Result<()> {
        sqlx::query("UPDATE plans SET check_run_id = $1, updated_at = $2 WHERE id = $3")
            .bind(check_run_id as i64)
            .bind(now_ms())
            .bind(id)
            .execute(&self.write)
            .await
            .context("recording a plan's check run")?;
        Ok(())
    }

    /// Record when the plan job `job` made was last shown, by an edit of its
    /// status comment after the plan itself (GitHub's clock, ms).
    pub async fn set_plan_shown_by_job(&self, job: i64, at: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE plans SET shown_at = $1, updated_at = $2 WHERE job_id = $3")
            .bind(at)
            .bind(now_ms())
            .bind(job)
            .execute(&self.write)
            .await
            .context("recording when a plan was shown")?;
        Ok(())
    }

    /// Record when plan `id` was shown on its thread (GitHub's clock, ms).
    pub async fn set_plan_shown(&self, id: i64, at: i64) -> anyhow::Result<()> {
        sqlx::query("UPDATE plans SET shown_at = $1, updated_at = $2 WHERE id = $3")
            .bind(at)
            .bind(now_ms())
            .bind(id)
            .execute(&self.write)
            .await
            .context("recording when a plan was shown")?;
        Ok(())
    }

    /// Move a plan from one status to another; `false` when it was not in
    /// `from` (someone else moved it first).
    pub async fn move_plan(
        &self,
        id: i64,
        from: PlanStatus,
        to: PlanStatus,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE plans SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id)
        .bind(from.as_str())
        .execute(&self.write)
        .await
        .context("changing a plan's status")?;
        Ok(r.rows_affected() == 1)
    }

    /// Test set-up only (`test-hooks`): the apply itself takes its slot
    /// and locks together in [`Store::begin_apply`].
    #[cfg(feature = "test-hooks")]
    /// Start applying plan `id` in job `job`: `proposed` → `applying`;
    /// `false` when it was not waiting.
    pub async fn start_apply(&self, id: i64, job: i64) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE plans SET status = $4, apply_job_id = $1, updated_at = $2
             WHERE id = $3 AND status = $5",
        )
        .bind(job)
        .bind(now_ms())
        .bind(id)
        .bind(PlanStatus::Applying.as_str())
        .bind(PlanStatus::Proposed.as_str())
        .execute(&self.write)
        .await
        .context("starting an apply")?;
        Ok(r.rows_affected() == 1)
    }

    /// Job `job` takes over the apply of plan `id` from job `from`, which
    /// ended without finishing it; `false` when someone else moved first.
    pub async fn take_over_apply(
        &self,
        id: i64,
        from: Option<i64>,
        job: i64,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE plans SET apply_job_id = $1, updated_at = $2
             WHERE id = $3 AND status = $6
                 AND (apply_job_id = $4 OR (apply_job_id IS NULL AND $5))",
        )
        .bind(job)
        .bind(now_ms())
        .bind(id)
        .bind(from.unwrap_or(-1))
        .bind(from.is_none())
        .bind(PlanStatus::Applying.as_str())
        .execute(&self.write)
        .await
        .context("taking over an apply")?;
        Ok(r.rows_affected() == 1)
    }

    /// Whether job `id` is queued or running (it may still go on).
    pub async fn job_pending(&self, id: i64) -> anyhow::Result<bool> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.write)
            .await
            .context("reading a job's state")?;
        let state = state.as_deref().map(JobState::decode).transpose()?;
        Ok(matches!(state, Some(JobState::Queued | JobState::Running)))
    }

    /// Ask the apply of plan `id` to stop after the step it is on, on
    /// behalf of `by`; `false` when it is not being applied.
    pub async fn request_plan_cancel(&self, id: i64, by: &str) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE plans SET cancel_requested_by = $1, updated_at = $2
             WHERE id = $3 AND status = $4",
        )
        .bind(by)
        .bind(now_ms())
        .bind(id)
        .bind(PlanStatus::Applying.as_str())
        .execute(&self.write)
        .await
        .context("asking an apply to stop")?;
        Ok(r.rows_affected() == 1)
    }

    /// Ask running job `id` to stop where it safely can, on behalf of `by`
    /// (the job applying a plan, which may sit on another thread: the
    /// Apply button's job belongs to the repository); `false` when it is
    /// not running or was asked already.
    pub async fn request_job_stop(&self, id: i64, by: &str) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET cancel_requested_by = $1
             WHERE id = $2 AND state = $3 AND cancel_requested_by IS NULL",
        )
        .bind(by)
        .bind(id)
        .bind(JobState::Running.as_str())
        .execute(&self.write)
        .await
        .context("asking a job to stop")?;
        Ok(r.rows_affected() == 1)
    }

    /// Record (or renew) `approval` of plan `id`.
    pub async fn approve_plan(&self, id: i64, approval: &Approval) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO plan_approvals (plan_id, approver_id, approver, role, hash, head_sha, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (plan_id, approver_id) DO UPDATE SET approver = excluded.approver,
                 role = excluded.role, hash = excluded.hash, head_sha = excluded.head_sha,
                 created_at = excluded.created_at",
        )
        .bind(id)
        .bind(approval.approver_id as i64)
        .bind(&approval.approver)
        .bind(approval.role.as_str())
        .bind(&approval.hash)
        .bind(&approval.head_sha)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .context("recording an approval")?;
        Ok(())
    }

    pub async fn plan_approvals(&self, id: i64) -> anyhow::Result<Vec<Approval>> {
        let rows = sqlx::query(
            "SELECT approver_id, approver, role, hash, head_sha FROM plan_approvals WHERE plan_id = $1 ORDER BY created_at",
        )
        .bind(id)
        .fetch_all(&self.write)
        .await
        .context("reading approvals")?;
        rows.iter()
            .map(|r| {
                let role: String = r.get("role");
                Ok(Approval {
                    approver_id: r.get::<i64, _>("approver_id") as u64,
                    approver: r.get("approver"),
                    role: crate::domain::Role::parse(&role)
                        .with_context(|| format!("a stored approval has role `{role}`"))?,
                    hash: r.get("hash"),
                    head_sha: r.get("head_sha"),
                })
            })
            .collect()
    }

    /// What the steps of plan `id` did so far.
    pub async fn plan_step_runs(&self, id: i64) -> anyhow::Result<Vec<StepRun>> {
        let rows = sqlx::query(
            "SELECT step, state, result FROM plan_steps WHERE plan_id = $1 ORDER BY step",
        )
        .bind(id)
        .fetch_all(&self.write)
        .await
        .context("reading a plan's steps")?;
        rows.iter()
            .map(|r| {
                Ok(StepRun {
                    step: r.get("step"),
                    state: decode(r, "state")?,
                    result: r.get("result"),
                })
            })
            .collect()
    }

    /// Record what step `step` of plan `id` is or did, before going on.
    pub async fn record_step(
        &self,
        id: i64,
        step: i64,
        state: StepState,
        result: Option<&str>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO plan_steps (plan_id, step, state, result, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (plan_id, step) DO UPDATE SET state = excluded.state,
                 result = excluded.result, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(step)
        .bind(state.as_str())
        .bind(result)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .context("recording a plan step")?;
        Ok(())
    }
}

impl Store {
    /// Start applying plan `id` in job `job`, all in one transaction: the
    /// plan moves `proposed` → `applying` (this job its applier) and takes
    /// a lock on every resource, or nothing changes at all. Whoever loses a
    /// race for the plan changes nothing, so it can never release the
    /// winner's locks.
    pub async fn begin_apply(
        &self,
        id: i64,
        job: i64,
        resources: &[String],
    ) -> anyhow::Result<ApplyStart> {
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let moved = sqlx::query(
            "UPDATE plans SET status = $4, apply_job_id = $1, updated_at = $2
             WHERE id = $3 AND status = $5",
        )
        .bind(job)
        .bind(now_ms())
        .bind(id)
        .bind(PlanStatus::Applying.as_str())
        .bind(PlanStatus::Proposed.as_str())
        .execute(&mut *tx)
        .await
        .context("starting an apply")?;
        if moved.rows_affected() != 1 {
            tx.rollback().await.context("giving up an apply")?;
            return Ok(ApplyStart::NotWaiting);
        }
        if let Err(holder) = take_locks(&mut tx, id, resources).await? {
            tx.rollback().await.context("giving up resource locks")?;
            return Ok(ApplyStart::Locked(holder));
        }
        tx.commit()
            .await
            .context("committing the start of an apply")?;
        Ok(ApplyStart::Started)
    }

    /// End an apply of plan `id` in one transaction: `applying` → `to`,
    /// every lock of the plan released, and `audit` written; or nothing,
    /// and `false`, when the plan was not `applying` (by `job`, if given:
    /// a job that lost the plan to another cannot end it).
    pub async fn end_apply(
        &self,
        id: i64,
        job: Option<i64>,
        to: PlanStatus,
        audit: &AuditEntry,
    ) -> anyhow::Result<bool> {
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let moved = sqlx::query(
            "UPDATE plans SET status = $1, updated_at = $2
             WHERE id = $3 AND status = $6 AND (apply_job_id = $4 OR $5)",
        )
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id)
        .bind(job.unwrap_or(-1))
        .bind(job.is_none())
        .bind(PlanStatus::Applying.as_str())
        .execute(&mut *tx)
        .await
        .context("ending an apply")?;
        if moved.rows_affected() != 1 {
            tx.rollback()
                .await
                .context("giving up the end of an apply")?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM plan_locks WHERE plan_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("releasing resource locks")?;
        insert_audit(&mut tx, now_ms(), audit).await?;
        tx.commit()
            .await
            .context("committing the end of an apply")?;
        Ok(true)
    }

    /// The resources plan `id` holds locks on.
    pub async fn plan_locks(&self, id: i64) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar("SELECT resource FROM plan_locks WHERE plan_id = $1 ORDER BY resource")
            .bind(id)
            .fetch_all(&self.write)
            .await
            .context("reading resource locks")
    }

    /// Test set-up only (`test-hooks`): the apply itself takes its slot
    /// and locks together in [`Store::begin_apply`].
    #[cfg(feature = "test-hooks")]
    /// Lock `resources` for plan `id`, all or none, in one transaction:
    /// `Err(other)` names a plan that holds one of them.
    pub async fn lock_resources(
        &self,
        id: i64,
        resources: &[String],
    ) -> anyhow::Result<Result<(), i64>> {
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let taken = take_locks(&mut tx, id, resources).await?;
        if taken.is_ok() {
            tx.commit().await.context("committing resource locks")?;
        } else {
            tx.rollback().await.context("giving up resource locks")?;
        }
        Ok(taken)
    }

    /// Test set-up only (`test-hooks`): the apply itself takes its slot
    /// and locks together in [`Store::begin_apply`].
    #[cfg(feature = "test-hooks")]
    /// Release every lock plan `id` holds.
    pub async fn unlock_resources(&self, id: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM plan_locks WHERE plan_id = $1")
            .bind(id)
            .execute(&self.write)
            .await
            .context("releasing resource locks")?;
        Ok(())
    }
}

/// Take a lock on each of `resources` for plan `id` inside the caller's
/// transaction; `Err(other)` names a plan that holds one of them (the
/// caller rolls back, so none is kept).
async fn take_locks(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    resources: &[String],
) -> anyhow::Result<Result<(), i64>> {
    for r in resources {
        sqlx::query(
            "INSERT INTO plan_locks (resource, plan_id) VALUES ($1, $2) ON CONFLICT (resource) DO NOTHING",
        )
        .bind(r)
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("taking a resource lock")?;
        let holder: i64 = sqlx::query_scalar("SELECT plan_id FROM plan_locks WHERE resource = $1")
            .bind(r)
            .fetch_one(&mut *conn)
            .await
            .context("reading a resource lock")?;
        if holder != id {
            return Ok(Err(holder));
        }
    }
    Ok(Ok(()))
}
