//! A stateful fake of GitHub's REST API on loopback, strict where GitHub is
//! strict: installation tokens only for a JWT signed with the App's key and
//! within GitHub's time limits; every other call needs such a token; every
//! write is recorded so a test can assert on exactly what the bot posted.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

pub const APP_ID: u64 = 1048576;
/// The App's slug; its bot user is `agentic-devops[bot]`.
pub const APP_SLUG: &str = "agentic-devops";
pub const BOT: &str = "agentic-devops[bot]";
pub const INSTALLATION: u64 = 48151623;
pub const REPO: &str = "acme-platform/infra-live";
/// A second installation, of another organization, with one repository.
pub const INSTALLATION_B: u64 = 59265358;
pub const REPO_B: &str = "globex-corp/payments";

/// The repository an installation can reach.
fn repo_of(installation: &str) -> Option<&'static str> {
    if installation == INSTALLATION.to_string() {
        Some(REPO)
    } else if installation == INSTALLATION_B.to_string() {
        Some(REPO_B)
    } else {
        None
    }
}
/// The commit at the head of the repositories' default branch.
pub const DEFAULT_BRANCH_HEAD: &str = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0";
pub const PUBLIC_KEY: &str = include_str!("test-app-key.pub.pem");

#[derive(Debug, Clone)]
pub struct Write {
    pub method: String,
    pub path: String,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct CommentData {
    pub id: u64,
    pub user: String,
    pub user_type: String,
    pub body: String,
    /// When it was created and last written, as GitHub writes times (with
    /// milliseconds here, so that tests can order events within a second).
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default)]
pub struct Thread {
    pub title: String,
    pub body: String,
    pub author: String,
    /// `User` when empty; `Bot` for a bot-authored pull request.
    pub author_type: String,
    pub pull: Option<Pull>,
    pub comments: Vec<CommentData>,
}

impl Thread {
    /// Issue 57 of the tests: an infrastructure request, no comments yet.
    pub fn staging_issue() -> Thread {
        Thread {
            title: "Stop the idle staging builders".into(),
            body: "The builders tagged env=staging run all weekend.".into(),
            author: "alice-ops".into(),
            author_type: String::new(),
            pull: None,
            comments: vec![],
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Pull {
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    /// (filename, patch): the pull request's whole diff at its head.
    pub files: Vec<(String, String)>,
    pub draft: bool,
    /// Files GitHub lists without a `patch` (binary, or too large a diff).
    pub no_patch: Vec<String>,
    /// Pushes, oldest first: (head sha, the files that push changed), for
    /// the compare API. Empty until the first [`FakeGitHub::push`].
    pub history: Vec<(String, Vec<(String, String)>)>,
    /// Heads a force-push rewrote: compare answers `diverged` for them.
    pub rewritten: Vec<String>,
    /// `closed` when set.
    pub state: String,
}

/// What a token may do, as GitHub scoped it when minting.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// The installation's repository (`None`: a personal token, any).
    pub home: Option<&'static str>,
    /// Repository names it is limited to; `None` for all.
    pub repos: Option<Vec<String>>,
    pub write: bool,
    /// Narrowed to given permissions (`None`: the installation's all).
    pub permissions: Option<Vec<String>>,
}

impl TokenInfo {
    fn may(&self, permission: &str) -> bool {
        self.permissions
            .as_ref()
            .is_none_or(|p| p.iter().any(|x| x == permission))
    }
}

/// A failure to inject into the next matching request.
#[derive(Debug, Clone)]
pub struct Failure {
    pub method: String,
    pub path_prefix: String,
    pub status: u16,
    /// `retry-after` seconds sent with a 403/429.
    pub retry_after: u64,
    /// Do the request, then answer `status` anyway (the answer was lost).
    pub after_doing: bool,
}

/// A push waiting to land: (pull request, new head, its files).
pub type PendingPush = (u64, String, Vec<(String, String)>);

#[derive(Default)]
pub struct Inner {
    /// A push that lands just before the next listing of a pull request's
    /// files is answered: (number, new head, its files). A head that moves
    /// between two reads of a review.
    pub push_before_files: Option<PendingPush>,
    pub tokens: HashMap<String, TokenInfo>,
    /// Bodies of every token request, in order.
    pub token_requests: Vec<Value>,
    pub roles: HashMap<String, String>,
    pub threads: HashMap<u64, Thread>,
    /// (ref, path) → text
    pub files: HashMap<(String, String), String>,
    pub next_id: u64,
    pub requests: Vec<(String, String)>,
    pub writes: Vec<Write>,
    pub seen_writes: usize,
    /// Answered once each, in order.
    pub failures: VecDeque<Failure>,
    /// Refuse narrowed installation tokens (422), as for an installation
    /// made with fewer permissions than asked for.
    pub refuse_narrowed: bool,
    /// Answer `GET /app` with 404 (a GitHub that will not say).
    pub hide_app: bool,
    /// The repositories' default branch (`main` when empty).
    pub default_branch: String,
    /// Inline review comments by pull request.
    pub review_comments: HashMap<u64, Vec<Value>>,
    /// Reviews by pull request, as GitHub lists them.
    pub reviews: HashMap<u64, Vec<Value>>,
    /// Check runs by id, with their annotations accumulated.
    pub check_runs: HashMap<u64, Value>,
    /// (method, path prefix, latency) added to every matching request.
    pub delays: Vec<(String, String, std::time::Duration)>,
    pub unexpected: Vec<String>,
    /// Check runs of other Apps (GitHub Actions' jobs among them), by id,
    /// with their annotations.
    pub foreign_checks: Vec<Value>,
    /// GitHub Actions job logs by job id, served from `blob_url`.
    pub job_logs: HashMap<u64, String>,
    /// Where job logs are downloaded from: another origin, as GitHub's
    /// short-lived, signed addresses are.
    pub blob_url: String,
    /// Downloads of job logs: (path, whether credentials came with it).
    pub downloads: Vec<(String, bool)>,
    /// The installation has not granted `actions: read`.
    pub refuse_actions: bool,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    pub inner: Arc<Mutex<Inner>>,
}

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        let inner = Arc::new(Mutex::new(Inner {
            next_id: 3_000_000_000,
            ..Inner::default()
        }));
        let app = Router::new()
            .fallback(handle)
            .layer(axum::middleware::map_response(super::signal_changed))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let blobs = Router::new()
            .fallback(download)
            .layer(axum::middleware::map_response(super::signal_changed))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        inner.lock().unwrap().blob_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, blobs).await.unwrap() });
        FakeGitHub { url, inner }
    }

    /// Another App's check run (GitHub Actions' when `slug` is
    /// `github-actions`) on commit `head`; its id.
    #[allow(clippy::too_many_arguments)]
    pub fn add_check(
        &self,
        head: &str,
        name: &str,
        slug: &str,
        status: &str,
        conclusion: Option<&str>,
        output: Value,
        annotations: Vec<Value>,
    ) -> u64 {
        let mut inner = self.inner.lock().unwrap();
        inner.next_id += 1;
        let id = inner.next_id;
        let app_id = if slug == "github-actions" {
            15368
        } else {
            90210
        };
        inner.foreign_checks.push(json!({
            "id": id, "name": name, "head_sha": head, "status": status,
            "conclusion": conclusion, "app": { "id": app_id, "slug": slug },
            "output": output, "annotations": annotations,
        }));
        id
    }

    /// Check run `id` (another App's) ends with `conclusion`.
    pub fn complete_check(&self, id: u64, conclusion: &str) {
        let mut inner = self.inner.lock().unwrap();
        let run = inner
            .foreign_checks
            .iter_mut()
            .find(|c| c["id"] == json!(id))
            .expect("the check run exists");
        run["status"] = "completed".into();
        run["conclusion"] = conclusion.into();
    }

    /// The log of GitHub Actions job `id`.
    pub fn job_log(&self, id: u64, text: &str) {
        self.inner
            .lock()
            .unwrap()
            .job_logs
            .insert(id, text.to_string());
    }

    /// Downloads of job logs so far: (path, whether credentials came).
    pub fn downloads(&self) -> Vec<(String, bool)> {
        self.inner.lock().unwrap().downloads.clone()
    }

    /// Accept `token` as if it were an installation token (a personal token
    /// for the CLI).
    pub fn accept_token(&self, token: &str) -> &Self {
        self.inner.lock().unwrap().tokens.insert(
            token.into(),
            TokenInfo {
                home: None,
                repos: None,
                write: true,
                permissions: None,
            },
        );
        self
    }

    /// Revoke every token GitHub handed out (as an uninstall-reinstall or
    /// a permission change does).
    pub fn revoke_tokens(&self) -> &Self {
        self.inner.lock().unwrap().tokens.clear();
        self
    }

    /// Bodies of the installation-token requests so far.
    pub fn token_requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().token_requests.clone()
    }

    /// Put a comment in a thread as if `user` had written it.
    pub fn add_comment(&self, number: u64, user: &str, user_type: &str, body: &str) -> u64 {
        let mut inner = self.inner.lock().unwrap();
        inner.next_id += 1;
        let id = inner.next_id;
        inner
            .threads
            .get_mut(&number)
            .expect("the thread exists")
            .comments
            .push(CommentData {
                id,
                user: user.into(),
                user_type: user_type.into(),
                body: body.into(),
                created_at: super::github_now(),
                updated_at: super::github_now(),
            });
        id
    }

    /// `user` writes `body` on a line of pull request `number`'s diff: a
    /// reply in the thread of `in_reply_to` (its path and line), or a new
    /// thread on `path` line `line`. Its id.
    pub fn add_review_comment(
        &self,
        number: u64,
        user: &str,
        body: &str,
        in_reply_to: Option<u64>,
        path: &str,
        line: u64,
    ) -> u64 {
        let mut inner = self.inner.lock().unwrap();
        inner.next_id += 1;
        let id = inner.next_id;
        let now = super::github_now();
        let mut c = json!({ "id": id, "body": body, "user": user_json(user, "User"), "path": path,
            "line": line, "original_line": line, "side": "RIGHT", "created_at": now, "updated_at": now });
        if let Some(root) = in_reply_to {
            let first = inner
                .review_comments
                .get(&number)
                .into_iter()
                .flatten()
                .find(|c| c["id"].as_u64() == Some(root))
                .expect("the thread exists");
            for key in ["path", "line", "original_line", "side", "_said"] {
                c[key] = first[key].clone();
            }
            c["in_reply_to_id"] = json!(root);
        } else {
            let said = inner
                .threads
                .get(&number)
                .and_then(|t| t.pull.as_ref())
                .and_then(|p| p.files.iter().find(|(f, _)| f == path))
                .and_then(|(_, patch)| line_text(patch, true, line));
            c["_said"] = json!(said);
        }
        inner.review_comments.entry(number).or_default().push(c);
        id
    }

    /// Someone edits comment `id` to say `body`, as anyone with write
    /// access may do to anyone's comment on GitHub, the App's included.
    pub fn edit_comment(&self, id: u64, body: &str) -> &Self {
        let mut inner = self.inner.lock().unwrap();
        for t in inner.threads.values_mut() {
            if let Some(c) = t.comments.iter_mut().find(|c| c.id == id) {
                c.body = body.to_string();
                c.updated_at = super::github_now();
            }
        }
        drop(inner);
        self
    }

    pub fn role(&self, user: &str, role: &str) -> &Self {
        self.inner
            .lock()
            .unwrap()
            .roles
            .insert(user.into(), role.into());
        self
    }

    /// Change pull request `number` in place (its head, files, draft
    /// state) without a push.
    pub fn edit_pull(&self, number: u64, edit: impl FnOnce(&mut Pull)) -> &Self {
        let mut inner = self.inner.lock().unwrap();
        let pull = inner
            .threads
            .get_mut(&number)
            .and_then(|t| t.pull.as_mut())
            .expect("the pull request exists");
        edit(pull);
        drop(inner);
        self
    }

    pub fn thread(&self, number: u64, thread: Thread) -> &Self {
        self.inner.lock().unwrap().threads.insert(number, thread);
        self
    }

    pub fn file(&self, git_ref: &str, path: &str, text: &str) -> &Self {
        self.inner
            .lock()
            .unwrap()
            .files
            .insert((git_ref.into(), path.into()), text.into());
        self
    }

    /// A push to pull request `number`: `sha` becomes its head, `changed`
    /// is what the push changed (for compare), `files` the pull request's
    /// whole diff afterwards.
    pub fn push(
        &self,
        number: u64,
        sha: &str,
        changed: Vec<(String, String)>,
        files: Vec<(String, String)>,
    ) -> &Self {
        let mut inner = self.inner.lock().unwrap();
        let pull = inner
            .threads
            .get_mut(&number)
            .and_then(|t| t.pull.as_mut())
            .expect("the pull request exists");
        if pull.history.is_empty() {
            pull.history
                .push((pull.head_sha.clone(), pull.files.clone()));
        }
        pull.history.push((sha.into(), changed));
        pull.head_sha = sha.into();
        pull.files = files;
        self
    }

    /// Push `sha` with `files` to pull request `number` the moment its
    /// files are next listed, before they are answered.
    pub fn push_before_next_files(
        &self,
        number: u64,
        sha: &str,
        files: Vec<(String, String)>,
    ) -> &Self {
        self.inner.lock().unwrap().push_before_files = Some((number, sha.into(), files));
        self
    }

    /// A force-push: the old heads leave the branch's history.
    pub fn force_push(&self, number: u64, sha: &str, files: Vec<(String, String)>) -> &Self {
        let mut inner = self.inner.lock().unwrap();
        let pull = inner
            .threads
            .get_mut(&number)
            .and_then(|t| t.pull.as_mut())
            .expect("the pull request exists");
        let mut old: Vec<String> = pull.history.drain(..).map(|(s, _)| s).collect();
        old.push(pull.head_sha.clone());
        pull.rewritten.extend(old);
        pull.history = vec![(sha.into(), files.clone())];
        pull.head_sha = sha.into();
        pull.files = files;
        self
    }

    /// The check runs, by id.
    pub fn check_runs(&self) -> HashMap<u64, Value> {
        self.inner.lock().unwrap().check_runs.clone()
    }

    /// Reviews posted on pull request `number`.
    pub fn reviews(&self, number: u64) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .reviews
            .get(&number)
            .cloned()
            .unwrap_or_default()
    }

    /// Inline comments on pull request `number`.
    pub fn review_comments(&self, number: u64) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .review_comments
            .get(&number)
            .cloned()
            .unwrap_or_default()
    }

    /// A thread's body (a pull request's description) as it is now.
    pub fn body(&self, number: u64) -> String {
        self.inner.lock().unwrap().threads[&number].body.clone()
    }

    /// Answer the next request matching `method` and `path_prefix` with `status`.
    pub fn fail_once(&self, method: &str, path_prefix: &str, status: u16) -> &Self {
        self.inject(Failure {
            method: method.into(),
            path_prefix: path_prefix.into(),
            status,
            retry_after: 1,
            after_doing: false,
        })
    }

    /// Answer every request matching `method` and `path_prefix` `latency`
    /// late (a slow GitHub).
    pub fn delay(&self, method: &str, path_prefix: &str, latency: std::time::Duration) -> &Self {
        self.inner
            .lock()
            .unwrap()
            .delays
            .push((method.into(), path_prefix.into(), latency));
        self
    }

    pub fn inject(&self, failure: Failure) -> &Self {
        self.inner.lock().unwrap().failures.push_back(failure);
        self
    }

    /// Writes not yet looked at; they count as looked at from now on.
    pub fn take_writes(&self) -> Vec<Write> {
        let mut inner = self.inner.lock().unwrap();
        let new = inner.writes[inner.seen_writes..].to_vec();
        inner.seen_writes = inner.writes.len();
        new
    }

    /// Every request, as (method, path with query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn comments(&self, number: u64) -> Vec<CommentData> {
        self.inner
            .lock()
            .unwrap()
            .threads
            .get(&number)
            .map(|t| t.comments.clone())
            .unwrap_or_default()
    }

    /// Fail the test if the bot wrote something the test did not look at,
    /// or called an endpoint the fake does not know.
    pub fn assert_all_seen(&self) {
        let inner = self.inner.lock().unwrap();
        let unseen = &inner.writes[inner.seen_writes..];
        assert!(
            unseen.is_empty(),
            "the bot wrote what the test did not check: {unseen:#?}"
        );
        assert!(
            inner.unexpected.is_empty(),
            "unexpected requests: {:?}",
            inner.unexpected
        );
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "message": message, "documentation_url": "https://docs.github.com/rest" })),
    )
        .into_response()
}

fn user_json(login: &str, kind: &str) -> Value {
    json!({ "login": login, "id": super::user_id(login), "node_id": "U_1", "type": kind, "site_admin": false,
            "url": format!("https://api.github.com/users/{login}"), "html_url": format!("https://github.com/{login}") })
}

fn comment_json(c: &CommentData, number: u64) -> Value {
    json!({
        "id": c.id, "node_id": "IC_1", "body": c.body, "user": user_json(&c.user, &c.user_type),
        "url": format!("https://api.github.com/repos/{REPO}/issues/comments/{}", c.id),
        "html_url": format!("https://github.com/{REPO}/issues/{number}#issuecomment-{}", c.id),
        "issue_url": format!("https://api.github.com/repos/{REPO}/issues/{number}"),
        "created_at": c.created_at, "updated_at": c.updated_at,
        "author_association": "NONE", "performed_via_github_app": null
    })
}

/// A comment's `body`, refused as GitHub refuses it (missing, or longer
/// than 65,536 characters).
/// (The error is GitHub's 422 message.)
fn comment_body(json: &Value) -> Result<String, &'static str> {
    let Some(text) = json["body"].as_str() else {
        return Err("Validation Failed");
    };
    if text.chars().count() > 65536 {
        return Err("Body is too long (maximum is 65536 characters)");
    }
    Ok(text.to_string())
}

/// Every line of a patch a comment may sit on: (right side?, its number
/// on that side, its hunk, its text). Added and context lines are on the
/// right, removed lines on the left.
fn diff_lines(patch: &str) -> Vec<(bool, u64, usize, String)> {
    let mut out = Vec::new();
    let (mut old, mut new, mut hunk) = (0u64, 0u64, 0usize);
    for l in patch.lines() {
        if let Some(h) = l.strip_prefix("@@ -") {
            let mut parts = h.split(' ');
            let first = |p: Option<&str>| -> u64 {
                p.and_then(|x| x.trim_start_matches('+').split(',').next())
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0)
            };
            old = first(parts.next());
            new = first(parts.next());
            hunk += 1;
            continue;
        }
        let text = l.get(1..).unwrap_or("").to_string();
        match l.chars().next() {
            Some('+') => {
                out.push((true, new, hunk, text));
                new += 1;
            }
            Some('-') => {
                out.push((false, old, hunk, text));
                old += 1;
            }
            Some('\\') => {}
            _ => {
                out.push((true, new, hunk, text));
                old += 1;
                new += 1;
            }
        }
    }
    out
}

/// The lines of a patch GitHub takes a review comment on, with their hunk:
/// (right side?, line) → hunk. Written for the fake, apart from the code
/// under test: added and context lines on the right, removed on the left.
fn commentable(patch: &str) -> HashMap<(bool, u64), usize> {
    diff_lines(patch)
        .into_iter()
        .map(|(right, n, hunk, _)| ((right, n), hunk))
        .collect()
}

/// The text of the diff line a comment on (`right`, `line`) sits on.
fn line_text(patch: &str, right: bool, line: u64) -> Option<String> {
    diff_lines(patch)
        .into_iter()
        .find(|(r, n, _, _)| *r == right && *n == line)
        .map(|(_, _, _, text)| text)
}

/// A 40-hex-digit stand-in for a blob's SHA, the same for the same text.
fn blob_sha(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    format!("{:040x}", h.finish())
}

/// GitHub's 422 for a review, all or nothing.
fn unprocessable(message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "message": "Unprocessable Entity", "errors": [message],
                     "documentation_url": "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request" })),
    )
        .into_response()
}

fn verify_jwt(headers: &HeaderMap) -> Result<(), String> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no authorization")?;
    let jwt = auth.strip_prefix("Bearer ").ok_or("not a bearer token")?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(jwt, &key, &validation).map_err(|e| e.to_string())?;
    let c = data.claims;
    if c["iss"] != json!(APP_ID.to_string()) && c["iss"] != json!(APP_ID) {
        return Err(format!("iss {} is not the App", c["iss"]));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let iat = c["iat"].as_i64().ok_or("iat")?;
    let exp = c["exp"].as_i64().ok_or("exp")?;
    if iat > now + 1 {
        return Err("iat in the future".into());
    }
    if exp - now > 600 {
        return Err("exp more than 10 minutes ahead".into());
    }
    Ok(())
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    let latency = inner
        .lock()
        .unwrap()
        .delays
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && path.starts_with(p.as_str()))
        .map(|(_, _, d)| *d);
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let mut st = inner.lock().unwrap();
    st.requests.push((method.to_string(), uri.to_string()));
    if headers.get("user-agent").is_none() {
        return error(StatusCode::FORBIDDEN, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header");
    }
    let mut lost_answer = None;
    if let Some(pos) = st
        .failures
        .iter()
        .position(|f| f.method == method.as_str() && path.starts_with(f.path_prefix.as_str()))
    {
        let f = st.failures.remove(pos).unwrap();
        if f.after_doing {
            lost_answer = Some(f.status);
        } else if f.status == 429 || f.status == 403 {
            // A secondary rate limit, as GitHub sends it.
            let mut r = error(StatusCode::from_u16(f.status).unwrap(), "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.");
            r.headers_mut()
                .insert("retry-after", f.retry_after.to_string().parse().unwrap());
            return r;
        } else {
            return error(StatusCode::from_u16(f.status).unwrap(), "Server Error");
        }
    }
    let response = route(&mut st, &method, &path, &query, &headers, &body);
    match lost_answer {
        Some(status) => error(StatusCode::from_u16(status).unwrap(), "Server Error"),
        None => response,
    }
}

/// The download host of job logs. As GitHub's blob storage does, it
/// refuses a request that carries an `Authorization` header (the address
/// is its own credential), and serves only the signed addresses the API
/// handed out.
async fn download(
    State(inner): State<Arc<Mutex<Inner>>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut st = inner.lock().unwrap();
    let with_credentials = headers.contains_key("authorization");
    st.downloads
        .push((uri.path().to_string(), with_credentials));
    if with_credentials {
        return (
            StatusCode::BAD_REQUEST,
            "<Error><Code>InvalidAuthenticationInfo</Code></Error>",
        )
            .into_response();
    }
    let signed = uri.query().is_some_and(|q| q.starts_with("sig="));
    let path = uri.path().strip_prefix("/logs/").unwrap_or("");
    // The signed address first sends the client on to where the blob is,
    // on the same host (a hop a careless client re-sends credentials on).
    if let (Ok(id), true) = (path.parse::<u64>(), signed) {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(
                axum::http::header::LOCATION,
                format!("/logs/{id}/data?sig={}", id * 7),
            )],
        )
            .into_response();
    }
    let id: Option<u64> = path.strip_suffix("/data").and_then(|id| id.parse().ok());
    match id.and_then(|id| st.job_logs.get(&id)).filter(|_| signed) {
        Some(log) => (
            [(axum::http::header::CONTENT_TYPE, "text/plain")],
            log.clone(),
        )
            .into_response(),
        None => (
            StatusCode::FORBIDDEN,
            "<Error><Code>AuthenticationFailed</Code></Error>",
        )
            .into_response(),
    }
}

/// A check run as `GET …/check-runs` lists it, whoever made it.
fn listed_check(run: &Value, ours: bool) -> Value {
    let mut run = run.clone();
    run.as_object_mut().unwrap().remove("annotations");
    if ours {
        run["app"] = json!({ "id": APP_ID, "slug": APP_SLUG });
        if run["status"].is_null() {
            run["status"] = "queued".into();
        }
    }
    run
}

fn route(
    st: &mut Inner,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let path = path.to_string();
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let (["app"], true) = (seg.as_slice(), st.hide_app) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    if let ["app"] = seg.as_slice() {
        if let Err(e) = verify_jwt(headers) {
            return error(
                StatusCode::UNAUTHORIZED,
                &format!("A JSON web token could not be decoded: {e}"),
            );
        }
        return Json(
            json!({ "id": APP_ID, "slug": APP_SLUG, "name": "agentic devops", "node_id": "A_1",
            "owner": user_json("acme-platform", "Organization"), "permissions": {}, "events": [] }),
        )
        .into_response();
    }
    // Installation tokens: App JWT only.
    if let ["app", "installations", id, "access_tokens"] = seg.as_slice() {
        if method != Method::POST {
            return error(StatusCode::NOT_FOUND, "Not Found");
        }
        if let Err(e) = verify_jwt(headers) {
            return error(
                StatusCode::UNAUTHORIZED,
                &format!("A JSON web token could not be decoded: {e}"),
            );
        }
        let Some(home) = repo_of(id) else {
            return error(StatusCode::NOT_FOUND, "Not Found");
        };
        // Scoping as GitHub checks it: repositories by name, among those
        // the installation can reach; permissions no wider than the App's.
        let request: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) => return error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
            }
        };
        st.token_requests.push(request.clone());
        if st.refuse_narrowed && request.get("permissions").is_some() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The permissions requested are not granted to this installation.",
            );
        }
        let repo_name = home.split('/').nth(1).unwrap();
        let repos = match request.get("repositories") {
            None => None,
            Some(Value::Array(names)) => {
                let names: Vec<String> = names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect();
                if names.iter().any(|n| n != repo_name) {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                    );
                }
                Some(names)
            }
            Some(_) => return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request."),
        };
        let app_permissions = ["issues", "pull_requests", "checks", "contents", "metadata"];
        let mut write = true;
        let mut permissions = None;
        if let Some(perms) = request.get("permissions").and_then(Value::as_object) {
            write = false;
            permissions = Some(perms.keys().cloned().collect::<Vec<_>>());
            for (name, level) in perms {
                let allowed = match name.as_str() {
                    "contents" | "metadata" => level == "read",
                    // An installation made before the App asked for it
                    // has not granted it.
                    "actions" => level == "read" && !st.refuse_actions,
                    n if app_permissions.contains(&n) => level == "read" || level == "write",
                    _ => false,
                };
                if !allowed {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "The permissions requested are not granted to this installation.",
                    );
                }
                if level == "write" && (name == "issues" || name == "pull_requests") {
                    write = true;
                }
            }
        }
        st.next_id += 1;
        let token = format!("ghs_{:036}", st.next_id);
        st.tokens.insert(
            token.clone(),
            TokenInfo {
                home: Some(home),
                repos,
                write,
                permissions,
            },
        );
        let expires = chrono::Utc::now() + chrono::Duration::hours(1);
        return (
            StatusCode::CREATED,
            Json(json!({ "token": token, "expires_at": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                         "permissions": { "issues": "write", "pull_requests": "write", "contents": "read", "metadata": "read" },
                         "repository_selection": "all" })),
        )
            .into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .unwrap_or("");
    let Some(grant) = st.tokens.get(token).cloned() else {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    let json_body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return error(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        }
    };
    let (owner, name) = match seg.as_slice() {
        ["repos", o, n, ..] => (o.to_string(), n.to_string()),
        _ => {
            st.unexpected.push(format!("{method} {path}"));
            return error(StatusCode::NOT_FOUND, "Not Found");
        }
    };
    let full = format!("{owner}/{name}");
    let known = full == REPO || full == REPO_B;
    if !known
        || grant.home.is_some_and(|home| home != full)
        || grant.repos.as_ref().is_some_and(|r| !r.contains(&name))
    {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    if *method != Method::GET && !grant.write {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        );
    }
    let rest = &seg[3..];
    // A token narrowed to Actions' logs reads nothing else.
    if !grant.may("contents") && !matches!(rest, [] | ["actions", ..]) {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        );
    }
    let page = |items: Vec<Value>| -> Response {
        let per: usize = query
            .get("per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30);
        let p: usize = query.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
        let slice: Vec<Value> = items.into_iter().skip((p - 1) * per).take(per).collect();
        Json(Value::Array(slice)).into_response()
    };
    match (method.as_str(), rest) {
        ("GET", []) => {
            let branch = if st.default_branch.is_empty() {
                "main".to_string()
            } else {
                st.default_branch.clone()
            };
            Json(json!({ "id": 700100, "node_id": "R_1", "name": name, "full_name": full,
                "private": true, "owner": user_json(&owner, "Organization"), "default_branch": branch,
                "html_url": format!("https://github.com/{full}") }))
            .into_response()
        }
        ("GET", ["branches", branch]) => {
            let default = if st.default_branch.is_empty() {
                "main".to_string()
            } else {
                st.default_branch.clone()
            };
            if *branch != default {
                return error(StatusCode::NOT_FOUND, "Branch not found");
            }
            Json(json!({ "name": branch, "protected": false,
                "commit": { "sha": DEFAULT_BRANCH_HEAD, "url": "x" } }))
            .into_response()
        }
        ("GET", ["commits", sha, "check-runs"]) => {
            let all: Vec<Value> = st
                .check_runs
                .values()
                .filter(|r| r["head_sha"] == json!(sha))
                .map(|r| listed_check(r, true))
                .chain(
                    st.foreign_checks
                        .iter()
                        .filter(|r| r["head_sha"] == json!(sha))
                        .map(|r| listed_check(r, false)),
                )
                .collect();
            let per: usize = query
                .get("per_page")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            let p: usize = query.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let total = all.len();
            let slice: Vec<Value> = all.into_iter().skip((p - 1) * per).take(per).collect();
            Json(json!({ "total_count": total, "check_runs": slice })).into_response()
        }
        ("GET", ["check-runs", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match st.check_runs.get(&id) {
                Some(run) => Json(listed_check(run, true)).into_response(),
                None => match st.foreign_checks.iter().find(|c| c["id"] == json!(id)) {
                    Some(run) => Json(listed_check(run, false)).into_response(),
                    None => error(StatusCode::NOT_FOUND, "Not Found"),
                },
            }
        }
        ("GET", ["check-runs", id, "annotations"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let run = st
                .check_runs
                .get(&id)
                .or_else(|| st.foreign_checks.iter().find(|c| c["id"] == json!(id)));
            match run {
                Some(run) => page(run["annotations"].as_array().cloned().unwrap_or_default()),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("GET", ["actions", "jobs", id, "logs"]) => {
            if !grant.may("actions") {
                return error(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by integration",
                );
            }
            let id: u64 = id.parse().unwrap_or(0);
            if !st.job_logs.contains_key(&id) {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            st.next_id += 1;
            let location = format!("{}/logs/{id}?sig={}", st.blob_url, st.next_id);
            (
                StatusCode::FOUND,
                [(axum::http::header::LOCATION, location)],
            )
                .into_response()
        }
        ("GET", ["pulls", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            match st
                .review_comments
                .values()
                .flatten()
                .find(|c| c["id"].as_u64() == Some(id))
            {
                Some(c) => {
                    let mut c = c.clone();
                    c.as_object_mut().unwrap().remove("_said");
                    Json(c).into_response()
                }
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("POST", ["pulls", n, "comments", root, "replies"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let root: u64 = root.parse().unwrap_or(0);
            let text = match comment_body(&json_body) {
                Ok(t) => t,
                Err(message) => return error(StatusCode::UNPROCESSABLE_ENTITY, message),
            };
            let Some(first) = st
                .review_comments
                .get(&n)
                .and_then(|cs| cs.iter().find(|c| c["id"].as_u64() == Some(root)))
                .cloned()
            else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            // As GitHub: replies go under a thread's first comment.
            if first.get("in_reply_to_id").is_some_and(|r| !r.is_null()) {
                return unprocessable("replies to replies are not supported");
            }
            st.next_id += 1;
            let id = st.next_id;
            let now = super::github_now();
            let mut reply = first.clone();
            for key in [
                "body",
                "id",
                "user",
                "in_reply_to_id",
                "created_at",
                "updated_at",
            ] {
                reply.as_object_mut().unwrap().remove(key);
            }
            reply["id"] = json!(id);
            reply["body"] = json!(text);
            reply["user"] = user_json(BOT, "Bot");
            reply["in_reply_to_id"] = json!(root);
            reply["created_at"] = json!(now);
            reply["updated_at"] = json!(now);
            st.review_comments.entry(n).or_default().push(reply.clone());
            st.writes.push(Write {
                method: "POST".into(),
                path: path.clone(),
                body: json_body.clone(),
            });
            reply.as_object_mut().unwrap().remove("_said");
            (StatusCode::CREATED, Json(reply)).into_response()
        }
        ("PATCH", ["pulls", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let text = match comment_body(&json_body) {
                Ok(t) => t,
                Err(message) => return error(StatusCode::UNPROCESSABLE_ENTITY, message),
            };
            let Some(c) = st
                .review_comments
                .values_mut()
                .flatten()
                .find(|c| c["id"].as_u64() == Some(id))
            else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            c["body"] = json!(text);
            c["updated_at"] = json!(super::github_now());
            let mut answer = c.clone();
            answer.as_object_mut().unwrap().remove("_said");
            st.writes.push(Write {
                method: "PATCH".into(),
                path: path.clone(),
                body: json_body.clone(),
            });
            Json(answer).into_response()
        }
        ("POST", ["pulls", "comments", id, "reactions"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            if !st
                .review_comments
                .values()
                .flatten()
                .any(|c| c["id"].as_u64() == Some(id))
            {
                return error(StatusCode::NOT_FOUND, "Not Found");
            }
            st.writes.push(Write {
                method: "POST".into(),
                path: path.clone(),
                body: json_body.clone(),
            });
            st.next_id += 1;
            let rid = st.next_id;
            (StatusCode::CREATED, Json(json!({ "id": rid, "content": json_body["content"], "user": user_json(BOT, "Bot") }))).into_response()
        }
        ("POST", ["pulls", n, "reviews"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let Some(pull) = st.threads.get(&n).and_then(|t| t.pull.clone()) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let event = json_body["event"].as_str().unwrap_or("");
            if !["COMMENT", "APPROVE", "REQUEST_CHANGES"].contains(&event) {
                return unprocessable("event must be COMMENT, APPROVE or REQUEST_CHANGES");
            }
            if json_body["commit_id"]
                .as_str()
                .is_none_or(|c| c.len() != 40)
            {
                return unprocessable("commit_id is not a commit");
            }
            let files: HashMap<&str, HashMap<(bool, u64), usize>> = pull
                .files
                .iter()
                .map(|(f, p)| (f.as_str(), commentable(p)))
                .collect();
            let comments = json_body["comments"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for c in &comments {
                let Some(lines) = c["path"].as_str().and_then(|p| files.get(p)) else {
                    return unprocessable("Path could not be resolved");
                };
                let right = c["side"].as_str().unwrap_or("RIGHT") == "RIGHT";
                let Some(&hunk) = c["line"].as_u64().and_then(|l| lines.get(&(right, l))) else {
                    return unprocessable("Line could not be resolved");
                };
                if let Some(start) = c["start_line"].as_u64() {
                    let ok = start < c["line"].as_u64().unwrap_or(0)
                        && lines.get(&(right, start)) == Some(&hunk);
                    if !ok {
                        return unprocessable(
                            "start_line must be part of the same hunk as the line",
                        );
                    }
                }
            }
            st.writes.push(Write {
                method: "POST".into(),
                path: path.clone(),
                body: json_body.clone(),
            });
            st.next_id += 1;
            let review_id = st.next_id;
            for c in comments {
                st.next_id += 1;
                let id = st.next_id;
                let mut stored = c.clone();
                // What the line said when commented on: a later diff where
                // it says something else (or is gone) makes the comment
                // outdated, as GitHub does (`line` null).
                let right = c["side"].as_str().unwrap_or("RIGHT") == "RIGHT";
                let said = c["path"].as_str().and_then(|p| {
                    let patch = &pull.files.iter().find(|(f, _)| f == p)?.1;
                    line_text(patch, right, c["line"].as_u64()?)
                });
                stored["original_line"] = c["line"].clone();
                stored["_said"] = json!(said);
                stored["id"] = json!(id);
                stored["pull_request_review_id"] = json!(review_id);
                stored["user"] = user_json(BOT, "Bot");
                st.review_comments.entry(n).or_default().push(stored);
            }
            let review = json!({ "id": review_id, "node_id": "PRR_1", "user": user_json(BOT, "Bot"), "body": json_body["body"],
                "state": if event == "COMMENT" { "COMMENTED" } else { event }, "commit_id": json_body["commit_id"] });
            st.reviews.entry(n).or_default().push(review.clone());
            Json(review).into_response()
        }
        ("GET", ["pulls", n, "reviews"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            page(st.reviews.get(&n).cloned().unwrap_or_default())
        }
        ("PATCH", ["pulls", n]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let Some(t) = st.threads.get_mut(&n).filter(|t| t.pull.is_some()) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            if let Some(body) = json_body.get("body") {
                let Some(text) = body.as_str() else {
                    return unprocessable("body must be a string");
                };
                if text.chars().count() > 65_536 {
                    return unprocessable("body is too long (maximum is 65536 characters)");
                }
                t.body = text.to_string();
            }
            st.writes.push(Write {
                method: "PATCH".into(),
                path: path.clone(),
                body: json_body.clone(),
            });
            Json(json!({ "number": n, "body": st.threads[&n].body })).into_response()
        }
        ("GET", ["compare", range]) => {
            let Some((base, head)) = range.split_once("...") else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let found = st
                .threads
                .values()
                .filter_map(|t| t.pull.as_ref())
                .find(|p| p.head_sha == head || p.history.iter().any(|(s, _)| s == head));
            let Some(pull) = found else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let at = |sha: &str| pull.history.iter().position(|(s, _)| s == sha);
            let file = |(f, patch): &(String, String)| {
                json!({ "sha": "abc", "filename": f, "status": "modified",
                "additions": patch.lines().filter(|l| l.starts_with('+')).count(),
                "deletions": patch.lines().filter(|l| l.starts_with('-')).count(), "patch": patch })
            };
            if base == head {
                return Json(
                    json!({ "status": "identical", "ahead_by": 0, "behind_by": 0, "files": [] }),
                )
                .into_response();
            }
            match (at(base), at(head)) {
                (Some(b), Some(h)) if b < h => {
                    // What the pushes after `base` changed, the latest
                    // patch of each file.
                    let mut files: Vec<(String, String)> = Vec::new();
                    for (_, changed) in &pull.history[b + 1..=h] {
                        for (f, p) in changed {
                            files.retain(|(g, _)| g != f);
                            files.push((f.clone(), p.clone()));
                        }
                    }
                    Json(
                        json!({ "status": "ahead", "ahead_by": h - b, "behind_by": 0,
                        "files": files.iter().map(file).collect::<Vec<_>>() }),
                    )
                    .into_response()
                }
                _ if pull.rewritten.iter().any(|s| s == base) => {
                    Json(json!({ "status": "diverged", "ahead_by": 1, "behind_by": 1,
                    "files": pull.files.iter().map(file).collect::<Vec<_>>() }))
                    .into_response()
                }
                _ => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("GET", ["pulls", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let files = st
                .threads
                .get(&n)
                .and_then(|t| t.pull.as_ref())
                .map(|p| p.files.clone())
                .unwrap_or_default();
            let comments = st
                .review_comments
                .get(&n)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    let right = c["side"].as_str().unwrap_or("RIGHT") == "RIGHT";
                    let now = c["path"].as_str().and_then(|p| {
                        let patch = &files.iter().find(|(f, _)| f == p)?.1;
                        line_text(patch, right, c["original_line"].as_u64()?)
                    });
                    if now.is_none() || json!(now) != c["_said"] {
                        c["line"] = Value::Null;
                    }
                    c.as_object_mut().unwrap().remove("_said");
                    c
                })
                .collect();
            page(comments)
        }
        ("POST", ["check-runs"]) | ("PATCH", ["check-runs", _]) => {
            let annotations = json_body["output"]["annotations"]
                .as_array()
                .map_or(0, |a| a.len());
            if annotations > 50 {
                return unprocessable("Only 50 annotations may be sent in one request");
            }
            if let Some(output) = json_body.get("output") {
                if output["title"].as_str().is_none() || output["summary"].as_str().is_none() {
                    return unprocessable("output needs a title and a summary");
                }
                // GitHub counts bytes here, not characters.
                if ["summary", "text"]
                    .iter()
                    .any(|k| output[*k].as_str().is_some_and(|s| s.len() > 65_535))
                {
                    return unprocessable("output.summary exceeds a maximum bytesize of 65535");
                }
            }
            for a in json_body["output"]["annotations"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let (start, end) = (a["start_line"].as_u64(), a["end_line"].as_u64());
                let level = a["annotation_level"].as_str().unwrap_or("");
                let ok = a["path"].as_str().is_some_and(|p| !p.is_empty())
                    && a["message"].as_str().is_some()
                    && ["notice", "warning", "failure"].contains(&level)
                    && matches!((start, end), (Some(s), Some(e)) if s >= 1 && s <= e);
                if !ok {
                    return unprocessable("annotations need path, start_line <= end_line, annotation_level and message");
                }
            }
            let status = json_body["status"].as_str();
            if status == Some("completed") && json_body["conclusion"].as_str().is_none() {
                return unprocessable("conclusion is required when status is completed");
            }
            for a in json_body["actions"].as_array().into_iter().flatten() {
                let len = |k: &str| a[k].as_str().map_or(0, |v| v.chars().count());
                if len("label") > 20 || len("identifier") > 20 || len("description") > 40 {
                    return unprocessable("actions: label and identifier at most 20 characters, description at most 40");
                }
            }
            if json_body["actions"].as_array().is_some_and(|a| a.len() > 3) {
                return unprocessable("at most 3 actions");
            }
            let id = match rest {
                ["check-runs", id] => {
                    let id: u64 = id.parse().unwrap_or(0);
                    if !st.check_runs.contains_key(&id) {
                        return error(StatusCode::NOT_FOUND, "Not Found");
                    }
                    id
                }
                _ => {
                    if json_body["name"].as_str().is_none()
                        || json_body["head_sha"].as_str().is_none()
                    {
                        return unprocessable("name and head_sha are required");
                    }
                    st.next_id += 1;
                    let id = st.next_id;
                    st.check_runs
                        .insert(id, json!({ "id": id, "annotations": [] }));
                    id
                }
            };
            st.writes.push(Write {
                method: method.to_string(),
                path: path.clone(),
                body: json_body.clone(),
            });
            let run = st.check_runs.get_mut(&id).unwrap();
            for key in [
                "name",
                "head_sha",
                "status",
                "conclusion",
                "external_id",
                "actions",
            ] {
                if !json_body[key].is_null() {
                    run[key] = json_body[key].clone();
                }
            }
            if let Some(output) = json_body.get("output") {
                for key in ["title", "summary", "text"] {
                    if !output[key].is_null() {
                        run["output"][key] = output[key].clone();
                    }
                }
                // GitHub appends annotations across updates.
                let more = output["annotations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                run["annotations"].as_array_mut().unwrap().extend(more);
            }
            Json(run.clone()).into_response()
        }
        ("GET", ["collaborators", user, "permission"]) => match st.roles.get(*user) {
            Some(role) => {
                let permission = match role.as_str() {
                    "maintain" | "write" => "write",
                    "triage" | "read" => "read",
                    other => other,
                };
                Json(json!({ "permission": permission, "role_name": role, "user": user_json(user, "User") })).into_response()
            }
            None => error(StatusCode::NOT_FOUND, &format!("{user} is not a user")),
        },
        ("POST", ["issues", "comments", id, "reactions"]) => {
            let content = json_body["content"].as_str().unwrap_or("");
            if ![
                "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
            ]
            .contains(&content)
            {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
            }
            let id: u64 = id.parse().unwrap_or(0);
            st.writes.push(Write {
                method: "POST".into(),
                path: path.clone(),
                body: json_body.clone(),
            });
            st.next_id += 1;
            let rid = st.next_id;
            let _ = id;
            (StatusCode::CREATED, Json(json!({ "id": rid, "content": content, "user": user_json(BOT, "Bot"), "created_at": "2026-11-25T08:16:00Z" }))).into_response()
        }
        ("GET", ["issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let Some(t) = st.threads.get(&n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            page(t.comments.iter().map(|c| comment_json(c, n)).collect())
        }
        ("POST", ["issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let text = match comment_body(&json_body) {
                Ok(t) => t,
                Err(message) => return error(StatusCode::UNPROCESSABLE_ENTITY, message),
            };
            st.next_id += 1;
            let id = st.next_id;
            let c = CommentData {
                id,
                user: BOT.into(),
                user_type: "Bot".into(),
                body: text,
                created_at: super::github_now(),
                updated_at: super::github_now(),
            };
            let Some(t) = st.threads.get_mut(&n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            t.comments.push(c.clone());
            st.writes.push(Write {
                method: "POST".into(),
                path: path.clone(),
                body: json_body.clone(),
            });
            (StatusCode::CREATED, Json(comment_json(&c, n))).into_response()
        }
        ("GET", ["issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            st.threads
                .iter()
                .find_map(|(n, t)| {
                    t.comments
                        .iter()
                        .find(|c| c.id == id)
                        .map(|c| Json(comment_json(c, *n)).into_response())
                })
                .unwrap_or_else(|| error(StatusCode::NOT_FOUND, "Not Found"))
        }
        ("PATCH" | "POST", ["issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let text = match comment_body(&json_body) {
                Ok(t) => t,
                Err(message) => return error(StatusCode::UNPROCESSABLE_ENTITY, message),
            };
            let mut found = None;
            for (n, t) in st.threads.iter_mut() {
                if let Some(c) = t.comments.iter_mut().find(|c| c.id == id) {
                    // An App with `issues: write` may edit anyone's
                    // comment, as on GitHub: only the bot's care stops it.
                    c.body = text.clone();
                    c.updated_at = super::github_now();
                    found = Some((*n, c.clone()));
                }
            }
            match found {
                Some((n, c)) => {
                    st.writes.push(Write {
                        method: method.to_string(),
                        path: path.clone(),
                        body: json_body.clone(),
                    });
                    Json(comment_json(&c, n)).into_response()
                }
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        ("GET", ["issues", n]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let Some(t) = st.threads.get(&n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let mut v = json!({ "id": 2600000000u64 + n, "number": n, "title": t.title, "body": t.body, "state": "open",
                "user": user_json(&t.author, "User"), "labels": [], "comments": t.comments.len(), "locked": false,
                "html_url": format!("https://github.com/{REPO}/issues/{n}") });
            if t.pull.is_some() {
                v["pull_request"] =
                    json!({ "url": format!("https://api.github.com/repos/{REPO}/pulls/{n}") });
            }
            Json(v).into_response()
        }
        ("GET", ["pulls", n]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let Some(t) = st.threads.get(&n) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let Some(p) = &t.pull else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let author_type = if t.author_type.is_empty() {
                "User"
            } else {
                t.author_type.as_str()
            };
            let state = if p.state.is_empty() {
                "open"
            } else {
                p.state.as_str()
            };
            Json(json!({ "id": 2100000000u64 + n, "number": n, "title": t.title, "body": t.body, "state": state, "draft": p.draft,
                "user": user_json(&t.author, author_type), "head": { "ref": p.head_ref, "sha": p.head_sha, "label": "x" },
                "base": { "ref": p.base_ref, "sha": "1a2b3c4d5e6f708192a3b4c5d6e7f80910111213", "label": "y" },
                "additions": 41, "deletions": 12, "changed_files": p.files.len() + p.no_patch.len(), "merged": false, "mergeable": null,
                "html_url": format!("https://github.com/{REPO}/pull/{n}") })).into_response()
        }
        ("GET", ["pulls", n, "files"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            if let Some((number, sha, files)) = st.push_before_files.take_if(|(m, _, _)| *m == n) {
                let pull = st
                    .threads
                    .get_mut(&number)
                    .and_then(|t| t.pull.as_mut())
                    .expect("the pull request exists");
                pull.head_sha = sha;
                pull.files = files;
            }
            let Some(p) = st.threads.get(&n).and_then(|t| t.pull.clone()) else {
                return error(StatusCode::NOT_FOUND, "Not Found");
            };
            let mut files: Vec<Value> = p
                .files
                .iter()
                .map(|(f, patch)| {
                    let added = patch.lines().filter(|l| l.starts_with('+')).count();
                    let removed = patch.lines().filter(|l| l.starts_with('-')).count();
                    json!({ "sha": blob_sha(&format!("{f}\n{patch}")), "filename": f, "status": "modified",
                        "additions": added, "deletions": removed, "changes": added + removed, "patch": patch })
                })
                .collect();
            // Binary files and very large diffs come without `patch`; their
            // blob stays the same while they do.
            files.extend(p.no_patch.iter().map(|f| {
                json!({ "sha": blob_sha(f), "filename": f, "status": "modified", "additions": 0, "deletions": 0, "changes": 0 })
            }));
            // As GitHub: the list stops at 3,000 files, whatever the pull
            // request changes.
            files.truncate(3000);
            page(files)
        }
        ("GET", ["contents", path @ ..]) => {
            // Without `ref`, GitHub reads the default branch.
            let git_ref = query.get("ref").cloned().unwrap_or_else(|| {
                if st.default_branch.is_empty() {
                    "main".into()
                } else {
                    st.default_branch.clone()
                }
            });
            let path = path.join("/");
            match st.files.get(&(git_ref, path.clone())) {
                // As GitHub: from 1 MB to 100 MB, no content, encoding "none".
                Some(text) if text.len() > 1024 * 1024 => Json(json!({ "type": "file", "encoding": "none", "size": text.len(), "name": path, "path": path,
                    "sha": "def", "content": "" })).into_response(),
                Some(text) => Json(json!({ "type": "file", "encoding": "base64", "size": text.len(), "name": path, "path": path,
                    "sha": "def", "content": base64::engine::general_purpose::STANDARD.encode(text) })).into_response(),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        _ => {
            st.unexpected.push(format!("{method} {path}"));
            error(StatusCode::NOT_FOUND, "Not Found")
        }
    }
}
