//! `/agentic apply` and the Apply button: every check again, the slot and
//! the locks in one transaction, each step run and recorded, and the end
//! (status, locks, audit) in one transaction.

use super::*;

/// `/agentic apply`: run the current plan, exactly, if it may be.
pub async fn apply(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    status: &mut StatusComment,
    previous: &[String],
    which: Option<PlanRef>,
) -> Result<String, JobError> {
    let who = ev.author.login.as_str();
    let plan = match pick(ctx, ev, which.as_ref(), open).await? {
        Pick::Plan(p) => *p,
        Pick::Nothing => return Ok(render::nothing_to_apply().into()),
        Pick::Unknown(r) => return Ok(render::no_such_plan(&r)),
        Pick::Ambiguous(plans) => return Ok(render::name_the_plan("apply", &plans)),
    };
    if plan.status != PlanStatus::Proposed && plan.status != PlanStatus::Applying {
        return Ok(render::not_applicable(plan.id, plan.status));
    }
    if let Some(refusal) = not_as_approved(ctx, job, who, &plan).await? {
        return Ok(refusal);
    }
    let scope = match scope_of(ctx, &status.github, &ev.repo).await? {
        Ok(s) => s,
        Err(refusal) => return Ok(refusal),
    };
    if let Some(refusal) = not_allowed_now(ctx, job, who, &plan, &scope).await? {
        return Ok(refusal);
    }
    let taking_over = match take_the_apply(ctx, job, ev, status, &plan, &scope).await? {
        Ok(taking_over) => taking_over,
        Err(refusal) => return Ok(refusal),
    };
    // Who took over a dead apply is said with its outcome, as well as audited.
    let lead = if taking_over {
        render::resumed(who, plan.id)
    } else {
        String::new()
    };
    // From here the plan is ours to run (or to go on running after a
    // restart): each step once, its result stored before the next.
    let aws = match credentials(ctx, &ev.repo.full_name, &plan, &scope).await? {
        Ok(aws) => aws,
        Err(why) => return abandon(ctx, job, ev, &status.github, plan.id, why).await,
    };
    if let Err(refusal) = crate::aws::scope::check_account(&aws, &scope).await {
        return abandon(ctx, job, ev, &status.github, plan.id, refusal).await;
    }
    let run = Run {
        ctx,
        job,
        ev,
        plan: &plan,
        aws: &aws,
        lead,
        before: crate::handlers::progress::progress_text(previous, ""),
    };
    run.steps(status).await
}

/// Approvals bind to the hash: steps that no longer match it (changed in
/// the store behind our back) are not what anyone approved. The refusal,
/// audited, if so.
async fn not_as_approved(
    ctx: &JobContext,
    job: &LeasedJob,
    who: &str,
    plan: &PlanRow,
) -> Result<Option<String>, JobError> {
    if plan::hash(&plan.steps) == plan.hash {
        return Ok(None);
    }
    ctx.audit(
        job,
        who,
        AuditAction::PlanApplyRefused,
        serde_json::json!({ "plan": plan.id, "why": "steps do not match the hash" }),
    )
    .await?;
    Ok(Some(render::hash_mismatch(plan.id, &plan.hash)))
}

/// What the repository's scope and the operator allow now, checked before
/// any apply starts, resumes or is taken over: the launch cap, the
/// ceiling's tier, an apply role (or the operator's opt-out) and the
/// freeze. The refusal, audited where it is a refusal of the plan.
async fn not_allowed_now(
    ctx: &JobContext,
    job: &LeasedJob,
    who: &str,
    plan: &PlanRow,
    scope: &AwsScope,
) -> Result<Option<String>, JobError> {
    let launched: u64 = plan
        .steps
        .iter()
        .filter(|s| s.action == crate::plan::AwsAction::RunInstances)
        .map(|s| s.arguments["count"].as_u64().unwrap_or(0))
        .sum();
    if launched > u64::from(scope.max_instances) {
        return Ok(Some(render::too_many_instances(
            plan.id,
            launched,
            scope.max_instances,
        )));
    }
    let refuse =
        |detail: serde_json::Value| ctx.audit(job, who, AuditAction::PlanApplyRefused, detail);
    // The ceiling as the operator's policy says now: tightened since the
    // plan was made, it stops the plan here.
    if let Err(why) = crate::aws::scope::tier(scope, plan::risk(&plan.steps)) {
        refuse(serde_json::json!({ "plan": plan.id, "why": why })).await?;
        return Ok(Some(render::apply_refused(plan.id, &why)));
    }
    if ctx.config.aws_apply_role_arn.is_none() && !ctx.config.aws_apply_without_session_policy {
        // Without an apply role there is no session policy: the apply
        // could do anything the base credentials can. Only an explicit
        // operator setting allows that.
        refuse(serde_json::json!({ "plan": plan.id, "why": "no apply role" })).await?;
        return Ok(Some(render::no_apply_role(plan.id)));
    }
    // The operator's freeze: no apply starts, resumes or is taken over.
    if let Some(f) = ctx.store.freeze().await? {
        refuse(serde_json::json!({ "plan": plan.id, "why": "frozen", "freeze": f })).await?;
        return Ok(Some(render::frozen_refusal(plan.id, &f)));
    }
    Ok(None)
}

/// Make the apply this job's: resume its own, take over one whose job
/// died, or start a waiting plan (slot and locks in one transaction).
/// Anyone but the job that started it passes every approval check now.
/// `Ok(taking_over)`, or the refusal to say.
async fn take_the_apply(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
    status: &StatusComment,
    plan: &PlanRow,
    scope: &AwsScope,
) -> Result<Result<bool, String>, JobError> {
    let who = ev.author.login.as_str();
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
            return Ok(Err(render::being_applied(plan.id)));
        }
    }
    if !resuming_own {
        let needs = still_needs(ctx, status, ev, plan, scope.approvals).await?;
        if !needs.is_empty() {
            ctx.audit(
                job,
                who,
                AuditAction::PlanApplyRefused,
                serde_json::json!({ "plan": plan.id, "needs": needs }),
            )
            .await?;
            return Ok(Err(render::not_yet(plan, &needs, &ctx.redactor)));
        }
    }
    if taking_over {
        let from = plan.apply_job_id;
        if !ctx.store.take_over_apply(plan.id, from, job.id).await? {
            return Ok(Err(render::being_applied(plan.id)));
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
            ApplyStart::NotWaiting => return Ok(Err(render::being_applied(plan.id))),
            ApplyStart::Locked(other) => {
                ctx.audit(
                    job,
                    who,
                    AuditAction::PlanApplyRefused,
                    serde_json::json!({ "plan": plan.id, "locked_by": other }),
                )
                .await?;
                return Ok(Err(render::locked(plan.id, other)));
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
    Ok(Ok(taking_over))
}

/// The AWS the steps run with: the base credentials, or the apply role
/// with a session policy of exactly the approved actions on the approved
/// resources, in a session CloudTrail ties to this plan and its approvers.
/// Why not, when no session policy can be made.
async fn credentials(
    ctx: &JobContext,
    repo: &str,
    plan: &PlanRow,
    scope: &AwsScope,
) -> Result<Result<crate::aws::Aws, String>, JobError> {
    let Some(arn) = &ctx.config.aws_apply_role_arn else {
        return Ok(Ok(ctx.aws().await));
    };
    let policy = match plan::session_policy(&plan.steps, scope.account.as_deref()) {
        Ok(p) => p,
        Err(why) => return Ok(Err(why)),
    };
    let approvers: Vec<String> = ctx
        .store
        .plan_approvals(plan.id)
        .await?
        .into_iter()
        .map(|a| a.approver)
        .collect();
    Ok(Ok(ctx
        .aws()
        .await
        .assuming(&crate::aws::RoleSession {
            arn: arn.clone(),
            session_name: format!("agentic-plan-{}", plan.id),
            tags: plan::session_tags(repo, &approvers),
            policy: Some(policy.to_string()),
        })
        .await))
}

/// One apply running its plan's steps.
struct Run<'a> {
    ctx: &'a JobContext,
    job: &'a LeasedJob,
    ev: &'a Asked,
    plan: &'a PlanRow,
    aws: &'a crate::aws::Aws,
    /// Said before the outcome (who took a dead apply over).
    lead: String,
    /// The status comment's sections before this command's.
    before: String,
}

/// What one step did to the apply.
enum StepEnd {
    /// Go on with the next step.
    Next,
    /// The apply ended (or paused) here; the section to post.
    Stop(String),
}

impl Run<'_> {
    /// Each step once, in order, its result stored before the next; the
    /// apply ends applied, failed at a step, cancelled or paused between
    /// steps. The section to post.
    async fn steps(&self, status: &mut StatusComment) -> Result<String, JobError> {
        let plan = self.plan;
        let done = self.ctx.store.plan_step_runs(plan.id).await?;
        let mut lines: Vec<String> = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let n = i as i64 + 1;
            if let Some(run) = done
                .iter()
                .find(|r| r.step == n && r.state == StepState::Done)
            {
                lines.push(render::step_done(
                    i + 1,
                    step,
                    run.result.as_deref().unwrap_or(""),
                ));
                continue;
            }
            if let StepEnd::Stop(text) = self.step(status, i, &mut lines).await? {
                return Ok(text);
            }
        }
        let detail = serde_json::json!({ "plan": plan.id });
        self.end(
            status,
            PlanStatus::Applied,
            (self.who(), AuditAction::PlanApplied, detail),
        )
        .await?;
        Ok(render::applied(&self.lead, plan.id, &lines))
    }

    fn who(&self) -> &str {
        self.ev.author.login.as_str()
    }

    async fn end(
        &self,
        status: &StatusComment,
        to: PlanStatus,
        audit: (&str, AuditAction, serde_json::Value),
    ) -> Result<(), JobError> {
        end(self.ctx, self.job, &status.github, self.plan.id, to, audit).await
    }

    /// Step `i` (from 0), not yet done: stopped before it by a cancel or a
    /// freeze, or run, recorded and added to `lines`.
    async fn step(
        &self,
        status: &mut StatusComment,
        i: usize,
        lines: &mut Vec<String>,
    ) -> Result<StepEnd, JobError> {
        let (ctx, plan) = (self.ctx, self.plan);
        let (n, step) = (i as i64 + 1, &plan.steps[i]);
        if let Some(by) = self.cancel_asked().await? {
            let detail = serde_json::json!({ "plan": plan.id, "before_step": n });
            self.end(
                status,
                PlanStatus::Cancelled,
                (&by, AuditAction::PlanApplyCancelled, detail),
            )
            .await?;
            lines.extend(render::not_run(&plan.steps, i));
            return Ok(StepEnd::Stop(render::cancelled_before(
                &self.lead, plan.id, n, &by, lines,
            )));
        }
        status
            .show(&render::applying(&self.before, plan.id, lines, i + 1, step))
            .await?;
        // The operator's freeze pauses it here, read as late as can be
        // before the step: the plan stays `applying` with its locks, for an
        // apply after the freeze.
        if let Some(f) = ctx.store.freeze().await? {
            ctx.audit(
                self.job,
                self.who(),
                AuditAction::PlanApplyPaused,
                serde_json::json!({ "plan": plan.id, "before_step": n, "freeze": f }),
            )
            .await?;
            refresh_check_run(ctx, self.job, &status.github, plan.id).await?;
            lines.extend(render::not_run(&plan.steps, i));
            return Ok(StepEnd::Stop(render::frozen_pause(
                &self.lead,
                plan.id,
                i + 1,
                &f,
                lines,
            )));
        }
        ctx.store
            .record_step(plan.id, n, StepState::Running, None)
            .await?;
        ctx.fence(self.job).await?;
        match self.run(status, i).await? {
            Ok(result) => {
                self.record_done(n, &result).await?;
                lines.push(render::step_done(i + 1, step, &result));
                if i + 1 < plan.steps.len() {
                    self.test_pause().await;
                }
                Ok(StepEnd::Next)
            }
            Err(reason) => {
                ctx.store
                    .record_step(plan.id, n, StepState::Failed, Some(&reason))
                    .await?;
                let detail = serde_json::json!({ "plan": plan.id, "step": n, "error": reason });
                self.end(
                    status,
                    PlanStatus::Failed,
                    (self.who(), AuditAction::PlanStepFailed, detail),
                )
                .await?;
                lines.push(render::step_failed(i + 1, step, &reason));
                lines.extend(render::not_run(&plan.steps, i + 1));
                Ok(StepEnd::Stop(render::stopped_at(
                    &self.lead, plan.id, n, lines,
                )))
            }
        }
    }

    /// `/agentic cancel` stops an apply here, between steps: through the
    /// plan (whichever job runs it) or through this job. Who asked.
    async fn cancel_asked(&self) -> Result<Option<String>, JobError> {
        Ok(match self.job.cancel.requested_by() {
            Some(by) => Some(by.to_string()),
            None => self
                .ctx
                .store
                .plan(self.plan.id)
                .await?
                .and_then(|p| p.cancel_requested_by),
        })
    }

    /// Run step `i` with the scope and its ceiling as they are now: a
    /// policy tightened (and reloaded) during an apply stops the steps it
    /// no longer allows. What it did, or why it did not.
    async fn run(
        &self,
        status: &StatusComment,
        i: usize,
    ) -> Result<Result<String, String>, JobError> {
        let (plan, step) = (self.plan, &self.plan.steps[i]);
        Ok(
            match scope_of(self.ctx, &status.github, &self.ev.repo).await? {
                Err(refusal) => Err(refusal),
                Ok(now) => match crate::aws::scope::tier(&now, plan::risk(&plan.steps)) {
                    Err(why) => Err(format!("refused: {why}")),
                    Ok(()) => crate::aws::apply::run_step(
                        self.aws,
                        &now,
                        step,
                        &step_key(plan.id, i as i64 + 1),
                    )
                    .await
                    .map_err(|e| e.to_string()),
                },
            },
        )
    }

    /// Step `n` is done with `result`: stored, then audited.
    async fn record_done(&self, n: i64, result: &str) -> Result<(), JobError> {
        let id = self.plan.id;
        self.ctx
            .store
            .record_step(id, n, StepState::Done, Some(result))
            .await?;
        self.ctx
            .audit(
                self.job,
                self.who(),
                AuditAction::PlanStepApplied,
                serde_json::json!({ "plan": id, "step": n, "result": result }),
            )
            .await
    }

    /// A test hook (`test-hooks`, never in a release build): a pause
    /// between two steps, which a cancel or a freeze ends early.
    async fn test_pause(&self) {
        #[cfg(feature = "test-hooks")]
        if let Some(pause) = self.ctx.config.test_step_delay {
            let frozen = async {
                while !matches!(self.ctx.store.freeze().await, Ok(Some(_))) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = self.job.cancel.requested() => {}
                () = frozen => {}
            }
        }
    }
}

/// What an apply of `plan` still needs, checked as at a first apply: the
/// head now, the requester's and every approver's role as GitHub says it
/// now (past the cache; an approval counts with the lower of the role its
/// approver had then and has now), expiry and approvals.
async fn still_needs(
    ctx: &JobContext,
    status: &StatusComment,
    ev: &Asked,
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

/// End an apply that cannot start after all (no step ran): the plan
/// fails, its locks go, and the reply says why.
async fn abandon(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &Asked,
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
    Ok(render::apply_refused(id, &why))
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
        let refused = Refused {
            command: "apply",
            via: Some("button"),
            role,
            needed,
            plan: Some(id),
        };
        ctx.audit_refused(job, login, refused).await?;
        return Ok(());
    }
    let asked = Asked {
        repo: ev.repo.clone(),
        installation_id: ev.installation_id,
        number: plan.number,
        on_pull_request: plan.head_sha.is_some(),
        author: ev.sender.clone(),
        via: Via::Button,
    };
    let mut status = ctx.status_comment(github, repo, plan.number, job);
    let text = apply(
        ctx,
        job,
        &asked,
        &mut status,
        &[],
        Some(PlanRef::Number(id)),
    )
    .await?;
    status.show(&render::pressed_apply(login, &text)).await?;
    Ok(())
}
