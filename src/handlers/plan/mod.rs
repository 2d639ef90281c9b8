//! `/agentic plan`, `approve`, `apply`, `cancel` and `status`: infrastructure
//! changes that people approve before a deterministic executor runs them.
//!
//! The model only investigates and proposes: tools that change things
//! record plan steps (checked against the repository's `aws` scope with
//! live state) and run nothing. A plan binds its steps by hash; approvals
//! bind to that hash and the pull request's head; `crate::plan::missing`
//! decides whether an apply may start. The apply never calls the model:
//! each step is checked again, tried with DryRun, run, and its result
//! stored before the next starts.

use crate::domain::{AuditAction, PlanStatus, Role, StepState};
use std::sync::Mutex;

use crate::agent::tools::{Fence, Registry, Subject};
use crate::agent::{self, Budget, Outcome, Purpose, Task};
use crate::command::PlanRef;
use crate::event::{CheckRun, Issue};
use crate::github::{Access, GitHub};
use crate::output::StatusComment;
use crate::plan::{self, Approval, PlanFacts, PlanStep};
use crate::repo_config::AwsScope;
use crate::store::{ApplyStart, LeasedJob, PlanRow};

use super::asked::{Asked, Via};
use super::{JobContext, JobError, Refused};

mod apply;
mod approve;
mod cancel;
mod propose;
pub mod render;
mod status;

pub use apply::{apply, apply_button};
pub use approve::approve;
pub use cancel::{cancel, thread_closed};
pub use propose::{from_issue, propose};
pub use status::status_of;

/// The check run of a plan, and its Apply button's identifier.
pub const CHECK_NAME: &str = "agentic plan";

pub const APPLY_ACTION: &str = "apply";

/// How long a plan may wait for its apply.
pub const PLAN_TTL_MS: i64 = 24 * 3600 * 1000;

fn now() -> i64 {
    crate::store::now_ms()
}

/// The idempotency key of a step: a client token, and the tag a retried
/// launch looks for (≤ 64 ASCII characters, as client tokens must be).
fn step_key(plan: i64, step: i64) -> String {
    format!("agentic-plan-{plan}-step-{step}")
}

/// What a step's lock is taken on: the resource, in its service and
/// region, spelled canonically. IAM names are unique ignoring case, so
/// `Deployer` and `deployer` are one user and one lock.
fn lock_key(step: &PlanStep) -> String {
    let service = step.action.service();
    let resource = if service == "iam" {
        step.resource.to_lowercase()
    } else {
        step.resource.clone()
    };
    format!(
        "{service}:{}:{resource}",
        step.region.as_deref().unwrap_or("global"),
    )
}

/// Whether the operator lets applies run with the base credentials and no
/// session policy (then every plan says so).
fn unlimited_applies(ctx: &JobContext) -> bool {
    ctx.config.aws_apply_role_arn.is_none() && ctx.config.aws_apply_without_session_policy
}

/// The repository's AWS scope, or the refusal to give.
async fn scope_of(
    ctx: &JobContext,
    github: &GitHub,
    repo: &crate::event::Repo,
) -> Result<Result<AwsScope, String>, JobError> {
    let settings = ctx.repo_config(github, repo).await?;
    Ok(match (&settings.config.aws, &settings.problem) {
        (Some(scope), _) => Ok(scope.clone()),
        // The problem itself is said with the reply, once.
        (None, Some(_)) => Err(render::settings_problem().into()),
        (None, None) => Err(render::cannot_plan_here(&crate::aws::scope::no_scope())),
    })
}

/// The pull request's head now (issues: `None`).
async fn head_of(github: &GitHub, ev: &Asked) -> Result<Option<String>, JobError> {
    if ev.on_pull_request {
        Ok(Some(
            github
                .pull_request(&ev.repo.full_name, ev.number)
                .await?
                .head
                .sha,
        ))
    } else {
        Ok(None)
    }
}

/// Which plan a command means.
enum Pick {
    /// The plan named, or the only open one.
    Plan(Box<PlanRow>),
    /// No plan is open here.
    Nothing,
    /// No plan of this thread has that number or hash.
    Unknown(PlanRef),
    /// Several plans could be meant: the command must name one.
    Ambiguous(Vec<PlanRow>),
}

/// Whether a plan waits for approvals and its apply.
fn waiting(p: &PlanRow) -> bool {
    p.status == PlanStatus::Proposed
}

/// Whether a plan waits for its apply or is being applied.
fn open(p: &PlanRow) -> bool {
    p.status == PlanStatus::Proposed || p.status == PlanStatus::Applying
}

/// The plan of this thread that `which` names (by number or hash prefix),
/// or, without a name, the only plan for which `candidate` holds. Never a
/// guess: with several candidates the command must say which it means.
async fn pick(
    ctx: &JobContext,
    ev: &Asked,
    which: Option<&PlanRef>,
    candidate: fn(&PlanRow) -> bool,
) -> Result<Pick, JobError> {
    let plans = ctx.store.plans(&ev.repo.full_name, ev.number).await?;
    let mut found: Vec<PlanRow> = match which {
        Some(r) => plans
            .into_iter()
            .filter(|p| r.names(p.id, &p.hash))
            .collect(),
        None => plans.into_iter().filter(candidate).collect(),
    };
    Ok(match (found.len(), which) {
        (1, _) => Pick::Plan(Box::new(found.remove(0))),
        (0, Some(r)) => Pick::Unknown(r.clone()),
        (0, None) => Pick::Nothing,
        _ => Pick::Ambiguous(found),
    })
}

/// The plan's check run (`agentic plan`) on the pull request's head, or on
/// the default branch's for an issue, with the plan, what it needs, and an
/// **Apply** button; created once, then edited.
async fn check_run(
    ctx: &JobContext,
    job: &LeasedJob,
    github: &GitHub,
    plan: &PlanRow,
    needs: &[String],
) -> Result<(), JobError> {
    let title = render::check_run_title(plan);
    // Whole, never cut: a stored plan fits (`render::fits`).
    let mut summary =
        render::check_run_summary(plan, needs, &ctx.redactor).map_err(JobError::Permanent)?;
    if unlimited_applies(ctx) {
        summary.push_str(render::UNLIMITED_APPLY);
    }
    if plan.status == PlanStatus::Proposed || plan.status == PlanStatus::Applying {
        if let Some(f) = ctx.store.freeze().await? {
            summary.push_str(&render::frozen_notice(&f));
        }
    }
    let output = serde_json::json!({
        "title": title,
        "summary": summary,
    });
    // The button only while there is something to apply.
    let actions = if plan.status == PlanStatus::Proposed {
        serde_json::json!([{ "label": "Apply", "description": "Apply this plan as approved", "identifier": APPLY_ACTION }])
    } else {
        serde_json::json!([])
    };
    // Completed from the start (it waits on people, not on CI); its
    // conclusion follows the plan.
    let conclusion = match plan.status {
        PlanStatus::Applied => "success",
        PlanStatus::Failed => "failure",
        PlanStatus::Cancelled => "cancelled",
        PlanStatus::Proposed | PlanStatus::Applying => "neutral",
    };
    let update = serde_json::json!({
        "status": "completed",
        "conclusion": conclusion,
        "output": output,
        "actions": actions,
    });
    ctx.fence(job).await?;
    let id = match plan.check_run_id {
        Some(id) => id,
        None => {
            let head = match &plan.head_sha {
                Some(h) => h.clone(),
                None => github.default_branch_head(&plan.repo).await?,
            };
            let id = github
                .create_check_run(
                    &plan.repo,
                    CHECK_NAME,
                    &head,
                    &format!("plan:{}", plan.id),
                    &output,
                )
                .await?;
            ctx.store.set_plan_check_run(plan.id, id).await?;
            id
        }
    };
    github.update_check_run(&plan.repo, id, &update).await?;
    Ok(())
}

/// Show a plan's new status on its check run, if it has one.
async fn refresh_check_run(
    ctx: &JobContext,
    job: &LeasedJob,
    github: &GitHub,
    id: i64,
) -> Result<(), JobError> {
    if let Some(plan) = ctx
        .store
        .plan(id)
        .await?
        .filter(|p| p.check_run_id.is_some())
    {
        check_run(ctx, job, github, &plan, &[]).await?;
    }
    Ok(())
}

fn facts(plan: &PlanRow, requester_role: Role, rules: plan::ApprovalRules) -> PlanFacts<'_> {
    PlanFacts {
        steps: &plan.steps,
        hash: &plan.hash,
        requester: &plan.requester,
        requester_id: plan.requester_id,
        requester_role,
        head_sha: plan.head_sha.as_deref(),
        expires_at: plan.expires_at,
        rules,
    }
}

/// The repository's approval rules (the built-in ones without an `aws`
/// section, which refuses every AWS step anyway).
async fn rules_of(
    ctx: &JobContext,
    github: &GitHub,
    repo: &crate::event::Repo,
) -> Result<plan::ApprovalRules, JobError> {
    Ok(scope_of(ctx, github, repo)
        .await?
        .map(|s| s.approvals)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RiskTier;

    fn step(service: &str, resource: &str, region: Option<&str>) -> PlanStep {
        PlanStep {
            service: service.into(),
            action: if service == "iam" {
                crate::plan::AwsAction::DeleteAccessKey
            } else {
                crate::plan::AwsAction::StopInstances
            },
            region: region.map(str::to_string),
            resource: resource.into(),
            arguments: serde_json::json!({}),
            risk: RiskTier::Destructive,
        }
    }

    #[test]
    fn lock_keys_are_canonical_where_names_ignore_case() {
        assert_eq!(
            lock_key(&step("iam", "Deployer", None)),
            lock_key(&step("iam", "deployer", None))
        );
        assert_eq!(
            lock_key(&step("ec2", "i-0abc", Some("eu-west-1"))),
            "ec2:eu-west-1:i-0abc"
        );
    }
}
