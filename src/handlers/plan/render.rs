//! The text of a plan as people see it: in the reply to `/agentic plan`,
//! in `/agentic status`, and in the summary of the plan's check run; and
//! every other message of the plan workflow, one function each, grouped by
//! job. Pure functions, no I/O, so that what is posted can be tested whole.
//!
//! What approvers see is what is hashed and what runs: every field of a
//! step (action, resource, region, arguments) and the model's summary are
//! text others chose, so each is redacted on its own (a secret in one
//! field cannot blank another) and escaped so that no Markdown or HTML in
//! it can hide, fake or reorder anything around it. The size is bounded
//! before a plan is stored, so a stored plan is never cut when posted.

use crate::command::PlanRef;
use crate::domain::{PlanStatus, Role, StepState};
use crate::markdown::{escape_line, escape_text, hidden, inline_code, written_out};
use crate::plan::{Approval, PlanStep, Refusal, MAX_PLAN_STEPS};
use crate::redact::Redactor;
use crate::store::{CancelledJob, Freeze, PlanRow, StepRun};

/// Largest text of a plan's steps and refusals, in bytes. GitHub takes at
/// most 65,535 bytes in a check run's summary and 65,536 characters in a
/// comment; this leaves room for the plan's header, what it still needs,
/// the model's summary and the other replies of the same comment.
pub const MAX_PLAN_RENDERED_BYTES: usize = 40_000;

/// Most characters of the model's summary shown with a plan (the steps,
/// not the summary, are what is approved).
pub const MAX_SUMMARY_CHARS: usize = 2_000;

/// GitHub refuses a check run whose `output.summary` is longer than this
/// many bytes.
pub const MAX_CHECK_RUN_SUMMARY_BYTES: usize = 65_535;

/// What a step did (or why it failed), as it follows the step's line: one
/// line, HTML and entities inert, no mention, hidden characters written
/// out. Its inline Markdown (our own backticks round a name) is kept: on
/// one line nothing in it can fake another step's line.
pub fn outcome_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    for c in text.chars() {
        let after_word = previous.is_some_and(|p| p.is_alphanumeric() || p == '_');
        previous = Some(c);
        match c {
            '\r' | '\n' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' if !after_word => out.push_str("`@`"),
            c if c != '\t' && hidden(c) => out.push_str(&written_out(c)),
            c => out.push(c),
        }
    }
    out
}

/// A step with each field redacted on its own: a secret in a tag value
/// is replaced where it is, and nothing else is touched.
fn redacted(s: &PlanStep, redactor: &Redactor) -> PlanStep {
    PlanStep {
        service: redactor.redact(&s.service).into_owned(),
        action: s.action,
        region: s.region.as_deref().map(|r| redactor.redact(r).into_owned()),
        resource: redactor.redact(&s.resource).into_owned(),
        arguments: redact_value(&s.arguments, redactor),
        risk: s.risk,
    }
}

/// `value` with every key and string redacted on its own.
fn redact_value(value: &serde_json::Value, redactor: &Redactor) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(redactor.redact(s).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(|v| redact_value(v, redactor)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (redactor.redact(k).into_owned(), redact_value(v, redactor)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// JSON text with hidden characters that JSON leaves as they are (bidi
/// overrides, separators, C1 controls) written as `\uXXXX` escapes: the
/// same JSON, shown as it is.
fn visible_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if hidden(c) && c != '\n' {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One step as people read it; every field is escaped, none redacted
/// (see [`step_block`] for that).
pub fn step_line(n: usize, s: &PlanStep) -> String {
    let effect = s.action.effect(s.risk, &s.arguments);
    format!(
        "{n}. **{}** {} on {} in {} — {effect}",
        s.risk.as_str(),
        inline_code(&s.action.iam_action()),
        inline_code(&s.resource),
        inline_code(s.region.as_deref().unwrap_or("global"))
    )
}

/// One step as posted with its plan: its line, then the arguments beyond
/// the resource itself, exactly as they will be sent (the hash covers
/// them too); a policy document is shown as the document. Each field is
/// redacted on its own first.
pub fn step_block(n: usize, s: &PlanStep, redactor: &Redactor) -> String {
    let s = &redacted(s, redactor);
    let line = step_line(n, s);
    if s.action.shown_by_its_line() {
        // Their line says it all.
        return line;
    }
    let extra: serde_json::Map<String, serde_json::Value> = s
        .arguments
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "instance_ids" | "bucket" | "user" | "user_arn" | "group_id" | "access_key_id"
            )
        })
        .map(|(k, v)| match (k.as_str(), v.as_str()) {
            ("policy", Some(doc)) => (
                k.clone(),
                serde_json::from_str(doc)
                    .map(|doc| redact_value(&doc, redactor))
                    .unwrap_or_else(|_| v.clone()),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    if extra.is_empty() {
        return line;
    }
    let text = visible_json(&serde_json::to_string_pretty(&extra).unwrap_or_default());
    let fence = crate::output::fence_for(&text);
    let indented = text.replace('\n', "\n   ");
    format!("{line}\n\n   {fence}json\n   {indented}\n   {fence}\n")
}

/// What change tools refused while the plan was made, each field escaped
/// and redacted on its own; empty when nothing was.
pub fn refusals_text(refusals: &[Refusal], redactor: &Redactor) -> String {
    if refusals.is_empty() {
        return String::new();
    }
    let mut out = String::from("Refused while planning (not part of the plan):\n");
    for r in refusals {
        out.push_str(&format!(
            "\n- {} on {}: {}",
            inline_code(&redactor.redact(&r.action)),
            inline_code(&redactor.redact(&r.resource)),
            escape_line(&redactor.redact(&r.reason))
        ));
    }
    out
}

/// The steps, numbered, then the refusals: the part of a plan whose size
/// [`MAX_PLAN_RENDERED_BYTES`] bounds.
pub fn steps_text(steps: &[PlanStep], refusals: &[Refusal], redactor: &Redactor) -> String {
    let blocks: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| step_block(i + 1, s, redactor))
        .collect();
    let mut out = blocks.join("\n");
    let refused = refusals_text(refusals, redactor);
    if !refused.is_empty() {
        out.push_str("\n\n");
        out.push_str(&refused);
    }
    out
}

/// Whether a plan of these steps and refusals may be stored: at most
/// [`MAX_PLAN_STEPS`] steps, shown in full within
/// [`MAX_PLAN_RENDERED_BYTES`].
pub fn fits(steps: &[PlanStep], refusals: &[Refusal], redactor: &Redactor) -> bool {
    steps.len() <= MAX_PLAN_STEPS
        && steps_text(steps, refusals, redactor).len() <= MAX_PLAN_RENDERED_BYTES
}

/// The reply to a plan that does not [`fit`](fits): nothing is stored.
pub fn too_large(steps: usize) -> String {
    format!(
        "The plan is too large to show in full, so it was not stored: it has {steps} step(s), and a plan may have at most {MAX_PLAN_STEPS} that fit in {MAX_PLAN_RENDERED_BYTES} bytes as posted. Ask for fewer changes at a time."
    )
}

/// The model's summary of a plan, redacted, bounded and escaped.
pub fn summary_text(summary: &str, redactor: &Redactor) -> String {
    let summary = redactor.redact(summary.trim());
    let mut kept: String = summary.chars().take(MAX_SUMMARY_CHARS).collect();
    if kept.len() < summary.len() {
        kept.push('…');
    }
    escape_text(&kept)
}

/// The reply to `/agentic plan` when no step was accepted: the summary,
/// and what was refused.
pub fn nothing_proposed(summary: &str, refusals: &[Refusal], redactor: &Redactor) -> String {
    let mut out = format!("No change proposed.\n\n{}", summary_text(summary, redactor));
    let refused = refusals_text(refusals, redactor);
    if !refused.is_empty() {
        out.push_str("\n\n");
        out.push_str(&refused);
    }
    out
}

/// The reply to `/agentic plan` with a stored plan: the model's summary,
/// then the plan.
pub fn proposed(summary: &str, plan: &PlanRow, needs: &[String], redactor: &Redactor) -> String {
    format!(
        "{}\n\n{}",
        summary_text(summary, redactor),
        render(plan, needs, redactor)
    )
}

/// The plan as posted: its steps, what was refused, and what it still
/// needs.
pub fn render(plan: &PlanRow, needs: &[String], redactor: &Redactor) -> String {
    let expires = chrono::DateTime::from_timestamp_millis(plan.expires_at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let mut out = format!(
        "**Plan {}** (hash `{}`, requested by @{}, expires {expires}):\n\n{}",
        plan.id,
        plan.hash.get(..12).unwrap_or(&plan.hash),
        plan.requester,
        steps_text(&plan.steps, &plan.refusals, redactor)
    );
    if plan.status != PlanStatus::Proposed {
        out.push_str(&format!("\n\nStatus: {}.", plan.status));
    }
    if needs.is_empty() {
        if plan.status == PlanStatus::Proposed {
            out.push_str("\n\nReady: `/agentic apply` runs exactly these steps.");
        }
    } else {
        out.push_str("\n\nBefore `/agentic apply` can run it:\n");
        for n in needs {
            out.push_str(&format!("\n- {n}"));
        }
    }
    out
}

/// Said under every plan when the operator lets applies run without a
/// session policy (`AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY=true`).
pub const UNLIMITED_APPLY: &str = "\n\n⚠️ This installation applies plans with its own AWS credentials and no session policy (`AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY`): nothing but this plan's steps and its executor limits what an apply may do.";

/// When, by whom and why applies were frozen, in one sentence.
fn freeze_text(f: &Freeze) -> String {
    let since = chrono::DateTime::from_timestamp_millis(f.set_at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    format!(
        "applies are frozen by the operator (`{}`, since {since}): {}",
        outcome_text(&f.set_by),
        outcome_text(&f.reason)
    )
}

/// Said under every plan, and in its check run, while applies are frozen.
pub fn frozen_notice(f: &Freeze) -> String {
    format!(
        "\n\n🧊 {}. This plan can be approved, but nothing is applied until the freeze is lifted.",
        capitalised(&freeze_text(f))
    )
}

/// The reply to an apply while applies are frozen.
pub fn frozen_refusal(id: i64, f: &Freeze) -> String {
    format!(
        "🧊 I cannot apply plan {id} now: {}. Nothing ran; `/agentic apply {id}` works again once the freeze is lifted.",
        freeze_text(f)
    )
}

/// The reply when a freeze stops a running apply between two steps, after
/// `lead`.
pub fn frozen_pause(lead: &str, id: i64, next: usize, f: &Freeze, lines: &[String]) -> String {
    format!(
        "{lead}🧊 Plan {id} paused before step {next}: {}. The steps marked ✅ ran; the rest did not. The plan stays `applying` and keeps its locks; `/agentic apply {id}` resumes it once the freeze is lifted.\n\n{}",
        freeze_text(f),
        lines.join("\n")
    )
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The summary of the plan's check run: the whole plan, never cut (a
/// stored plan always fits); `Err` says why it cannot be shown.
pub fn check_run_summary(
    plan: &PlanRow,
    needs: &[String],
    redactor: &Redactor,
) -> Result<String, String> {
    let text = render(plan, needs, redactor);
    if text.len() > MAX_CHECK_RUN_SUMMARY_BYTES {
        return Err(format!(
            "plan {} is too large to show in full in its check run ({} bytes)",
            plan.id,
            text.len()
        ));
    }
    Ok(text)
}

/// The title of the plan's check run.
pub fn check_run_title(plan: &PlanRow) -> String {
    format!(
        "Plan {}: {} step(s), {}",
        plan.id,
        plan.steps.len(),
        plan.status
    )
}

// Any command that names a plan, or needs the repository's AWS scope.

/// The reply when a command could mean several plans: it names them, and
/// nothing is done.
pub fn name_the_plan(command: &str, plans: &[PlanRow]) -> String {
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
pub fn no_such_plan(r: &PlanRef) -> String {
    format!("There is no plan `{r}` on this thread; `/agentic status` lists them.")
}

/// The reply when the repository's settings have a problem (said with the
/// reply itself): no AWS tool runs.
pub fn settings_problem() -> &'static str {
    "I cannot plan or apply AWS changes here: no AWS tool runs for this repository until the problem with its settings is fixed (said with every reply here, `/agentic help` too)."
}

// `/agentic plan` and the trigger label.

/// The reply when no AWS change may be planned here, saying why.
pub fn cannot_plan_here(why: &str) -> String {
    format!("I cannot plan AWS changes here: {why}.")
}

/// The reply when the planning conversation stopped before its end.
pub fn planning_stopped(reason: &str) -> String {
    format!("⚠️ I stopped before finishing the plan because {reason}; nothing was planned.")
}

/// The reply to a plan beyond the operator's ceiling: why, and the steps
/// that were refused with it.
pub fn beyond_ceiling(
    why: &str,
    steps: &[PlanStep],
    refusals: &[Refusal],
    redactor: &Redactor,
) -> String {
    format!(
        "⚠️ I cannot make this plan: {why}. Nothing was planned.\n\n{}",
        steps_text(steps, refusals, redactor)
    )
}

/// The notice to someone whose trigger label asks for a plan their role
/// may not ask for.
pub fn label_refused(login: &str, label: &str, needed: Role, role: Role) -> String {
    format!(
        "@{login} the `{label}` label asks me for a plan, which needs the **{}** role or higher on this repository; you have **{}**.",
        needed.as_str(),
        role.as_str()
    )
}

// `/agentic approve`.

/// The reply to an approve with no plan waiting.
pub fn nothing_to_approve() -> &'static str {
    "There is no plan waiting here to approve."
}

/// The reply to a bare approve when another plan came and went on the
/// thread within a plan's lifetime.
pub fn replaced_recently(id: i64, hash: &str) -> String {
    format!(
        "Another plan was proposed on this thread in the last day, so `/agentic approve` alone could mean one you did not read, and I recorded nothing. Name the plan: `/agentic approve {id}` (hash `{}`).",
        &hash[..12]
    )
}

/// The reply to a bare approve of a plan not shown before the comment.
pub fn shown_after_comment(id: i64, hash: &str) -> String {
    format!(
        "Plan {id} was shown after your comment was written (or I cannot tell when), so I cannot tell that you saw it, and I recorded nothing. To approve it, name it: `/agentic approve {id}` (hash `{}`).",
        &hash[..12]
    )
}

/// The reply to an approve of a plan that no longer waits.
pub fn not_approvable(id: i64, status: PlanStatus) -> String {
    format!("Plan {id} is {status}; there is nothing to approve.")
}

/// The reply to an approval of a plan whose comment someone else changed
/// (or deleted) after the bot posted it.
pub fn comment_changed(id: i64, hash: &str) -> String {
    format!(
        "Plan {id}'s comment is not as I posted it: it was edited or deleted since, so what you read there may not be the plan, and I recorded nothing. The plan as it will run is in its `agentic plan` check run (hash `{}`); ask for a new plan with `/agentic plan` to get a comment you can approve.",
        &hash[..hash.len().min(12)]
    )
}

/// The reply to an approval: who approved with which role, then the plan
/// and what it still needs.
pub fn approved(
    who: &str,
    role: Role,
    plan: &PlanRow,
    needs: &[String],
    redactor: &Redactor,
) -> String {
    format!(
        "@{who} approved plan {} (hash `{}`) with the **{}** role.\n\n{}",
        plan.id,
        &plan.hash[..12],
        role.as_str(),
        render(plan, needs, redactor)
    )
}

// `/agentic apply` and the Apply button.

/// The reply to an apply with no plan waiting or being applied.
pub fn nothing_to_apply() -> &'static str {
    "There is no plan waiting here to apply."
}

/// The reply to an apply of a plan that has ended.
pub fn not_applicable(id: i64, status: PlanStatus) -> String {
    format!("Plan {id} is {status}; there is nothing to apply.")
}

/// The reply to an apply of a plan whose stored steps no longer match its
/// hash.
pub fn hash_mismatch(id: i64, hash: &str) -> String {
    format!(
        "I cannot apply plan {id}: its stored steps do not match the hash `{}` it was proposed and approved with. Nothing ran; ask for a new plan.",
        &hash[..12]
    )
}

/// The reply to an apply that would launch more instances than the
/// repository allows.
pub fn too_many_instances(id: i64, launched: u64, max: u32) -> String {
    format!(
        "I cannot apply plan {id}: it launches {launched} instance(s), more than this repository's `aws.max_instances` ({max})."
    )
}

/// The reply to an apply refused before any step ran, saying why.
pub fn apply_refused(id: i64, why: &str) -> String {
    format!("I cannot apply plan {id}: {why}. Nothing ran.")
}

/// The reply to an apply when there is no apply role to limit it.
pub fn no_apply_role(id: i64) -> String {
    format!(
        "I cannot apply plan {id}: no apply role is configured (`AGENTIC_AWS_APPLY_ROLE_ARN`), so the apply would run with my own AWS credentials and no session policy limiting it to the approved steps. Nothing ran. The operator can configure an apply role, or allow this explicitly with `AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY=true`."
    )
}

/// The reply to an apply of a plan that still needs something: the plan
/// and what it needs.
pub fn not_yet(plan: &PlanRow, needs: &[String], redactor: &Redactor) -> String {
    format!(
        "I cannot apply plan {} yet.\n\n{}",
        plan.id,
        render(plan, needs, redactor)
    )
}

/// The reply when another plan holds a lock on one of the resources.
pub fn locked(id: i64, other: i64) -> String {
    format!(
        "I cannot apply plan {id} now: plan {other} is being applied to the same resources. Try again when it is done."
    )
}

/// The reply while another job applies a plan.
pub fn being_applied(id: i64) -> String {
    format!(
        "Plan {id} is being applied right now; `/agentic status` shows it, and `/agentic cancel` stops it after the step it is on."
    )
}

/// Said before the outcome when someone took over an apply whose job died.
pub fn resumed(who: &str, id: i64) -> String {
    format!("@{who} resumed plan {id}'s apply, which had stopped midway.\n\n")
}

/// The progress of an apply: the steps so far, then step `n`, running.
pub fn applying(before: &str, id: i64, lines: &[String], n: usize, step: &PlanStep) -> String {
    format!(
        "{before}Applying plan {id}…\n\n{}\n⏳ {}",
        lines.join("\n"),
        step_line(n, step)
    )
}

/// Step `n`'s line with a mark and what it did (or why not).
fn step_outcome(mark: &str, n: usize, step: &PlanStep, what: &str) -> String {
    format!("{mark} {} — {}", step_line(n, step), outcome_text(what))
}

/// Step `n`'s line once it ran, with what it did.
pub fn step_done(n: usize, step: &PlanStep, result: &str) -> String {
    step_outcome("✅", n, step, result)
}

/// Step `n`'s line once it failed, with why.
pub fn step_failed(n: usize, step: &PlanStep, reason: &str) -> String {
    step_outcome("❌", n, step, reason)
}

/// The lines of the steps from index `from` on, which did not run.
pub fn not_run(steps: &[PlanStep], from: usize) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .skip(from)
        .map(|(j, s)| step_outcome("⏭️", j + 1, s, "not run"))
        .collect()
}

/// The reply when every step ran.
pub fn applied(lead: &str, id: i64, lines: &[String]) -> String {
    format!("{lead}Plan {id} is applied.\n\n{}", lines.join("\n"))
}

/// The reply when a cancel stopped an apply before step `step`.
pub fn cancelled_before(lead: &str, id: i64, step: i64, by: &str, lines: &[String]) -> String {
    format!(
        "{lead}Plan {id} stopped before step {step}: @{by} cancelled it. The steps marked ✅ ran; the rest did not.\n\n{}",
        lines.join("\n")
    )
}

/// The reply when step `step` failed and the apply stopped there.
pub fn stopped_at(lead: &str, id: i64, step: i64, lines: &[String]) -> String {
    format!(
        "{lead}Plan {id} stopped at step {step}; the steps after it did not run.\n\n{}",
        lines.join("\n")
    )
}

/// What the Apply button's apply posts: who pressed it, then the reply.
pub fn pressed_apply(login: &str, text: &str) -> String {
    format!("@{login} pressed **Apply**.\n\n{text}")
}

// `/agentic cancel` and a closed thread.

/// The reply when a cancel withdrew a waiting plan.
pub fn withdrawn(id: i64) -> String {
    format!("Plan {id} is withdrawn; nothing of it will run.")
}

/// The reply when a cancel asked a running apply to stop.
pub fn stopping(id: i64) -> String {
    format!(
        "Plan {id} is being applied: it stops after the step it is on, and the steps after it will not run. A step in flight is not interrupted halfway."
    )
}

/// The reply when a cancel ended an apply whose job had died.
pub fn dead_apply_cancelled(id: i64) -> String {
    format!(
        "Plan {id}'s apply had stopped midway (its job ended without finishing): the plan is cancelled and its locks are released. `/agentic status` shows which steps ran."
    )
}

/// What a cancel says of the jobs it reached: those it stops and those it
/// dropped before they started, a paragraph each where there are any.
pub fn jobs_stopped(jobs: &[CancelledJob]) -> Vec<String> {
    let running = jobs.iter().filter(|j| j.was_running).count();
    let queued = jobs.len() - running;
    let mut said = Vec::new();
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
    said
}

/// The kinds of some jobs, as people read them.
fn kinds<'a>(jobs: impl Iterator<Item = &'a CancelledJob>) -> String {
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

/// The reply to a cancel that found nothing to stop.
pub fn nothing_to_cancel() -> &'static str {
    "There is nothing here to cancel: no plan waiting and no work running."
}

/// The reply when someone without `cancel`'s role closes a thread whose
/// plan is being applied.
pub fn closed_while_applying(by: &str, needed: Role, plans: &[i64]) -> String {
    let names: Vec<String> = plans.iter().map(|id| format!("plan {id}")).collect();
    format!(
        "@{by} closed this thread. Plans still waiting here are withdrawn, but stopping an apply needs the **{}** role, so {} goes on with its approved steps to the end. Someone with that role can stop it with `/agentic cancel`.",
        needed.as_str(),
        names.join(" and ")
    )
}

// `/agentic status`.

/// The reply to a status with no plans on the thread; `freeze` is the
/// freeze notice, if any.
pub fn no_plans(freeze: &str) -> String {
    format!("There are no plans here.{freeze}")
}

/// A waiting plan in a status: the plan, what it needs, and who approved
/// it with which role.
pub fn plan_waiting(
    plan: &PlanRow,
    needs: &[String],
    approvals: &[Approval],
    redactor: &Redactor,
) -> String {
    let who: Vec<String> = approvals
        .iter()
        .map(|a| format!("@{} ({})", a.approver, a.role.as_str()))
        .collect();
    format!(
        "{}\n\nApprovals: {}",
        render(plan, needs, redactor),
        if who.is_empty() {
            "none".to_string()
        } else {
            who.join(", ")
        }
    )
}

/// A plan that no longer waits, in a status: where it stands, and what
/// each step did once an apply started.
pub fn plan_ended(plan: &PlanRow, runs: &[StepRun]) -> String {
    let mut out = format!(
        "**Plan {}**: {} ({} step(s)).",
        plan.id,
        plan.status,
        plan.steps.len()
    );
    if runs.is_empty() {
        return out;
    }
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
        out.push('\n');
        out.push_str(&step_outcome(mark, i + 1, step, &what.unwrap_or_default()));
    }
    out
}

/// The reply to a status: the latest plans, newest first, then the freeze
/// notice, if any.
pub fn plans_here(sections: &[String], freeze: &str) -> String {
    format!(
        "{}{freeze}",
        sections.join(crate::handlers::progress::SECTION_BREAK)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RiskTier;
    use crate::markdown::visible;

    #[test]
    fn an_outcome_stays_on_its_line_and_mentions_nobody() {
        assert_eq!(
            outcome_text("tagged `a`\n✅ 2. fake <!-- @org/team \u{202E}"),
            "tagged `a` ✅ 2. fake &lt;!-- `@`org/team \\u{202E}"
        );
    }

    #[test]
    fn the_models_words_mention_nobody() {
        assert_eq!(
            escape_text("@mia-maintainer, (@acme/admins) write to bob@example.com"),
            "`@`mia-maintainer, (`@`acme/admins) write to bob@example.com"
        );
    }
    use proptest::prelude::*;
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    use serde_json::json;

    fn step(action: &str, resource: &str, arguments: serde_json::Value) -> PlanStep {
        PlanStep {
            service: "ec2".into(),
            action: action.parse().unwrap(),
            region: Some("eu-west-1".into()),
            resource: resource.into(),
            arguments,
            risk: RiskTier::Write,
        }
    }

    fn plan_of(steps: Vec<PlanStep>, refusals: Vec<Refusal>) -> PlanRow {
        PlanRow {
            id: 7,
            job_id: 1,
            repo: "octo/infra".into(),
            number: 57,
            requester: "bob-reviewer".into(),
            requester_id: Some(5550102),
            head_sha: None,
            hash: crate::plan::hash(&steps),
            steps,
            status: crate::domain::PlanStatus::Proposed,
            created_at: 0,
            expires_at: 0,
            check_run_id: None,
            cancel_requested_by: None,
            apply_job_id: None,
            shown_at: None,
            refusals,
        }
    }

    /// What a reader of GitHub sees of some Markdown: the raw HTML in it,
    /// the items of its ordered lists, and its inline code, in order.
    #[derive(Debug, Default)]
    struct Seen {
        html: Vec<String>,
        math: usize,
        numbered_items: usize,
        numbered_lists: usize,
        code: Vec<String>,
    }

    fn seen(markdown: &str) -> Seen {
        let options = Options::ENABLE_TABLES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS
            | Options::ENABLE_FOOTNOTES
            | Options::ENABLE_MATH
            | Options::ENABLE_GFM;
        let mut out = Seen::default();
        let mut lists: Vec<bool> = Vec::new();
        for event in Parser::new_ext(markdown, options) {
            match event {
                Event::Html(h) | Event::InlineHtml(h) => out.html.push(h.to_string()),
                Event::InlineMath(_) | Event::DisplayMath(_) => out.math += 1,
                Event::Start(Tag::List(start)) => {
                    if start.is_some() {
                        out.numbered_lists += 1;
                    }
                    lists.push(start.is_some());
                }
                Event::End(TagEnd::List(_)) => {
                    lists.pop();
                }
                Event::Start(Tag::Item) if lists.last() == Some(&true) => out.numbered_items += 1,
                Event::Code(c) => out.code.push(c.to_string()),
                _ => {}
            }
        }
        out
    }

    /// Whether `want` appear in `have` in order (others may stand between).
    fn in_order(have: &[String], want: &[String]) -> bool {
        let mut it = have.iter();
        want.iter().all(|w| it.any(|h| h == w))
    }

    /// The inline code a reader sees for each step: action, resource,
    /// region, in order, after redaction.
    fn expected_code(steps: &[PlanStep], redactor: &Redactor) -> Vec<String> {
        steps
            .iter()
            .flat_map(|s| {
                let s = redacted(s, redactor);
                [
                    visible(&s.action.iam_action()),
                    visible(&s.resource),
                    visible(s.region.as_deref().unwrap_or("global")),
                ]
            })
            .collect()
    }

    const FAKE_READY: &str = "Ready: `/agentic apply` runs exactly these steps.";

    #[test]
    fn an_unclosed_comment_or_a_fake_ready_line_in_the_summary_hides_and_fakes_nothing() {
        let r = Redactor::new([]);
        let plan = plan_of(
            vec![
                step(
                    "StopInstances",
                    "i-0aaa",
                    json!({ "instance_ids": ["i-0aaa"] }),
                ),
                step(
                    "TerminateInstances",
                    "i-0bbb",
                    json!({ "instance_ids": ["i-0bbb"] }),
                ),
            ],
            vec![],
        );
        let summary = format!(
            "Stop the builder.\n\n<!--\n\n{FAKE_READY}\n\n1. **write** `ec2:StopInstances` on `i-0ccc`\n\n<details><summary>x</summary>"
        );
        let text = proposed(&summary, &plan, &["an approval".into()], &r);
        let s = seen(&text);
        assert!(s.html.is_empty(), "{:?} in {text}", s.html);
        assert_eq!((s.numbered_lists, s.numbered_items), (1, 2), "{text}");
        assert!(in_order(&s.code, &expected_code(&plan.steps, &r)), "{text}");
        // Only the real line names the command as code; the fake is text.
        let named = s.code.iter().filter(|c| *c == "/agentic apply").count();
        assert_eq!(named, 1, "{text}");
        assert!(text.starts_with("Stop the builder.\n\n"), "{text}");
    }

    #[test]
    fn a_field_can_neither_close_its_code_nor_start_a_new_step() {
        let r = Redactor::new([]);
        let sneaky = "i-0aaa` on `i-0bbb`\n2. **write** `ec2:StartInstances";
        let plan = plan_of(
            vec![step(
                "CreateTags",
                sneaky,
                json!({ "tags": { "note": "```\n</details><!--" } }),
            )],
            vec![Refusal {
                action: "aws_stop_instances".into(),
                resource: "i-0ddd`\n- fake".into(),
                reason: "instance `i-0ddd` is not tagged <!-- for this repository".into(),
            }],
        );
        let text = render(&plan, &[], &r);
        let s = seen(&text);
        assert!(s.html.is_empty(), "{:?} in {text}", s.html);
        assert_eq!(s.numbered_items, 1, "{text}");
        assert!(s.code.contains(&visible(sneaky)), "{:?}", s.code);
        assert!(text.contains("Refused while planning"), "{text}");
        assert!(inline_code("a``b").starts_with("```"));
        assert_eq!(inline_code("`x"), "`` `x ``");
    }

    #[test]
    fn a_private_key_marker_in_one_field_blanks_nothing_else() {
        let r = Redactor::new([]);
        let plan = plan_of(
            vec![
                step(
                    "CreateTags",
                    "i-0aaa",
                    json!({ "tags": { "k": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMx" } }),
                ),
                step(
                    "StopInstances",
                    "i-0bbb",
                    json!({ "instance_ids": ["i-0bbb"] }),
                ),
            ],
            vec![],
        );
        for text in [
            r.redact(&render(&plan, &[], &r)).into_owned(),
            check_run_summary(&plan, &[], &r).unwrap(),
        ] {
            assert!(!text.contains("MIIEow"), "{text}");
            assert!(
                text.contains("2. **write** `ec2:StopInstances` on `i-0bbb` in `eu-west-1`"),
                "{text}"
            );
            assert!(text.contains("Ready: `/agentic apply` runs exactly these steps."));
        }
    }

    #[test]
    fn a_plan_is_bounded_in_steps_and_in_size() {
        let r = Redactor::new([]);
        let one = step(
            "StopInstances",
            "i-0aaa",
            json!({ "instance_ids": ["i-0aaa"] }),
        );
        assert!(fits(&vec![one.clone(); MAX_PLAN_STEPS], &[], &r));
        assert!(!fits(&vec![one; MAX_PLAN_STEPS + 1], &[], &r));
        // Fifty long tags on each of a few instances: fewer steps than the
        // limit, too long to show.
        let tags: serde_json::Map<String, serde_json::Value> = (0..50)
            .map(|i| (format!("tag{i}"), json!("v".repeat(256))))
            .collect();
        let big = step("CreateTags", "i-0aaa", json!({ "tags": tags }));
        assert!(!fits(&vec![big; 5], &[], &r));
        assert!(
            too_large(5).starts_with("The plan is too large to show in full, so it was not stored")
        );
        // What fits shows whole in a check run.
        let most = plan_of(
            vec![step("StopInstances", &"i".repeat(1_000), json!({})); MAX_PLAN_STEPS],
            vec![],
        );
        assert!(fits(&most.steps, &[], &r));
        assert!(check_run_summary(&most, &["x".repeat(2_000)], &r).is_ok());
    }

    #[test]
    fn a_hostile_plan_reads_as_this() {
        let r = Redactor::new([]);
        let plan = plan_of(
            vec![
                step(
                    "CreateTags",
                    "i-0aaa`<!--",
                    json!({ "tags": { "note": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMx", "x": "\u{202E}evil" } }),
                ),
                step(
                    "StopInstances",
                    "i-0bbb\n3. fake",
                    json!({ "instance_ids": ["i-0bbb"] }),
                ),
            ],
            vec![Refusal {
                action: "aws_stop_instances".into(),
                resource: "i-0ccc".into(),
                reason: "instance `i-0ccc` does not carry agentic:repo=octo/infra".into(),
            }],
        );
        insta::assert_snapshot!(proposed(
            "Done.\n<!--\n# Plan 8\n- [x] approved",
            &plan,
            &["a second person's approval".into()],
            &r
        ));
    }

    /// A hash of the right length, so that what shows of it is fixed.
    const HASH: &str = "3fa1c9e2b7d40f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899a";

    /// Plan 7 of three steps (stop, start, reboot), its hash [`HASH`].
    fn example_plan() -> PlanRow {
        let mut plan = plan_of(
            vec![
                step(
                    "StopInstances",
                    "i-0aaa",
                    json!({ "instance_ids": ["i-0aaa"] }),
                ),
                step(
                    "StartInstances",
                    "i-0bbb",
                    json!({ "instance_ids": ["i-0bbb"] }),
                ),
                step(
                    "RebootInstances",
                    "i-0ccc",
                    json!({ "instance_ids": ["i-0ccc"] }),
                ),
            ],
            vec![],
        );
        plan.hash = HASH.into();
        plan
    }

    /// Messages one under another, a line of `---` between two.
    fn one_after_another(messages: &[String]) -> String {
        messages.join("\n---\n")
    }

    #[test]
    fn the_approve_messages_read_as_this() {
        let r = Redactor::new([]);
        let plan = example_plan();
        let needs = ["a second person's approval".to_string()];
        let text = one_after_another(&[
            nothing_to_approve().to_string(),
            replaced_recently(7, HASH),
            shown_after_comment(7, HASH),
            not_approvable(7, PlanStatus::Applied),
            comment_changed(7, HASH),
            approved("mia-maintainer", Role::Maintain, &plan, &needs, &r),
        ]);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn the_apply_messages_read_as_this() {
        let r = Redactor::new([]);
        let plan = example_plan();
        let s = &plan.steps;
        let needs = ["a second person's approval".to_string()];
        let freeze = Freeze {
            reason: "quarter close".into(),
            set_by: "ops".into(),
            set_at: 0,
        };
        let first = step_done(1, &s[0], "stopped <i-0aaa>");
        let all = [
            first.clone(),
            step_done(2, &s[1], "started i-0bbb"),
            step_done(3, &s[2], "rebooted i-0ccc"),
        ];
        let mut before_second = vec![first.clone()];
        before_second.extend(not_run(s, 1));
        let mut failed = vec![
            first.clone(),
            step_failed(2, &s[1], "UnauthorizedOperation: @ops denied it"),
        ];
        failed.extend(not_run(s, 2));
        let text = one_after_another(&[
            nothing_to_apply().to_string(),
            not_applicable(7, PlanStatus::Applied),
            hash_mismatch(7, HASH),
            too_many_instances(7, 5, 2),
            apply_refused(7, "it is destructive, and this server allows write only"),
            no_apply_role(7),
            not_yet(&plan, &needs, &r),
            locked(7, 6),
            being_applied(7),
            applying("", 7, &[first], 2, &s[1]),
            applied(&resumed("mia-maintainer", 7), 7, &all),
            cancelled_before("", 7, 2, "mia-maintainer", &before_second),
            stopped_at("", 7, 2, &failed),
            frozen_pause("", 7, 2, &freeze, &before_second),
            pressed_apply("mia-maintainer", &being_applied(7)),
        ]);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn the_cancel_messages_read_as_this() {
        let job = |id: i64, kind: &str, was_running: bool| CancelledJob {
            id,
            kind: kind.into(),
            was_running,
        };
        let jobs = [
            job(1, "command", true),
            job(2, "review", true),
            job(3, "command", true),
            job(4, "infra_task", false),
        ];
        let text = one_after_another(&[
            withdrawn(7),
            stopping(7),
            dead_apply_cancelled(7),
            jobs_stopped(&jobs).join("\n\n"),
            nothing_to_cancel().to_string(),
            closed_while_applying("bob-reviewer", Role::Maintain, &[7, 8]),
        ]);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn the_status_messages_read_as_this() {
        let r = Redactor::new([]);
        let waiting = example_plan();
        let approvals = [Approval {
            approver_id: 5550103,
            approver: "mia-maintainer".into(),
            role: Role::Maintain,
            hash: HASH.into(),
            head_sha: None,
        }];
        let needs = ["a second person's approval".to_string()];
        let mut failed = example_plan();
        failed.id = 6;
        failed.status = PlanStatus::Failed;
        let run = |step: i64, state: StepState, result: Option<&str>| StepRun {
            step,
            state,
            result: result.map(str::to_string),
        };
        let runs = [
            run(1, StepState::Done, Some("stopped i-0aaa")),
            run(2, StepState::Running, None),
        ];
        let mut cancelled = example_plan();
        cancelled.id = 5;
        cancelled.status = PlanStatus::Cancelled;
        let text = one_after_another(&[
            no_plans(""),
            plan_waiting(&waiting, &[], &[], &r),
            plans_here(
                &[
                    plan_waiting(&waiting, &needs, &approvals, &r),
                    plan_ended(&failed, &runs),
                    plan_ended(&cancelled, &[]),
                ],
                "",
            ),
        ]);
        insta::assert_snapshot!(text);
    }

    /// Text an attacker would try: comment openers, backticks, fences,
    /// key markers, newlines, tables, HTML, list starts, math, bidi
    /// overrides, secrets, and a fake ready line.
    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<!--".to_string()),
            Just("-->".to_string()),
            Just("`".to_string()),
            Just("```".to_string()),
            Just("-----BEGIN RSA PRIVATE KEY-----".to_string()),
            Just("-----END RSA PRIVATE KEY-----".to_string()),
            Just("MIIEowIBAAKCAQEAu1SU1LfVLPHCozMx".to_string()),
            Just("\n".to_string()),
            Just("\r\n\n".to_string()),
            Just("|".to_string()),
            Just(" | --- |".to_string()),
            Just("</details>".to_string()),
            Just("<details><summary>".to_string()),
            Just("\n2. **write** ".to_string()),
            Just("\n- ".to_string()),
            Just("    ".to_string()),
            Just("$$".to_string()),
            Just("\u{202E}".to_string()),
            Just("ghp_abcdefghijklmnopqrstuvwxyz0123456789".to_string()),
            Just("aws_secret_access_key=".to_string()),
            Just("http://u:p@h".to_string()),
            Just(FAKE_READY.to_string()),
            "\\PC{0,6}",
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    fn hostile_step() -> impl Strategy<Value = PlanStep> {
        (
            proptest::sample::select(vec!["StopInstances", "CreateTags", "PutBucketPolicy"]),
            hostile(),
            hostile(),
            hostile(),
            hostile(),
        )
            .prop_map(|(action, resource, region, key, value)| PlanStep {
                service: "ec2".into(),
                action: action.parse().unwrap(),
                region: Some(format!("r{region}")),
                resource: format!("i{resource}"),
                arguments: json!({ "instance_ids": [resource], "tags": { key: value }, "policy": value }),
                risk: RiskTier::Write,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the summary and the fields say, the comment (redacted
        /// again whole, as every post is) and the check run show every
        /// step's action and resource, in order, as the only numbered
        /// list, with no raw HTML.
        #[test]
        fn every_step_shows_in_order_whatever_the_text(
            summary in hostile(),
            steps in proptest::collection::vec(hostile_step(), 1..4),
            refused in proptest::collection::vec((hostile(), hostile()), 0..3),
        ) {
            let r = Redactor::new([]);
            let refusals: Vec<Refusal> = refused
                .into_iter()
                .map(|(resource, reason)| Refusal {
                    action: "aws_stop_instances".into(),
                    resource,
                    reason,
                })
                .collect();
            let plan = plan_of(steps, refusals);
            let want = expected_code(&plan.steps, &r);
            let comment = r.redact(&proposed(&summary, &plan, &[], &r)).into_owned();
            let check = check_run_summary(&plan, &["an approval".into()], &r).unwrap();
            for text in [comment, check] {
                let s = seen(&text);
                prop_assert!(s.html.is_empty(), "{:?} in {}", s.html, text);
                prop_assert_eq!(s.math, 0, "{}", text);
                prop_assert_eq!(s.numbered_lists, 1, "{}", text);
                prop_assert_eq!(s.numbered_items, plan.steps.len(), "{}", text);
                prop_assert!(in_order(&s.code, &want), "{:?} not in order in {:?}\n{}", want, s.code, text);
                prop_assert!(!text.contains("-----BEGIN RSA PRIVATE KEY-----"), "{}", text);
            }
        }
    }
}
