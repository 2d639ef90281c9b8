//! One handler per workflow, dispatched by job kind with an exhaustive
//! match. `command` runs `/agentic` commands; `review` reviews pull
//! requests (automatically, on command, and from the check run's button);
//! `installation` logs the change and forgets an uninstalled installation's
//! cached token; an issue labelled with `aws.trigger_label` makes a plan
//! (`plan::from_issue`), and the plan check run's Apply button applies one
//! (`plan::apply_button`). `JobContext` is what every handler shares.

pub mod ask;
pub mod asked;
pub mod ci;
pub mod command;
pub mod describe;
pub mod plan;
pub mod progress;
pub mod review;
pub mod review_text;

use crate::domain::{AuditAction, JobKind, Role};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::agent::llm::Llm;
use crate::config::Config;
use crate::event::Event;
use crate::github::{Access, GitHub, GitHubApp, GitHubError, TokenScope};
use crate::guidelines::Guideline;
use crate::limits::CommandLimits;
use crate::redact::Redactor;
use crate::repo_config::{ConfigProblem, RepoConfig};
use crate::store::{LeasedJob, Store};

/// Everything a handler may use, passed as one value. Cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub config: Arc<Config>,
    /// The App, once configured (the setup flow may install it later).
    pub github: Arc<ArcSwapOption<GitHubApp>>,
    pub llm: Llm,
    pub redactor: Redactor,
    pub limits: Arc<CommandLimits>,
    /// Repository settings by repository, with when they were read.
    repo_configs: Arc<Recent<Arc<LoadedConfig>>>,
    /// Guideline files by repository and the list looked for.
    guidelines: Arc<Recent<Option<Arc<Guideline>>>>,
    /// The AWS clients, built on first use (no cost for a bot that never
    /// touches AWS).
    aws: Arc<tokio::sync::OnceCell<crate::aws::Aws>>,
    /// The operator's scope ceilings (`AGENTIC_POLICY_FILE`), swapped on
    /// SIGHUP; `None` without a policy file.
    pub policy: Arc<ArcSwapOption<crate::ceilings::Policy>>,
}

/// How long a repository's `.github/agentic.yml` (and its guidelines
/// file) is trusted before it is read again: a fix to it takes effect
/// within this long.
const REPO_CONFIG_TTL: Duration = Duration::from_secs(60);

/// What was read from repositories lately, by key, for [`REPO_CONFIG_TTL`].
struct Recent<V> {
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Recent<V> {
    fn new() -> Self {
        Recent {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, value) = entries.get(key)?;
        (at.elapsed() < REPO_CONFIG_TTL).then(|| value.clone())
    }

    fn put(&self, key: String, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= 10_000 {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }
}

/// A repository's settings as read, and why the file was not used if it
/// was not.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    pub config: RepoConfig,
    pub problem: Option<ConfigProblem>,
}

impl JobContext {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        github: Arc<ArcSwapOption<GitHubApp>>,
        redactor: Redactor,
        policy: Arc<ArcSwapOption<crate::ceilings::Policy>>,
    ) -> JobContext {
        JobContext {
            llm: Llm::new(&config),
            redactor,
            limits: Arc::new(CommandLimits::new(
                store.clone(),
                config.sender_commands_per_minute,
                config.installation_commands_per_minute,
                config.notice_window,
            )),
            store,
            config,
            github,
            repo_configs: Arc::new(Recent::new()),
            guidelines: Arc::new(Recent::new()),
            aws: Arc::new(tokio::sync::OnceCell::new()),
            policy,
        }
    }

    /// The AWS clients, from the settings and the SDK's environment.
    pub async fn aws(&self) -> crate::aws::Aws {
        self.aws
            .get_or_init(|| crate::aws::Aws::from_settings(&self.config))
            .await
            .clone()
    }

    /// `.github/agentic.yml` from `repo`'s default branch — never from a
    /// pull request's head — or the defaults, with what is wrong with the
    /// file if it does not parse; its AWS scope bounded by the operator's
    /// ceiling as the policy is now (`crate::ceilings::bound`). The file is
    /// cached for [`REPO_CONFIG_TTL`] per replica; the ceiling is applied at
    /// every call, so a reloaded policy counts at once.
    pub async fn repo_config(
        &self,
        github: &GitHub,
        repository: &crate::event::Repo,
    ) -> Result<Arc<LoadedConfig>, JobError> {
        let repo = repository.full_name.as_str();
        let read = self.read_repo_config(github, repo).await?;
        let policy = self.policy.load();
        let (mut aws, mut problem) =
            crate::ceilings::bound(repo, read.config.aws.as_ref(), policy.as_deref());
        // The name must still be the repository's that first had AWS under
        // it: one renamed, transferred or deleted leaves its name, its tag
        // value and its policy entry to whoever takes the name. The id is
        // the signed webhook's, checked at every call (the cached file says
        // nothing about whose it is).
        if aws.is_some() {
            let id = repository.id;
            if let crate::store::NameBinding::Other(other) =
                self.store.bind_repo_name(repo, id as i64).await?
            {
                tracing::warn!(
                    repo,
                    id,
                    other,
                    "a repository name now belongs to another repository; no AWS for it"
                );
                aws = None;
                problem = Some(ConfigProblem {
                    what: format!(
                        "has an `aws` section, but the name `{repo}` belonged to another repository (id {other}) when this bot first gave it AWS, and this is repository {id}: renamed, transferred or re-created. The operator confirms it with `agentic repos forget {repo}`"
                    ),
                    instead: crate::repo_config::Instead::NoAws,
                });
            }
        }
        if problem.is_none() && aws == read.config.aws {
            return Ok(read);
        }
        let mut bounded = LoadedConfig::clone(&read);
        bounded.config.aws = aws;
        bounded.problem = bounded.problem.or(problem);
        Ok(Arc::new(bounded))
    }

    /// The file as read (cached), before any ceiling.
    async fn read_repo_config(
        &self,
        github: &GitHub,
        repo: &str,
    ) -> Result<Arc<LoadedConfig>, JobError> {
        if let Some(loaded) = self.repo_configs.get(repo) {
            return Ok(loaded);
        }
        // No `ref`: GitHub reads the default branch, never a PR's head.
        let loaded = match github.file(repo, crate::repo_config::PATH, None).await? {
            None => LoadedConfig::default(),
            Some((text, _)) => match RepoConfig::parse(&text) {
                Ok(config) => LoadedConfig {
                    config,
                    problem: None,
                },
                Err(what) => LoadedConfig {
                    config: RepoConfig::default(),
                    problem: Some(ConfigProblem {
                        what,
                        instead: crate::repo_config::Instead::Defaults,
                    }),
                },
            },
        };
        let loaded = Arc::new(loaded);
        self.repo_configs.put(repo.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// The repository's guidelines file: the first of `files` on its
    /// default branch (`crate::guidelines::read`), cached like its
    /// settings.
    pub async fn guideline(
        &self,
        github: &GitHub,
        repo: &str,
        files: &[String],
    ) -> Result<Option<Arc<Guideline>>, JobError> {
        let key = format!("{repo}\n{}", files.join("\n"));
        if let Some(found) = self.guidelines.get(&key) {
            return Ok(found);
        }
        let found = crate::guidelines::read(github, repo, files)
            .await?
            .map(Arc::new);
        self.guidelines.put(key, found.clone());
        Ok(found)
    }

    /// A client for one repository of `installation`, whose token can do
    /// no more than `access` there.
    pub async fn repo_client(
        &self,
        installation: u64,
        repo: &str,
        access: Access,
    ) -> Result<GitHub, JobError> {
        let app = self
            .github
            .load_full()
            .ok_or_else(|| JobError::Permanent("no GitHub App is configured".into()))?;
        Ok(app
            .client(TokenScope {
                installation,
                repo: Some(repo.to_string()),
                access,
            })
            .await?)
    }

    /// The status comment of `job` on `repo#number`, every write fenced by
    /// the job's lease.
    pub fn status_comment(
        &self,
        github: GitHub,
        repo: &str,
        number: u64,
        job: &LeasedJob,
    ) -> crate::output::StatusComment {
        crate::output::StatusComment::new(
            github,
            self.store.clone(),
            self.redactor.clone(),
            repo,
            number,
            job.id,
            self.config.progress_interval,
        )
        .fenced_by(job)
    }

    /// Audit a refusal by role: `login`, with `role`, asked for `command`
    /// (by its name), which needs `needed`; through a comment, or `via` a
    /// label or a button, which may name its `plan`.
    pub async fn audit_refused(
        &self,
        job: &LeasedJob,
        login: &str,
        refused: Refused<'_>,
    ) -> Result<(), JobError> {
        let mut detail = serde_json::json!({
            "command": refused.command,
            "role": refused.role.as_str(),
            "needed": refused.needed.as_str(),
        });
        if let Some(via) = refused.via {
            detail["via"] = via.into();
        }
        if let Some(plan) = refused.plan {
            detail["plan"] = plan.into();
        }
        self.audit(job, login, AuditAction::CommandRefused, detail)
            .await
    }

    /// The fence before a write to GitHub or AWS: this job still holds its
    /// lease, or `LeaseLost` (another worker has the job now, and writes
    /// instead).
    pub async fn fence(&self, job: &LeasedJob) -> Result<(), JobError> {
        if self.store.holds_lease(job).await? {
            Ok(())
        } else {
            Err(JobError::LeaseLost)
        }
    }

    /// Whether a failure now ends the job (no attempts left).
    pub fn last_attempt(&self, job: &LeasedJob) -> bool {
        job.attempts >= self.config.max_attempts as i64
    }

    /// Write an audit record of `job`: who did what, with what detail.
    pub async fn audit(
        &self,
        job: &LeasedJob,
        actor: &str,
        action: AuditAction,
        detail: serde_json::Value,
    ) -> Result<(), JobError> {
        self.store
            .audit(Self::audit_entry(job, actor, action, detail))
            .await?;
        Ok(())
    }

    /// The audit record of `action` by `actor` in `job`, for a store call
    /// that writes it together with the change it records.
    pub fn audit_entry(
        job: &LeasedJob,
        actor: &str,
        action: AuditAction,
        detail: serde_json::Value,
    ) -> crate::store::AuditEntry {
        crate::store::AuditEntry {
            job_id: Some(job.id),
            delivery_id: Some(job.delivery_id.clone()),
            actor: Some(actor.to_string()),
            action,
            detail: Some(detail),
        }
    }

    /// Where a conversation of `job` on behalf of `actor` is audited.
    pub fn trace(&self, job: &LeasedJob, actor: Option<String>) -> crate::agent::Trace<'_> {
        crate::agent::Trace {
            store: &self.store,
            job_id: Some(job.id),
            delivery_id: Some(job.delivery_id.clone()),
            actor,
            redactor: &self.redactor,
        }
    }

    /// A conversation the model did not finish (`what` it was to give):
    /// tried again later while attempts remain, else the reply that says so.
    pub fn model_failed(
        &self,
        job: &LeasedJob,
        e: &crate::agent::llm::LlmError,
        what: &str,
    ) -> Result<String, JobError> {
        if e.is_transient() && !self.last_attempt(job) {
            return Err(JobError::Transient {
                reason: e.to_string(),
                retry_after: None,
            });
        }
        Ok(format!(
            "❌ I could not get {what} from the model: {e}. Reference: `job {} of delivery {}`.",
            job.id, job.delivery_id
        ))
    }
}

/// A refusal by role, for [`JobContext::audit_refused`].
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    pub command: &'a str,
    /// `label` or `button`; `None` for a comment.
    pub via: Option<&'a str>,
    pub role: Role,
    pub needed: Role,
    /// The plan a button names.
    pub plan: Option<i64>,
}

/// Why a job attempt failed, which decides whether it runs again.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (a 5xx, a timeout, a rate limit).
    #[error("{reason}")]
    Transient {
        reason: String,
        /// What the other side asked us to wait (`retry-after`), if it did.
        retry_after: Option<Duration>,
    },
    /// Will fail the same way every time; the job is dead at once.
    #[error("{0}")]
    Permanent(String),
    /// Nothing failed, but a rate limit (ours or GitHub's) asks for a wait
    /// longer than a worker should be held: run again after it, without
    /// counting this attempt.
    #[error("{reason}")]
    Deferred {
        reason: String,
        retry_after: Duration,
    },
    /// The job's lease is no longer ours (another worker took it over, or
    /// it could not be renewed): stop without touching GitHub or the job.
    #[error("the job's lease was lost")]
    LeaseLost,
    /// `/agentic cancel` asked the job to stop, and it did.
    #[error("cancelled by @{0}")]
    Cancelled(String),
}

impl JobError {
    /// Worth running again (a failure that may pass, or a wait).
    pub fn is_transient(&self) -> bool {
        matches!(self, JobError::Transient { .. } | JobError::Deferred { .. })
    }
}

impl From<anyhow::Error> for JobError {
    /// Our own failures (the store) are worth retrying.
    fn from(e: anyhow::Error) -> Self {
        JobError::Transient {
            reason: format!("{e:#}"),
            retry_after: None,
        }
    }
}

impl From<GitHubError> for JobError {
    fn from(e: GitHubError) -> Self {
        if e.is_rate_limit() {
            JobError::Deferred {
                retry_after: e.retry_after().unwrap_or(Duration::from_secs(60)),
                reason: e.to_string(),
            }
        } else if e.is_transient() {
            JobError::Transient {
                retry_after: e.retry_after(),
                reason: e.to_string(),
            }
        } else {
            JobError::Permanent(e.to_string())
        }
    }
}

impl From<crate::output::OutputError> for JobError {
    fn from(e: crate::output::OutputError) -> Self {
        match e {
            crate::output::OutputError::GitHub(g) => g.into(),
            crate::output::OutputError::Store(s) => s.into(),
            crate::output::OutputError::LeaseLost => JobError::LeaseLost,
        }
    }
}

/// Run one attempt of a job.
pub async fn run(ctx: &JobContext, job: &LeasedJob) -> Result<(), JobError> {
    let kind = JobKind::parse(&job.kind)
        .ok_or_else(|| JobError::Permanent(format!("unknown job kind `{}`", job.kind)))?;
    let event: Event = serde_json::from_str(&job.payload)
        .map_err(|e| JobError::Permanent(format!("stored event does not parse: {e}")))?;
    if stops_by_itself(&event) {
        return dispatch(ctx, job, kind, &event).await;
    }
    tokio::select! {
        r = dispatch(ctx, job, kind, &event) => r,
        by = job.cancel.requested() => {
            // The work is dropped where it stood; its status comment says so.
            if let Some((installation, repo, number, review_thread)) = thread_of(&event) {
                let github = ctx.repo_client(installation, &repo, Access::Write).await?;
                let mut status = ctx.status_comment(github, &repo, number, job).in_thread(review_thread);
                // Only a job that already said something says it stopped:
                // one that never spoke (an outsider's, one still checking
                // the role) stays quiet.
                if crate::output::status_comment_started(&ctx.store, job.id).await? {
                    status
                        .show(&format!("🛑 Stopped: @{by} cancelled this with `/agentic cancel`."))
                        .await?;
                }
            }
            Err(JobError::Cancelled(by))
        }
    }
}

/// Work that looks at its cancel signal itself, where stopping is safe: a
/// review (while the model thinks; it closes its check run as cancelled)
/// and an apply (between steps, through its plan's flag). Everything
/// else is dropped at once.
fn stops_by_itself(event: &Event) -> bool {
    match event {
        Event::PullRequest(_) => true,
        // A failed check being explained is dropped where it stands.
        Event::CheckRun(run) => run.action != "completed",
        Event::IssueComment(c) => crate::command::parse_comment(&c.body).iter().any(|p| {
            matches!(
                p,
                Ok(crate::command::Command::Apply { .. } | crate::command::Command::Review)
            )
        }),
        Event::Issue(_) | Event::Installation(_) => false,
    }
}

/// The issue or pull request whose status comment a job writes, and the
/// review thread it answers in, if any.
fn thread_of(event: &Event) -> Option<(u64, String, u64, Option<u64>)> {
    match event {
        Event::IssueComment(c) => Some((
            c.installation_id,
            c.repo.full_name.clone(),
            c.number,
            c.review.as_ref().map(|t| t.root_id),
        )),
        Event::Issue(i) => Some((i.installation_id, i.repo.full_name.clone(), i.number, None)),
        _ => None,
    }
}

async fn dispatch(
    ctx: &JobContext,
    job: &LeasedJob,
    kind: JobKind,
    event: &Event,
) -> Result<(), JobError> {
    match (kind, event) {
        (JobKind::Command | JobKind::Cancel, Event::IssueComment(comment)) => {
            command::run(ctx, job, comment).await
        }
        (JobKind::Command | JobKind::Cancel, _) => Err(JobError::Permanent(
            "a command job without a comment".into(),
        )),
        (JobKind::Installation, Event::Installation(i)) => {
            if i.action == "deleted" {
                // Its tokens stopped working with the uninstall.
                if let Some(app) = ctx.github.load_full() {
                    app.forget(i.installation_id);
                }
            }
            tracing::info!(installation = i.installation_id, account = %i.account, action = %i.action, "installation changed");
            Ok(())
        }
        (JobKind::Review, Event::PullRequest(pr)) if pr.action == "closed" => {
            plan::thread_closed(
                ctx,
                job,
                pr.installation_id,
                &pr.repo,
                pr.number,
                &pr.sender.login,
            )
            .await
        }
        (JobKind::InfraTask, Event::Issue(issue)) if issue.action == "closed" => {
            plan::thread_closed(
                ctx,
                job,
                issue.installation_id,
                &issue.repo,
                issue.number,
                &issue.sender.login,
            )
            .await
        }
        (JobKind::Review, Event::PullRequest(pr)) => {
            let done = review::run(
                ctx,
                job,
                review::Request {
                    installation: pr.installation_id,
                    repo: &pr.repo.full_name,
                    repo_id: pr.repo.id,
                    number: pr.number,
                    head_sha: Some(&pr.head_sha),
                    trigger: review::Trigger::Auto,
                },
            )
            .await?;
            tracing::info!(repo = %pr.repo.full_name, number = pr.number, outcome = ?done, "review job ended");
            Ok(())
        }
        (JobKind::CheckRunAction, Event::CheckRun(run)) => check_run_action(ctx, job, run).await,
        (JobKind::CiExplain, Event::CheckRun(run)) => ci::explain(ctx, job, run).await,
        // A label asks for a plan; an issue opened with one also gets a
        // `labeled` delivery, so `opened` alone starts nothing.
        (JobKind::InfraTask, Event::Issue(issue)) if issue.action == "labeled" => {
            plan::from_issue(ctx, job, issue).await
        }
        (
            JobKind::Review
            | JobKind::CheckRunAction
            | JobKind::CiExplain
            | JobKind::InfraTask
            | JobKind::Installation,
            _,
        ) => receive(ctx, kind, event).await,
    }
}

/// The Re-run button of our review check run, or GitHub's re-run of it:
/// a fresh full review, for someone who may ask for one.
async fn check_run_action(
    ctx: &JobContext,
    job: &LeasedJob,
    ev: &crate::event::CheckRun,
) -> Result<(), JobError> {
    let ours = ctx
        .github
        .load_full()
        .is_some_and(|app| ev.app_id == Some(app.app_id));
    if ours
        && ev.name == plan::CHECK_NAME
        && ev.action == "requested_action"
        && ev.requested_action.as_deref() == Some(plan::APPLY_ACTION)
    {
        return plan::apply_button(ctx, job, ev).await;
    }
    let rerun = match ev.action.as_str() {
        "rerequested" => true,
        "requested_action" => ev.requested_action.as_deref() == Some(review::RERUN_ACTION),
        _ => false,
    };
    // A suite of ours holds our review check run when the head is a pull
    // request's ("Re-run all checks").
    if !ours || !(ev.suite || ev.name == review::CHECK_NAME) || !rerun {
        tracing::debug!(name = %ev.name, action = %ev.action, "not a re-run of our review check run");
        return Ok(());
    }
    let number = match ev.pull_number() {
        Some(n) => Some(n),
        // A fork's suite names no pull request: the one we reviewed at
        // this head, if any.
        None if ev.suite => {
            ctx.store
                .review_number_at(&ev.repo.full_name, &ev.head_sha)
                .await?
        }
        None => None,
    };
    let Some(number) = number else {
        tracing::info!(
            check_run = ev.check_run_id,
            "a re-run of a check run with no pull request"
        );
        return Ok(());
    };
    let repo = ev.repo.full_name.as_str();
    let github = ctx
        .repo_client(ev.installation_id, repo, Access::Read)
        .await?;
    let role = github.role(repo, &ev.sender.login).await?;
    let needed = ctx
        .repo_config(&github, &ev.repo)
        .await?
        .config
        .required_role(&crate::command::Command::Review);
    if role < needed {
        tracing::info!(user = %ev.sender.login, role = role.as_str(), "re-run refused");
        ctx.audit(
            job,
            &ev.sender.login,
            AuditAction::ReviewRerunRefused,
            serde_json::json!({ "role": role.as_str(), "needed": needed.as_str() }),
        )
        .await?;
        return Ok(());
    }
    let done = review::run(
        ctx,
        job,
        review::Request {
            installation: ev.installation_id,
            repo,
            repo_id: ev.repo.id,
            number,
            head_sha: None,
            trigger: review::Trigger::Rerun,
        },
    )
    .await?;
    tracing::info!(repo, number, outcome = ?done, "re-run review ended");
    Ok(())
}

/// Accept a job that asks nothing of this App (a pull-request or issue
/// action no workflow follows, an installation event). The worker's
/// completion record (`job.completed`, with the kind) is the trace that it
/// ran.
async fn receive(ctx: &JobContext, kind: JobKind, event: &Event) -> Result<(), JobError> {
    test_job_delay(ctx).await;
    tracing::debug!(
        kind = kind.as_str(),
        action = event.action(),
        "nothing to do for this event"
    );
    Ok(())
}

/// A test hook (`test-hooks`, never in a release build): how long a job
/// that asks nothing takes, so the restart test can kill the process while
/// jobs are in flight.
#[cfg(feature = "test-hooks")]
async fn test_job_delay(ctx: &JobContext) {
    if let Some(delay) = ctx.config.test_job_delay {
        tokio::time::sleep(delay).await;
    }
}

/// Without the test hooks, no delay.
#[cfg(not(feature = "test-hooks"))]
async fn test_job_delay(_: &JobContext) {}
