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
        return Ok(format!("There are no plans here.{freeze}"));
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
            let who: Vec<String> = approvals
                .iter()
                .map(|a| format!("@{} ({})", a.approver, a.role.as_str()))
                .collect();
            out.push(format!(
                "{}\n\nApprovals: {}",
                render(plan, &needs, &ctx.redactor),
                if who.is_empty() {
                    "none".to_string()
                } else {
                    who.join(", ")
                }
            ));
        } else {
            // What each step did, once an apply started.
            let runs = ctx.store.plan_step_runs(plan.id).await?;
            let mut line = format!(
                "**Plan {}**: {} ({} step(s)).",
                plan.id,
                plan.status,
                plan.steps.len()
            );
            if !runs.is_empty() {
                for (i, step) in plan.steps.iter().enumerate() {
                    let run = runs.iter().find(|r| r.step == i as i64 + 1);
                    let (mark, what) = match run.map(|r| r.state) {
                        Some(StepState::Done) => ("✅", run.and_then(|r| r.result.clone())),
                        Some(StepState::Failed) => ("❌", run.and_then(|r| r.result.clone())),
                        // Started, and its result never recorded: it may have run.
                        Some(_) => (
                            "❔",
                            Some("may have run; its result was not recorded".into()),
                        ),
                        None => ("⏭️", Some("not run".into())),
                    };
                    line.push_str(&format!(
                        "\n{mark} {} — {}",
                        step_line(i + 1, step),
                        render::outcome_text(&what.unwrap_or_default())
                    ));
                }
            }
            out.push(line);
        }
    }
    Ok(format!(
        "{}{freeze}",
        out.join(crate::handlers::progress::SECTION_BREAK)
    ))
}
