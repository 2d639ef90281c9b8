//! One installation's client, and the single retry layer for GitHub calls.

pub use super::rate::MAX_RETRY_AFTER;
use super::rate::{retry_after_of, SECONDARY_LIMIT_WAIT};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use http_body_util::BodyExt;
use octocrab::Octocrab;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::AppAuth;
use super::types::{
    Annotation, CheckRunInfo, CheckRunPage, Comment, Comparison, Content, Created, Issue,
    Permission, PullFile, PullRequest, Review, ReviewComment,
};
use super::{GitHubError, Shared, TokenScope};
use crate::domain::Role;

/// Tries of one idempotent request, the first included.
pub(super) const MAX_TRIES: u32 = 3;
/// First pause between tries; doubles each time, with jitter.
const RETRY_BASE: Duration = Duration::from_millis(250);
/// A wait GitHub asks for that is longer than this is not spent inside the
/// job: the job is rescheduled instead and its worker slot freed.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(10);
/// Page size for lists (GitHub's maximum).
const PER_PAGE: usize = 100;
/// Most pages read of one list, to bound the work a huge thread can cause.
const MAX_PAGES: usize = 30;
/// Most pages of a commit's check runs read (a matrix of a thousand jobs).
const MAX_CHECK_RUN_PAGES: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Whose writing counts as ours (see [`GitHub::own`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Own {
    Login(String),
    AnyBot,
    /// A personal token: there is no bot user.
    Anyone,
}

/// Where a comment is: on an issue's or pull request's conversation tab,
/// or on a line of a pull request's diff (a review comment). GitHub
/// serves the two under different paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentKind {
    Conversation,
    Review,
}

impl CommentKind {
    fn segment(self) -> &'static str {
        match self {
            CommentKind::Conversation => "issues",
            CommentKind::Review => "pulls",
        }
    }
}

impl Own {
    /// Whether `user` wrote as this App.
    pub fn wrote(&self, user: Option<&super::types::User>) -> bool {
        match self {
            Own::Anyone => true,
            Own::Login(login) => user.is_some_and(|u| u.kind == "Bot" && u.login == *login),
            Own::AnyBot => user.is_some_and(|u| u.kind == "Bot" && u.login.ends_with("[bot]")),
        }
    }
}

/// A client acting as one installation (or as a personal token).
#[derive(Clone)]
pub struct GitHub {
    /// Replaced (for every clone) when GitHub stops taking the token.
    octo: Arc<RwLock<Octocrab>>,
    /// The token `octo` sends, for the few requests made without octocrab
    /// (`logs.rs`); replaced with it.
    token: Arc<RwLock<SecretString>>,
    pub(super) api_url: String,
    app: Option<AppLink>,
}

/// What an installation client shares with its App.
#[derive(Clone)]
pub(crate) struct AppLink {
    pub shared: Arc<Shared>,
    pub auth: Arc<AppAuth>,
    pub scope: TokenScope,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Patch,
}

pub(super) fn backoff(attempt: u32) -> Duration {
    crate::backoff::equal_jitter(RETRY_BASE, MAX_INLINE_WAIT, attempt)
}

impl GitHub {
    pub(crate) fn new(
        api_url: &str,
        token: SecretString,
        app: Option<AppLink>,
    ) -> Result<GitHub, GitHubError> {
        Ok(GitHub {
            octo: Arc::new(RwLock::new(octocrab_for(api_url, token.clone())?)),
            token: Arc::new(RwLock::new(token)),
            api_url: api_url.to_string(),
            app,
        })
    }

    fn octo(&self) -> Octocrab {
        self.octo.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn token(&self) -> SecretString {
        self.token.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// GitHub refused the token (revoked, or the installation changed):
    /// forget it, mint a new one and use it from now on.
    pub(super) async fn renew_token(&self) -> Result<bool, GitHubError> {
        let Some(link) = &self.app else {
            return Ok(false);
        };
        link.auth.forget_scope(&link.scope);
        let token = link.auth.installation_token(&link.scope).await?;
        let octo = octocrab_for(&self.api_url, token.token.clone())?;
        *self.octo.write().unwrap_or_else(|p| p.into_inner()) = octo;
        *self.token.write().unwrap_or_else(|p| p.into_inner()) = token.token;
        tracing::info!(
            installation = link.scope.installation,
            "GitHub refused the installation token; minted a new one"
        );
        Ok(true)
    }

    /// The login of the App's bot user (`<slug>[bot]`); `None` for a
    /// personal-token client, which has no bot.
    pub async fn bot_login(&self) -> Result<Option<String>, GitHubError> {
        match &self.app {
            Some(link) => Ok(Some(link.auth.bot_login().await?)),
            None => Ok(None),
        }
    }

    /// Whose comments and reviews are this App's own: its bot user's;
    /// when GitHub will not say which that is, any App's bot user (an
    /// outsider cannot write as one: installing an App takes an admin); for
    /// a personal token, anyone's.
    pub async fn own(&self) -> Own {
        match self.bot_login().await {
            Ok(Some(login)) => Own::Login(login),
            Ok(None) => Own::Anyone,
            Err(e) => {
                tracing::warn!(error = %e, "cannot learn the App's bot login; trusting bot users only");
                Own::AnyBot
            }
        }
    }

    /// The one retry layer. Idempotent requests (GET, PATCH of a known
    /// resource) are retried on 5xx, rate limits and network errors, waiting
    /// as GitHub asks; a POST, or a PATCH that appends check-run
    /// annotations, is never retried blindly — the caller decides (the
    /// outputs table and comment markers make creation safe to redo; a
    /// recovered review completes its check run without annotations).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<bytes::Bytes, GitHubError> {
        // A check run's annotations are appended by every PATCH that
        // carries them: such a PATCH is not idempotent either.
        let appends = body.is_some_and(|b| {
            b["output"]["annotations"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        });
        let idempotent = method != Method::Post && !appends;
        if method != Method::Get {
            if let Some(link) = &self.app {
                link.shared.content_slot(link.scope.installation).await?;
            }
        }
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            let octo = self.octo();
            let result = match method {
                Method::Get => octo._get(path).await,
                Method::Post => octo._post(path, body).await,
                Method::Patch => octo._patch(path, body).await,
            };
            let (error, wait) = match result {
                Err(e) => (
                    GitHubError::Transport {
                        what: what.to_string(),
                        reason: e.to_string(),
                    },
                    backoff(attempt),
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    if (200..300).contains(&status) {
                        let bytes = response
                            .into_body()
                            .collect()
                            .await
                            .map_err(|e| GitHubError::Transport {
                                what: what.to_string(),
                                reason: e.to_string(),
                            })?
                            .to_bytes();
                        return Ok(bytes);
                    }
                    if status == 401 && !renewed && self.app.is_some() {
                        // Nothing was done with a refused token, so even a
                        // POST may be sent again, once, with a new one.
                        renewed = true;
                        if self.renew_token().await? {
                            attempt -= 1;
                            continue;
                        }
                    }
                    let mut asked = retry_after_of(response.headers(), status);
                    if asked.is_none() && status == 403 {
                        // A secondary rate limit may come as a bare 403 whose
                        // message is the only sign; a permission 403 is final.
                        let text = response
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if String::from_utf8_lossy(&text)
                            .to_lowercase()
                            .contains("rate limit")
                        {
                            asked = Some(SECONDARY_LIMIT_WAIT);
                        }
                    }
                    let error = GitHubError::Status {
                        status,
                        what: what.to_string(),
                        retry_after: asked,
                    };
                    if !error.is_transient() {
                        return Err(error);
                    }
                    (error, asked.unwrap_or_else(|| backoff(attempt)))
                }
            };
            if !idempotent || attempt >= MAX_TRIES || wait > MAX_INLINE_WAIT {
                tracing::warn!(%error, attempt, "GitHub call failed");
                return Err(match error {
                    GitHubError::Status {
                        status,
                        what,
                        retry_after,
                    } => GitHubError::Status {
                        status,
                        what,
                        retry_after: retry_after.or(Some(wait)),
                    },
                    other => other,
                });
            }
            tracing::debug!(%error, attempt, wait_ms = wait.as_millis() as u64, "GitHub call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T, GitHubError> {
        let bytes = self.send(Method::Get, path, None, what).await?;
        decode(&bytes, what)
    }

    async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
        what: &str,
    ) -> Result<T, GitHubError> {
        let body = serde_json::to_value(body).map_err(|e| GitHubError::Local(e.to_string()))?;
        let bytes = self.send(method, path, Some(&body), what).await?;
        decode(&bytes, what)
    }

    /// Every page of a list, up to [`MAX_PAGES`]. Pages are requested by
    /// relative path, never by following an absolute `Link` (which octocrab
    /// would send without credentials to a non-github.com host).
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Vec<T>, GitHubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let items: Vec<T> = self
                .get(&format!("{path}{sep}per_page={PER_PAGE}&page={page}"), what)
                .await?;
            let full = items.len() == PER_PAGE;
            all.extend(items);
            if !full {
                break;
            }
        }
        Ok(all)
    }

    pub async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, GitHubError> {
        self.get(
            &format!("/repos/{repo}/pulls/{number}"),
            &format!("GET pull request {repo}#{number}"),
        )
        .await
    }

    pub async fn pull_files(&self, repo: &str, number: u64) -> Result<Vec<PullFile>, GitHubError> {
        self.list(
            &format!("/repos/{repo}/pulls/{number}/files"),
            &format!("GET files of {repo}#{number}"),
        )
        .await
    }

    /// How `head` relates to `base`, with the files changed between them;
    /// `None` when GitHub does not know `base` (a force-push rewrote it
    /// and it was collected).
    pub async fn compare(
        &self,
        repo: &str,
        base: &str,
        head: &str,
    ) -> Result<Option<Comparison>, GitHubError> {
        let result = self
            .get(
                &format!(
                    "/repos/{repo}/compare/{}...{}",
                    urlencode(base),
                    urlencode(head)
                ),
                &format!("GET compare {base}...{head} in {repo}"),
            )
            .await;
        match result {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The commit at the head of the repository's default branch.
    pub async fn default_branch_head(&self, repo: &str) -> Result<String, GitHubError> {
        #[derive(serde::Deserialize)]
        struct Repository {
            default_branch: String,
        }
        #[derive(serde::Deserialize)]
        struct Commit {
            sha: String,
        }
        #[derive(serde::Deserialize)]
        struct Branch {
            commit: Commit,
        }
        let r: Repository = self
            .get(&format!("/repos/{repo}"), &format!("GET repository {repo}"))
            .await?;
        let b: Branch = self
            .get(
                &format!("/repos/{repo}/branches/{}", urlencode(&r.default_branch)),
                &format!("GET branch {} of {repo}", r.default_branch),
            )
            .await?;
        Ok(b.commit.sha)
    }

    /// The reviews of a pull request, oldest first.
    pub async fn reviews(&self, repo: &str, number: u64) -> Result<Vec<Review>, GitHubError> {
        self.list(
            &format!("/repos/{repo}/pulls/{number}/reviews"),
            &format!("GET reviews of {repo}#{number}"),
        )
        .await
    }

    /// Replace a pull request's description.
    pub async fn update_pull_body(
        &self,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .write(
                Method::Patch,
                &format!("/repos/{repo}/pulls/{number}"),
                &serde_json::json!({ "body": body }),
                &format!("PATCH description of {repo}#{number}"),
            )
            .await?;
        Ok(())
    }

    pub async fn issue(&self, repo: &str, number: u64) -> Result<Issue, GitHubError> {
        self.get(
            &format!("/repos/{repo}/issues/{number}"),
            &format!("GET issue {repo}#{number}"),
        )
        .await
    }

    /// One issue or pull-request comment, as it is now.
    pub async fn comment(&self, repo: &str, id: u64) -> Result<Comment, GitHubError> {
        self.get(
            &format!("/repos/{repo}/issues/comments/{id}"),
            &format!("GET comment {id} in {repo}"),
        )
        .await
    }

    pub async fn comments(&self, repo: &str, number: u64) -> Result<Vec<Comment>, GitHubError> {
        self.list(
            &format!("/repos/{repo}/issues/{number}/comments"),
            &format!("GET comments of {repo}#{number}"),
        )
        .await
    }

    /// A file's text at `git_ref` (the default branch when `None`); `None`
    /// if it does not exist there.
    pub async fn file(
        &self,
        repo: &str,
        path: &str,
        git_ref: Option<&str>,
    ) -> Result<Option<(String, u64)>, GitHubError> {
        let at = git_ref.unwrap_or("the default branch");
        let what = format!("GET {path} at {at} in {repo}");
        let encoded: String = path.split('/').map(urlencode).collect::<Vec<_>>().join("/");
        let url = match git_ref {
            Some(r) => format!("/repos/{repo}/contents/{encoded}?ref={}", urlencode(r)),
            None => format!("/repos/{repo}/contents/{encoded}"),
        };
        let result: Result<Content, _> = self.get(&url, &what).await;
        let content = match result {
            Ok(c) => c,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        if content.kind != "file" {
            return Err(GitHubError::Decode {
                what,
                reason: format!("`{path}` is a {}, not a file", content.kind),
            });
        }
        // From 1 MB on, the contents API sends no content (encoding
        // "none"): say so rather than read the file as empty.
        if content.encoding.as_deref() == Some("none")
            || (content.size > 0 && content.content.as_deref().is_none_or(str::is_empty))
        {
            return Err(GitHubError::Decode {
                what,
                reason: format!(
                    "`{path}` is {} bytes, more than the 1 MB GitHub's contents API returns; it was not read",
                    content.size
                ),
            });
        }
        let raw = content
            .content
            .unwrap_or_default()
            .replace(['\n', '\r'], "");
        let bytes = match content.encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|e| GitHubError::Decode {
                    what: what.clone(),
                    reason: e.to_string(),
                })?,
            _ => raw.into_bytes(),
        };
        Ok(Some((
            String::from_utf8_lossy(&bytes).into_owned(),
            content.size,
        )))
    }

    /// The user's role on the repository, from the collaborator-permission
    /// API (cached briefly). Author associations in payloads are not used:
    /// they do not say whether someone may act.
    pub async fn role(&self, repo: &str, user: &str) -> Result<Role, GitHubError> {
        if let Some(link) = &self.app {
            if let Some(role) = link.shared.cached_role(repo, user) {
                return Ok(role);
            }
        }
        self.fresh_role(repo, user).await
    }

    /// [`GitHub::role`] asked of GitHub now, past the cache (which it
    /// refreshes): for the checks right before an apply.
    pub async fn fresh_role(&self, repo: &str, user: &str) -> Result<Role, GitHubError> {
        let what = format!("GET permission of {user} on {repo}");
        let result: Result<Permission, _> = self
            .get(
                &format!("/repos/{repo}/collaborators/{}/permission", urlencode(user)),
                &what,
            )
            .await;
        let role = match result {
            Ok(p) => Role::from_api(p.role_name.as_deref(), &p.permission),
            // Only a definite answer denies: "not a collaborator" (404) or
            // a plain 403. A rate limit says nothing about the user and
            // goes back to the job as a wait.
            Err(e) if e.status() == Some(404) => Role::None,
            Err(e) if e.status() == Some(403) && !e.is_rate_limit() => Role::None,
            Err(e) => return Err(e),
        };
        if let Some(link) = &self.app {
            link.shared.cache_role(repo, user, role);
        }
        Ok(role)
    }

    /// React to comment `comment_id` (on the conversation tab or on a
    /// line of the diff, as `kind` says).
    pub async fn react_to_comment(
        &self,
        repo: &str,
        kind: CommentKind,
        comment_id: u64,
        content: &str,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .write(
                // Idempotent on GitHub's side (an existing reaction is 200).
                Method::Post,
                &format!(
                    "/repos/{repo}/{}/comments/{comment_id}/reactions",
                    kind.segment()
                ),
                &serde_json::json!({ "content": content }),
                &format!("POST reaction to comment {comment_id} in {repo}"),
            )
            .await?;
        Ok(())
    }

    /// One comment on a line of a pull request's diff.
    pub async fn review_comment(&self, repo: &str, id: u64) -> Result<ReviewComment, GitHubError> {
        self.get(
            &format!("/repos/{repo}/pulls/comments/{id}"),
            &format!("GET review comment {id} in {repo}"),
        )
        .await
    }

    /// Answer in the thread of review comment `root` (the thread's first).
    pub async fn reply_in_thread(
        &self,
        repo: &str,
        number: u64,
        root: u64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        self.write(
            Method::Post,
            &format!("/repos/{repo}/pulls/{number}/comments/{root}/replies"),
            &serde_json::json!({ "body": body }),
            &format!("POST reply in a review thread of {repo}#{number}"),
        )
        .await
    }

    /// The latest check run of each name on commit `sha`, every App's, up
    /// to [`MAX_CHECK_RUN_PAGES`] pages.
    pub async fn check_runs_at(
        &self,
        repo: &str,
        sha: &str,
    ) -> Result<Vec<CheckRunInfo>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=MAX_CHECK_RUN_PAGES {
            let got: CheckRunPage = self
                .get(
                    &format!(
                        "/repos/{repo}/commits/{}/check-runs?filter=latest&per_page={PER_PAGE}&page={page}",
                        urlencode(sha)
                    ),
                    &format!("GET check runs of {repo}@{sha}"),
                )
                .await?;
            let full = got.check_runs.len() == PER_PAGE;
            all.extend(got.check_runs);
            if !full || all.len() as u64 >= got.total_count {
                break;
            }
        }
        Ok(all)
    }

    /// What check run `id` says of itself: title, summary, text.
    pub async fn check_run_output(
        &self,
        repo: &str,
        id: u64,
    ) -> Result<super::types::CheckOutput, GitHubError> {
        let run: super::types::CheckRunDetail = self
            .get(
                &format!("/repos/{repo}/check-runs/{id}"),
                &format!("GET check run {id} in {repo}"),
            )
            .await?;
        Ok(run.output)
    }

    /// A check run's annotations (at most one page: the first failures
    /// say what the rest would).
    pub async fn check_run_annotations(
        &self,
        repo: &str,
        id: u64,
    ) -> Result<Vec<Annotation>, GitHubError> {
        self.get(
            &format!("/repos/{repo}/check-runs/{id}/annotations?per_page=50"),
            &format!("GET annotations of check run {id} in {repo}"),
        )
        .await
    }

    /// The inline review comments of a pull request, oldest first.
    pub async fn review_comments(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Vec<ReviewComment>, GitHubError> {
        self.list(
            &format!("/repos/{repo}/pulls/{number}/comments"),
            &format!("GET review comments of {repo}#{number}"),
        )
        .await
    }

    /// Post a review with its inline comments, in one request (GitHub takes
    /// all of them or none). The event is always `COMMENT`: the bot never
    /// approves or requests changes, whatever it was told. `comments` are
    /// in GitHub's shape (`path`, `line`, `side`, `start_line`, `body`).
    /// Returns the review's id. Not retried blindly: a POST.
    pub async fn create_review(
        &self,
        repo: &str,
        number: u64,
        commit_id: &str,
        body: &str,
        comments: &[serde_json::Value],
    ) -> Result<u64, GitHubError> {
        let created: Created = self
            .write(
                Method::Post,
                &format!("/repos/{repo}/pulls/{number}/reviews"),
                &serde_json::json!({
                    "commit_id": commit_id,
                    "body": body,
                    "event": "COMMENT",
                    "comments": comments,
                }),
                &format!("POST review on {repo}#{number}"),
            )
            .await?;
        Ok(created.id)
    }

    /// Start a check run on `head_sha` (`in_progress`, with `output`'s
    /// title and summary); its id.
    pub async fn create_check_run(
        &self,
        repo: &str,
        name: &str,
        head_sha: &str,
        external_id: &str,
        output: &serde_json::Value,
    ) -> Result<u64, GitHubError> {
        let created: Created = self
            .write(
                Method::Post,
                &format!("/repos/{repo}/check-runs"),
                &serde_json::json!({
                    "name": name,
                    "head_sha": head_sha,
                    "status": "in_progress",
                    "external_id": external_id,
                    "output": output,
                }),
                &format!("POST check run {name} in {repo}"),
            )
            .await?;
        Ok(created.id)
    }

    /// Update a check run (status, conclusion, output with at most 50
    /// annotations — GitHub appends them across updates — and actions).
    pub async fn update_check_run(
        &self,
        repo: &str,
        id: u64,
        update: &serde_json::Value,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .write(
                Method::Patch,
                &format!("/repos/{repo}/check-runs/{id}"),
                update,
                &format!("PATCH check run {id} in {repo}"),
            )
            .await?;
        Ok(())
    }

    pub async fn create_comment(
        &self,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        self.write(
            Method::Post,
            &format!("/repos/{repo}/issues/{number}/comments"),
            &serde_json::json!({ "body": body }),
            &format!("POST comment on {repo}#{number}"),
        )
        .await
    }

    /// Edit comment `comment_id` (on the conversation tab or on a line of
    /// the diff, as `kind` says).
    pub async fn update_comment(
        &self,
        repo: &str,
        kind: CommentKind,
        comment_id: u64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        self.write(
            Method::Patch,
            &format!("/repos/{repo}/{}/comments/{comment_id}", kind.segment()),
            &serde_json::json!({ "body": body }),
            &format!("PATCH comment {comment_id} in {repo}"),
        )
        .await
    }
}

fn octocrab_for(api_url: &str, token: SecretString) -> Result<Octocrab, GitHubError> {
    let local = |e: octocrab::Error| GitHubError::Local(format!("building the GitHub client: {e}"));
    // octocrab sends its own User-Agent; adding ours would send two.
    Octocrab::builder()
        .base_uri(api_url)
        .map_err(local)?
        .personal_token(token)
        .add_header(http::header::ACCEPT, "application/vnd.github+json".into())
        .add_header(
            http::HeaderName::from_static("x-github-api-version"),
            super::API_VERSION.into(),
        )
        .set_connect_timeout(Some(CONNECT_TIMEOUT))
        .set_read_timeout(Some(READ_TIMEOUT))
        .build()
        .map_err(local)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, GitHubError> {
    serde_json::from_slice(bytes).map_err(|e| GitHubError::Decode {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

/// Percent-encode one path segment or query value.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_clamped() {
        let mut headers = http::HeaderMap::new();
        headers.insert("retry-after", "18446744073709551615".parse().unwrap());
        assert_eq!(retry_after_of(&headers, 403), Some(MAX_RETRY_AFTER));
        headers.insert("retry-after", "20".parse().unwrap());
        assert_eq!(retry_after_of(&headers, 403), Some(Duration::from_secs(20)));
        let mut reset = http::HeaderMap::new();
        reset.insert("x-ratelimit-remaining", "0".parse().unwrap());
        reset.insert("x-ratelimit-reset", "18446744073709551615".parse().unwrap());
        assert_eq!(retry_after_of(&reset, 403), Some(MAX_RETRY_AFTER));
    }
}
