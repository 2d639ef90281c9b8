//! `/agentic cancel` of a plan, and a closed thread: withdraw a waiting
//! plan, stop an apply after its step, and the thread's other work.

use super::*;

/// `/agentic cancel`: withdraw the current plan, stop an apply after the
/// step it is on, and stop the work still running or queued on this
/// thread (the jobs that came in before this command).
pub async fn cancel(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    github: &GitHub,
    which: Option<PlanRef>,
) -> Result<String, JobError> {
    let login = ev.author.login.as_str();
    let mut said = Vec::new();
    let plan = match pick(ctx, ev, which.as_ref(), open).await? {
        Pick::Plan(p) => Some(*p),
        Pick::Nothing => None,
        Pick::Unknown(r) => return Ok(render::no_such_plan(&r)),
        Pick::Ambiguous(plans) => return Ok(render::name_the_plan("cancel", &plans)),
    };
    let mut applier = None;
    if let Some(plan) = plan {
        let stopped = stop_plan(ctx, job, github, &plan, login, "cancel", true).await?;
        if matches!(stopped, Stopped::Stopping) {
            applier = plan.apply_job_id;
        }
        match stopped {
            Stopped::Withdrawn => said.push(render::withdrawn(plan.id)),
            Stopped::Stopping => said.push(render::stopping(plan.id)),
            Stopped::Ended => said.push(render::dead_apply_cancelled(plan.id)),
            Stopped::Neither => {}
        }
    }
    let jobs = ctx
        .store
        .request_cancel(&job.subject, job.id, login)
        .await?;
    if let Some(owner) = applier {
        // The job applying the plan hears it at once, even when it is not
        // on this thread (the Apply button's job belongs to the repository).
        ctx.store.request_job_stop(owner, login).await?;
    }
    said.extend(render::jobs_stopped(&jobs));
    if said.is_empty() {
        return Ok(render::nothing_to_cancel().into());
    }
    Ok(said.join("\n\n"))
}

/// What stopping a plan did.
enum Stopped {
    /// It waited for an apply, and never will run.
    Withdrawn,
    /// Its apply stops after the step it is on.
    Stopping,
    /// Its apply had died midway: it is cancelled, its locks released.
    Ended,
    /// It had ended already.
    Neither,
}

/// Withdraw `plan` if it waits for an apply, or ask its apply to stop;
/// audited with `why`.
async fn stop_plan(
    ctx: &JobContext,
    job: &LeasedJob,
    github: &GitHub,
    plan: &PlanRow,
    by: &str,
    why: &str,
    stop_applying: bool,
) -> Result<Stopped, JobError> {
    let detail = serde_json::json!({ "plan": plan.id, "why": why });
    if ctx
        .store
        .move_plan(plan.id, PlanStatus::Proposed, PlanStatus::Cancelled)
        .await?
    {
        ctx.audit(job, by, AuditAction::PlanCancelled, detail)
            .await?;
        refresh_check_run(ctx, job, github, plan.id).await?;
        Ok(Stopped::Withdrawn)
    } else if !stop_applying {
        Ok(Stopped::Neither)
    } else if ctx.store.request_plan_cancel(plan.id, by).await? {
        ctx.audit(job, by, AuditAction::PlanCancelRequested, detail.clone())
            .await?;
        let owner_goes_on = match plan.apply_job_id {
            Some(owner) => ctx.store.job_pending(owner).await?,
            None => false,
        };
        if owner_goes_on {
            return Ok(Stopped::Stopping);
        }
        // Nobody is applying it any more (its job died): end it here, its
        // status, locks and audit together.
        let entry = JobContext::audit_entry(job, by, AuditAction::PlanApplyCancelled, detail);
        if ctx
            .store
            .end_apply(plan.id, None, PlanStatus::Cancelled, &entry)
            .await?
        {
            refresh_check_run(ctx, job, github, plan.id).await?;
        }
        Ok(Stopped::Ended)
    } else {
        Ok(Stopped::Neither)
    }
}

/// An issue or pull request closed: its plans waiting for an apply are
/// withdrawn, an apply in progress stops after the step it is on (and
/// releases its locks), and the work still running on it is stopped.
pub async fn thread_closed(
    ctx: &JobContext,
    job: &LeasedJob,
    installation: u64,
    repository: &crate::event::Repo,
    number: u64,
    by: &str,
) -> Result<(), JobError> {
    let repo = repository.full_name.as_str();
    let plans = ctx.store.plans(repo, number).await?;
    if plans.is_empty() {
        // No plan, so no apply: whatever runs here may simply stop.
        let stopped = ctx.store.request_cancel(&job.subject, job.id, by).await?;
        tracing::info!(repo, number, jobs = stopped.len(), "thread closed");
        return Ok(());
    }
    let github = ctx.repo_client(installation, repo, Access::Write).await?;
    // An issue's or pull request's author may close it whatever their role.
    // Stopping an approved apply halfway is what `cancel` does, and needs
    // its role: a half-applied plan is never the result of such a click.
    let needed = ctx
        .repo_config(&github, repository)
        .await?
        .config
        .required_role(&crate::command::Command::Cancel { plan: None });
    let may_cancel = github.fresh_role(repo, by).await? >= needed;
    for plan in &plans {
        stop_plan(ctx, job, &github, plan, by, "closed", may_cancel).await?;
    }
    if may_cancel {
        let stopped = ctx.store.request_cancel(&job.subject, job.id, by).await?;
        for owner in plans.iter().filter_map(|p| p.apply_job_id) {
            ctx.store.request_job_stop(owner, by).await?;
        }
        tracing::info!(repo, number, jobs = stopped.len(), "thread closed");
        return Ok(());
    }
    // Without cancel's role nothing that runs is stopped: not an apply (even
    // one that started since the plans were read), nor the work around it.
    let mut going_on = Vec::new();
    for plan in &plans {
        if let Some(now) = ctx.store.plan(plan.id).await? {
            if now.status == PlanStatus::Applying {
                going_on.push(now.id);
            }
        }
    }
    if going_on.is_empty() {
        return Ok(());
    }
    ctx.audit(
        job,
        by,
        AuditAction::PlanCloseNotCancelling,
        serde_json::json!({ "plans": going_on, "needed": needed.as_str() }),
    )
    .await?;
    let mut status = ctx.status_comment(github, repo, number, job);
    status
        .show(&render::closed_while_applying(by, needed, &going_on))
        .await?;
    Ok(())
}
