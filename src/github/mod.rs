//! Talking to GitHub: App auth, one client per installation, one retry
//! layer, the content-creation rate limit, and small owned response types.

pub mod auth;
pub mod client;
pub mod types;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota};
use secrecy::SecretString;

pub use client::GitHub;

/// Sent on every request, as GitHub asks.
pub const USER_AGENT: &str = concat!("agentic/", env!("CARGO_PKG_VERSION"));
/// The REST API version we are written against.
pub const API_VERSION: &str = "2022-11-28";
/// How long a looked-up repository role is trusted. Short, so that a
/// revoked permission stops working within a minute.
const ROLE_TTL: Duration = Duration::from_secs(60);
/// Most cached roles; the cache is emptied past this.
const ROLE_CACHE_MAX: usize = 10_000;

/// A failed GitHub call, with what is needed to decide on a retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub answered {status} to {what}")]
    Status {
        status: u16,
        what: String,
        /// How long GitHub asked us to wait, or our estimate of it.
        retry_after: Option<Duration>,
    },
    #[error("cannot reach GitHub for {what}: {reason}")]
    Transport { what: String, reason: String },
    #[error("unexpected answer from GitHub to {what}: {reason}")]
    Decode { what: String, reason: String },
    #[error("{0}")]
    Local(String),
}

impl GitHubError {
    /// Worth trying again later (server errors, rate limits, the network).
    pub fn is_transient(&self) -> bool {
        match self {
            GitHubError::Status {
                status,
                retry_after,
                ..
            } => *status >= 500 || *status == 429 || retry_after.is_some(),
            GitHubError::Transport { .. } => true,
            GitHubError::Decode { .. } | GitHubError::Local(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GitHubError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A user's role on a repository, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Not a collaborator.
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Role {
    /// From the permission API's `role_name` (custom roles fall back to the
    /// base `permission`).
    pub fn from_api(role_name: Option<&str>, permission: &str) -> Role {
        let parse = |s: &str| match s {
            "admin" => Some(Role::Admin),
            "maintain" => Some(Role::Maintain),
            "write" | "push" => Some(Role::Write),
            "triage" => Some(Role::Triage),
            "read" | "pull" => Some(Role::Read),
            _ => None,
        };
        role_name
            .and_then(parse)
            .or_else(|| parse(permission))
            .unwrap_or(Role::None)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Read => "read",
            Role::Triage => "triage",
            Role::Write => "write",
            Role::Maintain => "maintain",
            Role::Admin => "admin",
        }
    }
}

/// What every installation client shares: GitHub's limits on content
/// creation and the role cache.
pub struct Shared {
    /// GitHub's secondary limit on content creation, per installation.
    per_minute: DefaultKeyedRateLimiter<u64>,
    per_hour: DefaultKeyedRateLimiter<u64>,
    roles: Mutex<HashMap<(String, String), (Role, Instant)>>,
}

/// GitHub allows 80 content-creating requests a minute; we stay under.
const CONTENT_PER_MINUTE: u32 = 75;
/// …and 500 an hour.
const CONTENT_PER_HOUR: u32 = 480;

impl Shared {
    fn new() -> Shared {
        let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Shared {
            per_minute: DefaultKeyedRateLimiter::keyed(Quota::per_minute(nz(CONTENT_PER_MINUTE))),
            per_hour: DefaultKeyedRateLimiter::keyed(Quota::per_hour(nz(CONTENT_PER_HOUR))),
            roles: Mutex::new(HashMap::new()),
        }
    }

    /// Wait until another content-creating request is within GitHub's limits.
    pub async fn content_slot(&self, installation: u64) {
        self.per_hour.until_key_ready(&installation).await;
        self.per_minute.until_key_ready(&installation).await;
    }

    pub(crate) fn cached_role(&self, repo: &str, user: &str) -> Option<Role> {
        let roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        roles
            .get(&(repo.to_string(), user.to_string()))
            .filter(|(_, at)| at.elapsed() < ROLE_TTL)
            .map(|(r, _)| *r)
    }

    pub(crate) fn cache_role(&self, repo: &str, user: &str, role: Role) {
        let mut roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        if roles.len() >= ROLE_CACHE_MAX {
            roles.clear();
        }
        roles.insert((repo.to_string(), user.to_string()), (role, Instant::now()));
    }
}

/// The App: its auth, and one client per installation.
pub struct GitHubApp {
    pub app_id: u64,
    pub auth: auth::AppAuth,
    pub api_url: String,
    shared: Arc<Shared>,
    /// One client per installation, rebuilt when its token is replaced.
    clients: Mutex<HashMap<u64, (std::time::SystemTime, GitHub)>>,
}

impl GitHubApp {
    pub fn new(
        app_id: u64,
        private_key: &SecretString,
        api_url: &str,
    ) -> anyhow::Result<Arc<GitHubApp>> {
        Ok(Arc::new(GitHubApp {
            app_id,
            auth: auth::AppAuth::new(app_id, private_key, api_url)?,
            api_url: api_url.trim_end_matches('/').to_string(),
            shared: Arc::new(Shared::new()),
            clients: Mutex::new(HashMap::new()),
        }))
    }

    /// Drop what is cached for an installation (it was uninstalled).
    pub fn forget(&self, installation: u64) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&installation);
        self.auth.forget(installation);
    }

    /// A client acting as `installation`, with a token that has time left.
    pub async fn installation(&self, installation: u64) -> Result<GitHub, GitHubError> {
        let token = self.auth.installation_token(installation).await?;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((expires_at, client)) = clients.get(&installation) {
            if *expires_at == token.expires_at {
                return Ok(client.clone());
            }
        }
        let client = GitHub::new(
            &self.api_url,
            token.token,
            Some((self.shared.clone(), installation)),
        )?;
        clients.insert(installation, (token.expires_at, client.clone()));
        Ok(client)
    }
}

/// A personal token client (the CLI): no App, no installation.
pub fn with_token(api_url: &str, token: SecretString) -> Result<GitHub, GitHubError> {
    GitHub::new(api_url, token, None)
}
