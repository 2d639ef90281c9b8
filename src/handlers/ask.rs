//! `/agentic ask <question>`: a conversation with read-only tools.

use crate::agent::llm::{Llm, LlmError};
use crate::agent::tools::{Fence, Registry, Subject};
use crate::agent::{self, Budget, Outcome, Progress, Trace};
use crate::event::IssueComment;
use crate::github::{Access, GitHub, GitHubError};
use crate::output::StatusComment;
use crate::store::LeasedJob;

use super::progress::{progress_text, CommentProgress, WORKING};
use super::{JobContext, JobError};

/// What is asked about.
pub struct Question<'a> {
    pub repo: &'a str,
    pub number: u64,
    pub on_pull_request: bool,
    pub asked_by: &'a str,
    pub text: &'a str,
    /// AWS with the repository's scope (`None` without an `aws` section):
    /// its read tools are offered then.
    pub aws: Option<crate::aws::AwsAccess>,
    /// The repository's guidance (`guidelines::for_question`), wrapped in
    /// `fence`, which the conversation then uses for everything else.
    pub guidance: String,
    pub fence: Fence,
    /// Asked in a review thread: the code and the conversation it is in.
    pub thread: Option<ThreadContext>,
}

/// What a question asked on a line of a pull request's diff is about:
/// everything in it is other people's text, and reaches the model fenced.
#[derive(Debug, Clone, Default)]
pub struct ThreadContext {
    pub path: String,
    pub line: Option<u64>,
    /// The diff hunk GitHub shows with the comment.
    pub diff_hunk: String,
    /// The file's lines around `line` at the commit commented on, numbered.
    pub around: Option<String>,
    /// The thread's earlier messages, oldest first: (login, body).
    pub earlier: Vec<(String, String)>,
}

/// The first comment of review thread `root_id`, if this App's own bot
/// user wrote it (known by login: "any App's bot" is not enough) and it
/// is a thread's first, as GitHub says, never the payload; `None` for
/// anyone else's thread, or one whose first comment is gone.
pub async fn bot_thread_root(
    github: &GitHub,
    repo: &str,
    root_id: u64,
) -> Result<Option<crate::github::types::ReviewComment>, GitHubError> {
    let root = match github.review_comment(repo, root_id).await {
        Ok(root) => root,
        Err(e) if e.status() == Some(404) => return Ok(None),
        Err(e) => return Err(e),
    };
    let own = github.own().await;
    let ours = root.in_reply_to_id.is_none()
        && matches!(own, crate::github::Own::Login(_))
        && own.wrote(root.user.as_ref());
    Ok(ours.then_some(root))
}

/// A reply that says the finding it answers is not one ("this is
/// intentional", "false positive"): the finding is recorded as dismissed
/// on this pull request, at every severity, and the reply is answered
/// briefly, without the model. `None` when the thread's first comment is
/// not one of this App's findings (the reply is then a question).
async fn dismiss(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    thread: &crate::event::ReviewThread,
    github: &GitHub,
) -> Result<Option<String>, JobError> {
    let repo = ev.repo.full_name.as_str();
    let Some(root) = bot_thread_root(github, repo, thread.root_id).await? else {
        return Ok(None);
    };
    // The bot's own mark ends its comment; a mark the model wrote into the
    // finding's text before it is not the finding's.
    let Some(marked) = crate::review::posted_fingerprints([root.body.as_str()])
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    // Silencing a finding is a judgement on the change: it takes the write
    // role, and someone other than the pull request's author.
    let login = ev.author.login.as_str();
    let role = github.role(repo, login).await?;
    let author = github.pull_request(repo, ev.number).await?.user;
    let own_pull = author.is_some_and(|a| a.login.eq_ignore_ascii_case(login));
    if role < crate::domain::Role::Write || own_pull {
        return Ok(Some(format!(
            "@{login} a finding is dismissed only by someone with the write role who did not open this pull request; it stays, and I will answer questions about it."
        )));
    }
    // The line the finding is on ends the hunk GitHub shows with it.
    let line = thread
        .diff_hunk
        .lines()
        .last()
        .map(|l| l.get(1..).unwrap_or(""))
        .unwrap_or("");
    let fingerprints = crate::review::dismissed_fingerprints(&marked, &root.path, line);
    ctx.store
        .dismiss_findings(repo, ev.number, &fingerprints, login)
        .await?;
    let detail = serde_json::json!({
        "repo": repo, "number": ev.number, "thread": thread.root_id, "reply": ev.comment_id,
        "path": root.path, "fingerprints": fingerprints,
    });
    ctx.audit(
        job,
        login,
        crate::domain::AuditAction::FindingDismissed,
        detail,
    )
    .await?;
    Ok(Some(format!(
        "Noted, @{}: I will not raise this finding again on this pull request.",
        ev.author.login
    )))
}

/// Lines of the file shown on each side of the line a thread is on.
const AROUND_LINES: u64 = 20;
/// Most earlier messages of a thread shown, and most characters of each.
const THREAD_MESSAGES: usize = 20;
const THREAD_MESSAGE_CHARS: usize = 2_000;

impl ThreadContext {
    /// The context of review comment `ev` (which must be one): its hunk,
    /// the file around its line at its commit, and the thread before it.
    pub async fn of(
        github: &crate::github::GitHub,
        ev: &IssueComment,
        thread: &crate::event::ReviewThread,
    ) -> Result<ThreadContext, GitHubError> {
        let repo = ev.repo.full_name.as_str();
        // A removed line is in the base, not the commit: its hunk shows it.
        let around = match (thread.line, thread.commit_id.is_empty() || thread.left) {
            (Some(line), false) => match github
                .file(repo, &thread.path, Some(&thread.commit_id))
                .await
            {
                Ok(Some((text, _))) => Some(numbered_around(&text, line)),
                Ok(None) => None,
                // Too large or not a file: the hunk is still there.
                Err(GitHubError::Decode { .. }) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        let mut earlier: Vec<(String, String)> = github
            .review_comments(repo, ev.number)
            .await?
            .into_iter()
            .filter(|c| {
                (c.id == thread.root_id || c.in_reply_to_id == Some(thread.root_id))
                    && c.id != ev.comment_id
                    && c.id < ev.comment_id
            })
            .map(|c| {
                let who = c.user.map(|u| u.login).unwrap_or_default();
                let body: String = c.body.chars().take(THREAD_MESSAGE_CHARS).collect();
                (who, body)
            })
            .collect();
        if earlier.len() > THREAD_MESSAGES {
            earlier.drain(..earlier.len() - THREAD_MESSAGES);
        }
        Ok(ThreadContext {
            path: thread.path.clone(),
            line: thread.line,
            diff_hunk: thread.diff_hunk.clone(),
            around,
            earlier,
        })
    }

    /// The part of the model's first message that shows it, fenced.
    fn for_model(&self, fence: &crate::agent::tools::Fence) -> String {
        let at = match self.line {
            Some(line) => format!("{}, line {line}", self.path),
            None => format!(
                "{} (outdated: the line is no longer in the diff)",
                self.path
            ),
        };
        let mut m = format!(
            "\nThis was asked in a review thread on a line of the pull request's diff. The file and line, and the diff hunk the thread is on:\n{}\n",
            fence.wrap("the review thread's file and diff hunk", &format!("{at}\n\n{}", self.diff_hunk))
        );
        if let Some(around) = &self.around {
            m.push_str(&format!(
                "\nThe file around that line at the commit commented on (each line after its number and `|`):\n{}\n",
                fence.wrap("the file around the thread's line", around)
            ));
        }
        if !self.earlier.is_empty() {
            // One fence per message, its author first (as GitHub says it):
            // a message cannot pose as another's.
            m.push_str("\nThe thread so far, oldest first, each message with its author on its first line:\n");
            for (who, body) in &self.earlier {
                m.push_str(&fence.wrap(
                    "a message of the review thread",
                    &format!("@{who}:\n{body}"),
                ));
                m.push('\n');
            }
        }
        m
    }
}

/// The lines of `text` within [`AROUND_LINES`] of `line`, numbered.
fn numbered_around(text: &str, line: u64) -> String {
    let first = line.saturating_sub(AROUND_LINES).max(1);
    let last = line + AROUND_LINES;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l))
        .filter(|(n, _)| (first..=last).contains(n))
        .map(|(n, l)| format!("{n} | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why an answer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Llm(#[from] LlmError),
}

/// Ask the model, with the read tools of an issue or a pull request.
pub async fn ask(
    llm: &Llm,
    github: &GitHub,
    budget: Budget,
    q: &Question<'_>,
    trace: &Trace<'_>,
    progress: &mut dyn Progress,
) -> Result<Outcome, AskError> {
    let (registry, head_sha, what) = if q.on_pull_request {
        let pr = github.pull_request(q.repo, q.number).await?;
        (
            Registry::for_pull_request(),
            Some(pr.head.sha),
            "pull request",
        )
    } else {
        (Registry::for_issue(), None, "issue")
    };
    let registry = if q.aws.is_some() {
        registry.with(crate::aws::catalog::read_tools())
    } else {
        registry
    };
    let subject = Subject {
        github: github.clone(),
        repo: q.repo.to_string(),
        number: q.number,
        head_sha,
        fence: q.fence.clone(),
        aws: q.aws.clone(),
    };
    let thread = q
        .thread
        .as_ref()
        .map(|t| t.for_model(&subject.fence))
        .unwrap_or_default();
    let message = format!(
        "This is about {what} #{} in the repository {}.\n{}{thread}\n@{} asks:\n\n{}",
        q.number, q.repo, q.guidance, q.asked_by, q.text
    );
    let task = agent::Task {
        purpose: agent::Purpose::Answer,
        message,
        finish: None,
        plan: None,
    };
    Ok(agent::converse(llm, &registry, &subject, budget, task, trace, progress).await?)
}

/// The text posted for an outcome.
pub fn render(outcome: Outcome) -> String {
    match outcome {
        Outcome::Answer(a) if a.trim().is_empty() => "The model gave an empty answer.".to_string(),
        // Our own hidden markers mean something to the bot (a status
        // comment, a sticky comment): none comes from the model.
        // It read other people's text: it mentions nobody.
        Outcome::Answer(a) => crate::markdown::without_mentions(&crate::output::unmarked(&a)),
        // Questions have no finishing tool; say so rather than guess.
        Outcome::Submitted(_) => "The model handed in a structured result instead of an answer.".to_string(),
        Outcome::Stopped { reason } => format!(
            "⚠️ I stopped before finding an answer because {reason}. Try a narrower question, or ask an operator to raise the limit."
        ),
    }
}

/// Answer `/agentic ask` in a comment thread: show that we are working,
/// converse, and return the section to post. A model failure is retried
/// with the job while attempts remain, then reported honestly.
pub async fn answer(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &IssueComment,
    question: &str,
    status: &mut StatusComment,
    previous: &[String],
) -> Result<String, JobError> {
    if let Some(thread) = ev.review.as_deref().filter(|t| t.is_reply) {
        if crate::review::dismisses(question) {
            if let Some(said) = dismiss(ctx, job, ev, thread, &status.github).await? {
                return Ok(said);
            }
        }
    }
    let before = progress_text(previous, "");
    status.show(&format!("{before}{WORKING}")).await?;
    let settings = ctx.repo_config(&status.github, &ev.repo).await?;
    let scope = settings.config.aws.clone();
    let review = &settings.config.review;
    let guideline = ctx
        .guideline(&status.github, &ev.repo.full_name, &review.guideline_files)
        .await?;
    let fence = Fence::new();
    // What of the guidance the model is not given whole is said under the
    // answer, as a review says it in its summary.
    let guidance = crate::guidelines::for_question(guideline.as_deref(), review, &fence);
    let problems = guidance.problems;
    let thread = match &ev.review {
        Some(t) => Some(ThreadContext::of(&status.github, ev, t).await?),
        None => None,
    };
    let q = Question {
        thread,
        guidance: guidance.text,
        fence,
        repo: &ev.repo.full_name,
        number: ev.number,
        on_pull_request: ev.on_pull_request,
        asked_by: &ev.author.login,
        text: question,
        aws: match scope {
            // Reads too are held to the account the scope and its ceiling
            // name.
            Some(scope) => {
                let aws = ctx.aws().await;
                match crate::aws::scope::check_account(&aws, &scope).await {
                    Ok(()) => Some(crate::aws::AwsAccess { aws, scope }),
                    Err(refusal) => {
                        tracing::warn!(%refusal, "no AWS tool for this question");
                        None
                    }
                }
            }
            None => None,
        },
    };
    let trace = ctx.trace(job, Some(ev.author.login.clone()));
    let budget = Budget::from_config(&ctx.config);
    // The model's tools read with a token that cannot write.
    let github = ctx
        .repo_client(ev.installation_id, &ev.repo.full_name, Access::Read)
        .await?;
    let mut progress = CommentProgress {
        status,
        before: before.clone(),
    };
    match ask(&ctx.llm, &github, budget, &q, &trace, &mut progress).await {
        Ok(outcome) => Ok(problems
            .iter()
            .fold(render(outcome), |answer, p| format!("{answer}\n\n_{p}._"))),
        Err(AskError::GitHub(e)) => Err(e.into()),
        Err(AskError::Llm(e)) if e.is_transient() && !ctx.last_attempt(job) => {
            progress
                .status
                .show(&format!(
                    "{before}⚠️ The model did not answer ({e}); I will try again shortly."
                ))
                .await?;
            Err(JobError::Transient {
                reason: e.to_string(),
                retry_after: None,
            })
        }
        Err(AskError::Llm(e)) => {
            tracing::error!(error = %e, job_id = job.id, "no answer from the model");
            Ok(format!(
                "❌ I could not get an answer from the model: {e}. Reference: `job {} of delivery {}`.",
                job.id, job.delivery_id
            ))
        }
    }
}
