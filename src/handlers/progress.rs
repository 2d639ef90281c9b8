//! What a command's status comment shows while it works: the answers
//! already given, separated, then what is being done now. Shared by every
//! command that talks to the model (ask, describe, plan, apply).

use std::future::Future;
use std::pin::Pin;

use crate::agent::Progress;
use crate::output::StatusComment;

/// Separates the answers to several commands in one comment.
pub const SECTION_BREAK: &str = "\n\n---\n\n";

/// Shown while the model works.
pub const WORKING: &str = "⏳ Working on it…";

/// What the status comment says while a command works: the sections
/// already done, then `working`.
pub fn progress_text(done: &[String], working: &str) -> String {
    if done.is_empty() {
        working.to_string()
    } else {
        format!("{}{SECTION_BREAK}{working}", done.join(SECTION_BREAK))
    }
}

/// Shows a conversation's steps in the status comment, after `before`.
pub struct CommentProgress<'a> {
    pub status: &'a mut StatusComment,
    pub before: String,
}

impl Progress for CommentProgress<'_> {
    fn step(&mut self, text: String) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let body = format!("{}{WORKING} ({text})", self.before);
            if let Err(e) = self.status.progress(&body).await {
                tracing::warn!(error = %e, "cannot show progress");
            }
        })
    }
}
