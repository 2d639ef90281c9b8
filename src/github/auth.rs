//! GitHub App authentication: a short-lived JWT signed with the App's key,
//! exchanged for installation access tokens that are cached per
//! installation until shortly before they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{GitHubError, TokenScope};

/// `iat` is set this far in the past, as GitHub advises, to allow for clock
/// drift between us and GitHub.
const JWT_BACKDATE: Duration = Duration::from_secs(60);
/// A JWT lives this long; GitHub refuses more than 10 minutes.
const JWT_LIFETIME: Duration = Duration::from_secs(9 * 60);
/// A cached installation token is replaced this long before it expires, so
/// no request starts with a token about to die.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long we wait for GitHub to mint a token.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: String,
}

/// An installation token and when it stops working.
#[derive(Clone)]
pub struct InstallationToken {
    pub token: SecretString,
    pub expires_at: SystemTime,
}

/// Signs App JWTs and keeps installation tokens.
pub struct AppAuth {
    app_id: u64,
    key: EncodingKey,
    api_url: String,
    http: reqwest::Client,
    tokens: Mutex<HashMap<TokenScope, InstallationToken>>,
    /// `<slug>[bot]`, the login this App's comments carry (asked once).
    bot_login: tokio::sync::OnceCell<String>,
}

impl AppAuth {
    /// `pem` is the App's RSA private key.
    pub fn new(app_id: u64, pem: &SecretString, api_url: &str) -> anyhow::Result<AppAuth> {
        let key = EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes())
            .context("the GitHub App private key is not an RSA key in PEM form")?;
        let http = reqwest::Client::builder()
            .user_agent(super::USER_AGENT)
            .timeout(TOKEN_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(AppAuth {
            app_id,
            key,
            api_url: api_url.trim_end_matches('/').to_string(),
            http,
            tokens: Mutex::new(HashMap::new()),
            bot_login: tokio::sync::OnceCell::new(),
        })
    }

    /// A fresh App JWT (RS256; `iat` 60 s back; expires within 10 minutes).
    pub fn jwt(&self) -> anyhow::Result<SecretString> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?;
        let claims = Claims {
            iat: (now - JWT_BACKDATE).as_secs(),
            exp: (now + JWT_LIFETIME).as_secs(),
            iss: self.app_id.to_string(),
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .context("signing the App JWT")?;
        Ok(SecretString::from(jwt))
    }

    /// A token for `scope`, from the cache while it has more than the
    /// refresh margin left, else newly minted: limited to the scope's
    /// repository and access.
    pub async fn installation_token(
        &self,
        scope: &TokenScope,
    ) -> Result<InstallationToken, GitHubError> {
        if let Some(t) = self.cached(scope) {
            return Ok(t);
        }
        let installation = scope.installation;
        let url = format!(
            "{}/app/installations/{installation}/access_tokens",
            self.api_url
        );
        let what = format!("an access token for installation {installation}");
        let scoped = self
            .call_as_app(
                self.http.post(&url).json(&scope.request_body()),
                what.clone(),
            )
            .await;
        let body: AccessToken = match scoped {
            Ok(body) => body,
            // GitHub refuses a narrowing it cannot grant (an installation
            // made with fewer permissions, a repository no longer selected):
            // the installation's own token still lets the job run, or fail
            // with a clear answer from the repository itself.
            Err(
                e @ GitHubError::Status {
                    status: 400 | 422, ..
                },
            ) if scope.access != super::Access::ActionsLogs => {
                tracing::warn!(error = %e, installation, repo = ?scope.repo, "GitHub refused a narrowed token; using the installation's token");
                self.call_as_app(self.http.post(&url), what).await?
            }
            Err(e) => return Err(e),
        };
        let expires_at = chrono::DateTime::parse_from_rfc3339(&body.expires_at)
            .ok()
            .and_then(|t| u64::try_from(t.timestamp()).ok())
            .map(|s| UNIX_EPOCH + Duration::from_secs(s))
            // Tokens last an hour; if the date is unreadable, assume less.
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(30 * 60));
        let token = InstallationToken {
            token: SecretString::from(body.token),
            expires_at,
        };
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope.clone(), token.clone());
        tracing::debug!(installation, repo = ?scope.repo, access = ?scope.access, "minted an installation token");
        Ok(token)
    }

    /// Drop every cached token of an installation.
    pub fn forget(&self, installation: u64) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|scope, _| scope.installation != installation);
    }

    /// Drop one cached token (GitHub no longer takes it).
    pub fn forget_scope(&self, scope: &TokenScope) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scope);
    }

    /// The login of this App's bot user, `<slug>[bot]`, from `GET /app`.
    pub async fn bot_login(&self) -> Result<String, GitHubError> {
        self.bot_login
            .get_or_try_init(|| async {
                #[derive(Deserialize)]
                struct App {
                    slug: String,
                }
                let url = format!("{}/app", self.api_url);
                let app: App = self
                    .call_as_app(self.http.get(url), "GET /app".to_string())
                    .await?;
                Ok(format!("{}[bot]", app.slug))
            })
            .await
            .cloned()
    }

    /// Send `request` authenticated as the App (a fresh JWT) and read its
    /// JSON answer; `what` names it in errors.
    async fn call_as_app<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: String,
    ) -> Result<T, GitHubError> {
        let jwt = self
            .jwt()
            .map_err(|e| GitHubError::Local(format!("{e:#}")))?;
        let response = request
            .bearer_auth(jwt.expose_secret())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", super::API_VERSION)
            .send()
            .await
            .map_err(|e| GitHubError::Transport {
                what: what.clone(),
                reason: e.without_url().to_string(),
            })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = super::rate::retry_after_of(response.headers(), status.as_u16());
            return Err(GitHubError::Status {
                status: status.as_u16(),
                what,
                retry_after,
            });
        }
        response.json().await.map_err(|e| GitHubError::Decode {
            what,
            reason: e.without_url().to_string(),
        })
    }

    fn cached(&self, scope: &TokenScope) -> Option<InstallationToken> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let t = tokens.get(scope)?;
        let left = t.expires_at.duration_since(SystemTime::now()).ok()?;
        (left > TOKEN_REFRESH_MARGIN).then(|| t.clone())
    }
}
