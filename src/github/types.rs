//! The parts of GitHub's REST answers we read. Lenient on purpose: only the
//! fields we use, optional where GitHub may send null.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct User {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl User {
    pub fn is_bot(&self) -> bool {
        crate::event::is_bot_account(&self.login, &self.kind)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the comment was last written (its creation, or its last edit).
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Ref {
    #[serde(rename = "ref")]
    pub name: String,
    pub sha: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub user: Option<User>,
    pub head: Ref,
    pub base: Ref,
    #[serde(default)]
    pub additions: Option<u64>,
    #[serde(default)]
    pub deletions: Option<u64>,
    #[serde(default)]
    pub changed_files: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PullFile {
    pub filename: String,
    pub status: String,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    /// Absent for binary files and very large diffs.
    #[serde(default)]
    pub patch: Option<String>,
    /// The old name of a renamed file.
    #[serde(default)]
    pub previous_filename: Option<String>,
    /// The file's blob at the head: what tells a changed binary file (no
    /// patch) from an unchanged one.
    #[serde(default)]
    pub sha: Option<String>,
}

/// `GET /repos/{repo}/compare/{base}...{head}`: how `head` relates to
/// `base` (`ahead`, `behind`, `identical`, `diverged`) and the files that
/// changed between them.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Comparison {
    pub status: String,
    #[serde(default)]
    pub ahead_by: u64,
    #[serde(default)]
    pub files: Vec<PullFile>,
}

/// A pull request review (the parts we read back).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Review {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub user: Option<User>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Content {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Permission {
    pub permission: String,
    #[serde(default)]
    pub role_name: Option<String>,
}

/// An inline review comment on a pull request.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReviewComment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub user: Option<User>,
    /// The comment it replies to (every reply names the thread's first).
    #[serde(default)]
    pub in_reply_to_id: Option<u64>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// What creating a review or a check run answers with (the parts we keep).
#[derive(Debug, Clone, Deserialize)]
pub struct Created {
    pub id: u64,
}

/// One check run on a commit, as `GET …/commits/{sha}/check-runs` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunInfo {
    pub id: u64,
    pub name: String,
    /// `queued`, `in_progress`, `completed` (or `waiting`, `requested`,
    /// `pending`).
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub app: Option<CheckApp>,
}

/// The App a check run belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckApp {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
}

/// One check run, as `GET …/check-runs/{id}` answers: what it says of
/// itself (the list leaves this out of what we read: each of its parts
/// may be 64 KB).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckRunDetail {
    #[serde(default)]
    pub output: CheckOutput,
}

/// What a check run says of itself.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckOutput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub annotations_count: u64,
}

/// `GET …/commits/{sha}/check-runs`: a page.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunPage {
    pub total_count: u64,
    pub check_runs: Vec<CheckRunInfo>,
}

/// One annotation of a check run.
#[derive(Debug, Clone, Deserialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u64,
    #[serde(default)]
    pub annotation_level: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: String,
}
