//! `/agentic approve`: which plan is meant, that it is shown as it was
//! posted, and the approval bound to its hash and head.

use super::*;

/// Whether another plan of `plan`'s thread was made within a plan's
/// lifetime before the approving comment (or after it): a plan withdrawn
/// and replaced while an approver read it must not take its approval.
async fn recently_replaced(ctx: &JobContext, ev: &Asked, plan: &PlanRow) -> Result<bool, JobError> {
    let since = ev.created_at_ms().unwrap_or_else(now) - PLAN_TTL_MS;
    Ok(ctx
        .store
        .plans(&ev.repo.full_name, ev.number)
        .await?
        .iter()
        .any(|p| p.id != plan.id && p.created_at > since))
}

/// Whether `plan` was shown on its thread strictly before a comment
/// written at `comment_at`, both by GitHub's clock. GitHub writes whole
/// seconds, so a comment in the same second as the plan is not "after".
fn shown_before(plan: &PlanRow, comment_at: Option<i64>) -> bool {
    matches!((plan.shown_at, comment_at), (Some(shown), Some(written)) if shown < written)
}

/// Whether the comment that shows `plan` is still exactly as the bot last
/// wrote it: GitHub's `updated_at` is the time the bot recorded. An edit by
/// anyone else (or a deleted comment) means approvers may have read
/// something other than the plan.
async fn shown_as_posted(
    ctx: &JobContext,
    github: &GitHub,
    plan: &PlanRow,
) -> Result<bool, JobError> {
    let (Some(shown), Some(id)) = (
        plan.shown_at,
        crate::output::status_comment_id(&ctx.store, plan.job_id).await?,
    ) else {
        return Ok(false);
    };
    match github.comment(&plan.repo, id).await {
        Ok(c) => Ok(c
            .updated_at
            .as_deref()
            .and_then(crate::event::parse_time_ms)
            == Some(shown)),
        Err(crate::github::GitHubError::Status { status: 404, .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `/agentic approve`: the current plan, approved by the commenter with the
/// role they have, at the head the pull request has now.
pub async fn approve(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    role: Role,
    github: &GitHub,
    which: Option<PlanRef>,
) -> Result<String, JobError> {
    let plan = match pick(ctx, ev, which.as_ref(), waiting).await? {
        Pick::Plan(p) => *p,
        Pick::Nothing => return Ok(render::nothing_to_approve().into()),
        Pick::Unknown(r) => return Ok(render::no_such_plan(&r)),
        Pick::Ambiguous(plans) => return Ok(render::name_the_plan("approve", &plans)),
    };
    if which.is_none() && recently_replaced(ctx, ev, &plan).await? {
        // Another plan came and went while people were reading: a bare
        // approve might mean the one the approver read, not this one.
        ctx.audit(job, &ev.author.login, AuditAction::PlanApprovalRefused, serde_json::json!({ "plan": plan.id, "why": "another plan on the thread within the plan lifetime" })).await?;
        return Ok(render::replaced_recently(plan.id, &plan.hash));
    }
    if which.is_none() && !shown_before(&plan, ev.created_at_ms()) {
        // An approval binds to what its author could have read: a plan that
        // appeared after the comment was written (slipped in while the
        // approver read another) is not approved by a bare command.
        ctx.audit(
            job,
            &ev.author.login,
            AuditAction::PlanApprovalRefused,
            serde_json::json!({ "plan": plan.id, "why": "not shown before the approving comment" }),
        )
        .await?;
        return Ok(render::shown_after_comment(plan.id, &plan.hash));
    }
    if plan.status != PlanStatus::Proposed {
        return Ok(render::not_approvable(plan.id, plan.status));
    }
    if !shown_as_posted(ctx, github, &plan).await? {
        // Anyone with write access may edit the bot's comments: the plan an
        // approver read there may not be the plan. Its check run is ours.
        ctx.audit(job, &ev.author.login, AuditAction::PlanApprovalRefused, serde_json::json!({ "plan": plan.id, "why": "the plan's comment is not as the bot posted it" })).await?;
        return Ok(render::comment_changed(plan.id, &plan.hash));
    }
    let head = head_of(github, ev).await?;
    let approval = Approval {
        approver_id: ev.author.id,
        approver: ev.author.login.clone(),
        role,
        hash: plan.hash.clone(),
        head_sha: head.clone(),
    };
    ctx.store.approve_plan(plan.id, &approval).await?;
    ctx.audit(job, &ev.author.login, AuditAction::PlanApproved, serde_json::json!({ "plan": plan.id, "hash": plan.hash, "role": role.as_str(), "head_sha": head })).await?;
    let requester_role = github.role(&ev.repo.full_name, &plan.requester).await?;
    let approvals = ctx.store.plan_approvals(plan.id).await?;
    let rules = rules_of(ctx, github, &ev.repo).await?;
    let needs = plan::missing(
        &facts(&plan, requester_role, rules),
        &approvals,
        head.as_deref(),
        now(),
    );
    if plan.check_run_id.is_some() {
        check_run(ctx, job, github, &plan, &needs).await?;
    }
    Ok(render::approved(
        &ev.author.login,
        role,
        &plan,
        &needs,
        &ctx.redactor,
    ))
}
