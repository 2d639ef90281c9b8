//! `/agentic plan` and the issue label: a planning conversation whose change
//! tools only propose steps, stored as a plan and shown with its hash.

use super::*;

/// `/agentic plan <request>`.
pub async fn propose(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    request: &str,
    status: &mut StatusComment,
    previous: &[String],
) -> Result<String, JobError> {
    let scope = match scope_of(ctx, &status.github, &ev.repo).await? {
        Ok(s) => s,
        Err(refusal) => return Ok(refusal),
    };
    let before = crate::handlers::progress::progress_text(previous, "");
    status
        .show(&format!("{before}{}", crate::handlers::progress::WORKING))
        .await?;
    let mut progress = crate::handlers::progress::CommentProgress { status, before };
    let proposal = match converse(ctx, job, ev, request, &scope, &mut progress).await? {
        Ok(p) => p,
        Err(text) => return Ok(text),
    };
    if let Some(refusal) = unfit(ctx, job, ev, &scope, &proposal).await? {
        return Ok(refusal);
    }
    store_and_show(ctx, job, ev, &mut progress, proposal).await
}

/// What a planning conversation left: the model's summary, the steps the
/// change tools accepted (tiers settled), what they refused, and the head
/// it was made at.
struct Proposal {
    summary: String,
    steps: Vec<PlanStep>,
    refusals: Vec<plan::Refusal>,
    head: Option<String>,
}

/// The planning conversation: the read tools and the change tools, which
/// only propose steps. The proposal, or the text to say instead.
async fn converse(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    request: &str,
    scope: &AwsScope,
    progress: &mut crate::handlers::progress::CommentProgress<'_>,
) -> Result<Result<Proposal, String>, JobError> {
    let repo = ev.repo.full_name.as_str();
    let reader = ctx
        .repo_client(ev.installation_id, repo, Access::Read)
        .await?;
    let aws = ctx.aws().await;
    if let Err(refusal) = crate::aws::scope::check_account(&aws, scope).await {
        return Ok(Err(render::cannot_plan_here(&refusal)));
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
    let budget = Budget::from_config(&ctx.config);
    let outcome = match agent::converse(
        &ctx.llm, &registry, &subject, budget, task, &trace, progress,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return ctx.model_failed(job, &e, "a plan").map(Err),
    };
    let summary = match outcome {
        Outcome::Answer(a) => a,
        Outcome::Submitted(_) => String::new(),
        Outcome::Stopped { reason } => return Ok(Err(render::planning_stopped(&reason))),
    };
    let plan::PlanDraft { steps, refusals } = steps.into_inner().unwrap_or_else(|p| p.into_inner());
    // Already settled step by step; once more on what is stored.
    let mut steps = steps;
    plan::settle_tiers(&mut steps);
    Ok(Ok(Proposal {
        summary,
        steps,
        refusals,
        head,
    }))
}

/// Why the proposal cannot be a plan, said: nothing proposed, too large to
/// show, or beyond the operator's ceiling (the whole plan is refused, so
/// nobody approves a part of what was asked for thinking it the whole).
async fn unfit(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    scope: &AwsScope,
    p: &Proposal,
) -> Result<Option<String>, JobError> {
    if p.steps.is_empty() {
        return Ok(Some(render::nothing_proposed(
            &p.summary,
            &p.refusals,
            &ctx.redactor,
        )));
    }
    if !render::fits(&p.steps, &p.refusals, &ctx.redactor) {
        return Ok(Some(render::too_large(p.steps.len())));
    }
    if let Err(why) = crate::aws::scope::tier(scope, plan::risk(&p.steps)) {
        ctx.audit(
            job,
            &ev.author.login,
            AuditAction::PlanRefused,
            serde_json::json!({ "why": why, "steps": p.steps }),
        )
        .await?;
        return Ok(Some(render::beyond_ceiling(
            &why,
            &p.steps,
            &p.refusals,
            &ctx.redactor,
        )));
    }
    Ok(None)
}

/// Store the plan, audit it, give it its check run, and show it; when it
/// was shown by GitHub's clock is stored too. The text shown.
async fn store_and_show(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    progress: &mut crate::handlers::progress::CommentProgress<'_>,
    p: Proposal,
) -> Result<String, JobError> {
    let repo = ev.repo.full_name.as_str();
    let id = ctx
        .store
        .create_plan(
            job.id,
            repo,
            ev.number,
            (&ev.author.login, ev.author.id),
            p.head.as_deref(),
            &p.steps,
            now() + PLAN_TTL_MS,
        )
        .await?;
    if !p.refusals.is_empty() {
        ctx.store.set_plan_refusals(id, &p.refusals).await?;
    }
    let plan = ctx
        .store
        .plan(id)
        .await?
        .ok_or_else(|| JobError::Permanent("the plan just stored is gone".into()))?;
    let role = progress.status.github.role(repo, &ev.author.login).await?;
    let rules = rules_of(ctx, &progress.status.github, &ev.repo).await?;
    let needs = plan::missing(&facts(&plan, role, rules), &[], p.head.as_deref(), now());
    ctx.audit(
        job,
        &ev.author.login,
        AuditAction::PlanCreated,
        serde_json::json!({ "plan": id, "hash": plan.hash, "steps": plan.steps, "refusals": plan.refusals }),
    )
    .await?;
    check_run(ctx, job, &progress.status.github, &plan, &needs).await?;
    let mut text = render::proposed(&p.summary, &plan, &needs, &ctx.redactor);
    if unlimited_applies(ctx) {
        text.push_str(render::UNLIMITED_APPLY);
    }
    if let Some(f) = ctx.store.freeze().await? {
        text.push_str(&render::frozen_notice(&f));
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
                .show(&render::label_refused(
                    login,
                    &scope.trigger_label,
                    needed,
                    role,
                ))
                .await?;
        }
        let refused = Refused {
            command: "plan",
            via: Some("label"),
            role,
            needed,
            plan: None,
        };
        ctx.audit_refused(job, login, refused).await?;
        return Ok(());
    }
    // The issue as delivered with the label: what the labeller could read,
    // not an edit made since.
    let request = format!("{}\n\n{}", ev.title, ev.body.as_deref().unwrap_or_default());
    let asked = Asked {
        repo: ev.repo.clone(),
        installation_id: ev.installation_id,
        number: ev.number,
        on_pull_request: false,
        author: ev.sender.clone(),
        via: Via::Label,
    };
    let text = propose(ctx, job, &asked, &request, &mut status, &[]).await?;
    status.show(&text).await?;
    Ok(())
}
