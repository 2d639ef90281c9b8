//! Pull-request review: automatic on `pull_request` events, on command
//! (`/agentic review`), and from the check run's **Re-run review** button.
//!
//! One run per job, recorded in the store before anything is posted (see
//! `store::reviews`): a newer run of the same pull request supersedes an
//! older one (whose check run is closed as `cancelled`); a retried job
//! finds its run again and never posts its review twice; an incremental
//! review starts from the head the last finished run covered.
//!
//! The review is one GitHub review, event `COMMENT`, whose inline comments
//! were each checked against the pull request's parsed diff (GitHub
//! refuses the whole review for one line off the diff), plus the check run
//! `agentic review` with one annotation per finding.

use crate::domain::{AuditAction, ReviewState, Severity};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::agent::llm::LlmError;
use crate::agent::tools::{Fence, Registry, Subject};
use crate::agent::{self, Budget, Finish, Outcome, Progress, Purpose, Task, Trace};
use crate::diff::Patch;
use crate::github::types::PullRequest;
use crate::github::{Access, GitHub, GitHubError};
use crate::redact::Redactor;
use crate::repo_config::RepoConfig;
use crate::review::{self, Assembled, ChangedFile, Finding, Plan, Submission};
use crate::store::{LeasedJob, ReviewRun, ReviewStart};

use super::review_text;
use super::{JobContext, JobError};

/// The check run's name.
pub const CHECK_NAME: &str = "agentic review";
/// The Re-run button's identifier (GitHub allows 20 characters).
pub const RERUN_ACTION: &str = "rerun-review";
/// The hidden mark on a review's body that names its run, so a retry can
/// find a review it posted but did not record.
const RUN_MARK: &str = "agentic:review-run=";
/// GitHub takes at most this many annotations in one check-run request.
const ANNOTATIONS_PER_REQUEST: usize = 50;
/// GitHub's limit on a check run's summary and text.
const MAX_OUTPUT_BYTES: usize = 65_535;
/// How often a running review looks whether a newer one replaced it.
const SUPERSEDE_POLL: Duration = Duration::from_secs(1);

/// What asked for a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A `pull_request` event (opened, reopened, synchronize,
    /// ready_for_review): the repository's config decides, and a push is
    /// reviewed incrementally.
    Auto,
    /// `/agentic review`: a full review now, whatever the config says.
    Command,
    /// The check run's Re-run button or GitHub's re-run: a full review.
    Rerun,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Auto => "auto",
            Trigger::Command => "command",
            Trigger::Rerun => "rerun",
        }
    }
}

/// One review to do.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub installation: u64,
    pub repo: &'a str,
    /// The repository's id, from the signed webhook.
    pub repo_id: u64,
    pub number: u64,
    /// The head the triggering event saw; a newer head means a newer event
    /// will review it. `None`: the head as it is now.
    pub head_sha: Option<&'a str>,
    pub trigger: Trigger,
}

/// How a review run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewed {
    Posted {
        head_sha: String,
        review_id: u64,
        inline: usize,
        findings: usize,
    },
    /// Nothing changed since the last review, or nothing reviewable.
    NothingNew(String),
    /// Not reviewed, and why (config, draft, closed, outdated event).
    Skipped(String),
    /// A newer run of the same pull request replaced this one.
    Superseded,
    /// The model could not produce a review; the check run says so.
    Failed(String),
    /// `/agentic cancel` stopped it, on behalf of this login.
    Cancelled(String),
}

impl Reviewed {
    /// A reply for the person who asked.
    pub fn describe(&self) -> String {
        match self {
            Reviewed::Posted {
                head_sha,
                inline,
                findings,
                ..
            } => review_text::posted(short(head_sha), *findings, *inline, CHECK_NAME),
            Reviewed::NothingNew(why) | Reviewed::Skipped(why) => review_text::no_review(why),
            Reviewed::Superseded => review_text::replaced().to_string(),
            Reviewed::Failed(why) => review_text::not_completed(why),
            Reviewed::Cancelled(by) => review_text::stopped(by),
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// What the review covers: the whole pull request, or what changed since
/// the last reviewed head.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The files put before the model.
    pub files: Vec<ChangedFile>,
    /// The head an incremental review compares from.
    pub base: Option<String>,
    /// Said in the summary (a force-push made a full review necessary…).
    pub note: Option<String>,
    /// Changed files GitHub did not list (it lists at most 3,000).
    pub unseen: u64,
    /// Which guidelines the review followed, and what of them was cut.
    pub guidance: Option<String>,
}

/// The repository's guidance for a review of `scope`'s files (its
/// guidelines file, the path instructions matching the files it does not
/// ignore: `ignored`, `config.ignored()` compiled once by the caller), its note kept in `scope` for the summary. It is counted
/// against the diff's token budget: returns the guidance and what is left
/// of `budget` for the diff.
pub fn guidance_for(
    scope: &mut Scope,
    guideline: Option<&crate::guidelines::Guideline>,
    config: &RepoConfig,
    ignored: &globset::GlobSet,
    fence: &Fence,
    bpe: &tiktoken_rs::CoreBPE,
    budget: usize,
) -> (String, usize) {
    let paths: Vec<&str> = scope
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| !ignored.is_match(p))
        .collect();
    let guidance = crate::guidelines::for_review(guideline, &config.review, &paths, fence);
    scope.guidance = guidance.note;
    let tokens = bpe.count_ordinary(&guidance.text);
    (guidance.text, budget.saturating_sub(tokens))
}

/// The pull request's diff, parsed: where inline comments may go.
pub fn patches_of(files: &[ChangedFile]) -> HashMap<String, Patch> {
    files
        .iter()
        .filter_map(|f| {
            let patch = Patch::parse(f.patch.as_deref()?).ok()?;
            Some((f.path.clone(), patch))
        })
        .collect()
}

/// The first message of a review conversation.
pub fn review_message(
    pr: &PullRequest,
    repo: &str,
    scope: &Scope,
    assembled: &Assembled,
    guidance: &str,
    fence: &Fence,
    earlier: &[crate::github::types::ReviewComment],
) -> String {
    let about = format!(
        "title: {}\nauthor: {}\nbranches: {} into {}\n\n{}",
        pr.title,
        pr.user.as_ref().map(|u| u.login.as_str()).unwrap_or(""),
        pr.head.name,
        pr.base.name,
        pr.body.as_deref().unwrap_or("")
    );
    let mut m = format!(
        "Review pull request #{} in the repository {repo}, at commit {}.\n\nThe pull request as its author describes it:\n{}\n",
        pr.number,
        pr.head.sha,
        fence.wrap("pull request title, author, branches and description", &about)
    );
    if let Some(base) = &scope.base {
        m.push_str(&format!(
            "\nThis is an incremental review: below are only the files whose changes differ from those reviewed at commit {base}, or that are new, each with its whole diff in this pull request at {}. Line numbers are those of the files at {}.\n",
            pr.head.sha, pr.head.sha
        ));
    }
    m.push_str(guidance);
    m.push_str(&review::omitted_for_model(assembled, fence));
    m.push_str(&earlier_for_model(earlier, fence));
    m.push_str(&format!(
        "\nThe diff, one file per block. Every line shows the number a comment on it uses — `new N` for added and context lines (side RIGHT), `old N` for removed lines (side LEFT) — then `|`, the diff's marker (`+`, `-` or a space) and the line's text:\n{}\nSeverities: critical (a security hole, data loss, an outage), major (a bug or a real risk), minor (worth fixing), nit (style). \
Report only what you are confident about, on lines of this diff: give each finding the line's number and side as shown, and its exact text after the marker as `anchor` (`start_anchor` for the first line of a range); a finding whose anchor is not on its line is moved to the one line with that text, or left out of the inline comments. \
Findings about removed code go on side LEFT with the `old` number. Give a `suggestion` only when it is the exact replacement text for those RIGHT lines, without diff markers. \
Then call submit_review once.",
        assembled.text
    ));
    m
}

/// Ask the model for a review of `assembled`; the submission, or why there
/// is none. Transport failures of the model come back as `Err`.
#[allow(clippy::too_many_arguments)]
pub async fn think(
    llm: &crate::agent::llm::Llm,
    reader: &GitHub,
    budget: Budget,
    repo: &str,
    pr: &PullRequest,
    message: String,
    fence: Fence,
    trace: &Trace<'_>,
    progress: &mut dyn Progress,
) -> Result<Result<Submission, String>, LlmError> {
    let subject = Subject {
        github: reader.clone(),
        repo: repo.to_string(),
        number: pr.number,
        head_sha: Some(pr.head.sha.clone()),
        fence,
        aws: None,
    };
    let check = |args: &str| {
        review::parse_submission(args).map(|_| serde_json::from_str(args).unwrap_or(Value::Null))
    };
    let finish = Finish {
        name: review::SUBMIT_REVIEW,
        spec: review::tool_spec(),
        check: &check,
    };
    let task = Task {
        purpose: Purpose::Review,
        message,
        finish: Some(&finish),
        plan: None,
    };
    let outcome = agent::converse(
        llm,
        &Registry::for_pull_request(),
        &subject,
        budget,
        task,
        trace,
        progress,
    )
    .await?;
    Ok(match outcome {
        Outcome::Submitted(v) => review::parse_submission(&v.to_string()),
        Outcome::Answer(_) => Err(review_text::answered_in_text().into()),
        Outcome::Stopped { reason } => Err(review_text::model_stopped(&reason)),
    })
}

/// The review's body: the model's summary, what could not be inline, what
/// was not reviewed, and the hidden mark of the run.
pub fn review_body(
    submission: &Submission,
    plan: &Plan,
    scope: &Scope,
    assembled: &Assembled,
    run_id: Option<i64>,
) -> String {
    let mut body = format!(
        "### 🔍 agentic review\n\n{}",
        review::summary(&submission.summary, plan)
    );
    if let Some(note) = &scope.note {
        body.push_str(&format!("\n\n_{note}_"));
    }
    if let Some(note) = &scope.guidance {
        body.push_str(&format!("\n\n_{note}._"));
    }
    if scope.unseen > 0 {
        body.push_str(&format!(
            "\n\n**Not seen ({} file(s))**: GitHub lists at most 3,000 files of a pull request, and this one changes more; the files past that were not reviewed, and no comment is placed on them.",
            scope.unseen
        ));
    }
    let partly = review::partly_reviewed(&assembled.partial);
    if !partly.is_empty() {
        body.push_str(&format!("\n\n{partly}"));
    }
    let omitted = review::omissions(&assembled.omitted);
    if !omitted.is_empty() {
        body.push_str(&format!("\n\n{omitted}"));
    }
    // The model's words may hold a mark of ours: only the one the bot
    // puts at the end, after the body is cut to fit, is one.
    let body = crate::output::unmarked(&body);
    match run_id {
        Some(id) => {
            let mark = format!("\n\n<!-- {RUN_MARK}{id} -->");
            let room = crate::output::MAX_COMMENT_CHARS - mark.chars().count();
            format!("{}{mark}", crate::output::fit(&body, room))
        }
        None => crate::output::fit(&body, crate::output::MAX_COMMENT_CHARS),
    }
}

/// One check-run annotation per finding on a file of the pull request.
fn annotations(findings: &[&Finding], files: &HashSet<&str>, redactor: &Redactor) -> Vec<Value> {
    findings
        .iter()
        .filter(|f| files.contains(f.path.as_str()))
        .map(|f| {
            let level = match f.severity {
                Severity::Critical | Severity::Major => "failure",
                Severity::Minor => "warning",
                Severity::Nit => "notice",
            };
            json!({
                "path": f.path,
                "start_line": f.start_line.unwrap_or(f.line).min(f.line),
                "end_line": f.line,
                "annotation_level": level,
                "title": format!("{}: agentic review", f.severity.name()),
                "message": crate::output::fit_bytes(&redactor.redact(f.body.trim()), 60_000),
            })
        })
        .collect()
}

/// The check run's conclusion for these findings: `success` with nothing
/// to report, `failure` when one meets `review.fail_on`, else `neutral`.
pub fn conclusion(findings: &[&Finding], config: &RepoConfig) -> &'static str {
    conclusion_of(&counts(findings), config)
}

/// Findings by severity, as stored with a run.
pub fn counts(findings: &[&Finding]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for f in findings {
        *out.entry(f.severity.name().to_lowercase()).or_insert(0) += 1;
    }
    out
}

/// [`conclusion`] from stored counts: what a run recovered after a restart
/// concludes with.
pub fn conclusion_of(counts: &BTreeMap<String, u64>, config: &RepoConfig) -> &'static str {
    let total: u64 = counts.values().sum();
    let meets = |t: Severity| {
        [
            Severity::Nit,
            Severity::Minor,
            Severity::Major,
            Severity::Critical,
        ]
        .into_iter()
        .filter(|s| *s >= t)
        .any(|s| counts.get(&s.name().to_lowercase()).is_some_and(|n| *n > 0))
    };
    if total == 0 {
        "success"
    } else if config.review.fail_on.threshold().is_some_and(meets) {
        "failure"
    } else {
        "neutral"
    }
}

/// Where review writes go, fenced by the job's lease.
struct Writer<'a> {
    ctx: &'a JobContext,
    job: &'a LeasedJob,
    github: &'a GitHub,
    repo: &'a str,
}

impl Writer<'_> {
    async fn fence(&self) -> Result<(), JobError> {
        self.ctx.fence(self.job).await
    }

    /// Our check run on `pr`'s head, created with `output`.
    async fn new_check_run(&self, pr: &PullRequest, output: &Value) -> Result<u64, JobError> {
        self.fence().await?;
        Ok(self
            .github
            .create_check_run(
                self.repo,
                CHECK_NAME,
                &pr.head.sha,
                &format!("pr:{}", pr.number),
                output,
            )
            .await?)
    }

    /// [`Writer::new_check_run`], completed at once with `conclusion`.
    async fn finished_check_run(
        &self,
        pr: &PullRequest,
        conclusion: &str,
        output: Value,
    ) -> Result<u64, JobError> {
        let id = self.new_check_run(pr, &output).await?;
        self.check_run(
            id,
            json!({ "status": "completed", "conclusion": conclusion, "output": output }),
        )
        .await?;
        Ok(id)
    }

    async fn check_run(&self, id: u64, update: Value) -> Result<(), JobError> {
        self.fence().await?;
        self.github.update_check_run(self.repo, id, &update).await?;
        Ok(())
    }

    /// Close a check run with `conclusion`, its annotations sent 50 to a
    /// request (GitHub appends them across updates), the last request
    /// completing it with the Re-run button.
    async fn complete(
        &self,
        id: u64,
        conclusion: &str,
        title: &str,
        summary: &str,
        annotations: Vec<Value>,
    ) -> Result<(), JobError> {
        let summary =
            crate::output::fit_bytes(&self.ctx.redactor.redact(summary), MAX_OUTPUT_BYTES);
        let mut batches: Vec<Vec<Value>> = annotations
            .chunks(ANNOTATIONS_PER_REQUEST)
            .map(<[Value]>::to_vec)
            .collect();
        let last = batches.pop().unwrap_or_default();
        for batch in batches {
            self.check_run(
                id,
                json!({ "output": { "title": title, "summary": summary, "annotations": batch } }),
            )
            .await?;
        }
        self.check_run(
            id,
            json!({
                "status": "completed",
                "conclusion": conclusion,
                "output": { "title": title, "summary": summary, "annotations": last },
                "actions": [{
                    "label": review_text::rerun_label(),
                    "description": review_text::rerun_description(),
                    "identifier": RERUN_ACTION,
                }],
            }),
        )
        .await
    }
}

/// Shows the conversation's steps on the check run, at most once per
/// progress interval.
struct CheckProgress<'a> {
    writer: &'a Writer<'a>,
    id: u64,
    files: usize,
    last: Option<Instant>,
    interval: Duration,
}

impl Progress for CheckProgress<'_> {
    fn step(&mut self, text: String) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if self.last.is_some_and(|t| t.elapsed() < self.interval) {
                return;
            }
            self.last = Some(Instant::now());
            let update = json!({ "output": {
                "title": review_text::reviewing_title(),
                "summary": review_text::reviewing_step(self.files, &text),
            } });
            if let Err(e) = self.writer.check_run(self.id, update).await {
                tracing::warn!(error = %e, "cannot show the review's progress");
            }
        })
    }
}

/// Review a pull request as `job`. Every outcome that ends the run is
/// `Ok`; `Err` is for the job to retry (or a lost lease).
pub async fn run(
    ctx: &JobContext,
    job: &LeasedJob,
    req: Request<'_>,
) -> Result<Reviewed, JobError> {
    let repo = req.repo;
    let github = ctx
        .repo_client(req.installation, repo, Access::Write)
        .await?;
    let pr = github.pull_request(repo, req.number).await?;
    let skip = |why: &str| {
        tracing::info!(repo, number = req.number, why, "review skipped");
        Ok(Reviewed::Skipped(why.to_string()))
    };
    if pr.state != "open" {
        return skip(review_text::not_open());
    }
    if req.head_sha.is_some_and(|seen| seen != pr.head.sha) {
        return skip(review_text::newer_commit());
    }
    let repository = crate::event::Repo {
        id: req.repo_id,
        full_name: repo.to_string(),
    };
    let settings = ctx.repo_config(&github, &repository).await?;
    let config = &settings.config;
    let writer = Writer {
        ctx,
        job,
        github: &github,
        repo,
    };
    if req.trigger == Trigger::Auto {
        let author_is_bot = pr.user.as_ref().is_some_and(|u| u.is_bot());
        let why = if !config.review.auto {
            Some(review_text::auto_off())
        } else if pr.draft.unwrap_or(false) && !config.review.drafts {
            Some(review_text::draft())
        } else if author_is_bot && !config.review.bots {
            Some(review_text::opened_by_bot())
        } else {
            None
        };
        if let Some(why) = why {
            // A repository that requires `agentic review` must not wait for
            // it forever: the check run says it was skipped, and why.
            skipped_check_run(&writer, &pr, why).await?;
            return skip(why);
        }
    }
    if let Some(problem) = &settings.problem {
        tell_config_problem(&writer, req.number, &problem.to_string()).await?;
    }
    let (run, superseded) = match ctx
        .store
        .start_review(job.id, repo, req.number, &pr.head.sha, req.trigger.as_str())
        .await?
    {
        ReviewStart::Outdated { newer } => {
            tracing::info!(
                repo,
                number = req.number,
                newer_job = newer.job_id,
                "a newer review run exists"
            );
            return Ok(Reviewed::Superseded);
        }
        ReviewStart::Started { run, superseded } => (run, superseded),
    };
    for old in &superseded {
        cancel_superseded(&writer, old, &pr.head.sha).await?;
    }
    match run.state {
        ReviewState::Cancelled => return Ok(Reviewed::Superseded),
        ReviewState::Done | ReviewState::Skipped | ReviewState::Failed => {
            return Ok(Reviewed::Skipped(review_text::already_ended(run.state)))
        }
        ReviewState::Running | ReviewState::Posting => {}
    }
    if run.state == ReviewState::Posting {
        if let Some(done) = recover_posted(&writer, &run, &pr, &settings.config).await? {
            return Ok(done);
        }
    }
    match review_run(&writer, &run, &pr, req, &settings.config).await {
        Ok(done) => Ok(done),
        Err(e @ (JobError::LeaseLost | JobError::Deferred { .. })) => Err(e),
        Err(e) if e.is_transient() && !ctx.last_attempt(job) => Err(e),
        Err(e) => {
            // The last try: the check run must not stay "in progress".
            let reason = e.to_string();
            fail(&writer, &run, &reason).await?;
            Ok(Reviewed::Failed(reason))
        }
    }
}

/// The body of the run: scope, model, post, check run.
async fn review_run(
    w: &Writer<'_>,
    run: &ReviewRun,
    pr: &PullRequest,
    req: Request<'_>,
    config: &RepoConfig,
) -> Result<Reviewed, JobError> {
    let ctx = w.ctx;
    let repo = req.repo;
    let r = Reviewing { w, run, pr, config };
    // The whole diff: what the review looks at, what decides what changed
    // since the last one, and what every comment is checked against.
    let pr_files: Vec<ChangedFile> = w
        .github
        .pull_files(repo, pr.number)
        .await?
        .into_iter()
        .map(ChangedFile::from)
        .collect();
    let mut scope = match r.scope(req.trigger, &pr_files).await? {
        Ok(scope) => scope,
        Err(done) => return Ok(done),
    };
    let fence = Fence::new();
    let bpe = review::tokenizer(&ctx.llm.model);
    let guideline = ctx
        .guideline(w.github, repo, &config.review.guideline_files)
        .await?;
    let ignored = config.ignored();
    let (guidance, diff_budget) = guidance_for(
        &mut scope,
        guideline.as_deref(),
        config,
        &ignored,
        &fence,
        bpe,
        ctx.config.review_diff_tokens,
    );
    let assembled = review::assemble(&scope.files, &ignored, diff_budget, bpe, &fence);
    let hashes = reviewed_hashes(&scope, &assembled, &pr_files);
    ctx.store.set_review_file_hashes(run.id, &hashes).await?;
    let check_run = r.check_run(&assembled).await?;
    if assembled.included.is_empty() {
        let why = review_text::nothing_reviewable();
        let summary = review_text::nothing_to_review(why, &review::omissions(&assembled.omitted));
        let title = review_text::nothing_to_review_title();
        w.complete(check_run, "neutral", title, &summary, vec![])
            .await?;
        ctx.store
            .finish_review(run.id, ReviewState::Done, Some(why))
            .await?;
        return Ok(Reviewed::NothingNew(why.to_string()));
    }
    let reader = ctx
        .repo_client(req.installation, repo, Access::Read)
        .await?;
    let earlier = own_review_comments(w.github, repo, pr.number).await?;
    let message = review_message(pr, repo, &scope, &assembled, &guidance, &fence, &earlier);
    let files = assembled.included.len();
    let submission = match r.think(&reader, check_run, files, message, fence).await? {
        Ok(s) => s,
        Err(done) => return Ok(done),
    };
    let look = Look {
        scope: &scope,
        assembled: &assembled,
        submission: &submission,
    };
    r.post(check_run, &pr_files, &earlier, look).await
}

/// One review run as it goes: who writes, which run, of which pull
/// request, under which settings.
struct Reviewing<'a, 'w> {
    w: &'a Writer<'w>,
    run: &'a ReviewRun,
    pr: &'a PullRequest,
    config: &'a RepoConfig,
}

/// What a run looked at, and what the model made of it.
#[derive(Clone, Copy)]
struct Look<'a> {
    scope: &'a Scope,
    assembled: &'a Assembled,
    submission: &'a Submission,
}

/// What the next push compares with: the files this run looked at in
/// full, those the repository's settings, their status or GitHub (no
/// patch: by their blob) leave out, and those it did not need to look at
/// (as last reviewed). A file over the budget, cut or unreadable gets no
/// hash, so the next push looks at it again.
fn reviewed_hashes(
    scope: &Scope,
    assembled: &Assembled,
    pr_files: &[ChangedFile],
) -> BTreeMap<String, String> {
    let looked_at: HashSet<&str> = scope.files.iter().map(|f| f.path.as_str()).collect();
    let cut: HashSet<&str> = assembled
        .partial
        .iter()
        .map(|(p, _, _)| p.as_str())
        .collect();
    let decided: HashSet<&str> = assembled
        .omitted
        .iter()
        .filter(|(_, why)| {
            matches!(
                why,
                review::Omission::Ignored
                    | review::Omission::Deleted
                    | review::Omission::Unchanged
                    | review::Omission::NoPatch
            )
        })
        .map(|(p, _)| p.as_str())
        .chain(
            assembled
                .included
                .iter()
                .map(String::as_str)
                .filter(|p| !cut.contains(p)),
        )
        .collect();
    review::file_hashes(pr_files)
        .into_iter()
        .filter(|(p, _)| !looked_at.contains(p.as_str()) || decided.contains(p.as_str()))
        .collect()
}

impl Reviewing<'_, '_> {
    /// What this run reviews: everything, or what changed since the last
    /// review. Or how the run ended already: nothing new, or the head
    /// moved while the files were read.
    async fn scope(
        &self,
        trigger: Trigger,
        pr_files: &[ChangedFile],
    ) -> Result<Result<Scope, Reviewed>, JobError> {
        let (w, run, pr) = (self.w, self.run, self.pr);
        let (ctx, repo, head) = (w.ctx, w.repo, pr.head.sha.as_str());
        let (base, changed, note) = match since(w, pr, trigger, pr_files).await? {
            Since::Nothing(nothing) => {
                ctx.store
                    .finish_review(run.id, ReviewState::Skipped, Some(&nothing))
                    .await?;
                return Ok(Err(Reviewed::NothingNew(nothing)));
            }
            Since::Unchanged { why, found } => {
                // A required `agentic review` must not wait on this head: its
                // check run says nothing changed and keeps the last conclusion.
                let total: u64 = found.values().sum();
                let output = json!({
                    "title": review_text::unchanged_title(total),
                    "summary": review_text::unchanged(&why),
                });
                let id = w
                    .finished_check_run(pr, conclusion_of(&found, self.config), output)
                    .await?;
                ctx.store.set_review_check_run(run.id, id).await?;
                ctx.store
                    .finish_review(run.id, ReviewState::Skipped, Some(&why))
                    .await?;
                return Ok(Err(Reviewed::NothingNew(why)));
            }
            Since::Start(note) => (None, None, note),
            Since::Base { base, files } => {
                let note = review_text::incremental_note(files.len(), short(&base), short(head));
                (Some(base), Some(files), Some(note))
            }
        };
        // One head per review: the files must be the head's. If the head
        // moved while they were read, they may be the new head's lines, and
        // a review pinned to the old commit would put comments on the wrong
        // code. The push's own event reviews the new head.
        let now = w.github.pull_request(repo, pr.number).await?;
        if now.head.sha != pr.head.sha {
            let why = review_text::head_moved(short(&pr.head.sha), short(&now.head.sha));
            ctx.store
                .finish_review(run.id, ReviewState::Cancelled, Some(&why))
                .await?;
            tracing::info!(repo, number = pr.number, %why, "review superseded");
            return Ok(Err(Reviewed::Superseded));
        }
        // GitHub lists at most 3,000 files of a pull request: what it
        // changes beyond them is never seen, and said to be.
        let unseen = pr
            .changed_files
            .unwrap_or(0)
            .saturating_sub(pr_files.len() as u64);
        let scope = Scope {
            files: changed.unwrap_or_else(|| pr_files.to_vec()),
            base,
            note,
            unseen,
            guidance: None,
        };
        ctx.store
            .set_review_base(run.id, scope.base.as_deref())
            .await?;
        Ok(Ok(scope))
    }

    /// The run's check run, `in_progress`: the one it made before a
    /// restart, or a new one.
    async fn check_run(&self, assembled: &Assembled) -> Result<u64, JobError> {
        if let Some(id) = self.run.check_run_id {
            return Ok(id);
        }
        let head = self.pr.head.sha.as_str();
        let id = self
            .w
            .new_check_run(
                self.pr,
                &json!({
                    "title": review_text::reviewing_title(),
                    "summary": review_text::reviewing(assembled.included.len(), short(head)),
                }),
            )
            .await?;
        self.w
            .ctx
            .store
            .set_review_check_run(self.run.id, id)
            .await?;
        Ok(id)
    }

    /// The model reviews, with the `submit_review` tool, while the check
    /// run shows its progress; stopped at once if a newer run supersedes
    /// this one or someone cancels it. Its submission, or how the run
    /// ended.
    async fn think(
        &self,
        reader: &GitHub,
        check_run: u64,
        files: usize,
        message: String,
        fence: Fence,
    ) -> Result<Result<Submission, Reviewed>, JobError> {
        let (w, run, pr) = (self.w, self.run, self.pr);
        let ctx = w.ctx;
        let trace = ctx.trace(w.job, pr.user.as_ref().map(|u| u.login.clone()));
        let budget = Budget::for_review(&ctx.config);
        let mut progress = CheckProgress {
            writer: w,
            id: check_run,
            files,
            last: Some(Instant::now()),
            interval: ctx.config.progress_interval,
        };
        let thinking = think(
            &ctx.llm,
            reader,
            budget,
            w.repo,
            pr,
            message,
            fence,
            &trace,
            &mut progress,
        );
        // A newer run marks this one cancelled: stop thinking at once.
        let superseded = async {
            loop {
                tokio::time::sleep(SUPERSEDE_POLL).await;
                match ctx.store.review_run(run.id).await {
                    Ok(Some(r)) if r.state == ReviewState::Cancelled => return,
                    _ => {}
                }
            }
        };
        let submission = tokio::select! {
            outcome = thinking => outcome,
            () = superseded => return Ok(Err(Reviewed::Superseded)),
            by = w.job.cancel.requested() => {
                // `/agentic cancel`: nothing is posted; the check run says who.
                let why = review_text::cancelled_by(&by);
                ctx.store.finish_review(run.id, ReviewState::Cancelled, Some(&why)).await?;
                let summary = review_text::cancelled(&by);
                w.complete(check_run, "cancelled", review_text::cancelled_title(), &summary, vec![]).await?;
                return Ok(Err(Reviewed::Cancelled(by)));
            }
        };
        match submission {
            Ok(Ok(s)) => Ok(Ok(s)),
            Ok(Err(reason)) => {
                fail(w, run, &reason).await?;
                Ok(Err(Reviewed::Failed(reason)))
            }
            Err(e) if e.is_transient() && !ctx.last_attempt(w.job) => {
                let update = json!({ "output": {
                    "title": review_text::reviewing_title(),
                    "summary": review_text::retrying(&e.to_string()),
                } });
                w.check_run(check_run, update).await?;
                Err(JobError::Transient {
                    reason: e.to_string(),
                    retry_after: None,
                })
            }
            Err(e) => {
                let reason = review_text::model_did_not_answer(&e.to_string());
                fail(w, run, &reason).await?;
                Ok(Err(Reviewed::Failed(reason)))
            }
        }
    }

    /// Place the findings, store what was found, post one review (its
    /// inline comments in the summary if GitHub refuses them), and
    /// complete the check run.
    async fn post(
        &self,
        check_run: u64,
        pr_files: &[ChangedFile],
        earlier: &[crate::github::types::ReviewComment],
        look: Look<'_>,
    ) -> Result<Reviewed, JobError> {
        let (w, run, pr, config) = (self.w, self.run, self.pr, self.config);
        let (ctx, repo) = (w.ctx, w.repo);
        let patches = patches_of(pr_files);
        let mut posted = ctx.store.review_fingerprints(repo, pr.number).await?;
        posted.extend(review::posted_fingerprints(
            earlier.iter().map(|c| c.body.as_str()),
        ));
        // What people said is not a finding is not raised again here.
        posted.extend(ctx.store.dismissed_findings(repo, pr.number).await?);
        let plan = review::plan(
            look.submission.comments.clone(),
            &patches,
            &config.review,
            &posted,
        );
        let reported: Vec<&Finding> = look
            .submission
            .comments
            .iter()
            .filter(|f| f.severity >= config.review.min_severity)
            .collect();
        // What was found, stored before anything is posted: a run recovered
        // after a crash concludes its check run from it.
        ctx.store
            .set_review_findings(run.id, &counts(&reported))
            .await?;
        let walkthrough = if config.review.walkthrough {
            let previous = ctx.store.last_walkthrough(repo, pr.number, run.id).await?;
            let merged = crate::walkthrough::merge(
                previous.as_ref(),
                look.scope.base.is_some(),
                &look.submission.overview,
                &look.submission.walkthrough,
                look.assembled,
                pr_files,
            );
            ctx.store.set_review_walkthrough(run.id, &merged).await?;
            Some(merged)
        } else {
            None
        };
        if !ctx.store.begin_review_post(run.id).await? {
            return Ok(Reviewed::Superseded);
        }
        w.fence().await?;
        let (review_id, inline) = self.create_review(&plan, look).await?;
        let fingerprints: Vec<String> = if inline > 0 {
            plan.inline.iter().map(|c| c.fingerprint.clone()).collect()
        } else {
            vec![]
        };
        ctx.store
            .record_review_posted(run.id, review_id, &fingerprints)
            .await?;
        let conclusion = conclusion(&reported, config);
        let title = review_text::findings_title(reported.len() as u64);
        self.complete(check_run, pr_files, &plan, conclusion, &title, look)
            .await?;
        if let Some(walkthrough) = &walkthrough {
            show_walkthrough(w, run, pr, walkthrough).await?;
        }
        ctx.store
            .finish_review(run.id, ReviewState::Done, Some(&title))
            .await?;
        let head = pr.head.sha.as_str();
        ctx.store
            .audit(crate::store::AuditEntry {
                job_id: Some(w.job.id),
                delivery_id: Some(w.job.delivery_id.clone()),
                actor: None,
                action: AuditAction::ReviewPosted,
                detail: Some(json!({
                    "repo": repo, "number": pr.number, "head_sha": head, "review_id": review_id,
                    "inline": inline, "findings": reported.len(), "incremental_from": look.scope.base,
                    "conclusion": conclusion,
                    "omitted": look.assembled.omitted.len(),
                })),
            })
            .await?;
        Ok(Reviewed::Posted {
            head_sha: head.to_string(),
            review_id,
            inline,
            findings: reported.len(),
        })
    }

    /// Post the one review: its body and inline comments, redacted. If
    /// GitHub refuses a line our parser took for commentable, every
    /// finding goes into the summary rather than the review being lost.
    /// The review's id and how many comments went inline.
    async fn create_review(&self, plan: &Plan, look: Look<'_>) -> Result<(u64, usize), JobError> {
        let (w, run, pr) = (self.w, self.run, self.pr);
        let (ctx, repo, head) = (w.ctx, w.repo, pr.head.sha.as_str());
        let body_of = |plan: &Plan| {
            ctx.redactor
                .redact(&review_body(
                    look.submission,
                    plan,
                    look.scope,
                    look.assembled,
                    Some(run.id),
                ))
                .into_owned()
        };
        let comments: Vec<Value> = plan
            .inline
            .iter()
            .map(|c| {
                let mut v = c.to_json();
                v["body"] = json!(ctx.redactor.redact(&c.body));
                v
            })
            .collect();
        match w
            .github
            .create_review(repo, pr.number, head, &body_of(plan), &comments)
            .await
        {
            Ok(id) => Ok((id, plan.inline.len())),
            Err(e) if e.status() == Some(422) && !comments.is_empty() => {
                tracing::warn!(error = %e, "GitHub refused the inline comments; posting them in the summary");
                let everything = Plan {
                    in_summary: plan
                        .inline
                        .iter()
                        .map(|c| (c.finding.clone(), review::NotInline::LineNotInDiff))
                        .chain(plan.in_summary.iter().cloned())
                        .collect(),
                    inline: vec![],
                    ..plan.clone()
                };
                let id = w
                    .github
                    .create_review(repo, pr.number, head, &body_of(&everything), &[])
                    .await?;
                Ok((id, 0))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Complete the check run with the conclusion and annotations on the
    /// head's lines: only findings placed on the new side, where they were
    /// placed (a finding that could not be placed has no line to carry
    /// one). The review is posted: a check run that cannot be completed now
    /// is retried (the retry recovers the run), and on the last attempt it
    /// is left as it is rather than the review called failed.
    async fn complete(
        &self,
        check_run: u64,
        pr_files: &[ChangedFile],
        plan: &Plan,
        conclusion: &str,
        title: &str,
        look: Look<'_>,
    ) -> Result<(), JobError> {
        let ctx = self.w.ctx;
        let files: HashSet<&str> = pr_files.iter().map(|f| f.path.as_str()).collect();
        let annotated: Vec<&Finding> = plan
            .inline
            .iter()
            .map(|c| &c.finding)
            .chain(plan.over_cap.iter())
            .filter(|f| f.side == crate::diff::Side::Right)
            .collect();
        let summary = review_body(look.submission, plan, look.scope, look.assembled, None);
        let completed = self
            .w
            .complete(
                check_run,
                conclusion,
                title,
                &summary,
                annotations(&annotated, &files, &ctx.redactor),
            )
            .await;
        completed_or_kept(ctx, self.w.job, completed)
    }
}

/// Where a review starts from.
enum Since {
    /// The whole pull request, with why when a note is due.
    Start(Option<String>),
    /// The files whose changes differ from what the last review (at
    /// `base`) saw, and the new ones: each with its whole diff.
    Base {
        base: String,
        files: Vec<ChangedFile>,
    },
    /// Nothing to review, and why.
    Nothing(String),
    /// A new head whose files' changes are all as last reviewed: nothing
    /// to review, but its check run carries the last review's findings.
    Unchanged {
        why: String,
        found: BTreeMap<String, u64>,
    },
}

/// Where this run starts: a command or a re-run reviews everything; a
/// push, the files of the pull request whose changes differ from those the
/// last review saw (by [`review::file_hashes`]), or that are new. The pull
/// request's own files decide, never a compare of two commits: a merge
/// from the base branch, a force-push and a pull request of thousands of
/// files are all the same case.
async fn since(
    w: &Writer<'_>,
    pr: &PullRequest,
    trigger: Trigger,
    files: &[ChangedFile],
) -> Result<Since, JobError> {
    if trigger != Trigger::Auto {
        return Ok(Since::Start(None));
    }
    let Some(last) = w.ctx.store.last_review(w.repo, pr.number).await? else {
        return Ok(Since::Start(None));
    };
    if last.head_sha == pr.head.sha {
        return Ok(Since::Nothing(review_text::already_reviewed(short(
            &pr.head.sha,
        ))));
    }
    let Some(seen) = last.file_hashes else {
        return Ok(Since::Start(Some(review_text::full_review_note(short(
            &last.head_sha,
        )))));
    };
    let now = review::file_hashes(files);
    let changed: Vec<ChangedFile> = files
        .iter()
        .filter(|f| seen.get(&f.path) != now.get(&f.path))
        .cloned()
        .collect();
    if changed.is_empty() {
        return Ok(Since::Unchanged {
            why: review_text::unchanged_since(short(&last.head_sha)),
            found: last.findings.unwrap_or_default(),
        });
    }
    Ok(Since::Base {
        base: last.head_sha,
        files: changed,
    })
}

/// Fingerprints in inline comments this App posted on the pull request.
/// Most earlier comments shown to the model, and most characters of each.
const MAX_EARLIER: usize = 30;
const MAX_EARLIER_CHARS: usize = 400;

/// This App's earlier inline comments that are still on the diff (GitHub
/// gives an outdated comment no `line`), fenced, with the instruction not
/// to repeat them; nothing when there are none.
pub fn earlier_for_model(earlier: &[crate::github::types::ReviewComment], fence: &Fence) -> String {
    let on_the_diff: Vec<String> = earlier
        .iter()
        .filter_map(|c| Some((c, c.line?)))
        .take(MAX_EARLIER)
        .map(|(c, line)| {
            let body = c
                .body
                .split("\n\n<!-- ")
                .next()
                .unwrap_or("")
                .chars()
                .take(MAX_EARLIER_CHARS)
                .collect::<String>();
            format!("{} line {line}: {body}", c.path)
        })
        .collect();
    if on_the_diff.is_empty() {
        return String::new();
    }
    format!(
        "\nThis App's earlier comments on lines of this pull request that have not changed since ({}). Do not repeat them, in these words or others; a finding on a line with the same text and the same severity is not posted again anyway:\n{}\n",
        on_the_diff.len(),
        fence.wrap("earlier review comments", &on_the_diff.join("\n"))
    )
}

/// This App's own inline comments on the pull request.
pub async fn own_review_comments(
    github: &GitHub,
    repo: &str,
    number: u64,
) -> Result<Vec<crate::github::types::ReviewComment>, GitHubError> {
    let own = github.own().await;
    Ok(github
        .review_comments(repo, number)
        .await?
        .into_iter()
        .filter(|c| own.wrote(c.user.as_ref()))
        .collect())
}

pub async fn fingerprints_on_github(
    github: &GitHub,
    repo: &str,
    number: u64,
) -> Result<HashSet<String>, GitHubError> {
    let own = github.own().await;
    let comments = github.review_comments(repo, number).await?;
    Ok(review::posted_fingerprints(
        comments
            .iter()
            .filter(|c| own.wrote(c.user.as_ref()))
            .map(|c| c.body.as_str()),
    ))
}

/// A run that may have posted before the process died: if its review is on
/// GitHub (recorded, or found by its mark), finish the run without posting
/// again.
/// The `agentic review` check run of a head that is not reviewed,
/// completed as `skipped` with the reason.
async fn skipped_check_run(w: &Writer<'_>, pr: &PullRequest, why: &str) -> Result<(), JobError> {
    let output = json!({
        "title": review_text::skipped_title(),
        "summary": review_text::skipped(why),
    });
    w.finished_check_run(pr, "skipped", output).await?;
    Ok(())
}

/// After a review is posted, a failure to complete its check run: passed
/// on for a retry while attempts are left (the retry recovers the run and
/// completes it), swallowed and logged on the last, so that a posted review
/// is never reported as failed.
fn completed_or_kept(
    ctx: &JobContext,
    job: &LeasedJob,
    completed: Result<(), JobError>,
) -> Result<(), JobError> {
    match completed {
        Ok(()) => Ok(()),
        Err(e @ (JobError::LeaseLost | JobError::Deferred { .. })) => Err(e),
        Err(e) if e.is_transient() && !ctx.last_attempt(job) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "the review was posted; its check run could not be completed");
            Ok(())
        }
    }
}

async fn recover_posted(
    w: &Writer<'_>,
    run: &ReviewRun,
    pr: &PullRequest,
    config: &RepoConfig,
) -> Result<Option<Reviewed>, JobError> {
    let review_id = match run.review_id {
        Some(id) => Some(id),
        None => {
            let mark = format!("<!-- {RUN_MARK}{} -->", run.id);
            let own = w.github.own().await;
            w.github
                .reviews(w.repo, pr.number)
                .await?
                .into_iter()
                .find(|r| {
                    r.body
                        .as_deref()
                        .is_some_and(|b| crate::output::marked(b, &mark))
                        && own.wrote(r.user.as_ref())
                })
                .map(|r| r.id)
        }
    };
    let Some(review_id) = review_id else {
        return Ok(None);
    };
    tracing::info!(
        run = run.id,
        review_id,
        "the review was posted before a restart; not posting it again"
    );
    if run.review_id.is_none() {
        w.ctx
            .store
            .record_review_posted(run.id, review_id, &[])
            .await?;
    }
    // Concluded from what the run stored before posting, never guessed;
    // no annotations: the first attempt may have sent some already, and
    // GitHub appends them.
    let found = run.findings.clone().unwrap_or_default();
    let total: u64 = found.values().sum();
    let conclusion = conclusion_of(&found, config);
    let title = review_text::findings_title(total);
    if let Some(id) = run.check_run_id {
        let completed = w
            .complete(
                id,
                conclusion,
                &title,
                review_text::posted_before_restart(),
                vec![],
            )
            .await;
        completed_or_kept(w.ctx, w.job, completed)?;
    }
    if let Some(walkthrough) = run
        .walkthrough
        .as_ref()
        .filter(|_| config.review.walkthrough)
    {
        show_walkthrough(w, run, pr, walkthrough).await?;
    }
    w.ctx
        .store
        .finish_review(run.id, ReviewState::Done, Some(&title))
        .await?;
    Ok(Some(Reviewed::Posted {
        head_sha: run.head_sha.clone(),
        review_id,
        inline: 0,
        findings: total as usize,
    }))
}

/// Close a superseded run's check run as cancelled.
async fn cancel_superseded(
    w: &Writer<'_>,
    old: &ReviewRun,
    newer_head: &str,
) -> Result<(), JobError> {
    tracing::info!(run = old.id, job = old.job_id, "review run superseded");
    w.ctx
        .store
        .audit(crate::store::AuditEntry {
            job_id: Some(old.job_id),
            delivery_id: None,
            actor: None,
            action: AuditAction::ReviewSuperseded,
            detail: Some(json!({ "by_job": w.job.id, "head_sha": newer_head })),
        })
        .await?;
    if let Some(id) = old.check_run_id {
        w.check_run(
            id,
            json!({
                "status": "completed",
                "conclusion": "cancelled",
                "output": {
                    "title": review_text::superseded_title(),
                    "summary": review_text::superseded(short(newer_head)),
                },
            }),
        )
        .await?;
    }
    Ok(())
}

/// Post or edit the pull request's walkthrough comment as run `run` left
/// it, unless a newer run already has its own (a run that was overtaken
/// must not put older words over newer ones).
async fn show_walkthrough(
    w: &Writer<'_>,
    run: &ReviewRun,
    pr: &PullRequest,
    walkthrough: &crate::domain::Walkthrough,
) -> Result<(), JobError> {
    let runs = w.ctx.store.review_runs(w.repo, pr.number).await?;
    let newest = runs.iter().rev().find(|r| r.walkthrough.is_some());
    if newest.is_some_and(|r| r.id != run.id) {
        return Ok(());
    }
    let sticky = crate::output::StickyComment {
        github: w.github,
        store: &w.ctx.store,
        redactor: &w.ctx.redactor,
        repo: w.repo,
        number: pr.number,
        kind: crate::walkthrough::KIND,
        lease: w.job,
    };
    let text = crate::walkthrough::render(walkthrough, &run.head_sha, &w.ctx.redactor);
    match sticky.show(&text).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // A failure worth a retry retries the job, which finds the
            // review posted and comes back here; one GitHub refuses does
            // not undo the posted review (the next push tries again).
            let e = JobError::from(e);
            if matches!(e, JobError::LeaseLost) || (e.is_transient() && !w.ctx.last_attempt(w.job))
            {
                return Err(e);
            }
            tracing::warn!(run = run.id, error = %e, "cannot write the walkthrough");
            Ok(())
        }
    }
}

/// End a run that could not produce a review, saying why on its check run.
async fn fail(w: &Writer<'_>, run: &ReviewRun, reason: &str) -> Result<(), JobError> {
    tracing::warn!(run = run.id, %reason, "review failed");
    let current = w.ctx.store.review_run(run.id).await?;
    if let Some(id) = current.as_ref().and_then(|r| r.check_run_id) {
        let summary = review_text::failed(reason, w.job.id, &w.job.delivery_id);
        w.complete(id, "failure", review_text::failed_title(), &summary, vec![])
            .await?;
    }
    w.ctx
        .store
        .finish_review(run.id, ReviewState::Failed, Some(reason))
        .await?;
    Ok(())
}

/// Say once on the pull request what is wrong with the config (a comment
/// marked with a hash of the problem; the same problem is not said again).
async fn tell_config_problem(w: &Writer<'_>, number: u64, problem: &str) -> Result<(), JobError> {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(&Sha256::digest(problem.as_bytes())[..8]);
    let mark = format!("<!-- agentic:config-problem={hash} -->");
    let own = w.github.own().await;
    let said = w.github.comments(w.repo, number).await?.iter().any(|c| {
        c.body
            .as_deref()
            .is_some_and(|b| crate::output::marked(b, &mark))
            && own.wrote(c.user.as_ref())
    });
    if said {
        return Ok(());
    }
    w.fence().await?;
    let body = review_text::config_problem(problem, &mark);
    w.github
        .create_comment(w.repo, number, &w.ctx.redactor.redact(&body))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guidance_is_counted_against_the_diffs_token_budget() {
        let file = |path: &str| ChangedFile {
            path: path.into(),
            status: "modified".into(),
            previous_path: None,
            additions: 1,
            deletions: 0,
            patch: Some("@@ -1 +1 @@\n-a\n+b".into()),
            sha: None,
        };
        let mut scope = Scope {
            files: vec![file("db/schema.sql"), file("Cargo.lock")],
            base: None,
            note: None,
            unseen: 0,
            guidance: None,
        };
        let config = RepoConfig::parse(
            "review:\n  path_instructions:\n    - {path: \"db/**\", instructions: \"Name every index.\"}\n    - {path: \"*.lock\", instructions: \"LOCKS\"}\n",
        )
        .unwrap();
        let guideline = crate::guidelines::Guideline {
            path: "AGENTS.md".into(),
            text: "Small commits. ".repeat(200),
            note: None,
        };
        let bpe = review::tokenizer("gpt-4o");
        let ignored = config.ignored();
        let (text, left) = guidance_for(
            &mut scope,
            Some(&guideline),
            &config,
            &ignored,
            &Fence::new(),
            bpe,
            50_000,
        );
        assert!(text.contains("Name every index.") && text.contains("Small commits."));
        assert!(
            !text.contains("LOCKS"),
            "an ignored file gets no instructions"
        );
        let spent = bpe.count_ordinary(&text);
        assert!(spent > 200, "{spent}");
        assert_eq!(left, 50_000 - spent);
        assert_eq!(
            scope.guidance.as_deref(),
            Some("Followed the repository's guidelines in `AGENTS.md`")
        );
        // More guidance than budget leaves nothing for the diff, never less.
        let (_, none) = guidance_for(
            &mut scope,
            Some(&guideline),
            &config,
            &ignored,
            &Fence::new(),
            bpe,
            10,
        );
        assert_eq!(none, 0);
    }

    fn finding(severity: Severity) -> Finding {
        Finding {
            path: "a.rs".into(),
            line: 1,
            start_line: None,
            side: crate::diff::Side::Right,
            anchor: "a".into(),
            start_anchor: None,
            severity,
            body: "b".into(),
            suggestion: None,
        }
    }

    #[test]
    fn the_check_run_fails_only_when_fail_on_is_met() {
        let defaults = RepoConfig::default();
        let (major, nit) = (finding(Severity::Major), finding(Severity::Nit));
        assert_eq!(conclusion(&[], &defaults), "success");
        assert_eq!(conclusion(&[&major], &defaults), "neutral", "fail_on: none");
        let strict = RepoConfig::parse("review:\n  fail_on: major\n").unwrap();
        assert_eq!(conclusion(&[&nit], &strict), "neutral");
        assert_eq!(conclusion(&[&nit, &major], &strict), "failure");
        let critical = RepoConfig::parse("review:\n  fail_on: critical\n").unwrap();
        assert_eq!(conclusion(&[&major], &critical), "neutral");
    }
}
