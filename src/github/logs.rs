//! GitHub Actions job logs. GitHub answers `GET …/actions/jobs/{id}/logs`
//! with a redirect to a short-lived, signed address on another host. That
//! redirect is followed here by hand, not by octocrab's redirect layer:
//! the token goes to GitHub's API and nowhere else, on the first hop and on
//! any later one (a layer that rebuilds each hop from the first request's
//! headers would send it again after a same-host redirect on the download
//! host). The download address is never logged: it is a credential.

use std::sync::OnceLock;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::client::{backoff, GitHub, MAX_TRIES};
use super::rate::retry_after_of;
use super::GitHubError;
use crate::ci_log::{Excerpt, LogTail};
use crate::redact::Redactor;

/// Redirects followed on the download host.
const MAX_HOPS: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One client for logs, that follows no redirect by itself.
fn http() -> Result<&'static reqwest::Client, GitHubError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let client = reqwest::Client::builder()
        .user_agent(super::USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|e| GitHubError::Local(format!("building the log client: {e}")))?;
    Ok(CLIENT.get_or_init(|| client))
}

impl GitHub {
    /// What is worth showing of GitHub Actions job `job_id`'s log
    /// (`ci_log`): read as it streams, in bounded memory, redacted.
    pub async fn job_log(
        &self,
        repo: &str,
        job_id: u64,
        redactor: &Redactor,
    ) -> Result<Excerpt, GitHubError> {
        let what = format!("GET the log of Actions job {job_id} in {repo}");
        let url = format!(
            "{}/repos/{repo}/actions/jobs/{job_id}/logs",
            self.api_url.trim_end_matches('/')
        );
        let first = self.ask_api(&url, &what).await?;
        let mut response = if first.status().is_redirection() {
            self.download(&first, &what).await?
        } else {
            first
        };
        let mut tail = LogTail::new();
        while tail.wants_more() {
            match response.chunk().await {
                Ok(Some(bytes)) => tail.push(&bytes),
                Ok(None) => break,
                Err(e) => return Err(transport(&what, e)),
            }
        }
        Ok(tail.finish(redactor))
    }

    /// The API's answer (a redirect, or the log itself), with the token,
    /// retried like every idempotent GitHub call.
    async fn ask_api(&self, url: &str, what: &str) -> Result<reqwest::Response, GitHubError> {
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            let token = self.token();
            let sent = http()?
                .get(url)
                .bearer_auth(token.expose_secret())
                .header(http::header::ACCEPT, "application/vnd.github+json")
                .header("x-github-api-version", super::API_VERSION)
                .send()
                .await;
            let error = match sent {
                Ok(r) if r.status().is_success() || r.status().is_redirection() => return Ok(r),
                Ok(r) if r.status() == 401 && !renewed => {
                    renewed = true;
                    if self.renew_token().await? {
                        attempt -= 1;
                        continue;
                    }
                    status_error(&r, what)
                }
                Ok(r) => status_error(&r, what),
                Err(e) => transport(what, e),
            };
            if !error.is_transient() || attempt >= MAX_TRIES {
                return Err(error);
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// The download `redirect` points to, without any credential, over
    /// https unless the API itself is plain http (a test's loopback).
    async fn download(
        &self,
        redirect: &reqwest::Response,
        what: &str,
    ) -> Result<reqwest::Response, GitHubError> {
        let secure = self.api_url.to_ascii_lowercase().starts_with("https://");
        let mut at = redirect.url().clone();
        let mut response_location = location(redirect, what)?;
        for _ in 0..=MAX_HOPS {
            let next = at.join(&response_location).map_err(|_| {
                GitHubError::Local(format!("{what}: the download address is not a URL"))
            })?;
            if next.scheme() != "https" && (secure || next.scheme() != "http") {
                return Err(GitHubError::Local(format!(
                    "{what}: the download address is not https"
                )));
            }
            let response = http()?
                .get(next.clone())
                .send()
                .await
                .map_err(|e| transport(what, e))?;
            if response.status().is_success() {
                return Ok(response);
            }
            if !response.status().is_redirection() {
                return Err(GitHubError::Local(format!(
                    "{what}: the download host answered {}",
                    response.status().as_u16()
                )));
            }
            response_location = location(&response, what)?;
            at = next;
        }
        Err(GitHubError::Local(format!(
            "{what}: more than {MAX_HOPS} redirects"
        )))
    }
}

fn location(response: &reqwest::Response, what: &str) -> Result<String, GitHubError> {
    response
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| GitHubError::Local(format!("{what}: a redirect without a location")))
}

fn status_error(response: &reqwest::Response, what: &str) -> GitHubError {
    let status = response.status().as_u16();
    GitHubError::Status {
        status,
        what: what.to_string(),
        retry_after: retry_after_of(response.headers(), status),
    }
}

/// A transport error, without the address (a download's is a credential).
fn transport(what: &str, e: reqwest::Error) -> GitHubError {
    GitHubError::Transport {
        what: what.to_string(),
        reason: e.without_url().to_string(),
    }
}
