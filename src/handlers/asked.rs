//! Who asks for what on which thread, whatever the asking came through: a
//! comment's `/agentic` command, an issue's trigger label, or a check
//! run's Apply button. The plan workflow takes this rather than a comment,
//! so a label or a button is never dressed up as a comment that was not
//! written.

use crate::event::{Actor, IssueComment, Repo};

/// One request on one issue or pull request.
#[derive(Debug, Clone)]
pub struct Asked {
    pub repo: Repo,
    pub installation_id: u64,
    /// Issue or pull request number.
    pub number: u64,
    pub on_pull_request: bool,
    /// Who asked: the comment's author, the labeller, the button's presser.
    pub author: Actor,
    pub via: Via,
}

/// What the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A comment, and when GitHub says it was written (ms since the epoch).
    Comment { created_at_ms: Option<i64> },
    /// The repository's trigger label on an issue.
    Label,
    /// The Apply button of a plan's check run.
    Button,
}

impl Asked {
    /// What a comment asks, on behalf of its author.
    pub fn comment(ev: &IssueComment) -> Asked {
        Asked {
            repo: ev.repo.clone(),
            installation_id: ev.installation_id,
            number: ev.number,
            on_pull_request: ev.on_pull_request,
            author: ev.author.clone(),
            via: Via::Comment {
                created_at_ms: ev.created_at_ms,
            },
        }
    }

    /// When the comment that asked was written; `None` for a label or a
    /// button (and for a comment GitHub gave no time for).
    pub fn created_at_ms(&self) -> Option<i64> {
        match self.via {
            Via::Comment { created_at_ms } => created_at_ms,
            Via::Label | Via::Button => None,
        }
    }
}
