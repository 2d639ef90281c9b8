//! Failing CI, explained: when another App's or GitHub Actions' check run
//! fails on a pull request's head, read why (the job's log around its
//! first error, the check's own output and annotations), show it to the
//! model with the pull request's diff, and keep one comment per head that
//! names every failed check and what the model made of it.
//!
//! Each job waits for the head's other checks to settle (or for
//! `ci.settle_seconds`), and jobs on one pull request take turns, so the
//! first one explains every failure so far in one conversation, and later
//! ones add only what failed after it. What was explained is stored, so no
//! check goes to the model twice, and the comment is rendered from the
//! store.

use std::collections::HashSet;
use std::time::Duration;

use crate::agent::tools::{Fence, Registry, Subject};
use crate::agent::{self, Budget, Outcome, Purpose};
use crate::event::{CheckRun, FAILED_CONCLUSIONS};
use crate::github::types::{CheckRunInfo, PullRequest};
use crate::github::{Access, GitHub, GitHubError};
use crate::markdown::inline_code;
use crate::output::StickyComment;
use crate::store::{CiExplanation, FailedCheck, LeasedJob};

use super::{JobContext, JobError};

/// The slug of GitHub Actions' App: its check run ids are job ids.
pub const ACTIONS_SLUG: &str = "github-actions";
/// Most failed checks put before the model in one conversation; the rest
/// are named only.
const MAX_CHECKS: usize = 6;
/// How often a waiting job looks again at the head's checks.
const SETTLE_POLL: Duration = Duration::from_secs(30);
/// How long a job waits for an earlier one on the same pull request.
const TURN_WAIT: Duration = Duration::from_secs(10);
/// How long a job waits when the installation's command rate is used up.
const LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Most characters of a check's own title, summary and text, each.
const OUTPUT_CHARS: usize = 4_000;
/// Most annotations shown of one check.
const MAX_ANNOTATIONS: usize = 20;

/// The kind of the head's sticky comment (`output::StickyComment`).
pub fn comment_kind(head_sha: &str) -> String {
    format!("ci:{head_sha}")
}

/// Explain the failed check `ev` (and whatever else failed on its head).
pub async fn explain(ctx: &JobContext, job: &LeasedJob, ev: &CheckRun) -> Result<(), JobError> {
    let own_app = ctx.github.load_full().map(|app| app.app_id);
    if ev.app_id.is_some() && ev.app_id == own_app {
        tracing::debug!(name = %ev.name, "our own check run: nothing to explain");
        return Ok(());
    }
    let repo = ev.repo.full_name.as_str();
    // A fork's check runs name no pull request: the one reviewed at this
    // head, if any.
    let number = match ev.pull_requests.first() {
        Some(n) => Some(*n),
        None => ctx.store.review_number_at(repo, &ev.head_sha).await?,
    };
    let Some(number) = number else {
        tracing::info!(
            check_run = ev.check_run_id,
            "a failed check on no known pull request"
        );
        return Ok(());
    };
    let github = ctx
        .repo_client(ev.installation_id, repo, Access::Write)
        .await?;
    let pr = github.pull_request(repo, number).await?;
    if pr.state != "open" || pr.head.sha != ev.head_sha {
        tracing::info!(
            repo,
            number,
            "the pull request moved on from the failed head; not explained"
        );
        return Ok(());
    }
    let settings = ctx.repo_config(&github, &ev.repo).await?;
    let ci = &settings.config.ci;
    let by_bot = pr.user.as_ref().is_some_and(|u| u.is_bot());
    if !ci.explain || ci.ignores(&ev.name) || (by_bot && !ci.bots) {
        tracing::info!(repo, number, name = %ev.name, "CI explanation off for this check");
        return Ok(());
    }
    if ctx
        .store
        .earlier_job_open(&job.subject, &job.kind, job.id)
        .await?
    {
        return Err(JobError::Deferred {
            reason: "an earlier CI explanation on this pull request goes first".into(),
            retry_after: TURN_WAIT,
        });
    }
    let head = Head {
        ctx,
        job,
        github: &github,
        repo,
        number,
        sha: &ev.head_sha,
    };
    let runs = github.check_runs_at(repo, &ev.head_sha).await?;
    let counted = |r: &&CheckRunInfo| {
        let ours = own_app.is_some() && r.app.as_ref().map(|a| a.id) == own_app;
        !ours && !ci.ignores(&r.name)
    };
    let pending = runs
        .iter()
        .filter(counted)
        .filter(|r| r.status != "completed")
        .count();
    let mut failed: Vec<&CheckRunInfo> = runs
        .iter()
        .filter(counted)
        .filter(|r| {
            r.status == "completed"
                && r.conclusion
                    .as_deref()
                    .is_some_and(|c| FAILED_CONCLUSIONS.contains(&c))
        })
        .collect();
    // GitHub's list may not show the delivery's own run yet.
    let delivered = delivered_run(ev);
    if !failed.iter().any(|r| r.id == ev.check_run_id) {
        failed.push(&delivered);
    }
    let explained = ctx.store.ci_explanations(repo, &ev.head_sha).await?;
    if pending > 0 {
        let waited = since(ev.completed_at.as_deref());
        if waited < ci.settle() {
            if explained.is_empty() {
                head.show(&render(
                    &head,
                    &explained,
                    Some((&failed, pending, ci.settle())),
                ))
                .await?;
            }
            return Err(JobError::Deferred {
                reason: format!("{pending} other checks on the head have not finished"),
                retry_after: (ci.settle() - waited).min(SETTLE_POLL),
            });
        }
    }
    let done: HashSet<u64> = explained
        .iter()
        .flat_map(|e| e.checks.iter().map(|c| c.id))
        .collect();
    let new: Vec<&CheckRunInfo> = failed
        .into_iter()
        .filter(|r| !done.contains(&r.id))
        .collect();
    if new.is_empty() {
        if !explained.is_empty() {
            head.show(&render(&head, &explained, None)).await?;
        }
        return Ok(());
    }
    if !ctx
        .limits
        .installation_allows(ev.installation_id, 1)
        .await?
    {
        return Err(JobError::Deferred {
            reason: "the installation's command rate is used up".into(),
            retry_after: LIMIT_WAIT,
        });
    }
    let mut all = explained;
    head.show(&render(&head, &all, Some((&new, 0, Duration::ZERO))))
        .await?;
    let ignored = settings.config.ignored();
    let text = head.think(&pr, &new, ev.installation_id, &ignored).await?;
    // The head may have moved while the model thought: say nothing then.
    if github.pull_request(repo, number).await?.head.sha != ev.head_sha {
        tracing::info!(
            repo,
            number,
            "the pull request moved on while the failure was explained"
        );
        return Ok(());
    }
    let explanation = CiExplanation {
        checks: new
            .iter()
            .map(|r| FailedCheck {
                id: r.id,
                name: r.name.clone(),
                conclusion: r.conclusion.clone().unwrap_or_default(),
            })
            .collect(),
        explanation: text,
    };
    ctx.store
        .save_ci_explanation(repo, number, &ev.head_sha, &explanation, job.id)
        .await?;
    all.push(explanation);
    head.show(&render(&head, &all, None)).await?;
    Ok(())
}

/// The failed check run of the delivery, as the list would show it.
fn delivered_run(ev: &CheckRun) -> CheckRunInfo {
    CheckRunInfo {
        id: ev.check_run_id,
        name: ev.name.clone(),
        status: "completed".into(),
        conclusion: ev.conclusion.clone(),
        app: ev.app_id.map(|id| crate::github::types::CheckApp {
            id,
            slug: ev.app_slug.clone(),
        }),
        output: Default::default(),
    }
}

/// How long ago `at` (RFC 3339) was; zero when unknown or in the future.
fn since(at: Option<&str>) -> Duration {
    at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or(Duration::ZERO)
}

/// One pull request head whose failures are being explained.
struct Head<'a> {
    ctx: &'a JobContext,
    job: &'a LeasedJob,
    github: &'a GitHub,
    repo: &'a str,
    number: u64,
    sha: &'a str,
}

impl Head<'_> {
    async fn show(&self, text: &str) -> Result<u64, JobError> {
        let kind = comment_kind(self.sha);
        Ok(StickyComment {
            github: self.github,
            store: &self.ctx.store,
            redactor: &self.ctx.redactor,
            repo: self.repo,
            number: self.number,
            kind: &kind,
            lease: self.job,
        }
        .show(text)
        .await?)
    }

    /// The model's explanation of `failed` (or, once the job's attempts are
    /// spent, why there is none).
    async fn think(
        &self,
        pr: &PullRequest,
        failed: &[&CheckRunInfo],
        installation: u64,
        ignored: &globset::GlobSet,
    ) -> Result<String, JobError> {
        let ctx = self.ctx;
        let fence = Fence::new();
        let mut evidence = String::new();
        for run in failed.iter().take(MAX_CHECKS) {
            evidence.push_str(&self.evidence(run, installation, &fence).await?);
        }
        if failed.len() > MAX_CHECKS {
            let rest: Vec<&str> = failed[MAX_CHECKS..]
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            evidence.push_str(&format!(
                "\nThese checks failed too; their output is not shown:\n{}\n",
                fence.wrap("names of other failed checks", &rest.join("\n"))
            ));
        }
        let files: Vec<crate::review::ChangedFile> = self
            .github
            .pull_files(self.repo, self.number)
            .await?
            .into_iter()
            .map(crate::review::ChangedFile::from)
            .collect();
        let bpe = crate::review::tokenizer(&ctx.llm.model);
        let assembled =
            crate::review::assemble(&files, ignored, ctx.config.review_diff_tokens, bpe, &fence);
        let message = format!(
            "Checks failed on commit {} of pull request #{} in the repository {}. Its title:\n{}\n\
{evidence}\nThe pull request's diff:\n{}\n{}\n\
Explain the failure to the pull request's author, in at most about 250 words of Markdown, with these parts:\n\
1. **Likely cause**: what went wrong, quoting the decisive log line if there is one.\n\
2. **Where**: the file and line it points to, written exactly as `path/to/file.ext:123` in backticks.\n\
3. **Caused by this change?**: whether the pull request's change caused it, or it looks flaky or unrelated (infrastructure, a dependency, another branch), and why.\n\
4. **Suggested fix**.\n\
If several checks failed for one reason, explain it once. Say what you are unsure of.",
            self.sha,
            self.number,
            self.repo,
            fence.wrap("the pull request's title", &pr.title),
            if assembled.text.is_empty() {
                "(no file of the diff could be shown)".to_string()
            } else {
                assembled.text.clone()
            },
            crate::review::omitted_for_model(&assembled, &fence),
        );
        let reader = ctx
            .repo_client(installation, self.repo, Access::Read)
            .await?;
        let subject = Subject {
            github: reader,
            repo: self.repo.to_string(),
            number: self.number,
            head_sha: Some(self.sha.to_string()),
            fence,
            aws: None,
        };
        let task = agent::Task {
            purpose: Purpose::ExplainCi,
            message,
            finish: None,
            plan: None,
        };
        let trace = ctx.trace(self.job, None);
        let mut quiet = Quiet;
        let outcome = agent::converse(
            &ctx.llm,
            &Registry::for_pull_request(),
            &subject,
            Budget::for_review(&ctx.config),
            task,
            &trace,
            &mut quiet,
        )
        .await;
        let text = match outcome {
            Ok(Outcome::Answer(a)) if !a.trim().is_empty() => {
                let web = &ctx.config.github_web_url;
                link_locations(
                    &super::ask::render(Outcome::Answer(a)),
                    web,
                    self.repo,
                    self.sha,
                )
            }
            Ok(other) => super::ask::render(other),
            Err(e) if e.is_transient() && !ctx.last_attempt(self.job) => {
                return Err(JobError::Transient {
                    reason: e.to_string(),
                    retry_after: None,
                })
            }
            Err(e) => {
                tracing::error!(error = %e, job_id = self.job.id, "no CI explanation from the model");
                format!(
                    "❌ I could not get an explanation from the model: {e}. Reference: `job {} of delivery {}`.",
                    self.job.id, self.job.delivery_id
                )
            }
        };
        Ok(text)
    }

    /// A client whose token reads Actions' logs and nothing else; GitHub
    /// refuses it where the installation has not granted `actions: read`.
    async fn logs_client(&self, installation: u64) -> Result<GitHub, GitHubError> {
        let app = self
            .ctx
            .github
            .load_full()
            .ok_or_else(|| GitHubError::Local("no GitHub App is configured".into()))?;
        app.client(crate::github::TokenScope {
            installation,
            repo: Some(self.repo.to_string()),
            access: Access::ActionsLogs,
        })
        .await
    }

    /// What check `run` reported, for the model, fenced: an Actions job's
    /// log around its first error and its end; another App's own title,
    /// summary and text; the annotations of both. Redacted.
    async fn evidence(
        &self,
        run: &CheckRunInfo,
        installation: u64,
        fence: &Fence,
    ) -> Result<String, JobError> {
        let ctx = self.ctx;
        let redact = |s: &str| ctx.redactor.redact(s).into_owned();
        let conclusion = run.conclusion.as_deref().unwrap_or("failure");
        let mut out = format!(
            "\nA check that ended `{conclusion}`, its name:\n{}\n",
            fence.wrap("the check's name", &run.name)
        );
        let slug = run.app.as_ref().and_then(|a| a.slug.as_deref());
        if slug == Some(ACTIONS_SLUG) {
            let log = match self.logs_client(installation).await {
                Ok(logs) => logs.job_log(self.repo, run.id, &ctx.redactor).await,
                Err(e) => Err(e),
            };
            match log {
                Ok(excerpt) => {
                    let at = excerpt
                        .first_error
                        .map(|n| format!(", the first line that looks like an error is line {n}"))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "Its job's log has {} lines{at}; the lines around that and its last lines:\n{}\n",
                        excerpt.lines,
                        fence.wrap("the job's log", &excerpt.text)
                    ));
                }
                Err(e) if e.is_rate_limit() => return Err(e.into()),
                Err(e) => out.push_str(&format!(
                    "Its job's log could not be read ({}).\n",
                    why_no_log(&e)
                )),
            }
        } else {
            let o = &run.output;
            let mut own = String::new();
            for (what, text) in [
                ("title", &o.title),
                ("summary", &o.summary),
                ("text", &o.text),
            ] {
                if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                    let text: String = text.chars().take(OUTPUT_CHARS).collect();
                    own.push_str(&format!("{what}:\n{}\n", redact(&text)));
                }
            }
            if own.is_empty() {
                out.push_str("It reported no output of its own.\n");
            } else {
                out.push_str(&format!(
                    "What it reported:\n{}\n",
                    fence.wrap("the check's own output", &own)
                ));
            }
        }
        let annotations = match self.github.check_run_annotations(self.repo, run.id).await {
            Ok(a) => a,
            Err(e) if e.is_rate_limit() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a check run's annotations");
                Vec::new()
            }
        };
        if !annotations.is_empty() {
            let lines: Vec<String> = annotations
                .iter()
                .take(MAX_ANNOTATIONS)
                .map(|a| {
                    let message: String = a.message.chars().take(500).collect();
                    format!(
                        "{}:{} [{}] {}{}",
                        a.path,
                        a.start_line,
                        a.annotation_level.as_deref().unwrap_or("failure"),
                        a.title
                            .as_deref()
                            .map(|t| format!("{t}: "))
                            .unwrap_or_default(),
                        message
                    )
                })
                .collect();
            out.push_str(&format!(
                "Its annotations:\n{}\n",
                fence.wrap("the check's annotations", &redact(&lines.join("\n")))
            ));
        }
        Ok(out)
    }
}

/// Why a job's log could not be read, for the model and for people.
fn why_no_log(e: &GitHubError) -> String {
    match e.status() {
        Some(403) | Some(422) => "the installation has not granted agentic `actions: read`".into(),
        Some(404) | Some(410) => "it has expired or was deleted".into(),
        _ => e.to_string(),
    }
}

/// A conversation nobody watches step by step: the comment says it is
/// being explained.
struct Quiet;

impl agent::Progress for Quiet {
    fn step(
        &mut self,
        _: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// The head's comment: every failed check with a link, and each
/// explanation; `working` while checks are being explained or waited for
/// (the checks, how many others are still running, the longest wait).
fn render(
    head: &Head<'_>,
    explained: &[CiExplanation],
    working: Option<(&[&CheckRunInfo], usize, Duration)>,
) -> String {
    let web = &head.ctx.config.github_web_url;
    let link =
        |id: u64, name: &str| format!("[{}]({web}/{}/runs/{id})", inline_code(name), head.repo);
    let mut out = format!(
        "### ❌ Checks failed on {}\n\n",
        inline_code(&head.sha[..head.sha.len().min(12)])
    );
    for e in explained {
        let names: Vec<String> = e.checks.iter().map(|c| link(c.id, &c.name)).collect();
        out.push_str(&format!(
            "**{}**\n\n{}\n\n",
            names.join(", "),
            e.explanation
        ));
    }
    if let Some((checks, pending, settle)) = working {
        let names: Vec<String> = checks.iter().map(|c| link(c.id, &c.name)).collect();
        if pending > 0 {
            out.push_str(&format!(
                "**{}**\n\n⏳ Failed. {pending} other check{} still running; I will explain once they finish, or in {} minutes at most.\n\n",
                names.join(", "),
                if pending == 1 { " is" } else { "s are" },
                settle.as_secs().div_ceil(60)
            ));
        } else {
            out.push_str(&format!(
                "**{}**\n\n🔍 Reading the logs and the diff to explain this…\n\n",
                names.join(", ")
            ));
        }
    }
    out.push_str(
        "<sub>agentic explains failed checks from their logs and output and this pull request's diff; this comment is edited as more checks fail on this commit.</sub>",
    );
    out
}

/// `text` with every `path:line` in an inline code span turned into a link
/// to that line at `sha`. Only plain paths are linked: no spaces, no `..`,
/// nothing that would end the link.
pub fn link_locations(text: &str, web: &str, repo: &str, sha: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"`([A-Za-z0-9_./-]{1,300}\.[A-Za-z0-9_]{1,12}):([0-9]{1,7})`")
            .expect("valid regex")
    });
    re.replace_all(text, |c: &regex::Captures| {
        let (path, line) = (&c[1], &c[2]);
        if path.split('/').any(|p| p == ".." || p.is_empty()) || path.starts_with('/') {
            return c[0].to_string();
        }
        format!("[`{path}:{line}`]({web}/{repo}/blob/{sha}/{path}#L{line})")
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_in_code_spans_become_links_and_nothing_else_does() {
        let out = link_locations(
            "See `src/lib.rs:42` and `../etc/passwd:1` and src/x.rs:3 and `a b.rs:1`.",
            "https://github.com",
            "o/r",
            "abc",
        );
        assert_eq!(
            out,
            "See [`src/lib.rs:42`](https://github.com/o/r/blob/abc/src/lib.rs#L42) and `../etc/passwd:1` and src/x.rs:3 and `a b.rs:1`."
        );
    }

    #[test]
    fn a_check_is_waited_for_from_when_it_completed() {
        assert_eq!(since(None), Duration::ZERO);
        assert_eq!(since(Some("not a time")), Duration::ZERO);
        assert_eq!(since(Some("2999-01-01T00:00:00Z")), Duration::ZERO);
        assert!(since(Some("2020-01-01T00:00:00Z")) > Duration::from_secs(3600));
    }
}
