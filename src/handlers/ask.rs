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
    /// The repository's guidelines file and its review settings (their
    /// path instructions), from its default branch.
    pub guideline: Option<&'a crate::guidelines::Guideline>,
    pub review: &'a crate::repo_config::ReviewConfig,
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
        fence: crate::agent::tools::Fence::new(),
        aws: q.aws.clone(),
    };
    let guidance = crate::guidelines::for_question(q.guideline, q.review, &subject.fence);
    let message = format!(
        "This is about {what} #{} in the repository {}.\n{}\n@{} asks:\n\n{}",
        q.number, q.repo, guidance.text, q.asked_by, q.text
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
        Outcome::Answer(a) => a,
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
    let before = progress_text(previous, "");
    status.show(&format!("{before}{WORKING}")).await?;
    let settings = ctx.repo_config(&status.github, &ev.repo).await?;
    let scope = settings.config.aws.clone();
    let review = &settings.config.review;
    let guideline = ctx
        .guideline(&status.github, &ev.repo.full_name, &review.guideline_files)
        .await?;
    let q = Question {
        guideline: guideline.as_deref(),
        review,
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
    // What of the guidance the model was not given whole is said under
    // the answer, as a review says it in its summary.
    let problems = crate::guidelines::for_question(q.guideline, q.review, &Fence::new()).problems;
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
