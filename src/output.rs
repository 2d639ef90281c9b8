//! What the bot posts: the sticky status comment of a job, edited in place.
//!
//! One comment per job, found again on a retry through the outputs table,
//! so a job never posts twice. Before a comment is created its intent is
//! recorded; a later attempt that finds an intent without a comment id
//! (the process died, or was stopped, between posting and recording) looks
//! for the hidden marker, in comments written by this App's bot user only,
//! whatever the attempt counter says. Every write first checks that the
//! job's lease is still held. Every body passes the redactor and is cut to
//! GitHub's size limit.

use std::time::{Duration, Instant};

use sha2::Digest;

use crate::github::{CommentKind, GitHub, GitHubError};
use crate::redact::Redactor;
use crate::store::{LeasedJob, Store};

/// GitHub refuses comments longer than this many characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;
/// The key of the status comment in the outputs table.
const STATUS_KEY: &str = "status-comment";
/// The GitHub id recorded for an output that is about to be created.
const PENDING: u64 = 0;

/// The hidden marker that ties a comment to its job.
pub fn marker(job_id: i64) -> String {
    format!("<!-- agentic:job={job_id} -->")
}

/// `text` with no hidden marker of ours in it: only the bot appends one,
/// last, to what it posts; one in the text (a check's name, a model's
/// words) is made a plain comment.
pub fn unmarked(text: &str) -> String {
    let mut text = text.to_string();
    // Until none is left: taking one out must not make another.
    while text.contains("<!-- agentic:") {
        text = text.replace("<!-- agentic:", "<!-- ");
    }
    text
}

/// Whether `body` is marked with `marker`: it ends with it, where the bot
/// puts it (text quoted before it cannot pose as the mark).
pub fn marked(body: &str, marker: &str) -> bool {
    body.trim_end().ends_with(marker)
}

/// `text` cut to fit in `max` characters with room for a note saying so.
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let note = "\n\n… _(cut to fit GitHub's 65,536-character comment limit)_";
    let keep = max.saturating_sub(note.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(note);
    out
}

/// `text` in at most `max` bytes (GitHub counts a check run's output in
/// bytes), cut at a character boundary, with a note when cut.
pub fn fit_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let note = "\n\n… _(cut to fit GitHub's limit of 65,535 bytes)_";
    let mut keep = max.saturating_sub(note.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{note}", &text[..keep])
}

/// The id of job `job`'s status comment, once GitHub has given one.
pub async fn status_comment_id(store: &Store, job: i64) -> anyhow::Result<Option<u64>> {
    Ok(store
        .output(job, STATUS_KEY)
        .await?
        .filter(|id| *id != PENDING))
}

/// Whether job `job` has posted its status comment, or was about to.
pub async fn status_comment_started(store: &Store, job: i64) -> anyhow::Result<bool> {
    Ok(store.output(job, STATUS_KEY).await?.is_some())
}

/// A job's status comment on an issue or pull request.
pub struct StatusComment {
    pub github: GitHub,
    pub store: Store,
    pub redactor: Redactor,
    pub repo: String,
    pub number: u64,
    pub job_id: i64,
    /// Least time between two progress edits.
    pub progress_interval: Duration,
    /// The lease every write is fenced by (`None` outside the worker).
    lease: Option<LeasedJob>,
    /// For a command on a line of a pull request's diff: the review
    /// thread (its first comment) the answer goes into.
    thread: Option<u64>,
    comment_id: Option<u64>,
    last_edit: Option<Instant>,
    last_body: Option<String>,
    /// When GitHub says the current text was written (ms since the epoch).
    shown_at: Option<i64>,
}

/// A status comment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("{0:#}")]
    Store(#[from] anyhow::Error),
    /// The job lost its lease; nothing was written.
    #[error("the job's lease was lost")]
    LeaseLost,
}

impl StatusComment {
    pub fn new(
        github: GitHub,
        store: Store,
        redactor: Redactor,
        repo: &str,
        number: u64,
        job_id: i64,
        progress_interval: Duration,
    ) -> StatusComment {
        StatusComment {
            github,
            store,
            redactor,
            repo: repo.to_string(),
            number,
            job_id,
            progress_interval,
            lease: None,
            thread: None,
            comment_id: None,
            last_edit: None,
            last_body: None,
            shown_at: None,
        }
    }

    /// Write only while `job`'s lease is held.
    pub fn fenced_by(mut self, job: &LeasedJob) -> StatusComment {
        self.lease = Some(job.clone());
        self
    }

    /// Answer in the review thread whose first comment is `root`, if any,
    /// instead of on the conversation tab.
    pub fn in_thread(mut self, root: Option<u64>) -> StatusComment {
        self.thread = root;
        self
    }

    /// Fail with [`OutputError::LeaseLost`] unless the lease is still ours.
    async fn check_lease(&self) -> Result<(), OutputError> {
        match &self.lease {
            Some(job) => fenced(&self.store, job).await,
            None => Ok(()),
        }
    }

    /// Where the comment is: in a review thread, or on the conversation tab.
    fn kind(&self) -> CommentKind {
        match self.thread {
            Some(_) => CommentKind::Review,
            None => CommentKind::Conversation,
        }
    }

    /// React to the comment that asked for this job.
    pub async fn react(&self, comment_id: u64, content: &str) -> Result<(), OutputError> {
        self.check_lease().await?;
        self.github
            .react_to_comment(&self.repo, self.kind(), comment_id, content)
            .await?;
        Ok(())
    }

    fn render(&self, text: &str) -> String {
        let marker = marker(self.job_id);
        let text = unmarked(&self.redactor.redact(text));
        let room = MAX_COMMENT_CHARS - marker.chars().count() - 2;
        format!("{}\n\n{marker}", fit(&text, room))
    }

    /// Post or edit the comment to say `text`, now.
    pub async fn show(&mut self, text: &str) -> Result<(), OutputError> {
        let body = self.render(text);
        if self.last_body.as_deref() == Some(body.as_str()) {
            return Ok(());
        }
        self.check_lease().await?;
        let found = self.find().await?;
        let (repo, number) = (self.repo.as_str(), self.number);
        let written = match (found, self.thread) {
            (Some(id), _) => {
                self.github
                    .update_comment(repo, self.kind(), id, &body)
                    .await?
            }
            (None, thread) => {
                self.store
                    .save_output(self.job_id, STATUS_KEY, "issue_comment", PENDING)
                    .await?;
                let comment = match thread {
                    None => self.github.create_comment(repo, number, &body).await?,
                    Some(root) => {
                        self.github
                            .reply_in_thread(repo, number, root, &body)
                            .await?
                    }
                };
                self.remember(comment.id).await?;
                comment
            }
        };
        self.shown_at = written
            .updated_at
            .or(written.created_at)
            .as_deref()
            .and_then(crate::event::parse_time_ms);
        self.last_edit = Some(Instant::now());
        self.last_body = Some(body);
        Ok(())
    }

    /// When GitHub says the text last passed to [`show`](Self::show) was
    /// written, by its own clock (ms since the epoch), if it said.
    pub fn shown_at(&self) -> Option<i64> {
        self.shown_at
    }

    /// Like [`show`](Self::show), but skipped if the comment was edited less
    /// than the progress interval ago: a busy job must not trip GitHub's
    /// limits on content creation.
    pub async fn progress(&mut self, text: &str) -> Result<(), OutputError> {
        if self
            .last_edit
            .is_some_and(|t| t.elapsed() < self.progress_interval)
        {
            return Ok(());
        }
        self.show(text).await
    }

    /// The comment this job already posted, if any.
    async fn find(&mut self) -> Result<Option<u64>, OutputError> {
        if let Some(id) = self.comment_id {
            return Ok(Some(id));
        }
        match self.store.output(self.job_id, STATUS_KEY).await? {
            None => Ok(None),
            Some(PENDING) => self.find_posted().await,
            Some(id) => {
                self.comment_id = Some(id);
                Ok(Some(id))
            }
        }
    }

    /// An attempt meant to post and may have: look for its marker in the
    /// comments of this App's bot user. A marker anyone else wrote is not
    /// ours, and leads to a new comment.
    async fn find_posted(&mut self) -> Result<Option<u64>, OutputError> {
        let marker = marker(self.job_id);
        let found =
            own_comment_with(&self.github, &self.repo, self.number, &marker, self.kind()).await?;
        if let Some(id) = found {
            self.remember(id).await?;
        }
        Ok(found)
    }

    /// Use comment `id` from now on, in this attempt and the next ones.
    async fn remember(&mut self, id: u64) -> Result<(), OutputError> {
        self.comment_id = Some(id);
        self.store
            .save_output(self.job_id, STATUS_KEY, "issue_comment", id)
            .await?;
        Ok(())
    }
}

/// A comment the bot keeps one of per pull request (or issue) and kind,
/// edited in place by every job that updates it: the walkthrough. Its id
/// lives in the `pull_comments` table; before posting, the intent is
/// recorded, and a job that finds an intent without an id, or no row at
/// all, first looks for the comment's hidden marker among this App's own
/// comments. A lost answer or a lost row never posts it twice; a comment
/// someone deleted is posted again.
pub struct StickyComment<'a> {
    pub github: &'a GitHub,
    pub store: &'a Store,
    pub redactor: &'a Redactor,
    pub repo: &'a str,
    pub number: u64,
    /// Which of the pull request's sticky comments (`walkthrough`,
    /// `ci:<head sha>`).
    pub kind: &'a str,
    /// The lease every write is fenced by.
    pub lease: &'a LeasedJob,
}

impl StickyComment<'_> {
    /// The hidden marker of the comment of `kind`.
    pub fn marker(kind: &str) -> String {
        format!("<!-- agentic:sticky={kind} -->")
    }

    /// Post or edit the comment to say `text`; its id.
    pub async fn show(&self, text: &str) -> Result<u64, OutputError> {
        let marker = Self::marker(self.kind);
        let room = MAX_COMMENT_CHARS - marker.chars().count() - 2;
        let text = unmarked(&self.redactor.redact(text));
        let body = format!("{}\n\n{marker}", fit(&text, room));
        let (repo, number, kind) = (self.repo, self.number, self.kind);
        let hash = hex::encode(&sha2::Sha256::digest(body.as_bytes())[..16]);
        let stored = self.store.pull_comment(repo, number, kind).await?;
        let known = match &stored {
            // Saying the same again (a wait that polls) edits nothing.
            Some(c) if c.id != PENDING && c.body_hash.as_deref() == Some(hash.as_str()) => {
                return Ok(c.id)
            }
            Some(c) if c.id != PENDING => Some(c.id),
            _ => {
                own_comment_with(
                    self.github,
                    repo,
                    number,
                    &marker,
                    CommentKind::Conversation,
                )
                .await?
            }
        };
        if let Some(id) = known {
            fenced(self.store, self.lease).await?;
            match self
                .github
                .update_comment(repo, CommentKind::Conversation, id, &body)
                .await
            {
                Ok(_) => {
                    self.store
                        .save_pull_comment(repo, number, kind, id, Some(&hash))
                        .await?;
                    return Ok(id);
                }
                // Deleted by someone: post it again.
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        fenced(self.store, self.lease).await?;
        self.store
            .save_pull_comment(repo, number, kind, PENDING, None)
            .await?;
        let comment = self.github.create_comment(repo, number, &body).await?;
        self.store
            .save_pull_comment(repo, number, kind, comment.id, Some(&hash))
            .await?;
        Ok(comment.id)
    }
}

/// [`OutputError::LeaseLost`] unless `job`'s lease is still held: checked
/// before every write.
async fn fenced(store: &Store, job: &LeasedJob) -> Result<(), OutputError> {
    if store.holds_lease(job).await? {
        Ok(())
    } else {
        Err(OutputError::LeaseLost)
    }
}

/// The newest comment on `repo`#`number` by this App's bot user that
/// carries `marker`: on the conversation tab, or among the review
/// comments, as `kind` says. A marker anyone else wrote is not ours; a
/// personal token has no bot user to recover comments of.
async fn own_comment_with(
    github: &GitHub,
    repo: &str,
    number: u64,
    marker: &str,
    kind: CommentKind,
) -> Result<Option<u64>, GitHubError> {
    let own = github.own().await;
    if own == crate::github::Own::Anyone {
        return Ok(None);
    }
    let comments: Vec<(u64, Option<crate::github::types::User>, String)> =
        if kind == CommentKind::Review {
            github
                .review_comments(repo, number)
                .await?
                .into_iter()
                .map(|c| (c.id, c.user, c.body))
                .collect()
        } else {
            github
                .comments(repo, number)
                .await?
                .into_iter()
                .map(|c| (c.id, c.user, c.body.unwrap_or_default()))
                .collect()
        };
    Ok(comments
        .iter()
        .rev()
        .find(|(_, user, body)| own.wrote(user.as_ref()) && marked(body, marker))
        .map(|(id, _, _)| *id))
}

/// A code fence for `text`: backticks, one more than the longest run of
/// them inside it (at least three), so nothing in it can close the block.
/// `text` as an inline code span that nothing in it can close: a longer
/// run of backticks than any inside, spaced when it starts or ends with
/// one, on one line.
pub fn code_span(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

pub fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_span_holds_whatever_backticks_a_name_has() {
        assert_eq!(code_span("src/a.rs"), "`src/a.rs`");
        assert_eq!(
            code_span("x` ![t](https://evil/p.png) `y"),
            "``x` ![t](https://evil/p.png) `y``"
        );
        assert_eq!(code_span("`a`"), "`` `a` ``");
        assert_eq!(code_span("a\nb"), "`a b`");
    }

    #[test]
    fn fit_cuts_on_characters_with_a_note() {
        let long = "é".repeat(70_000);
        let out = fit(&long, MAX_COMMENT_CHARS);
        assert_eq!(out.chars().count(), MAX_COMMENT_CHARS);
        assert!(out.ends_with("comment limit)_"));
        assert_eq!(fit("short", 10), "short");
    }

    #[test]
    fn a_fence_is_longer_than_any_run_of_backticks_inside() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ``` b"), "````");
        assert_eq!(fence_for("````` and `"), "``````");
    }
}
