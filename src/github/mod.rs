//! Talking to GitHub: App auth, one client per installation, one retry
//! layer, the content-creation rate limit, and small owned response types.

pub mod auth;
pub mod client;
mod logs;
pub mod rate;
pub mod types;

use crate::domain::Role;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;

pub use client::{CommentKind, GitHub, Own};

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
    /// Our own limiter on content creation (GitHub's secondary limit) asks
    /// for a wait longer than a job should hold its worker for.
    #[error("holding back to stay under GitHub's limit on content creation (next slot in {} s)", .retry_after.as_secs())]
    Throttled { retry_after: Duration },
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
            GitHubError::Transport { .. } | GitHubError::Throttled { .. } => true,
            GitHubError::Decode { .. } | GitHubError::Local(_) => false,
        }
    }

    /// A rate limit, ours or GitHub's: the work is fine and only has to
    /// wait, so the wait does not count as a failed attempt.
    pub fn is_rate_limit(&self) -> bool {
        match self {
            GitHubError::Throttled { .. } => true,
            GitHubError::Status {
                status,
                retry_after,
                ..
            } => (*status == 403 || *status == 429) && retry_after.is_some(),
            _ => false,
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
            GitHubError::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// What every installation client shares: GitHub's limits on content
/// creation and the role cache.
pub struct Shared {
    /// GitHub's secondary limit on content creation, per installation,
    /// counted in the store so that it holds across replicas.
    store: crate::store::Store,
    quota: ContentQuota,
    roles: Mutex<HashMap<(String, String), (Role, Instant)>>,
}

/// The longest a job waits in place for a content-creation slot; beyond
/// it the job is rescheduled (a few seconds: long enough to smooth a burst,
/// short enough that a worker is not held hostage by one busy installation).
pub const MAX_CONTENT_WAIT: Duration = Duration::from_secs(3);

/// How many content-creating requests (comments, reactions, edits, reviews)
/// one installation may make. GitHub allows 80 a minute and 500 an hour;
/// the defaults stay under both. A GitHub Enterprise Server may set others.
#[derive(Debug, Clone, Copy)]
pub struct ContentQuota {
    pub per_minute: u32,
    pub per_hour: u32,
}

impl Default for ContentQuota {
    fn default() -> Self {
        ContentQuota {
            per_minute: 75,
            per_hour: 480,
        }
    }
}

impl Shared {
    fn new(store: crate::store::Store, quota: ContentQuota) -> Shared {
        Shared {
            store,
            quota,
            roles: Mutex::new(HashMap::new()),
        }
    }

    /// Take a slot for one content-creating request, waiting for it in
    /// place only up to [`MAX_CONTENT_WAIT`]; a longer wait is handed back
    /// as [`GitHubError::Throttled`] so the job is rescheduled and its
    /// worker serves someone else meanwhile.
    pub async fn content_slot(&self, installation: u64) -> Result<(), GitHubError> {
        use crate::store::Admission;
        let limits = [
            ("minute", Duration::from_secs(60), self.quota.per_minute),
            ("hour", Duration::from_secs(3600), self.quota.per_hour),
        ];
        for (name, period, quota) in limits {
            let key = format!("content:{name}:{installation}");
            let quota = quota.max(1);
            loop {
                let admitted = self
                    .store
                    .admit(&key, period / quota, quota, 1)
                    .await
                    .map_err(|e| GitHubError::Transport {
                        what: "a content-creation slot".into(),
                        reason: format!("{e:#}"),
                    })?;
                match admitted {
                    Admission::Allowed => break,
                    Admission::Wait(wait) if wait <= MAX_CONTENT_WAIT => {
                        tokio::time::sleep(wait).await;
                    }
                    Admission::Wait(wait) => {
                        return Err(GitHubError::Throttled {
                            retry_after: wait.max(Duration::from_secs(1)),
                        });
                    }
                }
            }
        }
        Ok(())
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

/// What a token may do: a job that only reads gets a read-only token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    /// Reading GitHub Actions' job logs, and nothing else. Never widened:
    /// an installation that has not accepted `actions: read` gets no such
    /// token, rather than its full one.
    ActionsLogs,
}

/// Which token: an installation, narrowed to one repository where a job
/// concerns one, and to reading where it only reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenScope {
    pub installation: u64,
    /// `owner/name`; `None` for the whole installation.
    pub repo: Option<String>,
    pub access: Access,
}

impl TokenScope {
    /// The body of `POST /app/installations/{id}/access_tokens` that asks
    /// for this scope: the repository by name, and the App's permissions
    /// cut down to what the access needs.
    pub fn request_body(&self) -> serde_json::Value {
        // Only what the workflows use: comments, reactions and reviews
        // (issues, pull requests), check runs, reading code and metadata;
        // or, for Actions' logs, those alone.
        let permissions = match self.access {
            Access::Read | Access::Write => {
                let level = if self.access == Access::Read {
                    "read"
                } else {
                    "write"
                };
                serde_json::json!({
                    "issues": level, "pull_requests": level, "checks": level,
                    "contents": "read", "metadata": "read"
                })
            }
            Access::ActionsLogs => serde_json::json!({ "actions": "read", "metadata": "read" }),
        };
        let mut body = serde_json::json!({ "permissions": permissions });
        if let Some(repo) = &self.repo {
            let name = repo.rsplit('/').next().unwrap_or(repo);
            body["repositories"] = serde_json::json!([name]);
        }
        body
    }
}

/// The App: its auth, and one client per token scope.
pub struct GitHubApp {
    pub app_id: u64,
    pub auth: Arc<auth::AppAuth>,
    pub api_url: String,
    shared: Arc<Shared>,
    /// One client per scope, rebuilt when its token is replaced.
    clients: Mutex<HashMap<TokenScope, (std::time::SystemTime, GitHub)>>,
}

impl GitHubApp {
    pub fn new(
        app_id: u64,
        private_key: &SecretString,
        api_url: &str,
        quota: ContentQuota,
        store: crate::store::Store,
    ) -> anyhow::Result<Arc<GitHubApp>> {
        Ok(Arc::new(GitHubApp {
            app_id,
            auth: Arc::new(auth::AppAuth::new(app_id, private_key, api_url)?),
            api_url: api_url.trim_end_matches('/').to_string(),
            shared: Arc::new(Shared::new(store, quota)),
            clients: Mutex::new(HashMap::new()),
        }))
    }

    /// Drop what is cached for an installation (it was uninstalled).
    pub fn forget(&self, installation: u64) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|scope, _| scope.installation != installation);
        self.auth.forget(installation);
    }

    /// A client acting as `installation` on every repository it can reach,
    /// with write access.
    pub async fn installation(&self, installation: u64) -> Result<GitHub, GitHubError> {
        self.client(TokenScope {
            installation,
            repo: None,
            access: Access::Write,
        })
        .await
    }

    /// A client whose token is limited to `scope`, with time left.
    pub async fn client(&self, scope: TokenScope) -> Result<GitHub, GitHubError> {
        let token = self.auth.installation_token(&scope).await?;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((expires_at, client)) = clients.get(&scope) {
            if *expires_at == token.expires_at {
                return Ok(client.clone());
            }
        }
        let client = GitHub::new(
            &self.api_url,
            token.token,
            Some(client::AppLink {
                shared: self.shared.clone(),
                auth: self.auth.clone(),
                scope: scope.clone(),
            }),
        )?;
        clients.insert(scope, (token.expires_at, client.clone()));
        Ok(client)
    }
}

/// A personal token client (the CLI): no App, no installation.
pub fn with_token(api_url: &str, token: SecretString) -> Result<GitHub, GitHubError> {
    GitHub::new(api_url, token, None)
}
