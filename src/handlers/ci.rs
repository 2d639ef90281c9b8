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
use crate::markdown::{inert_prose, inline_code};
use crate::output::StickyComment;
use crate::repo_config::CiConfig;
use crate::store::{now_ms, CiExplanation, FailedCheck, LeasedJob};

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
/// Most conversations about one head (re-runs and new failures alike).
const MAX_EXPLANATIONS_PER_HEAD: usize = 5;
/// How long a job waits when the installation's command rate is used up.
const LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Most characters of one explanation, and of a check's name, as shown:
/// five explanations and their checks stay within one comment.
const MAX_EXPLANATION_CHARS: usize = 8_000;
const MAX_NAME_CHARS: usize = 200;
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
    // Before anything is asked of GitHub: waiting costs one query.
    match turn(ctx, job, ev).await? {
        Turn::Go => {}
        // It may well explain this one too (it lists the head's checks
        // when it runs), which this job then finds stored; but it may
        // also end without listing them.
        Turn::After => {
            return Err(JobError::Deferred {
                reason: "an earlier CI explanation of this head is waiting".into(),
                retry_after: TURN_WAIT,
            })
        }
        Turn::Wait => {
            return Err(JobError::Deferred {
                reason: "an earlier CI explanation of this head goes first".into(),
                retry_after: TURN_WAIT,
            })
        }
    }
    let explained = ctx.store.ci_explanations(repo, &ev.head_sha).await?;
    if explained
        .iter()
        .any(|e| e.checks.iter().any(|c| c.id == ev.check_run_id))
    {
        return Ok(());
    }
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
    let head = Head {
        ctx,
        job,
        github: &github,
        repo,
        number,
        sha: &ev.head_sha,
    };
    let pr = github.pull_request(repo, number).await?;
    if pr.state != "open" || pr.head.sha != ev.head_sha {
        return head.moved_on(&explained, &pr).await;
    }
    let settings = ctx.repo_config(&github, &ev.repo).await?;
    let ci = &settings.config.ci;
    let by_bot = pr.user.as_ref().is_some_and(|u| u.is_bot());
    if !ci.explain || ci.ignores(&ev.name) || (by_bot && !ci.bots) {
        tracing::info!(repo, number, name = %ev.name, "CI explanation off for this check");
        return Ok(());
    }
    let runs = github.check_runs_at(repo, &ev.head_sha).await?;
    let checks = Checks::of(&runs, ev, own_app, ci);
    let waited = Duration::from_millis(now_ms().saturating_sub(job.created_at).max(0) as u64);
    if checks.pending > 0 && waited < ci.settle() {
        let waiting = checks.unexplained(&explained);
        let state = State::Waiting(&waiting, checks.pending, ci.settle());
        head.show(&render(&head, &explained, state)).await?;
        return Err(JobError::Deferred {
            reason: format!(
                "{} other checks on the head have not finished",
                checks.pending
            ),
            retry_after: (ci.settle() - waited).min(SETTLE_POLL),
        });
    }
    let mut new = checks.unexplained(&explained);
    if new.is_empty() || explained.len() >= MAX_EXPLANATIONS_PER_HEAD {
        if new.is_empty() {
            tracing::info!(repo, number, "every failed check of this head is explained");
        } else {
            tracing::warn!(repo, number, "this head has had its most explanations");
        }
        return head.settled(&explained).await;
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
    // What the model is not shown is left for the next turn, not marked
    // explained.
    new.truncate(MAX_CHECKS);
    let all = explained;
    head.show(&render(&head, &all, State::Working(&new)))
        .await?;
    let ignored = settings.config.ignored();
    let text = head.think(&pr, &new, ev.installation_id, &ignored).await?;
    // The head may have moved while the model thought: say nothing of it.
    let now = github.pull_request(repo, number).await?;
    if now.state != "open" || now.head.sha != ev.head_sha {
        return head.moved_on(&all, &now).await;
    }
    head.record(&new, text, all).await
}

/// Whether this job may explain its head now.
enum Turn {
    Go,
    /// An earlier job of the same head is queued (waiting for the head's
    /// checks to settle, or for its own turn).
    After,
    /// An earlier job of the same head is running: its comment is not
    /// ours to write at the same time.
    Wait,
}

/// Jobs of one head take turns, oldest first; jobs of other heads (an
/// older push, which finds the head moved on) do not hold this one up.
async fn turn(ctx: &JobContext, job: &LeasedJob, ev: &CheckRun) -> Result<Turn, JobError> {
    let earlier = ctx
        .store
        .earlier_open_jobs(&job.subject, &job.kind, job.id)
        .await?;
    let mut turn = Turn::Go;
    for (running, payload) in earlier {
        let same_head = match serde_json::from_str::<crate::event::Event>(&payload) {
            Ok(crate::event::Event::CheckRun(other)) => {
                other.head_sha == ev.head_sha && other.repo.id == ev.repo.id
            }
            _ => false,
        };
        if same_head && running {
            return Ok(Turn::Wait);
        }
        if same_head {
            turn = Turn::After;
        }
    }
    Ok(turn)
}

/// The head's check runs that count: every App's but ours and those
/// `ci.ignore` names.
struct Checks {
    /// Not finished yet.
    pending: usize,
    /// Failed, the latest run of each name.
    failed: Vec<CheckRunInfo>,
}

impl Checks {
    fn of(runs: &[CheckRunInfo], ev: &CheckRun, own_app: Option<u64>, ci: &CiConfig) -> Checks {
        let counted: Vec<&CheckRunInfo> = runs
            .iter()
            .filter(|r| {
                let ours = own_app.is_some() && r.app.as_ref().map(|a| a.id) == own_app;
                !ours && !ci.ignores(&r.name)
            })
            .collect();
        let pending = counted.iter().filter(|r| r.status != "completed").count();
        let mut failed: Vec<CheckRunInfo> = counted
            .iter()
            .filter(|r| {
                r.status == "completed"
                    && r.conclusion
                        .as_deref()
                        .is_some_and(|c| FAILED_CONCLUSIONS.contains(&c))
            })
            .map(|r| (*r).clone())
            .collect();
        // GitHub's list may not show the delivery's own run yet; when it
        // shows a newer run of the same check (a re-run), that one counts.
        let listed = runs.iter().any(|r| {
            r.id == ev.check_run_id
                || (r.name == ev.name && r.app.as_ref().map(|a| a.id) == ev.app_id)
        });
        if !listed {
            failed.push(delivered_run(ev));
        }
        Checks { pending, failed }
    }

    /// The failed checks no explanation covers: by id, and by App and
    /// name (a re-run that fails again is not explained again; another
    /// App's check of the same name is another check).
    fn unexplained(&self, explained: &[CiExplanation]) -> Vec<CheckRunInfo> {
        let ids: HashSet<u64> = explained
            .iter()
            .flat_map(|e| e.checks.iter().map(|c| c.id))
            .collect();
        let names: HashSet<(Option<u64>, &str)> = explained
            .iter()
            .flat_map(|e| e.checks.iter().map(|c| (c.app, c.name.as_str())))
            .collect();
        self.failed
            .iter()
            .filter(|r| {
                let app = r.app.as_ref().map(|a| a.id);
                !ids.contains(&r.id) && !names.contains(&(app, r.name.as_str()))
            })
            .cloned()
            .collect()
    }
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
    }
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
    /// Nothing new to explain: the comment shows what was explained, with
    /// no wait or work in progress left on it.
    async fn settled(&self, explained: &[CiExplanation]) -> Result<(), JobError> {
        if self.has_comment().await? {
            self.show(&render(self, explained, State::Done)).await?;
        }
        Ok(())
    }

    /// The pull request moved on from this head (or closed): its comment,
    /// if it has one, says so instead of promising an explanation.
    async fn moved_on(
        &self,
        explained: &[CiExplanation],
        pr: &PullRequest,
    ) -> Result<(), JobError> {
        tracing::info!(
            repo = self.repo,
            number = self.number,
            "the pull request moved on from the failed head; not explained"
        );
        if self.has_comment().await? {
            let now = (pr.state == "open").then_some(pr.head.sha.as_str());
            self.show(&render(self, explained, State::MovedOn(now)))
                .await?;
        }
        Ok(())
    }

    /// Store what the model said of `new`, and show it after what was
    /// explained before (`all`).
    async fn record(
        &self,
        new: &[CheckRunInfo],
        text: String,
        mut all: Vec<CiExplanation>,
    ) -> Result<(), JobError> {
        let explanation = CiExplanation {
            checks: new
                .iter()
                .map(|r| FailedCheck {
                    id: r.id,
                    app: r.app.as_ref().map(|a| a.id),
                    name: r.name.clone(),
                    conclusion: r.conclusion.clone().unwrap_or_default(),
                })
                .collect(),
            explanation: text,
        };
        self.ctx
            .store
            .save_ci_explanation(self.repo, self.number, self.sha, &explanation, self.job.id)
            .await?;
        all.push(explanation);
        self.show(&render(self, &all, State::Done)).await?;
        Ok(())
    }

    async fn has_comment(&self) -> Result<bool, JobError> {
        Ok(self
            .ctx
            .store
            .pull_comment(self.repo, self.number, &comment_kind(self.sha))
            .await?
            .is_some())
    }

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
        failed: &[CheckRunInfo],
        installation: u64,
        ignored: &globset::GlobSet,
    ) -> Result<String, JobError> {
        let ctx = self.ctx;
        let fence = Fence::new();
        let mut evidence = String::new();
        for run in failed {
            evidence.push_str(&self.evidence(run, installation, &fence).await?);
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
            // Its words come from text an author's code printed: shown
            // inert, and the only links are the ones made here.
            Ok(Outcome::Answer(a)) if !a.trim().is_empty() => {
                let web = &ctx.config.github_web_url;
                // Redacted first: a secret taken out later could take
                // the structure around it along.
                let a = cut_at_line(&ctx.redactor.redact(&a), MAX_EXPLANATION_CHARS);
                inert_prose(&a, &|code| location_link(code, web, self.repo, self.sha))
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
                    "❌ I could not get an explanation from the model: {}. Reference: `job {} of delivery {}`.",
                    crate::markdown::escape_line(&e.to_string()),
                    self.job.id,
                    self.job.delivery_id
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
            let o = match self.github.check_run_output(self.repo, run.id).await {
                Ok(o) => o,
                Err(e) if e.is_rate_limit() => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a check run's output");
                    Default::default()
                }
            };
            let mut own = String::new();
            for (what, text) in [
                ("title", &o.title),
                ("summary", &o.summary),
                ("text", &o.text),
            ] {
                if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
                    // Redacted whole, then cut: a cut secret is not found.
                    let text: String = redact(text).chars().take(OUTPUT_CHARS).collect();
                    own.push_str(&format!("{what}:\n{text}\n"));
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
                    let message: String = redact(&a.message).chars().take(500).collect();
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

/// Where the head's explanation stands, besides what was explained.
enum State<'a> {
    /// Nothing in progress.
    Done,
    /// These failed checks wait for this many others, this long at most.
    Waiting(&'a [CheckRunInfo], usize, Duration),
    /// These are being explained.
    Working(&'a [CheckRunInfo]),
    /// The pull request moved on to this head (`None`: it was closed).
    MovedOn(Option<&'a str>),
}

/// The head's comment: every failed check with a link, each explanation,
/// and where things stand.
fn render(head: &Head<'_>, explained: &[CiExplanation], state: State<'_>) -> String {
    let web = &head.ctx.config.github_web_url;
    let link = |id: u64, name: &str| {
        let name: String = name.chars().take(MAX_NAME_CHARS).collect();
        format!("[{}]({web}/{}/runs/{id})", inline_code(&name), head.repo)
    };
    let names = |checks: &[CheckRunInfo]| {
        checks
            .iter()
            .map(|c| link(c.id, &c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "### ❌ Checks failed on {}\n\n",
        inline_code(&head.sha[..head.sha.len().min(12)])
    );
    for e in explained {
        let named: Vec<String> = e.checks.iter().map(|c| link(c.id, &c.name)).collect();
        out.push_str(&format!(
            "**{}**\n\n{}\n\n",
            named.join(", "),
            e.explanation
        ));
    }
    match state {
        State::Done => {}
        State::Waiting(checks, pending, settle) => out.push_str(&format!(
            "**{}**\n\n⏳ Failed. {pending} other check{} still running; I will explain once they finish, or in {} minutes at most.\n\n",
            names(checks),
            if pending == 1 { " is" } else { "s are" },
            settle.as_secs().div_ceil(60)
        )),
        State::Working(checks) => out.push_str(&format!(
            "**{}**\n\n🔍 Reading the logs and the diff to explain this…\n\n",
            names(checks)
        )),
        State::MovedOn(Some(now)) => out.push_str(&format!(
            "The pull request has moved on to {}: failures of this commit are not explained any more.\n\n",
            inline_code(&now[..now.len().min(12)])
        )),
        State::MovedOn(None) => out.push_str(
            "The pull request is closed: failures of this commit are not explained any more.\n\n",
        ),
    }
    out.push_str(
        "<sub>agentic explains failed checks from their logs and output and this pull request's diff; this comment is edited as more checks fail on this commit.</sub>",
    );
    out
}

/// A link to `code` at `sha`, when `code` is a `path:line` the model
/// wrote: a plain path (no spaces, no `..`, nothing that would end the
/// link) and a line number.
pub fn location_link(code: &str, web: &str, repo: &str, sha: &str) -> Option<String> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"^([A-Za-z0-9_./-]{1,300}\.[A-Za-z0-9_]{1,12}):([0-9]{1,7})$")
            .expect("valid regex")
    });
    let c = re.captures(code)?;
    let (path, line) = (&c[1], &c[2]);
    if path.split('/').any(|p| p == ".." || p.is_empty()) {
        return None;
    }
    Some(format!(
        "[`{path}:{line}`]({web}/{repo}/blob/{sha}/{path}#L{line})"
    ))
}

/// `text` cut at a line end to at most `max` characters, saying so.
fn cut_at_line(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    let head = head.rsplit_once('\n').map_or(head.as_str(), |(h, _)| h);
    format!("{head}\n\n(cut: the explanation was longer than {max} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_path_and_line_becomes_a_link() {
        let link = |code| location_link(code, "https://github.com", "o/r", "abc");
        assert_eq!(
            link("src/lib.rs:42").as_deref(),
            Some("[`src/lib.rs:42`](https://github.com/o/r/blob/abc/src/lib.rs#L42)")
        );
        for not in [
            "../etc/passwd:1",
            "/etc/passwd:1",
            "a b.rs:1",
            "src//x.rs:3",
            "src/x.rs",
            "x.rs:1) [y](z",
            "src/x.rs:1 ",
        ] {
            assert_eq!(link(not), None, "{not}");
        }
    }
}
