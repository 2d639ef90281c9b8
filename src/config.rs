//! Service settings, read once at start-up from the environment and an
//! optional file with the same keys (`AGENTIC_CONFIG_FILE`, dotenv syntax).
//! The environment wins over the file. Secrets are [`SecretString`]s, whose
//! `Debug` prints `[REDACTED]`, so a settings dump cannot leak them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::app_credentials::AppCredentials;
pub use crate::app_credentials::GitHubApp;

/// Where the setup flow keeps the App's credentials unless told otherwise.
pub const DEFAULT_CREDENTIALS_PATH: &str = "agentic-app.json";

/// A bad or missing setting: one line that names the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        message: message.into(),
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting of the service.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Every secret that may have signed a delivery: `AGENTIC_WEBHOOK_SECRET`,
    /// each line of `AGENTIC_WEBHOOK_SECRETS_FILE`, and the secret of an App
    /// registered through the setup page. All of them are accepted.
    pub webhook_secrets: Vec<SecretString>,
    pub app: Option<GitHubApp>,
    /// REST API root, without a trailing slash.
    pub github_api_url: String,
    /// Web root (where the App registration form lives), derived from the
    /// API URL unless `AGENTIC_GITHUB_URL` says otherwise.
    pub github_web_url: String,
    /// The address GitHub reaches this service at, for the App manifest.
    pub public_url: Option<String>,
    pub openai_api_key: Option<SecretString>,
    pub openai_base_url: String,
    pub model: String,
    pub log_format: LogFormat,
    pub credentials_path: PathBuf,
    pub worker_concurrency: usize,
    pub max_attempts: u32,
    pub lease: Duration,
    pub shutdown_grace: Duration,
    /// One model call may take this long before it is abandoned.
    pub llm_timeout: Duration,
    /// Tries of a model call that timed out, the first included.
    pub llm_timeout_tries: u32,
    /// The agent's budgets.
    pub max_steps: u32,
    pub max_tokens: u64,
    pub max_wall: Duration,
    /// Least time between two progress edits of a status comment.
    pub progress_interval: Duration,
    /// Commands one sender, and one installation, may give a minute.
    pub sender_commands_per_minute: u32,
    pub installation_commands_per_minute: u32,
    /// Commands run from one comment; the rest are skipped with a note.
    pub max_commands_per_comment: usize,
    /// Tool calls run from one model turn; the rest are answered "skipped".
    pub max_tool_calls_per_turn: usize,
    /// `max_tokens` sent with every model call (the answer's length).
    pub llm_max_tokens: u32,
    /// The AWS SDK's `AWS_ENDPOINT_URL` and `AWS_REGION`, read here too
    /// so that the file can set them; credentials stay with the SDK's own
    /// chain.
    pub aws_endpoint_url: Option<String>,
    pub aws_region: Option<String>,
    /// A role the read tools assume (`AGENTIC_AWS_ROLE_ARN`), and one an
    /// apply assumes with a session policy of exactly the approved steps
    /// (`AGENTIC_AWS_APPLY_ROLE_ARN`).
    pub aws_role_arn: Option<String>,
    pub aws_apply_role_arn: Option<String>,
    /// Without an apply role, applies are refused unless the operator says
    /// they may run with the base credentials and no session policy
    /// (`AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY=true`): logged at start-up
    /// and shown on every plan.
    pub aws_apply_without_session_policy: bool,
    /// `AGENTIC_POLICY_FILE`: the operator's scope ceilings, re-read on
    /// SIGHUP.
    pub policy_file: Option<PathBuf>,
    /// The policy as read at start-up (`None` without a policy file).
    pub policy: Option<Arc<crate::ceilings::Policy>>,
    /// `AGENTIC_METRICS_LISTEN`: a second address for `/metrics`,
    /// `/healthz` and `/readyz`, which the public one then does not serve.
    pub metrics_listen: Option<SocketAddr>,
    /// Tokens one review may spend, all model calls together: the bound on
    /// a review's cost, however large the pull request.
    pub review_max_tokens: u64,
    /// Tokens of diff put before the model in one review; files beyond it
    /// are listed as not reviewed.
    pub review_diff_tokens: usize,
    /// Someone without a role on the repository gets at most one reply (a
    /// denial, or the help text) in this long.
    pub notice_window: Duration,
    /// Most jobs of one installation running at once in this process, so
    /// one installation's backlog leaves workers for the others.
    pub max_jobs_per_installation: usize,
    /// Apply migrations when `serve` starts (`AGENTIC_MIGRATE`).
    pub migrate: bool,
    /// What is kept how long (`AGENTIC_RETENTION_DAYS`,
    /// `AGENTIC_AUDIT_RETENTION_DAYS`).
    pub retention: crate::store::Retention,
    /// Content-creating requests per installation (GitHub's secondary limit).
    pub content_quota: crate::github::ContentQuota,
    /// A webhook body must arrive within this long.
    pub webhook_body_timeout: Duration,
    /// Deliveries being read and stored at once; past this, `503`.
    pub max_inflight_deliveries: usize,
    /// Test hook (`--features test-hooks`, never in a release build): how
    /// long the placeholder job handler takes, so the restart test can kill
    /// the process while jobs are in flight.
    #[cfg(feature = "test-hooks")]
    pub test_job_delay: Option<Duration>,
    /// Test hook: a pause after each applied plan step, so a test can kill
    /// the process between two steps.
    #[cfg(feature = "test-hooks")]
    pub test_step_delay: Option<Duration>,
}

/// Every key the service reads, for the file parser's typo check and the
/// README's settings table (`tests/docs.rs`). `AGENTIC_CONFIG_FILE` names
/// the file, so it is not one of them.
pub const KEYS: &[&str] = &[
    "AGENTIC_LISTEN",
    "AGENTIC_METRICS_LISTEN",
    "AGENTIC_POLICY_FILE",
    "AGENTIC_DATABASE_URL",
    "AGENTIC_WEBHOOK_SECRET",
    "AGENTIC_WEBHOOK_SECRETS_FILE",
    "AGENTIC_GITHUB_APP_ID",
    "AGENTIC_GITHUB_PRIVATE_KEY",
    "AGENTIC_GITHUB_PRIVATE_KEY_PATH",
    "AGENTIC_GITHUB_API_URL",
    "AGENTIC_GITHUB_URL",
    "AGENTIC_PUBLIC_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AGENTIC_MODEL",
    "AGENTIC_LOG_FORMAT",
    "AGENTIC_APP_CREDENTIALS_PATH",
    "AGENTIC_WORKER_CONCURRENCY",
    "AGENTIC_MAX_ATTEMPTS",
    "AGENTIC_JOB_LEASE_SECS",
    "AGENTIC_SHUTDOWN_GRACE_SECS",
    "AGENTIC_TEST_JOB_DELAY_MS",
    "AGENTIC_TEST_STEP_DELAY_MS",
    "AGENTIC_LLM_TIMEOUT_SECS",
    "AGENTIC_LLM_TIMEOUT_TRIES",
    "AGENTIC_MAX_STEPS",
    "AGENTIC_MAX_TOKENS",
    "AGENTIC_MAX_WALL_SECS",
    "AGENTIC_PROGRESS_INTERVAL_SECS",
    "AGENTIC_SENDER_COMMANDS_PER_MINUTE",
    "AGENTIC_INSTALLATION_COMMANDS_PER_MINUTE",
    "AGENTIC_MAX_COMMANDS_PER_COMMENT",
    "AGENTIC_MAX_TOOL_CALLS_PER_TURN",
    "AGENTIC_LLM_MAX_TOKENS",
    "AGENTIC_NOTICE_WINDOW_SECS",
    "AGENTIC_MAX_JOBS_PER_INSTALLATION",
    "AGENTIC_WEBHOOK_BODY_TIMEOUT_SECS",
    "AGENTIC_MAX_INFLIGHT_DELIVERIES",
    "AGENTIC_CONTENT_PER_MINUTE",
    "AGENTIC_CONTENT_PER_HOUR",
    "AGENTIC_MIGRATE",
    "AGENTIC_RETENTION_DAYS",
    "AGENTIC_AUDIT_RETENTION_DAYS",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AGENTIC_AWS_ROLE_ARN",
    "AGENTIC_AWS_APPLY_ROLE_ARN",
    "AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY",
    "AGENTIC_REVIEW_MAX_TOKENS",
    "AGENTIC_REVIEW_DIFF_TOKENS",
    "RUST_LOG",
];

impl Config {
    /// Read the process environment (and the file it may name).
    pub fn from_env() -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Config::from_vars(&env)
    }

    /// Build from a set of variables, merging `AGENTIC_CONFIG_FILE` under them.
    pub fn from_vars(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let vars = merged_vars(env)?;
        let (listen, metrics_listen) = listen_addresses(&vars)?;
        let policy_file = vars.get("AGENTIC_POLICY_FILE").map(PathBuf::from);
        let policy = load_policy(policy_file.as_deref())?;
        let database_url = vars
            .get("AGENTIC_DATABASE_URL")
            .unwrap_or("sqlite://agentic.db")
            .to_string();
        let mut webhook_secrets = webhook_secrets_from_vars(&vars)?;
        let (github_api_url, github_web_url, public_url) = github_urls(&vars)?;
        let credentials_path = PathBuf::from(
            vars.get("AGENTIC_APP_CREDENTIALS_PATH")
                .unwrap_or(DEFAULT_CREDENTIALS_PATH),
        );
        let app = app_with_stored_credentials(&vars, &credentials_path, &mut webhook_secrets)?;
        let log_format = log_format_from_vars(&vars)?;
        let jobs = jobs_from_vars(&vars)?;
        let budgets = budgets_from_vars(&vars)?;
        let limits = limits_from_vars(&vars, jobs.worker_concurrency)?;
        let openai_base_url = vars
            .get("OPENAI_BASE_URL")
            .unwrap_or("https://api.openai.com/v1")
            .trim_end_matches('/')
            .to_string();
        check_url("OPENAI_BASE_URL", &openai_base_url)?;

        Ok(Config {
            listen,
            database_url,
            webhook_secrets,
            app,
            github_api_url,
            github_web_url,
            public_url,
            openai_api_key: vars
                .get("OPENAI_API_KEY")
                .map(|k| SecretString::from(k.to_string())),
            openai_base_url,
            model: vars
                .get("AGENTIC_MODEL")
                .unwrap_or("gpt-4o-mini")
                .to_string(),
            log_format,
            credentials_path,
            worker_concurrency: jobs.worker_concurrency,
            max_attempts: jobs.max_attempts,
            lease: jobs.lease,
            shutdown_grace: jobs.shutdown_grace,
            #[cfg(feature = "test-hooks")]
            test_job_delay: jobs.test_job_delay,
            #[cfg(feature = "test-hooks")]
            test_step_delay: jobs.test_step_delay,
            llm_timeout: budgets.llm_timeout,
            llm_timeout_tries: budgets.llm_timeout_tries,
            max_steps: budgets.max_steps,
            max_tokens: budgets.max_tokens,
            max_wall: budgets.max_wall,
            progress_interval: budgets.progress_interval,
            sender_commands_per_minute: budgets.sender_commands_per_minute,
            installation_commands_per_minute: budgets.installation_commands_per_minute,
            max_commands_per_comment: budgets.max_commands_per_comment,
            max_tool_calls_per_turn: budgets.max_tool_calls_per_turn,
            llm_max_tokens: budgets.llm_max_tokens,
            review_max_tokens: budgets.review_max_tokens,
            review_diff_tokens: budgets.review_diff_tokens,
            aws_endpoint_url: vars.get("AWS_ENDPOINT_URL").map(str::to_string),
            aws_region: vars.get("AWS_REGION").map(str::to_string),
            aws_role_arn: vars.get("AGENTIC_AWS_ROLE_ARN").map(str::to_string),
            aws_apply_role_arn: vars.get("AGENTIC_AWS_APPLY_ROLE_ARN").map(str::to_string),
            aws_apply_without_session_policy: limits.aws_apply_without_session_policy,
            policy_file,
            policy,
            metrics_listen,
            notice_window: limits.notice_window,
            max_jobs_per_installation: limits.max_jobs_per_installation,
            webhook_body_timeout: limits.webhook_body_timeout,
            max_inflight_deliveries: limits.max_inflight_deliveries,
            content_quota: limits.content_quota,
            migrate: limits.migrate,
            retention: limits.retention,
        })
    }

    /// Every configured secret value, for the redactor.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret().to_string())
            .collect();
        if let Some(app) = &self.app {
            out.push(app.private_key.expose_secret().to_string());
        }
        if let Some(k) = &self.openai_api_key {
            out.push(k.expose_secret().to_string());
        }
        // The AWS SDK reads these from the process's environment itself.
        for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if let Ok(v) = std::env::var(name) {
                out.push(v);
            }
        }
        out
    }
}

/// The merged variables; empty values count as unset.
struct Vars(HashMap<String, String>);

impl Vars {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

fn parse_or<T: std::str::FromStr>(
    value: Option<&str>,
    default: &str,
    key: &'static str,
    what: &str,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    v.parse()
        .map_err(|_| bad(key, format!("`{v}` is not {what}")))
}

/// A setting that must be a number of at least 1.
fn positive<T: std::str::FromStr + PartialEq + From<u8>>(
    vars: &Vars,
    key: &'static str,
    default: &str,
    what: &str,
) -> Result<T, ConfigError> {
    let n: T = parse_or(vars.get(key), default, key, what)?;
    if n == T::from(0) {
        return Err(bad(key, "must be at least 1"));
    }
    Ok(n)
}

/// A yes-or-no setting (`true`/`1`/`yes` or `false`/`0`/`no`).
fn yes_or_no(vars: &Vars, key: &'static str, default: bool) -> Result<bool, ConfigError> {
    match vars.get(key) {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(bad(key, format!("`{other}` is not `true` or `false`"))),
    }
}

fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(bad(key, format!("`{url}` is not an http(s) URL"))),
    }
}

/// `https://api.github.com` → `https://github.com`;
/// `https://ghe.example.com/api/v3` → `https://ghe.example.com`; anything
/// else (a test fake) is its own web root.
pub fn web_url_for(api_url: &str) -> String {
    if api_url == "https://api.github.com" {
        return "https://github.com".to_string();
    }
    api_url
        .strip_suffix("/api/v3")
        .unwrap_or(api_url)
        .to_string()
}

/// The secrets deliveries may be signed with. `AGENTIC_WEBHOOK_SECRET` is
/// one secret, taken whole (a comma is part of it); a rotation lists the old
/// and new secrets in `AGENTIC_WEBHOOK_SECRETS_FILE`, one a line. An empty
/// secret would let anyone sign, so it is refused wherever it appears.
fn webhook_secrets_from_vars(vars: &Vars) -> Result<Vec<SecretString>, ConfigError> {
    let mut secrets = Vec::new();
    if let Some(raw) = vars.0.get("AGENTIC_WEBHOOK_SECRET") {
        let s = raw.trim();
        if s.is_empty() {
            return Err(bad(
                "AGENTIC_WEBHOOK_SECRET",
                "is set but empty; an empty secret would accept anyone's deliveries",
            ));
        }
        secrets.push(SecretString::from(s.to_string()));
    }
    if let Some(path) = vars.get("AGENTIC_WEBHOOK_SECRETS_FILE") {
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(
                "AGENTIC_WEBHOOK_SECRETS_FILE",
                format!("cannot read `{path}`: {e}"),
            )
        })?;
        let before = secrets.len();
        secrets.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| SecretString::from(l.to_string())),
        );
        if secrets.len() == before {
            return Err(bad(
                "AGENTIC_WEBHOOK_SECRETS_FILE",
                format!("`{path}` holds no secret (one a line)"),
            ));
        }
    }
    Ok(secrets)
}

fn app_from_vars(vars: &Vars) -> Result<Option<GitHubApp>, ConfigError> {
    let app_id = vars.get("AGENTIC_GITHUB_APP_ID");
    let key = match (
        vars.get("AGENTIC_GITHUB_PRIVATE_KEY"),
        vars.get("AGENTIC_GITHUB_PRIVATE_KEY_PATH"),
    ) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "AGENTIC_GITHUB_PRIVATE_KEY",
                "set either this or AGENTIC_GITHUB_PRIVATE_KEY_PATH, not both",
            ))
        }
        // Keys pasted into one-line env files often carry literal `\n`.
        (Some(k), None) => Some(("AGENTIC_GITHUB_PRIVATE_KEY", k.replace("\\n", "\n"))),
        (None, Some(path)) => Some((
            "AGENTIC_GITHUB_PRIVATE_KEY_PATH",
            std::fs::read_to_string(path).map_err(|e| {
                bad(
                    "AGENTIC_GITHUB_PRIVATE_KEY_PATH",
                    format!("cannot read `{path}`: {e}"),
                )
            })?,
        )),
        (None, None) => None,
    };
    match (app_id, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(bad(
            "AGENTIC_GITHUB_PRIVATE_KEY",
            "AGENTIC_GITHUB_APP_ID is set but no private key is (set this or AGENTIC_GITHUB_PRIVATE_KEY_PATH)",
        )),
        (None, Some((key_name, _))) => Err(bad(
            "AGENTIC_GITHUB_APP_ID",
            format!("{key_name} is set but the App id is not"),
        )),
        (Some(id), Some((key_name, pem))) => {
            let app_id = id
                .parse()
                .map_err(|_| bad("AGENTIC_GITHUB_APP_ID", format!("`{id}` is not a number")))?;
            if !pem.contains("-----BEGIN") || !pem.contains("PRIVATE KEY-----") {
                return Err(bad(key_name, "is not a PEM private key"));
            }
            Ok(Some(GitHubApp {
                app_id,
                private_key: SecretString::from(pem),
            }))
        }
    }
}

/// The variables to read: the file named by `AGENTIC_CONFIG_FILE`, if any,
/// with `env` over it. A key the service does not read is refused.
fn merged_vars(env: &HashMap<String, String>) -> Result<Vars, ConfigError> {
    let mut vars = HashMap::new();
    if let Some(path) = env.get("AGENTIC_CONFIG_FILE").filter(|p| !p.is_empty()) {
        let iter = dotenvy::from_path_iter(path)
            .map_err(|e| bad("AGENTIC_CONFIG_FILE", format!("cannot read `{path}`: {e}")))?;
        for item in iter {
            let (k, v) = item
                .map_err(|e| bad("AGENTIC_CONFIG_FILE", format!("cannot parse `{path}`: {e}")))?;
            if !KEYS.contains(&k.as_str()) {
                return Err(bad(
                    "AGENTIC_CONFIG_FILE",
                    format!("`{path}` sets unknown key `{k}`"),
                ));
            }
            vars.insert(k, v);
        }
    }
    for (k, v) in env {
        vars.insert(k.clone(), v.clone());
    }
    Ok(Vars(vars))
}

/// `AGENTIC_LISTEN`, and `AGENTIC_METRICS_LISTEN` if set, which must be
/// another address.
fn listen_addresses(vars: &Vars) -> Result<(SocketAddr, Option<SocketAddr>), ConfigError> {
    let listen: SocketAddr = parse_or(
        vars.get("AGENTIC_LISTEN"),
        "127.0.0.1:3000",
        "AGENTIC_LISTEN",
        "a socket address like 127.0.0.1:3000",
    )?;
    let metrics_listen = match vars.get("AGENTIC_METRICS_LISTEN") {
        None => None,
        some => Some(parse_or::<SocketAddr>(
            some,
            "",
            "AGENTIC_METRICS_LISTEN",
            "a socket address like 127.0.0.1:9100",
        )?),
    };
    if metrics_listen == Some(listen) && listen.port() != 0 {
        return Err(bad(
            "AGENTIC_METRICS_LISTEN",
            "is the same address as AGENTIC_LISTEN; give it its own, or leave it unset",
        ));
    }
    Ok((listen, metrics_listen))
}

/// The policy in `AGENTIC_POLICY_FILE`, read now; `None` without the file.
fn load_policy(
    policy_file: Option<&Path>,
) -> Result<Option<Arc<crate::ceilings::Policy>>, ConfigError> {
    Ok(match policy_file {
        None => None,
        Some(path) => Some(Arc::new(
            crate::ceilings::Policy::load(path).map_err(|e| bad("AGENTIC_POLICY_FILE", e))?,
        )),
    })
}

/// GitHub's API root, its web root and this service's public address, each
/// checked and without a trailing slash.
fn github_urls(vars: &Vars) -> Result<(String, String, Option<String>), ConfigError> {
    let github_api_url = vars
        .get("AGENTIC_GITHUB_API_URL")
        .unwrap_or("https://api.github.com")
        .trim_end_matches('/')
        .to_string();
    check_url("AGENTIC_GITHUB_API_URL", &github_api_url)?;
    let github_web_url = match vars.get("AGENTIC_GITHUB_URL") {
        Some(u) => {
            check_url("AGENTIC_GITHUB_URL", u)?;
            u.trim_end_matches('/').to_string()
        }
        None => web_url_for(&github_api_url),
    };
    let public_url = match vars.get("AGENTIC_PUBLIC_URL") {
        Some(u) => {
            check_url("AGENTIC_PUBLIC_URL", u)?;
            Some(u.trim_end_matches('/').to_string())
        }
        None => None,
    };
    Ok((github_api_url, github_web_url, public_url))
}

/// The App the environment names, else the one stored at
/// `credentials_path`; a stored App's webhook secret joins `webhook_secrets`.
fn app_with_stored_credentials(
    vars: &Vars,
    credentials_path: &Path,
    webhook_secrets: &mut Vec<SecretString>,
) -> Result<Option<GitHubApp>, ConfigError> {
    let mut app = app_from_vars(vars)?;
    // Registered through the setup page earlier: its secret is accepted
    // whatever else is configured (one rule: every configured secret
    // verifies), and its App is used unless the environment names one.
    if let Some(stored) = AppCredentials::load(credentials_path)
        .map_err(|e| bad("AGENTIC_APP_CREDENTIALS_PATH", format!("{e:#}")))?
    {
        if stored.webhook_secret.expose_secret().trim().is_empty() {
            return Err(bad(
                "AGENTIC_APP_CREDENTIALS_PATH",
                format!(
                    "`{}` holds an empty webhook secret",
                    credentials_path.display()
                ),
            ));
        }
        webhook_secrets.push(stored.webhook_secret.clone());
        if app.is_none() {
            app = Some(stored.github_app());
        }
    }
    Ok(app)
}

/// `AGENTIC_LOG_FORMAT`: `text` (the default) or `json`.
fn log_format_from_vars(vars: &Vars) -> Result<LogFormat, ConfigError> {
    match vars.get("AGENTIC_LOG_FORMAT").unwrap_or("text") {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(bad(
            "AGENTIC_LOG_FORMAT",
            format!("`{other}` is not `text` or `json`"),
        )),
    }
}

/// What a count setting must be.
const NUMBER: &str = "a whole number";
/// What a duration setting in seconds must be.
const SECONDS: &str = "a whole number of seconds";

/// How the worker runs jobs.
struct Jobs {
    worker_concurrency: usize,
    max_attempts: u32,
    lease: Duration,
    shutdown_grace: Duration,
    #[cfg(feature = "test-hooks")]
    test_job_delay: Option<Duration>,
    #[cfg(feature = "test-hooks")]
    test_step_delay: Option<Duration>,
}

/// The worker's settings: jobs at once, attempts, lease, shutdown grace,
/// and, in a test build, the test hooks' delays.
fn jobs_from_vars(vars: &Vars) -> Result<Jobs, ConfigError> {
    let worker_concurrency: usize = positive(vars, "AGENTIC_WORKER_CONCURRENCY", "4", NUMBER)?;
    let max_attempts: u32 = positive(vars, "AGENTIC_MAX_ATTEMPTS", "5", NUMBER)?;
    let lease_secs: u64 = positive(vars, "AGENTIC_JOB_LEASE_SECS", "30", SECONDS)?;
    let grace_secs: u64 = parse_or(
        vars.get("AGENTIC_SHUTDOWN_GRACE_SECS"),
        "30",
        "AGENTIC_SHUTDOWN_GRACE_SECS",
        "a whole number of seconds",
    )?;
    Ok(Jobs {
        worker_concurrency,
        max_attempts,
        lease: Duration::from_secs(lease_secs),
        shutdown_grace: Duration::from_secs(grace_secs),
        #[cfg(feature = "test-hooks")]
        test_job_delay: millis(vars, "AGENTIC_TEST_JOB_DELAY_MS")?,
        #[cfg(feature = "test-hooks")]
        test_step_delay: millis(vars, "AGENTIC_TEST_STEP_DELAY_MS")?,
    })
}

/// A test hook's delay in milliseconds, if set.
#[cfg(feature = "test-hooks")]
fn millis(vars: &Vars, key: &'static str) -> Result<Option<Duration>, ConfigError> {
    match vars.get(key) {
        Some(v) => Ok(Some(Duration::from_millis(v.parse().map_err(|_| {
            bad(key, format!("`{v}` is not a whole number of milliseconds"))
        })?))),
        None => Ok(None),
    }
}

/// What one model call, conversation, command or review may take.
struct Budgets {
    llm_timeout: Duration,
    llm_timeout_tries: u32,
    max_steps: u32,
    max_tokens: u64,
    max_wall: Duration,
    progress_interval: Duration,
    sender_commands_per_minute: u32,
    installation_commands_per_minute: u32,
    max_commands_per_comment: usize,
    max_tool_calls_per_turn: usize,
    llm_max_tokens: u32,
    review_max_tokens: u64,
    review_diff_tokens: usize,
}

/// The agent's budgets, the limits on commands, and a review's tokens; the
/// diff may take at most half of those.
fn budgets_from_vars(vars: &Vars) -> Result<Budgets, ConfigError> {
    let llm_timeout =
        Duration::from_secs(positive(vars, "AGENTIC_LLM_TIMEOUT_SECS", "60", NUMBER)?);
    let llm_timeout_tries = positive(vars, "AGENTIC_LLM_TIMEOUT_TRIES", "2", NUMBER)?;
    let max_steps = positive(vars, "AGENTIC_MAX_STEPS", "8", NUMBER)?;
    let max_tokens = positive(vars, "AGENTIC_MAX_TOKENS", "60000", NUMBER)?;
    let max_wall = Duration::from_secs(positive(vars, "AGENTIC_MAX_WALL_SECS", "300", NUMBER)?);
    let progress_interval: u64 = parse_or(
        vars.get("AGENTIC_PROGRESS_INTERVAL_SECS"),
        "5",
        "AGENTIC_PROGRESS_INTERVAL_SECS",
        "a whole number of seconds",
    )?;
    let sender_commands_per_minute =
        positive(vars, "AGENTIC_SENDER_COMMANDS_PER_MINUTE", "10", NUMBER)?;
    let installation_commands_per_minute = positive(
        vars,
        "AGENTIC_INSTALLATION_COMMANDS_PER_MINUTE",
        "120",
        NUMBER,
    )?;
    let max_commands_per_comment = positive(vars, "AGENTIC_MAX_COMMANDS_PER_COMMENT", "5", NUMBER)?;
    let max_tool_calls_per_turn = positive(vars, "AGENTIC_MAX_TOOL_CALLS_PER_TURN", "8", NUMBER)?;
    let llm_max_tokens = positive(vars, "AGENTIC_LLM_MAX_TOKENS", "4096", NUMBER)?;
    let review_max_tokens: u64 = positive(vars, "AGENTIC_REVIEW_MAX_TOKENS", "120000", NUMBER)?;
    let review_diff_tokens: usize = positive(vars, "AGENTIC_REVIEW_DIFF_TOKENS", "24000", NUMBER)?;
    if review_diff_tokens as u64 * 2 > review_max_tokens {
        return Err(bad(
            "AGENTIC_REVIEW_DIFF_TOKENS",
            format!("must be at most half of AGENTIC_REVIEW_MAX_TOKENS ({review_max_tokens}): the diff is sent with every model call of a review"),
        ));
    }
    Ok(Budgets {
        llm_timeout,
        llm_timeout_tries,
        max_steps,
        max_tokens,
        max_wall,
        progress_interval: Duration::from_secs(progress_interval),
        sender_commands_per_minute,
        installation_commands_per_minute,
        max_commands_per_comment,
        max_tool_calls_per_turn,
        llm_max_tokens,
        review_max_tokens,
        review_diff_tokens,
    })
}

/// What one installation or delivery may take, and the operator's
/// switches: migrations, applies without a session policy, retention.
struct Limits {
    notice_window: Duration,
    max_jobs_per_installation: usize,
    webhook_body_timeout: Duration,
    content_quota: crate::github::ContentQuota,
    migrate: bool,
    aws_apply_without_session_policy: bool,
    retention: crate::store::Retention,
    max_inflight_deliveries: usize,
}

/// The limits and switches; jobs per installation default to half of
/// `worker_concurrency` (at least 1).
fn limits_from_vars(vars: &Vars, worker_concurrency: usize) -> Result<Limits, ConfigError> {
    let notice_window = Duration::from_secs(positive(
        vars,
        "AGENTIC_NOTICE_WINDOW_SECS",
        "3600",
        SECONDS,
    )?);
    let default_per_installation = (worker_concurrency / 2).max(1).to_string();
    let max_jobs_per_installation: usize = positive(
        vars,
        "AGENTIC_MAX_JOBS_PER_INSTALLATION",
        &default_per_installation,
        NUMBER,
    )?;
    let webhook_body_timeout = Duration::from_secs(positive(
        vars,
        "AGENTIC_WEBHOOK_BODY_TIMEOUT_SECS",
        "10",
        SECONDS,
    )?);
    let content_quota = crate::github::ContentQuota {
        per_minute: positive(vars, "AGENTIC_CONTENT_PER_MINUTE", "75", NUMBER)?,
        per_hour: positive(vars, "AGENTIC_CONTENT_PER_HOUR", "480", NUMBER)?,
    };
    let migrate = yes_or_no(vars, "AGENTIC_MIGRATE", true)?;
    let aws_apply_without_session_policy =
        yes_or_no(vars, "AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY", false)?;
    const DAYS: &str = "a whole number of days (0 keeps forever)";
    let retention = crate::store::Retention {
        days: parse_or(
            vars.get("AGENTIC_RETENTION_DAYS"),
            "30",
            "AGENTIC_RETENTION_DAYS",
            DAYS,
        )?,
        audit_days: parse_or(
            vars.get("AGENTIC_AUDIT_RETENTION_DAYS"),
            "365",
            "AGENTIC_AUDIT_RETENTION_DAYS",
            DAYS,
        )?,
    };
    let max_inflight_deliveries = positive(vars, "AGENTIC_MAX_INFLIGHT_DELIVERIES", "32", NUMBER)?;
    Ok(Limits {
        notice_window,
        max_jobs_per_installation,
        webhook_body_timeout,
        content_quota,
        migrate,
        aws_apply_without_session_policy,
        retention,
        max_inflight_deliveries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.entry("AGENTIC_APP_CREDENTIALS_PATH".into())
            .or_insert_with(|| "/nonexistent/agentic-app.json".into());
        m
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.database_url, "sqlite://agentic.db");
        assert_eq!(c.github_api_url, "https://api.github.com");
        assert_eq!(c.github_web_url, "https://github.com");
        assert!(c.app.is_none());
        assert!(c.webhook_secrets.is_empty());
    }

    #[test]
    fn a_secret_is_taken_whole_and_never_debug_printed() {
        let c = Config::from_vars(&vars(&[("AGENTIC_WEBHOOK_SECRET", "old-one,new-one")])).unwrap();
        assert_eq!(c.webhook_secrets.len(), 1, "a comma is part of the secret");
        assert_eq!(c.webhook_secrets[0].expose_secret(), "old-one,new-one");
        let dump = format!("{c:?}");
        assert!(!dump.contains("old-one"), "{dump}");
    }

    #[test]
    fn rotation_goes_through_a_file_and_empty_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        std::fs::write(&path, "old,with-comma\n\n  new-one  \n").unwrap();
        let c = Config::from_vars(&vars(&[
            ("AGENTIC_WEBHOOK_SECRETS_FILE", path.to_str().unwrap()),
            ("AGENTIC_WEBHOOK_SECRET", "third"),
        ]))
        .unwrap();
        let got: Vec<&str> = c
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(got, ["third", "old,with-comma", "new-one"]);

        let e = Config::from_vars(&vars(&[("AGENTIC_WEBHOOK_SECRET", "  ")])).unwrap_err();
        assert_eq!(e.key, "AGENTIC_WEBHOOK_SECRET");
        std::fs::write(&path, "\n \n").unwrap();
        let e = Config::from_vars(&vars(&[(
            "AGENTIC_WEBHOOK_SECRETS_FILE",
            path.to_str().unwrap(),
        )]))
        .unwrap_err();
        assert_eq!(e.key, "AGENTIC_WEBHOOK_SECRETS_FILE");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = Config::from_vars(&vars(&[("AGENTIC_LISTEN", "nope")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "AGENTIC_LISTEN: `nope` is not a socket address like 127.0.0.1:3000"
        );
        let e = Config::from_vars(&vars(&[("AGENTIC_GITHUB_APP_ID", "12")])).unwrap_err();
        assert_eq!(e.key, "AGENTIC_GITHUB_PRIVATE_KEY");
        let e = Config::from_vars(&vars(&[("AGENTIC_GITHUB_API_URL", "ftp://x")])).unwrap_err();
        assert_eq!(e.key, "AGENTIC_GITHUB_API_URL");
    }

    #[test]
    fn migrate_and_retention_settings() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert!(c.migrate);
        assert_eq!((c.retention.days, c.retention.audit_days), (30, 365));
        let c = Config::from_vars(&vars(&[
            ("AGENTIC_MIGRATE", "false"),
            ("AGENTIC_RETENTION_DAYS", "0"),
        ]))
        .unwrap();
        assert!(!c.migrate);
        assert_eq!(c.retention.days, 0, "0 keeps forever");
        let e = Config::from_vars(&vars(&[("AGENTIC_MIGRATE", "maybe")])).unwrap_err();
        assert_eq!(e.key, "AGENTIC_MIGRATE");
        let e = Config::from_vars(&vars(&[("AGENTIC_RETENTION_DAYS", "-1")])).unwrap_err();
        assert_eq!(e.key, "AGENTIC_RETENTION_DAYS");
    }

    #[test]
    fn enterprise_web_url() {
        assert_eq!(web_url_for("https://ghe.corp/api/v3"), "https://ghe.corp");
        assert_eq!(
            web_url_for("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn file_is_read_under_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agentic.env");
        std::fs::write(
            &path,
            "AGENTIC_LISTEN=127.0.0.1:4000\nAGENTIC_MODEL=from-file\n",
        )
        .unwrap();
        let c = Config::from_vars(&vars(&[
            ("AGENTIC_CONFIG_FILE", path.to_str().unwrap()),
            ("AGENTIC_MODEL", "from-env"),
        ]))
        .unwrap();
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.model, "from-env");
        std::fs::write(&path, "AGENTIC_LISTN=1\n").unwrap();
        let e = Config::from_vars(&vars(&[("AGENTIC_CONFIG_FILE", path.to_str().unwrap())]))
            .unwrap_err();
        assert!(e.to_string().contains("unknown key `AGENTIC_LISTN`"), "{e}");
    }
}
