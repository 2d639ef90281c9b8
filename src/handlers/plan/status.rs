//! `/agentic status`: the thread's plans, what each needs, and its steps.

use super::*;

/// `/agentic status`: the plans of this thread and what each still needs.
pub async fn status_of(ctx: &JobContext, ev: &Asked, github: &GitHub) -> Result<String, JobError> {
    let plans = ctx.store.plans(&ev.repo.full_name, ev.number).await?;
    let freeze = match ctx.store.freeze().await? {
        Some(f) => render::frozen_notice(&f),
        None => String::new(),
    };
    if plans.is_empty() {
        return Ok(render::no_plans(&freeze));
    }
    let head = head_of(github, ev).await?;
    let rules = rules_of(ctx, github, &ev.repo).await?;
    let mut out = Vec::new();
    for plan in plans.iter().rev().take(10) {
        if plan.status == PlanStatus::Proposed {
            let role = github.role(&ev.repo.full_name, &plan.requester).await?;
            let approvals = ctx.store.plan_approvals(plan.id).await?;
            let needs = plan::missing(
                &facts(plan, role, rules),
                &approvals,
                head.as_deref(),
                now(),
            );
            out.push(render::plan_waiting(
                plan,
                &needs,
                &approvals,
                &ctx.redactor,
            ));
        } else {
            // What each step did, once an apply started.
            let runs = ctx.store.plan_step_runs(plan.id).await?;
            out.push(render::plan_ended(plan, &runs));
        }
    }
    Ok(render::plans_here(&out, &freeze))
}
