//! `/agentic describe`: the model writes a summary of the change into a
//! marked section of the pull request's body. The author's text outside
//! the markers is never touched; a second run replaces the section.

use crate::agent::tools::{Fence, Registry, Subject};
use crate::agent::{self, Budget, Outcome, Purpose, Task};
use crate::domain::AuditAction;
use crate::event::IssueComment;
use crate::github::types::PullRequest;
use crate::github::{Access, GitHub};
use crate::output::StatusComment;
use crate::review::{self, Assembled, ChangedFile};
use crate::store::LeasedJob;

use super::{JobContext, JobError};

/// The markers around the bot's section of a pull request's body.
pub const START: &str = "<!-- agentic:describe:start -->";
pub const END: &str = "<!-- agentic:describe:end -->";
/// GitHub's limit on a pull request's body.
const MAX_BODY_CHARS: usize = 65_536;

/// `body` with its agentic section set to `section`: replaced where the
/// markers are, else appended after the author's text.
pub fn with_section(body: &str, section: &str) -> String {
    let block = format!("{START}\n{}\n{END}", section.trim());
    if let Some(start) = body.find(START) {
        if let Some(end_rel) = body[start..].find(END) {
            let end = start + end_rel + END.len();
            return format!("{}{block}{}", &body[..start], &body[end..]);
        }
    }
    let author = body.trim_end();
    if author.is_empty() {
        block
    } else {
        format!("{author}\n\n{block}")
    }
}

/// The model's description, made safe to put between the markers: the
/// markers themselves cannot appear inside it.
fn clean(text: &str) -> String {
    let mut text = text.to_string();
    // Until nothing is left to take: taking one marker out must not join
    // the pieces around it into another.
    loop {
        let next = crate::output::unmarked(&text.replace(START, "").replace(END, ""));
        if next == text {
            return text.trim().to_string();
        }
        text = next;
    }
}

/// Describe the pull request of `ev`; the reply for the thread.
pub async fn describe(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    status: &mut StatusComment,
    previous: &[String],
) -> Result<String, JobError> {
    if !ev.on_pull_request {
        return Ok("`/agentic describe` works on pull requests only.".into());
    }
    let repo = ev.repo.full_name.as_str();
    let settings = ctx.repo_config(&status.github, &ev.repo).await?;
    if !settings.config.describe.enabled {
        return Ok(format!(
            "`/agentic describe` is turned off in this repository (`describe.enabled` in `{}`).",
            crate::repo_config::PATH
        ));
    }
    let before = super::progress::progress_text(previous, "");
    status
        .show(&format!("{before}{}", super::progress::WORKING))
        .await?;
    let reader = ctx
        .repo_client(ev.installation_id, repo, Access::Read)
        .await?;
    let pr = reader.pull_request(repo, ev.number).await?;
    let files: Vec<ChangedFile> = reader
        .pull_files(repo, ev.number)
        .await?
        .into_iter()
        .map(ChangedFile::from)
        .collect();
    let fence = Fence::new();
    let assembled = review::assemble(
        &files,
        &settings.config.ignored(),
        ctx.config.review_diff_tokens,
        review::tokenizer(&ctx.llm.model),
        &fence,
    );
    let message = prompt(repo, &pr, &assembled, &fence);
    let subject = Subject {
        github: reader.clone(),
        repo: repo.to_string(),
        number: pr.number,
        head_sha: Some(pr.head.sha.clone()),
        fence,
        aws: None,
    };
    let trace = ctx.trace(job, Some(ev.author.login.clone()));
    let budget = Budget::for_review(&ctx.config);
    let task = Task {
        purpose: Purpose::Describe,
        message,
        finish: None,
        plan: None,
    };
    let mut progress = super::progress::CommentProgress { status, before };
    let outcome = match agent::converse(
        &ctx.llm,
        &Registry::for_pull_request(),
        &subject,
        budget,
        task,
        &trace,
        &mut progress,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return ctx.model_failed(job, &e, "a description"),
    };
    let text = match outcome {
        Outcome::Answer(a) if !a.trim().is_empty() => clean(&ctx.redactor.redact(&a)),
        Outcome::Answer(_) | Outcome::Submitted(_) => {
            return Ok("The model gave no description; the pull request's body is unchanged.".into())
        }
        Outcome::Stopped { reason } => {
            return Ok(format!(
                "⚠️ I stopped before finishing the description because {reason}; the pull request's body is unchanged."
            ))
        }
    };
    let mut section = format!("## Summary by agentic\n\n{text}");
    if !assembled.omitted.is_empty() {
        section.push_str(&format!("\n\n{}", review::omissions(&assembled.omitted)));
    }
    let status = progress.status;
    write_section(ctx, job, ev, &status.github, &section, &text).await
}

/// The model's first message: what the author wrote about the pull
/// request, and its diff, each fenced.
fn prompt(repo: &str, pr: &PullRequest, assembled: &Assembled, fence: &Fence) -> String {
    let about = format!(
        "title: {}\nbranches: {} into {}\n\n{}",
        pr.title,
        pr.head.name,
        pr.base.name,
        pr.body.as_deref().unwrap_or("")
    );
    let mut message = format!(
        "Write the description of pull request #{} in {repo} (commit {}).\n\nWhat its author wrote:\n{}\n",
        pr.number,
        pr.head.sha,
        fence.wrap("pull request title, branches and description", &about)
    );
    message.push_str(&review::omitted_for_model(assembled, fence));
    message.push_str(&format!("\nThe diff:\n{}", assembled.text));
    message
}

/// Put `section` into the pull request's body, read again just before
/// writing, and audit it; the reply for the thread. `text` is the
/// description the model wrote.
async fn write_section(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    github: &GitHub,
    section: &str,
    text: &str,
) -> Result<String, JobError> {
    let repo = ev.repo.full_name.as_str();
    // Read the body again just before writing: the author may have edited
    // it while the model worked.
    let current = github.pull_request(repo, ev.number).await?;
    let body = with_section(current.body.as_deref().unwrap_or(""), section);
    if body.chars().count() > MAX_BODY_CHARS {
        return Ok(format!(
            "The description would make the pull request's body longer than GitHub's {MAX_BODY_CHARS} characters; the body is unchanged."
        ));
    }
    ctx.fence(job).await?;
    github.update_pull_body(repo, ev.number, &body).await?;
    ctx.audit(
        job,
        &ev.author.login,
        AuditAction::DescribeUpdated,
        serde_json::json!({ "repo": repo, "number": ev.number, "chars": text.chars().count() }),
    )
    .await?;
    Ok("📝 I updated the summary in this pull request's description (between agentic's markers; the rest of the description is untouched).".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_and_the_authors_text_kept() {
        let first = with_section("Fixes the flaky test.\n", "It retries.");
        assert_eq!(
            first,
            format!("Fixes the flaky test.\n\n{START}\nIt retries.\n{END}")
        );
        let edited = format!("{first}\n\nAuthor's note after.");
        let second = with_section(&edited, "It retries twice.");
        assert_eq!(
            second,
            format!("Fixes the flaky test.\n\n{START}\nIt retries twice.\n{END}\n\nAuthor's note after.")
        );
        assert_eq!(with_section("", "x"), format!("{START}\nx\n{END}"));
    }

    #[test]
    fn the_model_cannot_write_the_markers() {
        let sneaky = format!("a {END} b {START} c <!-- agentic:job=1 -->");
        let c = clean(&sneaky);
        assert!(
            !c.contains(START) && !c.contains(END) && !c.contains("agentic:"),
            "{c}"
        );
    }
}
