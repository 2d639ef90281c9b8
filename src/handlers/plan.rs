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
use crate::event::{CheckRun, Issue, IssueComment};
use crate::github::{Access, GitHub};
use crate::output::StatusComment;
use crate::plan::{self, Approval, PlanFacts, PlanStep};
use crate::repo_config::AwsScope;
use crate::store::{ApplyStart, LeasedJob, PlanRow};

use super::plan_text::{self, render, step_line};
use super::{JobContext, JobError};

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
        (None, Some(_)) => Err(
            "I cannot plan or apply AWS changes here: no AWS tool runs for this repository until the problem with its settings is fixed (said with every reply here, `/agentic help` too).".into(),
        ),
        (None, None) => Err(format!(
            "I cannot plan AWS changes here: {}.",
            crate::aws::scope::no_scope()
        )),
    })
}

/// The pull request's head now (issues: `None`).
async fn head_of(github: &GitHub, ev: &IssueComment) -> Result<Option<String>, JobError> {
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
    ev: &IssueComment,
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

/// The reply when a command could mean several plans: it names them, and
/// nothing is done.
fn name_the_plan(command: &str, plans: &[PlanRow]) -> String {
    let list: Vec<String> = plans
        .iter()
        .map(|p| format!("- plan {} (hash `{}`), {}", p.id, &p.hash[..12], p.status))
        .collect();
    format!(
        "More than one plan could be meant here, so I did nothing. Name the one you mean, by its number or its hash: `/agentic {command} <plan>`.\n\n{}",
        list.join("\n")
    )
}

/// The reply for a plan name that matches no plan of this thread.
fn no_such_plan(r: &PlanRef) -> String {
    format!("There is no plan `{r}` on this thread; `/agentic status` lists them.")
}

/// `/agentic plan <request>`.
pub async fn propose(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    request: &str,
    status: &mut StatusComment,
    previous: &[String],
) -> Result<String, JobError> {
    let repo = ev.repo.full_name.as_str();
    let scope = match scope_of(ctx, &status.github, &ev.repo).await? {
        Ok(s) => s,
        Err(refusal) => return Ok(refusal),
    };
    let before = super::progress::progress_text(previous, "");
    status
        .show(&format!("{before}{}", super::progress::WORKING))
        .await?;
    let reader = ctx
        .repo_client(ev.installation_id, repo, Access::Read)
        .await?;
    let aws = ctx.aws().await;
    if let Err(refusal) = crate::aws::scope::check_account(&aws, &scope).await {
        return Ok(format!("I cannot plan AWS changes here: {refusal}."));
    }
    let head = head_of(&reader, ev).await?;
    let registry = if ev.on_pull_request {
        Registry::for_pull_request()
    } else {
        Registry::for_issue()
    }
    .with(crate::aws::catalog::read_tools())
    .with(crate::aws::catalog::change_tools());
    let fence = Fence::new();
    let subject = Subject {
        github: reader,
        repo: repo.to_string(),
        number: ev.number,
        head_sha: head.clone(),
        fence: fence.clone(),
        aws: Some(crate::aws::AwsAccess {
            aws,
            scope: scope.clone(),
        }),
    };
    let steps = Mutex::new(plan::PlanDraft::default());
    let task = Task {
        purpose: Purpose::Plan,
        message: format!(
            "@{} asks for this change in {repo} #{} (allowed regions: {}):\n{}",
            ev.author.login,
            ev.number,
            scope.regions.join(", "),
            fence.wrap("the request", request)
        ),
        finish: None,
        plan: Some(&steps),
    };
    let trace = ctx.trace(job, Some(ev.author.login.clone()));
    let mut progress = super::progress::CommentProgress { status, before };
    let outcome = match agent::converse(
        &ctx.llm,
        &registry,
        &subject,
        Budget::from_config(&ctx.config),
        task,
        &trace,
        &mut progress,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return ctx.model_failed(job, &e, "a plan"),
    };
    let summary = match outcome {
        Outcome::Answer(a) => a,
        Outcome::Submitted(_) => String::new(),
        Outcome::Stopped { reason } => {
            return Ok(format!(
                "⚠️ I stopped before finishing the plan because {reason}; nothing was planned."
            ))
        }
    };
    let plan::PlanDraft { steps, refusals } = steps.into_inner().unwrap_or_else(|p| p.into_inner());
    // Already settled step by step; once more on what is stored.
    let mut steps = steps;
    plan::settle_tiers(&mut steps);
    if steps.is_empty() {
        return Ok(plan_text::nothing_proposed(
            &summary,
            &refusals,
            &ctx.redactor,
        ));
    }
    if !plan_text::fits(&steps, &refusals, &ctx.redactor) {
        return Ok(plan_text::too_large(steps.len()));
    }
    // The operator's ceiling caps the tier; the whole plan is refused, so
    // nobody approves a part of what was asked for thinking it the whole.
    if let Err(why) = crate::aws::scope::tier(&scope, plan::risk(&steps)) {
        ctx.audit(
            job,
            &ev.author.login,
            AuditAction::PlanRefused,
            serde_json::json!({ "why": why, "steps": steps }),
        )
        .await?;
        return Ok(format!(
            "⚠️ I cannot make this plan: {why}. Nothing was planned.\n\n{}",
            plan_text::steps_text(&steps, &refusals, &ctx.redactor)
        ));
    }
    let id = ctx
        .store
        .create_plan(
            job.id,
            repo,
            ev.number,
            (&ev.author.login, ev.author.id),
            head.as_deref(),
            &steps,
            now() + PLAN_TTL_MS,
        )
        .await?;
    if !refusals.is_empty() {
        ctx.store.set_plan_refusals(id, &refusals).await?;
    }
    let plan = ctx
        .store
        .plan(id)
        .await?
        .ok_or_else(|| JobError::Permanent("the plan just stored is gone".into()))?;
    let role = progress.status.github.role(repo, &ev.author.login).await?;
    let rules = rules_of(ctx, &progress.status.github, &ev.repo).await?;
    let needs = plan::missing(&facts(&plan, role, rules), &[], head.as_deref(), now());
    ctx.audit(
        job,
        &ev.author.login,
        AuditAction::PlanCreated,
        serde_json::json!({ "plan": id, "hash": plan.hash, "steps": plan.steps, "refusals": plan.refusals }),
    )
    .await?;
    check_run(ctx, job, &progress.status.github, &plan, &needs).await?;
    let mut text = plan_text::proposed(&summary, &plan, &needs, &ctx.redactor);
    if unlimited_applies(ctx) {
        text.push_str(plan_text::UNLIMITED_APPLY);
    }
    if let Some(f) = ctx.store.freeze().await? {
        text.push_str(&plan_text::frozen_notice(&f));
    }
    // Shown now, and when by GitHub's clock: a bare `/agentic approve`
    // approves only a plan shown before its comment was written.
    progress
        .status
        .show(&format!("{}{text}", progress.before))
        .await?;
    if let Some(at) = progress.status.shown_at() {
        ctx.store.set_plan_shown(id, at).await?;
    }
    Ok(text)
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
    let title = format!(
        "Plan {}: {} step(s), {}",
        plan.id,
        plan.steps.len(),
        plan.status
    );
    // Whole, never cut: a stored plan fits (`plan_text::fits`).
    let mut summary =
        plan_text::check_run_summary(plan, needs, &ctx.redactor).map_err(JobError::Permanent)?;
    if unlimited_applies(ctx) {
        summary.push_str(plan_text::UNLIMITED_APPLY);
    }
    if plan.status == PlanStatus::Proposed || plan.status == PlanStatus::Applying {
        if let Some(f) = ctx.store.freeze().await? {
            summary.push_str(&plan_text::frozen_notice(&f));
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
    if !ctx.store.holds_lease(job).await? {
        return Err(JobError::LeaseLost);
    }
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

/// End an apply that cannot start after all (no step ran): the plan
/// fails, its locks go, and the reply says why.
async fn abandon(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    github: &GitHub,
    id: i64,
    why: String,
) -> Result<String, JobError> {
    let detail = serde_json::json!({ "plan": id, "why": why });
    end(
        ctx,
        job,
        github,
        id,
        PlanStatus::Failed,
        (&ev.author.login, AuditAction::PlanApplyRefused, detail),
    )
    .await?;
    Ok(format!("I cannot apply plan {id}: {why}. Nothing ran."))
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

/// Whether another plan of `plan`'s thread was made within a plan's
/// lifetime before the approving comment (or after it): a plan withdrawn
/// and replaced while an approver read it must not take its approval.
async fn recently_replaced(
    ctx: &JobContext,
    ev: &IssueComment,
    plan: &PlanRow,
) -> Result<bool, JobError> {
    let since = ev.created_at_ms.unwrap_or_else(now) - PLAN_TTL_MS;
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
    ev: &IssueComment,
    role: Role,
    github: &GitHub,
    which: Option<PlanRef>,
) -> Result<String, JobError> {
    let plan = match pick(ctx, ev, which.as_ref(), waiting).await? {
        Pick::Plan(p) => *p,
        Pick::Nothing => return Ok("There is no plan waiting here to approve.".into()),
        Pick::Unknown(r) => return Ok(no_such_plan(&r)),
        Pick::Ambiguous(plans) => return Ok(name_the_plan("approve", &plans)),
    };
    if which.is_none() && recently_replaced(ctx, ev, &plan).await? {
        // Another plan came and went while people were reading: a bare
        // approve might mean the one the approver read, not this one.
        ctx.audit(job, &ev.author.login, AuditAction::PlanApprovalRefused, serde_json::json!({ "plan": plan.id, "why": "another plan on the thread within the plan lifetime" })).await?;
        return Ok(format!(
            "Another plan was proposed on this thread in the last day, so `/agentic approve` alone could mean one you did not read, and I recorded nothing. Name the plan: `/agentic approve {id}` (hash `{hash}`).",
            id = plan.id,
            hash = &plan.hash[..12]
        ));
    }
    if which.is_none() && !shown_before(&plan, ev.created_at_ms) {
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
        return Ok(format!(
            "Plan {id} was shown after your comment was written (or I cannot tell when), so I cannot tell that you saw it, and I recorded nothing. To approve it, name it: `/agentic approve {id}` (hash `{hash}`).",
            id = plan.id,
            hash = &plan.hash[..12]
        ));
    }
    if plan.status != PlanStatus::Proposed {
        return Ok(format!(
            "Plan {} is {}; there is nothing to approve.",
            plan.id, plan.status
        ));
    }
    if !shown_as_posted(ctx, github, &plan).await? {
        // Anyone with write access may edit the bot's comments: the plan an
        // approver read there may not be the plan. Its check run is ours.
        ctx.audit(job, &ev.author.login, AuditAction::PlanApprovalRefused, serde_json::json!({ "plan": plan.id, "why": "the plan's comment is not as the bot posted it" })).await?;
        return Ok(plan_text::comment_changed(plan.id, &plan.hash));
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
    Ok(format!(
        "@{} approved plan {} (hash `{}`) with the **{}** role.\n\n{}",
        ev.author.login,
        plan.id,
        &plan.hash[..12],
        role.as_str(),
        render(&plan, &needs, &ctx.redactor)
    ))
}

/// `/agentic cancel`: withdraw the current plan, stop an apply after the
/// step it is on, and stop the work still running or queued on this
/// thread (the jobs that came in before this command).
pub async fn cancel(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    github: &GitHub,
    which: Option<PlanRef>,
) -> Result<String, JobError> {
    let login = ev.author.login.as_str();
    let mut said = Vec::new();
    let plan = match pick(ctx, ev, which.as_ref(), open).await? {
        Pick::Plan(p) => Some(*p),
        Pick::Nothing => None,
        Pick::Unknown(r) => return Ok(no_such_plan(&r)),
        Pick::Ambiguous(plans) => return Ok(name_the_plan("cancel", &plans)),
    };
    let mut applier = None;
    if let Some(plan) = plan {
        let stopped = stop_plan(ctx, job, github, &plan, login, "cancel", true).await?;
        if matches!(stopped, Stopped::Stopping) {
            applier = plan.apply_job_id;
        }
        match stopped {
            Stopped::Withdrawn => said.push(format!(
                "Plan {} is withdrawn; nothing of it will run.",
                plan.id
            )),
            Stopped::Stopping => said.push(format!(
                "Plan {} is being applied: it stops after the step it is on, and the steps after it will not run. A step in flight is not interrupted halfway.",
                plan.id
            )),
            Stopped::Ended => said.push(format!(
                "Plan {}'s apply had stopped midway (its job ended without finishing): the plan is cancelled and its locks are released. `/agentic status` shows which steps ran.",
                plan.id
            )),
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
    let running = jobs.iter().filter(|j| j.was_running).count();
    let queued = jobs.len() - running;
    if running > 0 {
        said.push(format!(
            "Stopping {running} job(s) running here ({}); each says so where it reports.",
            kinds(jobs.iter().filter(|j| j.was_running))
        ));
    }
    if queued > 0 {
        said.push(format!(
            "Dropped {queued} job(s) that had not started ({}).",
            kinds(jobs.iter().filter(|j| !j.was_running))
        ));
    }
    if said.is_empty() {
        return Ok("There is nothing here to cancel: no plan waiting and no work running.".into());
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
        .show(&closed_while_applying(by, needed, &going_on))
        .await?;
    Ok(())
}

/// The reply when someone without `cancel`'s role closes a thread whose
/// plan is being applied.
fn closed_while_applying(by: &str, needed: Role, plans: &[i64]) -> String {
    let names: Vec<String> = plans.iter().map(|id| format!("plan {id}")).collect();
    format!(
        "@{by} closed this thread. Plans still waiting here are withdrawn, but stopping an apply needs the **{}** role, so {} goes on with its approved steps to the end. Someone with that role can stop it with `/agentic cancel`.",
        needed.as_str(),
        names.join(" and ")
    )
}

/// The kinds of some jobs, as people read them.
fn kinds<'a>(jobs: impl Iterator<Item = &'a crate::store::CancelledJob>) -> String {
    let mut names: Vec<&str> = jobs
        .map(|j| match j.kind.as_str() {
            "command" => "a command",
            "review" => "a review",
            "infra_task" => "a labelled-issue plan",
            "check_run_action" => "a check-run button",
            other => other,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// `/agentic status`: the plans of this thread and what each still needs.
pub async fn status_of(
    ctx: &JobContext,
    ev: &IssueComment,
    github: &GitHub,
) -> Result<String, JobError> {
    let plans = ctx.store.plans(&ev.repo.full_name, ev.number).await?;
    let freeze = match ctx.store.freeze().await? {
        Some(f) => plan_text::frozen_notice(&f),
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
                        plan_text::outcome_text(&what.unwrap_or_default())
                    ));
                }
            }
            out.push(line);
        }
    }
    Ok(format!(
        "{}{freeze}",
        out.join(super::progress::SECTION_BREAK)
    ))
}

/// `/agentic apply`: run the current plan, exactly, if it may be.
pub async fn apply(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    status: &mut StatusComment,
    previous: &[String],
    which: Option<PlanRef>,
) -> Result<String, JobError> {
    let repo = ev.repo.full_name.as_str();
    let who = ev.author.login.as_str();
    let plan = match pick(ctx, ev, which.as_ref(), open).await? {
        Pick::Plan(p) => *p,
        Pick::Nothing => return Ok("There is no plan waiting here to apply.".into()),
        Pick::Unknown(r) => return Ok(no_such_plan(&r)),
        Pick::Ambiguous(plans) => return Ok(name_the_plan("apply", &plans)),
    };
    if plan.status != PlanStatus::Proposed && plan.status != PlanStatus::Applying {
        return Ok(format!(
            "Plan {} is {}; there is nothing to apply.",
            plan.id, plan.status
        ));
    }
    // Approvals bind to the hash: steps that no longer match it (changed
    // in the store behind our back) are not what anyone approved.
    if plan::hash(&plan.steps) != plan.hash {
        ctx.audit(
            job,
            who,
            AuditAction::PlanApplyRefused,
            serde_json::json!({ "plan": plan.id, "why": "steps do not match the hash" }),
        )
        .await?;
        return Ok(format!(
            "I cannot apply plan {}: its stored steps do not match the hash `{}` it was proposed and approved with. Nothing ran; ask for a new plan.",
            plan.id,
            &plan.hash[..12]
        ));
    }
    let scope = match scope_of(ctx, &status.github, &ev.repo).await? {
        Ok(s) => s,
        Err(refusal) => return Ok(refusal),
    };
    let launched: u64 = plan
        .steps
        .iter()
        .filter(|s| s.action == crate::plan::AwsAction::RunInstances)
        .map(|s| s.arguments["count"].as_u64().unwrap_or(0))
        .sum();
    if launched > u64::from(scope.max_instances) {
        return Ok(format!(
            "I cannot apply plan {}: it launches {launched} instance(s), more than this repository's `aws.max_instances` ({}).",
            plan.id, scope.max_instances
        ));
    }
    // The ceiling as the operator's policy says now: tightened since the
    // plan was made, it stops the plan here.
    if let Err(why) = crate::aws::scope::tier(&scope, plan::risk(&plan.steps)) {
        ctx.audit(
            job,
            who,
            AuditAction::PlanApplyRefused,
            serde_json::json!({ "plan": plan.id, "why": why }),
        )
        .await?;
        return Ok(format!(
            "I cannot apply plan {}: {why}. Nothing ran.",
            plan.id
        ));
    }
    if ctx.config.aws_apply_role_arn.is_none() && !ctx.config.aws_apply_without_session_policy {
        // Without an apply role there is no session policy: the apply
        // could do anything the base credentials can. Only an explicit
        // operator setting allows that.
        ctx.audit(
            job,
            who,
            AuditAction::PlanApplyRefused,
            serde_json::json!({ "plan": plan.id, "why": "no apply role" }),
        )
        .await?;
        return Ok(plan_text::no_apply_role(plan.id));
    }
    // The operator's freeze: no apply starts, resumes or is taken over.
    if let Some(f) = ctx.store.freeze().await? {
        ctx.audit(
            job,
            who,
            AuditAction::PlanApplyRefused,
            serde_json::json!({ "plan": plan.id, "why": "frozen", "freeze": f }),
        )
        .await?;
        return Ok(plan_text::frozen_refusal(plan.id, &f));
    }
    // This very job going on after a restart passed every check when it
    // started the apply. Anyone else, starting it or taking over a dead
    // apply, passes them all now.
    let resuming_own = plan.status == PlanStatus::Applying && plan.apply_job_id == Some(job.id);
    let taking_over = plan.status == PlanStatus::Applying && !resuming_own;
    if taking_over {
        // Only if the job applying it ended without finishing (it died)
        // may another take over; never two at once.
        let running = match plan.apply_job_id {
            Some(other) => ctx.store.job_pending(other).await?,
            None => false,
        };
        if running {
            return Ok(being_applied(plan.id));
        }
    }
    if !resuming_own {
        let needs = still_needs(ctx, status, ev, &plan, scope.approvals).await?;
        if !needs.is_empty() {
            ctx.audit(
                job,
                who,
                AuditAction::PlanApplyRefused,
                serde_json::json!({ "plan": plan.id, "needs": needs }),
            )
            .await?;
            return Ok(format!(
                "I cannot apply plan {} yet.\n\n{}",
                plan.id,
                render(&plan, &needs, &ctx.redactor)
            ));
        }
    }
    // Who took over a dead apply is said with its outcome, as well as audited.
    let lead = if taking_over {
        format!(
            "@{who} resumed plan {}'s apply, which had stopped midway.\n\n",
            plan.id
        )
    } else {
        String::new()
    };
    if taking_over {
        let from = plan.apply_job_id;
        if !ctx.store.take_over_apply(plan.id, from, job.id).await? {
            return Ok(being_applied(plan.id));
        }
        ctx.audit(
            job,
            who,
            AuditAction::PlanApplyTakenOver,
            serde_json::json!({ "plan": plan.id, "from_job": from, "resumed_by": who }),
        )
        .await?;
    } else if plan.status == PlanStatus::Proposed {
        // The apply slot and one lock per resource, in one transaction: all
        // of them or nothing. A job that loses the race changes nothing, so
        // it cannot release the winner's locks.
        let resources: Vec<String> = plan.steps.iter().map(lock_key).collect();
        match ctx.store.begin_apply(plan.id, job.id, &resources).await? {
            ApplyStart::Started => {}
            ApplyStart::NotWaiting => return Ok(being_applied(plan.id)),
            ApplyStart::Locked(other) => {
                ctx.audit(
                    job,
                    who,
                    AuditAction::PlanApplyRefused,
                    serde_json::json!({ "plan": plan.id, "locked_by": other }),
                )
                .await?;
                return Ok(format!(
                    "I cannot apply plan {} now: plan {other} is being applied to the same resources. Try again when it is done.",
                    plan.id
                ));
            }
        }
        ctx.audit(
            job,
            who,
            AuditAction::PlanApplyStarted,
            serde_json::json!({ "plan": plan.id, "hash": plan.hash }),
        )
        .await?;
    }
    // From here the plan is ours to run (or to go on running after a
    // restart): each step once, its result stored before the next.
    let aws = match &ctx.config.aws_apply_role_arn {
        None => ctx.aws().await,
        Some(arn) => {
            // Exactly the approved actions on the approved resources, under
            // a session CloudTrail ties to this plan and its approvers.
            let policy = match plan::session_policy(&plan.steps, scope.account.as_deref()) {
                Ok(p) => p,
                Err(why) => return abandon(ctx, job, ev, &status.github, plan.id, why).await,
            };
            let approvers: Vec<String> = ctx
                .store
                .plan_approvals(plan.id)
                .await?
                .into_iter()
                .map(|a| a.approver)
                .collect();
            ctx.aws()
                .await
                .assuming(&crate::aws::RoleSession {
                    arn: arn.clone(),
                    session_name: format!("agentic-plan-{}", plan.id),
                    tags: plan::session_tags(repo, &approvers),
                    policy: Some(policy.to_string()),
                })
                .await
        }
    };
    if let Err(refusal) = crate::aws::scope::check_account(&aws, &scope).await {
        return abandon(ctx, job, ev, &status.github, plan.id, refusal).await;
    }
    let before = super::progress::progress_text(previous, "");
    let done = ctx.store.plan_step_runs(plan.id).await?;
    let mut lines: Vec<String> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let n = i as i64 + 1;
        if let Some(run) = done
            .iter()
            .find(|r| r.step == n && r.state == StepState::Done)
        {
            lines.push(format!(
                "✅ {} — {}",
                step_line(i + 1, step),
                plan_text::outcome_text(run.result.as_deref().unwrap_or(""))
            ));
            continue;
        }
        // `/agentic cancel` stops an apply here, between steps: through the
        // plan (whichever job runs it) or through this job.
        let asked = match job.cancel.requested_by() {
            Some(by) => Some(by.to_string()),
            None => ctx
                .store
                .plan(plan.id)
                .await?
                .and_then(|p| p.cancel_requested_by),
        };
        if let Some(by) = asked {
            let detail = serde_json::json!({ "plan": plan.id, "before_step": n });
            end(
                ctx,
                job,
                &status.github,
                plan.id,
                PlanStatus::Cancelled,
                (&by, AuditAction::PlanApplyCancelled, detail),
            )
            .await?;
            lines.extend(not_run(&plan.steps, i));
            return Ok(format!(
                "{lead}Plan {} stopped before step {n}: @{by} cancelled it. The steps marked ✅ ran; the rest did not.\n\n{}",
                plan.id,
                lines.join("\n")
            ));
        }
        status
            .show(&format!(
                "{before}Applying plan {}…\n\n{}\n⏳ {}",
                plan.id,
                lines.join("\n"),
                step_line(i + 1, step)
            ))
            .await?;
        // The operator's freeze pauses it here, read as late as can be
        // before the step: the plan stays `applying` with its locks, for an
        // apply after the freeze.
        if let Some(f) = ctx.store.freeze().await? {
            ctx.audit(
                job,
                who,
                AuditAction::PlanApplyPaused,
                serde_json::json!({ "plan": plan.id, "before_step": n, "freeze": f }),
            )
            .await?;
            refresh_check_run(ctx, job, &status.github, plan.id).await?;
            lines.extend(not_run(&plan.steps, i));
            return Ok(format!(
                "{lead}{}",
                plan_text::frozen_pause(plan.id, i + 1, &f, &lines)
            ));
        }
        ctx.store
            .record_step(plan.id, n, StepState::Running, None)
            .await?;
        if !ctx.store.holds_lease(job).await? {
            return Err(JobError::LeaseLost);
        }
        // The scope and its ceiling as they are now: a policy tightened
        // (and reloaded) during an apply stops the steps it no longer
        // allows.
        let outcome = match scope_of(ctx, &status.github, &ev.repo).await? {
            Err(refusal) => Err(refusal),
            Ok(now) => match crate::aws::scope::tier(&now, plan::risk(&plan.steps)) {
                Err(why) => Err(format!("refused: {why}")),
                Ok(()) => crate::aws::apply::run_step(&aws, &now, step, &step_key(plan.id, n))
                    .await
                    .map_err(|e| e.to_string()),
            },
        };
        match outcome {
            Ok(result) => {
                ctx.store
                    .record_step(plan.id, n, StepState::Done, Some(&result))
                    .await?;
                ctx.audit(
                    job,
                    who,
                    AuditAction::PlanStepApplied,
                    serde_json::json!({ "plan": plan.id, "step": n, "result": result }),
                )
                .await?;
                lines.push(format!(
                    "✅ {} — {}",
                    step_line(i + 1, step),
                    plan_text::outcome_text(&result)
                ));
                // Tests only: a pause between two steps, which a cancel or
                // a freeze ends early.
                let more = i + 1 < plan.steps.len();
                if let Some(pause) = ctx.config.test_step_delay.filter(|_| more) {
                    let frozen = async {
                        while !matches!(ctx.store.freeze().await, Ok(Some(_))) {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = job.cancel.requested() => {}
                        () = frozen => {}
                    }
                }
            }
            Err(reason) => {
                ctx.store
                    .record_step(plan.id, n, StepState::Failed, Some(&reason))
                    .await?;
                let detail = serde_json::json!({ "plan": plan.id, "step": n, "error": reason });
                end(
                    ctx,
                    job,
                    &status.github,
                    plan.id,
                    PlanStatus::Failed,
                    (who, AuditAction::PlanStepFailed, detail),
                )
                .await?;
                lines.push(format!(
                    "❌ {} — {}",
                    step_line(i + 1, step),
                    plan_text::outcome_text(&reason)
                ));
                lines.extend(not_run(&plan.steps, i + 1));
                return Ok(format!(
                    "{lead}Plan {} stopped at step {n}; the steps after it did not run.\n\n{}",
                    plan.id,
                    lines.join("\n")
                ));
            }
        }
    }
    let detail = serde_json::json!({ "plan": plan.id });
    end(
        ctx,
        job,
        &status.github,
        plan.id,
        PlanStatus::Applied,
        (who, AuditAction::PlanApplied, detail),
    )
    .await?;
    Ok(format!(
        "{lead}Plan {} is applied.\n\n{}",
        plan.id,
        lines.join("\n")
    ))
}

/// The reply while another job applies a plan.
fn being_applied(id: i64) -> String {
    format!(
        "Plan {id} is being applied right now; `/agentic status` shows it, and `/agentic cancel` stops it after the step it is on."
    )
}

/// What an apply of `plan` still needs, checked as at a first apply: the
/// head now, the requester's and every approver's role as GitHub says it
/// now (past the cache; an approval counts with the lower of the role its
/// approver had then and has now), expiry and approvals.
async fn still_needs(
    ctx: &JobContext,
    status: &StatusComment,
    ev: &IssueComment,
    plan: &PlanRow,
    rules: plan::ApprovalRules,
) -> Result<Vec<String>, JobError> {
    let repo = ev.repo.full_name.as_str();
    let head = head_of(&status.github, ev).await?;
    let requester_role = status.github.fresh_role(repo, &plan.requester).await?;
    let mut approvals = ctx.store.plan_approvals(plan.id).await?;
    for a in &mut approvals {
        a.role = a
            .role
            .min(status.github.fresh_role(repo, &a.approver).await?);
    }
    Ok(plan::missing(
        &facts(plan, requester_role, rules),
        &approvals,
        head.as_deref(),
        now(),
    ))
}

/// End this job's apply of plan `id` as `to`: its status, its locks and
/// the audit record `(actor, action, detail)` change in one transaction,
/// then its check run shows it.
async fn end(
    ctx: &JobContext,
    job: &LeasedJob,
    github: &GitHub,
    id: i64,
    to: PlanStatus,
    (actor, action, detail): (&str, AuditAction, serde_json::Value),
) -> Result<(), JobError> {
    let entry = JobContext::audit_entry(job, actor, action, detail);
    if !ctx.store.end_apply(id, Some(job.id), to, &entry).await? {
        // Another job took the plan over (this one was thought dead).
        return Err(JobError::LeaseLost);
    }
    refresh_check_run(ctx, job, github, id).await
}

/// The lines of the steps from index `from` on, which did not run.
fn not_run(steps: &[PlanStep], from: usize) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .skip(from)
        .map(|(j, s)| format!("⏭️ {} — not run", step_line(j + 1, s)))
        .collect()
}

/// An issue labelled with the repository's trigger label: its title and
/// body are a planning request by whoever added the label, who needs the
/// role `/agentic plan` needs.
pub async fn from_issue(ctx: &JobContext, job: &LeasedJob, ev: &Issue) -> Result<(), JobError> {
    if ev.sender.is_bot() {
        return Ok(());
    }
    let repo = ev.repo.full_name.as_str();
    let github = ctx
        .repo_client(ev.installation_id, repo, Access::Write)
        .await?;
    let settings = ctx.repo_config(&github, &ev.repo).await?;
    let Some(scope) = &settings.config.aws else {
        return Ok(());
    };
    if ev.label.as_deref() != Some(scope.trigger_label.as_str()) {
        return Ok(());
    }
    let login = ev.sender.login.as_str();
    let role = github.role(repo, login).await?;
    let request_command = crate::command::Command::Plan {
        request: String::new(),
    };
    let needed = settings.config.required_role(&request_command);
    let mut status = ctx.status_comment(github.clone(), repo, ev.number, job);
    if role < needed {
        // One notice per window, as for a refused command.
        if ctx.limits.notify_refused(ev.installation_id, login).await? {
            status
                .show(&format!(
                    "@{login} the `{}` label asks me for a plan, which needs the **{}** role or higher on this repository; you have **{}**.",
                    scope.trigger_label,
                    needed.as_str(),
                    role.as_str()
                ))
                .await?;
        }
        ctx.audit(job, login, AuditAction::CommandRefused, serde_json::json!({ "command": "plan", "via": "label", "role": role.as_str(), "needed": needed.as_str() })).await?;
        return Ok(());
    }
    // The issue as delivered with the label: what the labeller could read,
    // not an edit made since.
    let request = format!("{}\n\n{}", ev.title, ev.body.as_deref().unwrap_or_default());
    // The request as a comment would carry it: the rest of the plan flow
    // is the command's.
    let as_comment = IssueComment {
        action: "labeled".into(),
        repo: ev.repo.clone(),
        installation_id: ev.installation_id,
        number: ev.number,
        on_pull_request: false,
        comment_id: 0,
        body: request.clone(),
        author: ev.sender.clone(),
        sender: ev.sender.clone(),
        previous_body: None,
        created_at_ms: None,
    };
    let text = propose(ctx, job, &as_comment, &request, &mut status, &[]).await?;
    status.show(&text).await?;
    Ok(())
}

/// The **Apply** button of a plan's check run: the same apply as the
/// command, of that very plan, for someone with the role the command needs.
pub async fn apply_button(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &CheckRun,
) -> Result<(), JobError> {
    let Some(id) = ev
        .external_id
        .as_deref()
        .and_then(|x| x.strip_prefix("plan:"))
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return Ok(());
    };
    let Some(plan) = ctx.store.plan(id).await? else {
        return Ok(());
    };
    if plan.repo != ev.repo.full_name {
        return Ok(());
    }
    let repo = ev.repo.full_name.as_str();
    let github = ctx
        .repo_client(ev.installation_id, repo, Access::Write)
        .await?;
    let login = ev.sender.login.as_str();
    let role = github.role(repo, login).await?;
    let needed = ctx
        .repo_config(&github, &ev.repo)
        .await?
        .config
        .required_role(&crate::command::Command::Apply {
            plan: Some(PlanRef::Number(id)),
        });
    if role < needed {
        ctx.audit(job, login, AuditAction::CommandRefused, serde_json::json!({ "command": "apply", "via": "button", "plan": id, "role": role.as_str(), "needed": needed.as_str() })).await?;
        return Ok(());
    }
    let as_comment = IssueComment {
        action: "requested_action".into(),
        repo: ev.repo.clone(),
        installation_id: ev.installation_id,
        number: plan.number,
        on_pull_request: plan.head_sha.is_some(),
        comment_id: 0,
        body: String::new(),
        author: ev.sender.clone(),
        sender: ev.sender.clone(),
        previous_body: None,
        created_at_ms: None,
    };
    let mut status = ctx.status_comment(github, repo, plan.number, job);
    let text = apply(
        ctx,
        job,
        &as_comment,
        &mut status,
        &[],
        Some(PlanRef::Number(id)),
    )
    .await?;
    status
        .show(&format!("@{login} pressed **Apply**.\n\n{text}"))
        .await?;
    Ok(())
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
