//! What the bot posts: the sticky status comment of a job, edited in place.
//!
//! One comment per job, found again on a retry through the outputs table
//! (or, if the process died between posting and recording, through the
//! hidden marker in its body), so a job never posts twice. Every body passes
//! the redactor and is cut to GitHub's size limit.

use std::time::{Duration, Instant};

use crate::github::{GitHub, GitHubError};
use crate::redact::Redactor;
use crate::store::Store;

/// GitHub refuses comments longer than this many characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;
/// The key of the status comment in the outputs table.
const STATUS_KEY: &str = "status-comment";

/// The hidden marker that ties a comment to its job.
pub fn marker(job_id: i64) -> String {
    format!("<!-- agentic:job={job_id} -->")
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
    /// A retry may find the comment an earlier attempt posted but did not
    /// get to record; a first attempt has nothing to look for.
    pub retrying: bool,
    comment_id: Option<u64>,
    last_edit: Option<Instant>,
    last_body: Option<String>,
}

/// A status comment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("{0:#}")]
    Store(#[from] anyhow::Error),
}

impl StatusComment {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        github: GitHub,
        store: Store,
        redactor: Redactor,
        repo: &str,
        number: u64,
        job_id: i64,
        progress_interval: Duration,
        retrying: bool,
    ) -> StatusComment {
        StatusComment {
            github,
            store,
            redactor,
            repo: repo.to_string(),
            number,
            job_id,
            progress_interval,
            retrying,
            comment_id: None,
            last_edit: None,
            last_body: None,
        }
    }

    fn render(&self, text: &str) -> String {
        let marker = marker(self.job_id);
        let text = self.redactor.redact(text);
        let room = MAX_COMMENT_CHARS - marker.chars().count() - 2;
        format!("{}\n\n{marker}", fit(&text, room))
    }

    /// Post or edit the comment to say `text`, now.
    pub async fn show(&mut self, text: &str) -> Result<(), OutputError> {
        let body = self.render(text);
        if self.last_body.as_deref() == Some(body.as_str()) {
            return Ok(());
        }
        match self.find().await? {
            Some(id) => {
                self.github.update_comment(&self.repo, id, &body).await?;
            }
            None => {
                let comment = self
                    .github
                    .create_comment(&self.repo, self.number, &body)
                    .await?;
                self.remember(comment.id).await?;
            }
        }
        self.last_edit = Some(Instant::now());
        self.last_body = Some(body);
        Ok(())
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
        if let Some(id) = self.store.output(self.job_id, STATUS_KEY).await? {
            self.comment_id = Some(id);
            return Ok(Some(id));
        }
        if !self.retrying {
            return Ok(None);
        }
        // Posted by an attempt that died before recording it?
        let marker = marker(self.job_id);
        let comments = self.github.comments(&self.repo, self.number).await?;
        if let Some(c) = comments
            .iter()
            .rev()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(&marker)))
        {
            self.remember(c.id).await?;
            return Ok(Some(c.id));
        }
        Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_on_characters_with_a_note() {
        let long = "é".repeat(70_000);
        let out = fit(&long, MAX_COMMENT_CHARS);
        assert_eq!(out.chars().count(), MAX_COMMENT_CHARS);
        assert!(out.ends_with("comment limit)_"));
        assert_eq!(fit("short", 10), "short");
    }
}
