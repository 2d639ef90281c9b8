//! The command line: `serve`, `replay`, `ask`, `review`, `manifest`, and
//! the operator's `migrate`, `jobs` and `prune`.

use crate::domain::JobState;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::intake::{self, Prepared};
use crate::redact::Redactor;
use crate::server::AppState;
use crate::store::{DeliveryOutcome, Store};

#[derive(Debug, Parser)]
#[command(
    name = "agentic",
    version,
    about = "A GitHub App for reviews and guarded AWS changes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook server and the worker (setup page if no App is configured).
    Serve,
    /// Feed a saved webhook payload through the same pipeline as the server.
    Replay {
        /// The payload file (the JSON body GitHub sent).
        payload: PathBuf,
        /// The event name, as in the X-GitHub-Event header.
        #[arg(long)]
        event: String,
        /// Delivery id to record; a new random one by default. Reusing an
        /// id is deduplicated exactly as a GitHub redelivery is.
        #[arg(long)]
        delivery_id: Option<String>,
        /// Show what would be stored and queued, and touch nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Ask a question about an issue or pull request, from this machine,
    /// with the token in GITHUB_TOKEN; prints the answer.
    Ask {
        /// The repository, `owner/name`.
        #[arg(long)]
        repo: String,
        /// The issue or pull request number.
        #[arg(long)]
        number: u64,
        /// Also post the answer as a comment.
        #[arg(long)]
        post: bool,
        /// The question.
        question: String,
    },
    /// Review a pull request from this machine, with the token in
    /// GITHUB_TOKEN, as the App would; prints the review.
    Review {
        /// The repository, `owner/name`.
        #[arg(long)]
        repo: String,
        /// The pull request number.
        #[arg(long)]
        number: u64,
        /// Also post the review (event COMMENT, as the App does).
        #[arg(long)]
        post: bool,
    },
    /// Look at AWS with the same read tools the model has (the SDK's
    /// standard environment: AWS_REGION, AWS_ENDPOINT_URL, credentials).
    Aws {
        #[command(subcommand)]
        command: crate::aws::cli::AwsCommand,
    },
    /// Print the GitHub App manifest as JSON.
    Manifest {
        /// The URL GitHub reaches this service at (default AGENTIC_PUBLIC_URL).
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Apply the database migrations (serve does it too, unless
    /// AGENTIC_MIGRATE=false). Safe while replicas run.
    Migrate,
    /// List jobs, or retry a dead one.
    Jobs {
        /// Only jobs in this state.
        #[arg(long, value_enum)]
        state: Option<JobState>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<JobsAction>,
    },
    /// Print the audit log: every model and tool call, refusal, plan,
    /// approval and applied step, oldest first.
    Audit {
        /// Only records of deliveries about this repository (`owner/name`).
        #[arg(long)]
        repo: Option<String>,
        /// Only records since this time: RFC 3339 (2026-11-30T08:00:00Z) or
        /// an age (90m, 24h, 7d).
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        /// At most this many of the newest records.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Stop every apply, on every replica, within seconds: none starts, and
    /// a running one pauses after the step it is on. Planning, review and
    /// questions go on. Audited.
    Freeze {
        /// Why, shown on every plan and every refused apply.
        #[arg(long)]
        reason: String,
        /// Who froze it, for the audit log and the notice (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Lift the freeze; paused applies resume with `/agentic apply N`.
    /// Audited.
    Unfreeze {
        /// Who lifted it, for the audit log (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Repositories the bot knows by name.
    Repos {
        #[command(subcommand)]
        action: ReposAction,
    },
    /// Delete what the retention settings no longer keep (serve does it
    /// hourly in the background).
    Prune {
        /// Count what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReposAction {
    /// Confirm that the repository now called NAME may have AWS: forget
    /// which repository had the name before (it was renamed, transferred,
    /// or deleted and re-created). Audited.
    Forget {
        /// `owner/name`.
        name: String,
        /// Who confirms it, for the audit log (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// Queue a dead job again, with a fresh count of attempts.
    Retry {
        /// The job's id (from `agentic jobs --state dead`).
        id: i64,
    },
}

/// `--since`: an RFC 3339 time or an age like `90m`, `24h`, `7d`, as
/// milliseconds since the epoch.
fn parse_since(s: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match n.parse::<i64>() {
        Ok(n) if secs > 0 && n >= 0 => {
            Ok(chrono::Utc::now().timestamp_millis() - n.saturating_mul(secs * 1000))
        }
        _ => Err(format!(
            "`{s}` is neither an RFC 3339 time nor an age like 90m, 24h or 7d"
        )),
    }
}

/// `--state` takes a job state by its stored spelling.
impl clap::ValueEnum for JobState {
    fn value_variants<'a>() -> &'a [Self] {
        <JobState as crate::domain::Code>::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => {
            let config = Config::from_env()?;
            let redactor = Redactor::new(config.secret_values());
            crate::telemetry::init(config.log_format, redactor.clone());
            crate::server::serve(config, redactor).await
        }
        Command::Audit {
            repo,
            since,
            limit,
            json,
        } => audit(repo, since, limit, json).await,
        Command::Aws { command } => {
            if crate::aws::cli::run(command).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Manifest { public_url } => manifest(public_url),
        Command::Replay {
            payload,
            event,
            delivery_id,
            dry_run,
        } => replay(payload, event, delivery_id, dry_run).await,
        Command::Ask {
            repo,
            number,
            post,
            question,
        } => ask(repo, number, post, question).await,
        Command::Review { repo, number, post } => review(repo, number, post).await,
        Command::Migrate => {
            let config = operator_config()?;
            let applied = Store::migrate(&config.database_url).await?;
            println!("applied {applied} migration(s); the schema is up to date");
            Ok(())
        }
        Command::Jobs {
            state,
            json,
            action,
        } => jobs(state, json, action).await,
        Command::Freeze { reason, by } => freeze(reason, by).await,
        Command::Unfreeze { by } => unfreeze(by).await,
        Command::Repos {
            action: ReposAction::Forget { name, by },
        } => forget_repo(name, by).await,
        Command::Prune { dry_run } => prune(dry_run).await,
    }
}

/// `agentic audit`: the audit log, filtered, as lines or one JSON array.
async fn audit(
    repo: Option<String>,
    since: Option<i64>,
    limit: i64,
    json: bool,
) -> anyhow::Result<()> {
    let config = operator_config()?;
    let store = Store::open(&config.database_url).await?;
    let rows = store.audit_log(repo.as_deref(), since, limit).await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            let at = chrono::DateTime::from_timestamp_millis(r.at)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                .unwrap_or_default();
            let job = r
                .job_id
                .map(|j| format!("job {j}"))
                .unwrap_or_else(|| "-".into());
            println!(
                "{at}  {job}  {}  {}  {}  {}",
                r.repo.as_deref().unwrap_or("-"),
                r.actor.as_deref().unwrap_or("-"),
                r.action,
                r.detail.as_ref().map(|d| d.to_string()).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `agentic manifest`: the App manifest for `--public-url`, else
/// AGENTIC_PUBLIC_URL, else localhost.
fn manifest(public_url: Option<String>) -> anyhow::Result<()> {
    let public_url = match public_url {
        Some(u) => u,
        None => Config::from_env()?
            .public_url
            .unwrap_or_else(|| "http://localhost:3000".to_string()),
    };
    let manifest = crate::manifest::manifest_json(&public_url)?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(())
}

/// `agentic freeze`: stop every apply, with a reason, which must be given.
async fn freeze(reason: String, by: Option<String>) -> anyhow::Result<()> {
    let reason = reason.trim();
    if reason.is_empty() {
        anyhow::bail!("--reason: say why applies are frozen; it is shown on every plan");
    }
    let by = operator_name(by);
    let config = operator_config()?;
    let store = Store::open(&config.database_url).await?;
    let result = store.set_freeze(reason, &by).await;
    store.close().await;
    let f = result?;
    println!(
        "applies are frozen (by {}, reason: {}); `agentic unfreeze` lifts it",
        f.set_by, f.reason
    );
    Ok(())
}

/// `agentic unfreeze`: lift the freeze, if there is one.
async fn unfreeze(by: Option<String>) -> anyhow::Result<()> {
    let by = operator_name(by);
    let config = operator_config()?;
    let store = Store::open(&config.database_url).await?;
    let result = store.lift_freeze(&by).await;
    store.close().await;
    match result? {
        Some(f) => println!(
            "applies are no longer frozen (frozen by {} for: {}); paused applies resume with `/agentic apply N`",
            f.set_by, f.reason
        ),
        None => println!("applies were not frozen; nothing changed"),
    }
    Ok(())
}

/// `agentic repos forget`: forget which repository had the name `name`.
async fn forget_repo(name: String, by: Option<String>) -> anyhow::Result<()> {
    let by = operator_name(by);
    let config = operator_config()?;
    let store = Store::open(&config.database_url).await?;
    let result = store.forget_repo_name(&name, &by).await;
    store.close().await;
    if result? {
        println!("forgot which repository `{name}` was; the repository with that name now gets AWS as its settings allow");
    } else {
        println!("`{name}` was bound to no repository; nothing changed");
    }
    Ok(())
}

/// `agentic prune`: delete (or, with `--dry-run`, count) what retention no
/// longer keeps.
async fn prune(dry_run: bool) -> anyhow::Result<()> {
    let config = operator_config()?;
    let store = Store::open(&config.database_url).await?;
    let report = store
        .prune(
            config.retention,
            crate::store::PRUNE_BATCH,
            crate::store::PRUNE_PAUSE,
            dry_run,
        )
        .await?;
    store.close().await;
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb}: {} jobs, {} outputs, {} command claims, {} deliveries, {} audit records, {} idle rate limits, {} review runs",
        report.jobs,
        report.outputs,
        report.command_runs,
        report.deliveries,
        report.audit,
        report.rate_limits,
        report.reviews
    );
    Ok(())
}

/// Who runs an operator command: `--by`, or the login user.
fn operator_name(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "operator".to_string())
}

/// The settings for an operator command, with logs on stderr.
fn operator_config() -> anyhow::Result<Config> {
    let config = Config::from_env()?;
    crate::telemetry::init(config.log_format, Redactor::new(config.secret_values()));
    Ok(config)
}

async fn jobs(
    state: Option<JobState>,
    json: bool,
    action: Option<JobsAction>,
) -> anyhow::Result<()> {
    let config = operator_config()?;
    let store = Store::open(&config.database_url).await?;
    let result = async {
        if let Some(JobsAction::Retry { id }) = action {
            if store.requeue_dead(id, "cli:agentic jobs retry").await? {
                println!("job {id} is queued again");
                return Ok(());
            }
            anyhow::bail!(
                "job {id} is not dead (or does not exist); only dead jobs can be retried"
            );
        }
        let rows = match state {
            Some(s) => store.jobs_in_state(s).await?,
            None => store.jobs().await?,
        };
        // The freeze first, where an operator in an incident looks; on
        // stderr with --json, so the array stays the whole of stdout.
        if let Some(f) = store.freeze().await? {
            let since = chrono::DateTime::from_timestamp_millis(f.set_at)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            let line = format!(
                "FROZEN since {since} by {}: {} (no apply runs; `agentic unfreeze` lifts it)",
                f.set_by, f.reason
            );
            if json {
                eprintln!("{line}");
            } else {
                println!("{line}\n");
            }
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(());
        }
        println!(
            "{:>8}  {:<8}  {:<16}  {:>8}  {:<40}  last error",
            "id", "state", "kind", "attempts", "subject"
        );
        for j in &rows {
            println!(
                "{:>8}  {:<8}  {:<16}  {:>8}  {:<40}  {}",
                j.id,
                j.state,
                j.kind,
                j.attempts,
                j.subject,
                j.last_error.as_deref().unwrap_or("")
            );
        }
        Ok(())
    }
    .await;
    store.close().await;
    result
}

async fn replay(
    path: PathBuf,
    event: String,
    delivery_id: Option<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let body = std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let delivery_id = delivery_id.unwrap_or_else(|| format!("replay-{}", uuid::Uuid::new_v4()));
    if delivery_id.is_empty() || delivery_id.len() > intake::MAX_DELIVERY_ID_LEN {
        anyhow::bail!(
            "--delivery-id must be 1 to {} characters",
            intake::MAX_DELIVERY_ID_LEN
        );
    }
    let prepared = intake::prepare(&event, &delivery_id, &body)
        .with_context(|| format!("`{}`", path.display()))?;
    let d = prepared.delivery();
    println!(
        "delivery {} ({} {})",
        d.id,
        d.event,
        d.action.as_deref().unwrap_or("-")
    );
    match (&prepared, &d.reason) {
        (Prepared::Ping(_), _) => println!("  ping: nothing to do"),
        (_, Some(reason)) => println!("  ignored: {reason}"),
        _ => {}
    }
    for job in &d.jobs {
        println!("  job {} for {}", job.kind, job.subject);
    }
    if dry_run {
        println!("dry run: nothing stored");
        return Ok(());
    }
    let config = Config::from_env()?;
    let redactor = Redactor::new(config.secret_values());
    crate::telemetry::init(config.log_format, redactor.clone());
    let store = Store::open(&config.database_url).await?;
    let delivery = prepared.into_delivery();
    match store.record_delivery(delivery).await? {
        DeliveryOutcome::Duplicate => {
            println!("already stored: delivery {delivery_id} was received before; nothing queued");
        }
        DeliveryOutcome::Stored => {
            let state = AppState::new(store.clone(), std::sync::Arc::new(config), redactor)?;
            state.worker().run_until_idle().await?;
        }
    }
    for job in store.jobs_for_delivery(&delivery_id).await? {
        match &job.last_error {
            Some(e) => println!(
                "  job {} {}: {} after {} attempt(s): {e}",
                job.id, job.kind, job.state, job.attempts
            ),
            None => println!(
                "  job {} {}: {} after {} attempt(s)",
                job.id, job.kind, job.state, job.attempts
            ),
        }
    }
    store.close().await;
    Ok(())
}

struct StderrProgress;

impl crate::agent::Progress for StderrProgress {
    fn step(
        &mut self,
        text: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move { eprintln!("… {text}") })
    }
}

/// What the `ask` and `review` commands share: a checked `owner/name`, a
/// client for GITHUB_TOKEN, the settings, a redactor that knows the token,
/// and the store (for the audit log).
struct Local {
    github: crate::github::GitHub,
    config: Config,
    redactor: Redactor,
    store: Store,
    login: String,
}

/// Where a command-line conversation records its model and tool calls: the
/// same audit log as the bot's, with `cli:<user>` as the actor.
fn local_trace<'a>(
    store: &'a Store,
    redactor: &'a Redactor,
    login: &str,
) -> crate::agent::Trace<'a> {
    crate::agent::Trace {
        store,
        job_id: None,
        delivery_id: None,
        actor: Some(format!("cli:{login}")),
        redactor,
    }
}

async fn local(repo: &str) -> anyhow::Result<Local> {
    if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
        anyhow::bail!("--repo must be `owner/name`, not `{repo}`");
    }
    let token = std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| anyhow::anyhow!("GITHUB_TOKEN: not set (a token that can read {repo})"))?;
    let config = Config::from_env()?;
    let mut secrets = config.secret_values();
    secrets.push(token.clone());
    let redactor = Redactor::new(secrets);
    crate::telemetry::init(config.log_format, redactor.clone());
    let github =
        crate::github::with_token(&config.github_api_url, secrecy::SecretString::from(token))?;
    let store = Store::open(&config.database_url).await?;
    Ok(Local {
        github,
        config,
        redactor,
        store,
        login: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
    })
}

async fn review(repo: String, number: u64, post: bool) -> anyhow::Result<()> {
    use crate::handlers::review as flow;
    let Local {
        github,
        config,
        redactor,
        store,
        login,
    } = local(&repo).await?;
    eprintln!("… reading {repo}#{number}");
    let pr = github.pull_request(&repo, number).await?;
    let settings = repo_settings(&github, &repo).await?;
    let files: Vec<crate::review::ChangedFile> = github
        .pull_files(&repo, number)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let mut scope = flow::Scope {
        unseen: pr
            .changed_files
            .unwrap_or(0)
            .saturating_sub(files.len() as u64),
        files: files.clone(),
        base: None,
        note: None,
        guidance: None,
    };
    let fence = crate::agent::tools::Fence::new();
    let llm = crate::agent::llm::Llm::new(&config);
    let bpe = crate::review::tokenizer(&llm.model);
    let guideline =
        crate::guidelines::read(&github, &repo, &settings.review.guideline_files).await?;
    let ignored = settings.ignored();
    let (guidance, diff_budget) = flow::guidance_for(
        &mut scope,
        guideline.as_ref(),
        &settings,
        &ignored,
        &fence,
        bpe,
        config.review_diff_tokens,
    );
    let assembled = crate::review::assemble(&files, &ignored, diff_budget, bpe, &fence);
    eprintln!(
        "… reviewing {} of {} changed file(s) at {} ({} tokens of diff)",
        assembled.included.len(),
        files.len(),
        &pr.head.sha[..pr.head.sha.len().min(7)],
        assembled.tokens
    );
    if assembled.included.is_empty() {
        println!(
            "Nothing to review.\n\n{}",
            crate::review::omissions(&assembled.omitted)
        );
        store.close().await;
        return Ok(());
    }
    let earlier = flow::own_review_comments(&github, &repo, number).await?;
    let message = flow::review_message(&pr, &repo, &scope, &assembled, &guidance, &fence, &earlier);
    let trace = local_trace(&store, &redactor, &login);
    let budget = crate::agent::Budget::for_review(&config);
    let submission = flow::think(
        &llm,
        &github,
        budget,
        &repo,
        &pr,
        message,
        fence,
        &trace,
        &mut StderrProgress,
    )
    .await?
    .map_err(|reason| anyhow::anyhow!("the review could not be completed: {reason}"))?;
    let posted = flow::fingerprints_on_github(&github, &repo, number).await?;
    let plan = crate::review::plan(
        submission.comments.clone(),
        &flow::patches_of(&files),
        &settings.review,
        &posted,
    );
    let body = redactor
        .redact(&flow::review_body(
            &submission,
            &plan,
            &scope,
            &assembled,
            None,
        ))
        .into_owned();
    print_review(&redactor, &body, &plan);
    if post {
        post_review(&github, &redactor, &repo, number, &pr, &body, &plan).await?;
    }
    store.close().await;
    Ok(())
}

/// The repository's settings file on its default branch: the defaults
/// without one, and with a warning when it does not parse.
async fn repo_settings(
    github: &crate::github::GitHub,
    repo: &str,
) -> anyhow::Result<crate::repo_config::RepoConfig> {
    Ok(
        match github.file(repo, crate::repo_config::PATH, None).await? {
            None => crate::repo_config::RepoConfig::default(),
            Some((text, _)) => {
                crate::repo_config::RepoConfig::parse(&text).unwrap_or_else(|what| {
                    eprintln!(
                        "warning: {}",
                        crate::repo_config::ConfigProblem {
                            what,
                            instead: crate::repo_config::Instead::Defaults,
                        }
                    );
                    crate::repo_config::RepoConfig::default()
                })
            }
        },
    )
}

/// Print a review as it would be posted: the body, then each inline
/// comment under its file and lines.
fn print_review(redactor: &Redactor, body: &str, plan: &crate::review::Plan) {
    println!("{body}");
    for c in &plan.inline {
        let f = &c.finding;
        let lines = match f.start_line {
            Some(s) if s < f.line => format!("{s}-{}", f.line),
            _ => f.line.to_string(),
        };
        println!("\n--- {}:{lines}\n{}", f.path, redactor.redact(&c.body));
    }
}

/// Post a review on the pull request's head (event COMMENT), its inline
/// comments redacted as the body is.
async fn post_review(
    github: &crate::github::GitHub,
    redactor: &Redactor,
    repo: &str,
    number: u64,
    pr: &crate::github::types::PullRequest,
    body: &str,
    plan: &crate::review::Plan,
) -> anyhow::Result<()> {
    let comments: Vec<serde_json::Value> = plan
        .inline
        .iter()
        .map(|c| {
            let mut v = c.to_json();
            v["body"] = serde_json::json!(redactor.redact(&c.body));
            v
        })
        .collect();
    let id = github
        .create_review(repo, number, &pr.head.sha, body, &comments)
        .await?;
    eprintln!("posted review {id}");
    Ok(())
}

async fn ask(repo: String, number: u64, post: bool, question: String) -> anyhow::Result<()> {
    if question.trim().is_empty() {
        anyhow::bail!("the question is empty");
    }
    let Local {
        github,
        config,
        redactor,
        store,
        login,
    } = local(&repo).await?;
    eprintln!("… reading {repo}#{number}");
    let issue = github.issue(&repo, number).await?;
    let llm = crate::agent::llm::Llm::new(&config);
    let settings = repo_settings(&github, &repo).await?;
    let guideline =
        crate::guidelines::read(&github, &repo, &settings.review.guideline_files).await?;
    let fence = crate::agent::tools::Fence::new();
    let q = crate::handlers::ask::Question {
        thread: None,
        guidance: crate::guidelines::for_question(guideline.as_ref(), &settings.review, &fence)
            .text,
        fence,
        repo: &repo,
        number,
        on_pull_request: issue.pull_request.is_some(),
        asked_by: &login,
        text: &question,
        aws: None,
    };
    let trace = local_trace(&store, &redactor, &login);
    let budget = crate::agent::Budget::from_config(&config);
    let outcome =
        crate::handlers::ask::ask(&llm, &github, budget, &q, &trace, &mut StderrProgress).await?;
    let text = redactor
        .redact(&crate::handlers::ask::render(outcome))
        .into_owned();
    println!("{text}");
    if post {
        let body = crate::output::fit(&text, crate::output::MAX_COMMENT_CHARS);
        let comment = github.create_comment(&repo, number, &body).await?;
        eprintln!("posted comment {}", comment.id);
    }
    store.close().await;
    Ok(())
}
