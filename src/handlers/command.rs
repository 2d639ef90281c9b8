//! `/agentic …` in an issue or pull-request comment.

use std::collections::HashMap;

use crate::authz;
use crate::command::{self, Command};
use crate::domain::{AuditAction, Role};
use crate::event::IssueComment;
use crate::github::Access;
use crate::limits::Verdict;
use crate::output::{OutputError, StatusComment};
use crate::store::{Claim, LeasedJob};

use super::asked::Asked;
use super::progress::{progress_text, SECTION_BREAK};
use super::{ask, JobContext, JobError, LoadedConfig};

/// Run the commands of one comment, in order, into one status comment.
pub async fn run(ctx: &JobContext, job: &LeasedJob, ev: &IssueComment) -> Result<(), JobError> {
    if ev.author.is_bot() || ev.sender.is_bot() {
        return Ok(());
    }
    if ev.edited_by_another() {
        // Commands belong to whoever typed them. Someone who edits another
        // person's comment typed nothing the author said: nothing runs, and
        // nothing is said (intake drops these too; this guards stored jobs).
        tracing::info!(
            editor = %ev.sender.login,
            author = %ev.author.login,
            "a comment edited by someone other than its author runs nothing"
        );
        return Ok(());
    }
    let mut parsed = command::parse_comment(&ev.body);
    if let Some(before) = &ev.previous_body {
        // An edit by the author runs only what the edit added.
        parsed = command::added(parsed, command::parse_comment(before));
    }
    if parsed.is_empty() && ev.review.is_none() {
        return Ok(());
    }
    let repo = ev.repo.full_name.as_str();
    let github = ctx
        .repo_client(ev.installation_id, repo, Access::Write)
        .await?;
    if parsed.is_empty() {
        // A new comment on a line of the diff with no command: talking to
        // the bot if it replies in a thread the bot started or mentions it;
        // the whole comment is then the question.
        match &ev.review {
            Some(thread) if ev.action == "created" && talks_to_bot(&github, ev, thread).await? => {
                parsed.push(Ok(Command::Ask {
                    question: ev.body.trim().to_string(),
                }));
            }
            _ => return Ok(()),
        }
    }
    let mut status = ctx
        .status_comment(github, repo, ev.number, job)
        .in_thread(ev.review.as_ref().map(|t| t.root_id));
    match commands(ctx, job, ev, parsed, &mut status).await {
        Ok(()) => Ok(()),
        Err(e @ (JobError::Deferred { .. } | JobError::LeaseLost)) => Err(e),
        Err(e) => {
            let reference = format!("job {} of delivery {}", job.id, job.delivery_id);
            tracing::error!(error = %e, %reference, "command failed");
            if !e.is_transient() || ctx.last_attempt(job) {
                let text = format!(
                    "❌ Something went wrong and I could not finish. The operator can find the details in the logs under reference `{reference}`."
                );
                if let Err(post) = status.show(&text).await {
                    tracing::warn!(error = %post, "cannot report the failure on GitHub");
                }
            }
            Err(e)
        }
    }
}

/// Whether review comment `ev` speaks to the bot: it mentions the bot's
/// login, or replies in a thread whose first comment this App wrote.
async fn talks_to_bot(
    github: &crate::github::GitHub,
    ev: &IssueComment,
    thread: &crate::event::ReviewThread,
) -> Result<bool, JobError> {
    // When GitHub will not say who the bot is, only its threads count.
    if let Some(login) = github.bot_login().await.ok().flatten() {
        if mentions(
            &command::prose_text(&ev.body),
            login.trim_end_matches("[bot]"),
        ) {
            return Ok(true);
        }
    }
    if !thread.is_reply {
        return Ok(false);
    }
    Ok(
        ask::bot_thread_root(github, &ev.repo.full_name, thread.root_id)
            .await?
            .is_some(),
    )
}

/// Whether `text` mentions `@name` (as a whole name, any case).
fn mentions(text: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let text = text.to_ascii_lowercase();
    text.match_indices('@').any(|(at, _)| {
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        let rest = &text[at + 1..];
        before_ok
            && rest.starts_with(&name)
            && rest[name.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'))
    })
}

async fn commands(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    parsed: Vec<Result<Command, command::ParseError>>,
    status: &mut StatusComment,
) -> Result<(), JobError> {
    let repo = ev.repo.full_name.as_str();
    let author = ev.author.login.as_str();
    // Who is asking comes first: nothing is posted, not even a reaction,
    // before the role is known. A lookup that hits a rate limit defers the
    // job; only a definite answer from GitHub can deny.
    let role = status.github.role(repo, author).await?;
    let outsider = role < Role::Triage;
    let settings = ctx.repo_config(&status.github, &ev.repo).await?;
    let max = ctx.config.max_commands_per_comment;
    let skipped = parsed.len().saturating_sub(max);
    let (todo, fresh) = claim(ctx, job, ev, parsed, max).await?;
    if todo.is_empty() {
        tracing::debug!("every command of this comment already ran");
        return Ok(());
    }
    let batch = Batch {
        ctx,
        job,
        ev,
        author,
        role,
        outsider,
        settings: &settings,
    };
    if !admit(&batch, status, &todo, fresh).await? {
        return Ok(());
    }
    let mut sections: Vec<String> = Vec::new();
    let mut planned = false;
    if let (Some(problem), false) = (&settings.problem, outsider) {
        // Those who can fix the file are told, with what is wrong.
        sections.push(format!("⚠️ {problem}."));
    }
    for p in todo {
        let section = match p {
            Err(e) => format!("@{author} {e}"),
            Ok(cmd) => command_section(&batch, status, cmd, &sections, &mut planned).await?,
        };
        sections.push(section);
    }
    if skipped > 0 {
        sections.push(format!(
            "@{author} I run at most {max} commands from one comment, so I skipped the last {skipped}."
        ));
    }
    status.show(&sections.join(SECTION_BREAK)).await?;
    if planned {
        // The comment that shows this job's plan was written again (with the
        // sections after it): an approval checks it is as last written.
        if let Some(at) = status.shown_at() {
            ctx.store.set_plan_shown_by_job(job.id, at).await?;
        }
    }
    Ok(())
}

/// The commands of one comment being run: the job, the comment, and what
/// its author may do in the repository.
struct Batch<'a> {
    ctx: &'a JobContext,
    job: &'a LeasedJob,
    ev: &'a IssueComment,
    author: &'a str,
    role: Role,
    /// Someone who may run nothing here but help.
    outsider: bool,
    settings: &'a LoadedConfig,
}

/// Claim the first `max` commands of the comment for this job, so that an
/// edited comment runs only the commands it did not run before: the ones to
/// run, and how many of them were claimed for the first time.
async fn claim(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    parsed: Vec<Result<Command, command::ParseError>>,
    max: usize,
) -> Result<(Vec<Result<Command, command::ParseError>>, u32), JobError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut todo = Vec::new();
    let mut fresh = 0u32;
    for p in parsed.into_iter().take(max) {
        let base = match &p {
            Ok(c) => c.claim_key(),
            Err(e) => format!("error {e:?}"),
        };
        let n = seen.entry(base.clone()).or_default();
        *n += 1;
        match ctx
            .store
            .claim_command(ev.comment_id, &format!("{base} #{n}"), job.id)
            .await?
        {
            Claim::New => {
                fresh += 1;
                todo.push(p);
            }
            Claim::Again => todo.push(p),
            Claim::Taken => {}
        }
    }
    Ok((todo, fresh))
}

/// Whether the commands to do may run now: a sender refused everything is
/// told once per window, and the rate limits apply to the new commands,
/// which are then acknowledged with a reaction.
async fn admit(
    batch: &Batch<'_>,
    status: &mut StatusComment,
    todo: &[Result<Command, command::ParseError>],
    fresh: u32,
) -> Result<bool, JobError> {
    let Batch {
        ctx,
        job,
        ev,
        author,
        role,
        outsider,
        settings,
    } = *batch;
    // A comment whose every command needs more than the sender has: the
    // refusal is a notice, and a sender gets one notice per window.
    let all_refused = todo
        .iter()
        .all(|p| matches!(p, Ok(cmd) if role < settings.config.required_role(cmd)));
    if outsider || all_refused {
        // Someone who may run nothing here (an outsider may run nothing but
        // help): one reply per window, whatever they send, at no cost to the
        // installation's command budget.
        if fresh > 0
            && !ctx
                .limits
                .notify_refused(ev.installation_id, author)
                .await?
        {
            tracing::debug!(
                user = author,
                role = role.as_str(),
                "already told in this window"
            );
            let detail = serde_json::json!({ "role": role.as_str(), "why": "already told in the notice window" });
            ctx.audit(job, author, AuditAction::CommandRefused, detail)
                .await?;
            return Ok(false);
        }
    }
    if !outsider && fresh > 0 {
        match ctx.limits.check(ev.installation_id, author, fresh).await? {
            Verdict::Run => {}
            Verdict::TellSender => {
                status
                    .show(&format!(
                        "@{author} you are sending commands faster than I take them (at most {} a minute), so I skipped this one. Please try again in a minute.",
                        ctx.limits.sender_per_minute
                    ))
                    .await?;
                return Ok(false);
            }
            Verdict::Drop => return Ok(false),
        }
        match status.react(ev.comment_id, "eyes").await {
            Ok(()) => {}
            Err(OutputError::LeaseLost) => return Err(JobError::LeaseLost),
            // The reaction is a courtesy; the answer matters more.
            Err(e) => tracing::warn!(error = %e, "cannot react to the comment"),
        }
    }
    Ok(true)
}

/// The section one command adds to the status comment: a refusal (audited)
/// when the sender's role is short of what it needs, else what it answers.
async fn command_section(
    batch: &Batch<'_>,
    status: &mut StatusComment,
    cmd: Command,
    sections: &[String],
    planned: &mut bool,
) -> Result<String, JobError> {
    let Batch {
        ctx,
        job,
        author,
        role,
        settings,
        ..
    } = *batch;
    let needed = settings.config.required_role(&cmd);
    let has = role;
    if has < needed {
        tracing::info!(
            user = author,
            command = cmd.name(),
            has = has.as_str(),
            needed = needed.as_str(),
            "command refused"
        );
        let refused = super::Refused {
            command: cmd.name(),
            via: None,
            role: has,
            needed,
            plan: None,
        };
        ctx.audit_refused(job, author, refused).await?;
        Ok(authz::denial(author, &cmd, needed, has))
    } else {
        dispatch(batch, status, cmd, sections, planned).await
    }
}

/// Run one command the sender may run; the section it adds to the status
/// comment. `sections` are the ones before it; `planned` says whether this
/// comment already made a plan.
async fn dispatch(
    batch: &Batch<'_>,
    status: &mut StatusComment,
    cmd: Command,
    sections: &[String],
    planned: &mut bool,
) -> Result<String, JobError> {
    let Batch {
        ctx, job, ev, role, ..
    } = *batch;
    let repo = ev.repo.full_name.as_str();
    if ev.review.is_some()
        && matches!(
            cmd,
            Command::Plan { .. } | Command::Approve { .. } | Command::Apply { .. }
        )
    {
        // A plan is approved against the comment that shows it, on the
        // conversation tab where everyone sees it: never in a line thread.
        return Ok(format!(
            "`/agentic {}` works on the pull request's conversation tab, where plans are shown to everyone: please ask there.",
            cmd.name()
        ));
    }
    Ok(match cmd {
        Command::Help => command::help_text(),
        Command::Ask { question } => ask::answer(ctx, job, ev, &question, status, sections).await?,
        Command::Review if !ev.on_pull_request => {
            "`/agentic review` works on pull requests only.".to_string()
        }
        Command::Review => {
            status
                .show(&progress_text(sections, "⏳ Reviewing…"))
                .await?;
            super::review::run(
                ctx,
                job,
                super::review::Request {
                    installation: ev.installation_id,
                    repo,
                    repo_id: ev.repo.id,
                    number: ev.number,
                    head_sha: None,
                    trigger: super::review::Trigger::Command,
                },
            )
            .await?
            .describe()
        }
        Command::Describe => super::describe::describe(ctx, job, ev, status, sections).await?,
        Command::Plan { .. } if *planned => {
            // One job stores one plan: a second would show the
            // first one's steps under its own summary.
            "One plan per comment: I skipped this `/agentic plan`. Ask for it in a comment of its own.".to_string()
        }
        Command::Plan { request } => {
            *planned = true;
            super::plan::propose(ctx, job, &Asked::comment(ev), &request, status, sections).await?
        }
        Command::Approve { plan } => {
            super::plan::approve(ctx, job, &Asked::comment(ev), role, &status.github, plan).await?
        }
        Command::Apply { plan } => {
            super::plan::apply(ctx, job, &Asked::comment(ev), status, sections, plan).await?
        }
        Command::Cancel { plan } => {
            super::plan::cancel(ctx, job, &Asked::comment(ev), &status.github, plan).await?
        }
        Command::Status => super::plan::status_of(ctx, &Asked::comment(ev), &status.github).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_is_the_whole_name_in_prose_only() {
        let seen = |body: &str| mentions(&command::prose_text(body), "agentic-devops");
        assert!(seen("@agentic-devops why?"));
        assert!(seen("Hey @Agentic-DevOps, look."));
        assert!(!seen("@agentic-devops-evil why?"));
        assert!(!seen("mail me at bob@agentic-devops.example"));
        assert!(!seen("`@agentic-devops` is the bot"));
        assert!(!seen("> @agentic-devops said so"));
        assert!(!seen("```\n@agentic-devops\n```"));
    }
}
