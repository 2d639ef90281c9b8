//! `/agentic …` in an issue or pull-request comment.

use std::collections::HashMap;

use crate::authz;
use crate::command::{self, Command};
use crate::event::IssueComment;
use crate::github::Role;
use crate::limits::Verdict;
use crate::output::StatusComment;
use crate::store::LeasedJob;

use super::{ask, JobContext, JobError};

/// Separates the answers to several commands in one comment.
pub const SECTION_BREAK: &str = "\n\n---\n\n";

/// Run the commands of one comment, in order, into one status comment.
pub async fn run(ctx: &JobContext, job: &LeasedJob, ev: &IssueComment) -> Result<(), JobError> {
    if ev.author.is_bot() || ev.sender.is_bot() {
        return Ok(());
    }
    let parsed = command::parse_comment(&ev.body);
    if parsed.is_empty() {
        return Ok(());
    }
    let repo = ev.repo.full_name.as_str();
    let github = ctx.installation(ev.installation_id).await?;
    let mut status = StatusComment::new(
        github.clone(),
        ctx.store.clone(),
        ctx.redactor.clone(),
        repo,
        ev.number,
        job.id,
        ctx.config.progress_interval,
        job.attempts > 1,
    );
    match commands(ctx, job, ev, parsed, &mut status).await {
        Ok(()) => Ok(()),
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

async fn commands(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    parsed: Vec<Result<Command, command::ParseError>>,
    status: &mut StatusComment,
) -> Result<(), JobError> {
    let repo = ev.repo.full_name.as_str();
    let author = ev.author.login.as_str();
    if job.attempts == 1 {
        match ctx.limits.check(ev.installation_id, author) {
            Verdict::Run => {}
            Verdict::TellSender => {
                status
                    .show(&format!(
                        "@{author} you are sending commands faster than I take them (at most {} a minute), so I skipped this one. Please try again in a minute.",
                        ctx.limits.sender_per_minute
                    ))
                    .await?;
                return Ok(());
            }
            Verdict::Drop => return Ok(()),
        }
    }
    // An edited comment runs only the commands it did not run before.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut todo = Vec::new();
    for p in parsed {
        let base = match &p {
            Ok(c) => format!("{c:?}"),
            Err(e) => format!("error {e:?}"),
        };
        let n = seen.entry(base.clone()).or_default();
        *n += 1;
        if ctx
            .store
            .claim_command(ev.comment_id, &format!("{base} #{n}"), job.id)
            .await?
        {
            todo.push(p);
        }
    }
    if todo.is_empty() {
        tracing::debug!("every command of this comment already ran");
        return Ok(());
    }
    if let Err(e) = status
        .github
        .react_to_comment(repo, ev.comment_id, "eyes")
        .await
    {
        // The reaction is a courtesy; the answer matters more.
        tracing::warn!(error = %e, "cannot react to the comment");
    }
    let mut sections: Vec<String> = Vec::new();
    for p in todo {
        let section = match p {
            Err(e) => format!("@{author} {e}"),
            Ok(cmd) => {
                let needed = authz::required_role(&cmd);
                let has = if needed == Role::None {
                    Role::None
                } else {
                    status.github.role(repo, author).await?
                };
                if has < needed {
                    tracing::info!(
                        user = author,
                        command = cmd.name(),
                        has = has.as_str(),
                        needed = needed.as_str(),
                        "command refused"
                    );
                    ctx.store
                        .audit(crate::store::AuditEntry {
                            job_id: Some(job.id),
                            delivery_id: Some(job.delivery_id.clone()),
                            actor: Some(author.to_string()),
                            action: "command.refused".into(),
                            detail: Some(serde_json::json!({ "command": cmd.name(), "role": has.as_str(), "needed": needed.as_str() })),
                        })
                        .await?;
                    authz::denial(author, &cmd, needed, has)
                } else {
                    match cmd {
                        Command::Help => command::help_text(),
                        Command::Ask { question } => {
                            ask::answer(ctx, job, ev, &question, status, &sections).await?
                        }
                        other @ (Command::Review
                        | Command::Describe
                        | Command::Plan { .. }
                        | Command::Approve
                        | Command::Apply
                        | Command::Cancel
                        | Command::Status) => format!(
                            "`/agentic {}` is not available yet in this version of agentic.",
                            other.name()
                        ),
                    }
                }
            }
        };
        sections.push(section);
    }
    status.show(&sections.join(SECTION_BREAK)).await?;
    Ok(())
}
