//! Our own small, owned event types, parsed at the edge.
//!
//! GitHub's payloads are large (a `pull_request` delivery is ~20 KB) and we
//! need a handful of fields from them. Each struct below names only those
//! fields, so serde skips the rest without building a `serde_json::Value`.
//! Fields GitHub documents as nullable, or omits in some payload variants
//! (repository webhooks carry no `installation`), are `Option`s: a real
//! payload must never fail to parse because of a field we do not act on.

use serde::{Deserialize, Serialize};

/// The webhook events this bot acts on, by their `X-GitHub-Event` name.
pub const HANDLED_EVENTS: &[&str] = &[
    "ping",
    "issue_comment",
    "pull_request_review_comment",
    "pull_request",
    "issues",
    "check_run",
    "check_suite",
    "installation",
];

/// The repository an event happened in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repo {
    pub id: u64,
    /// `owner/name`.
    pub full_name: String,
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub login: String,
    pub id: u64,
    /// `User`, `Bot` or `Organization`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl Actor {
    /// Bots (including this App itself, whose comments arrive as a `Bot`
    /// sender) never drive the bot.
    pub fn is_bot(&self) -> bool {
        is_bot_account(&self.login, &self.kind)
    }
}

/// Whether a GitHub account is a bot: its type says so, or its login has
/// the `[bot]` suffix every App's bot user has.
pub fn is_bot_account(login: &str, kind: &str) -> bool {
    kind == "Bot" || login.ends_with("[bot]")
}

/// A comment on an issue or on a pull request's conversation tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueComment {
    pub action: String,
    pub repo: Repo,
    pub installation_id: u64,
    /// Issue or pull request number.
    pub number: u64,
    /// True when the comment is on a pull request.
    pub on_pull_request: bool,
    pub comment_id: u64,
    pub body: String,
    /// Who wrote the comment.
    pub author: Actor,
    /// Who caused this delivery: for `edited`, the editor, who may be
    /// someone other than the author (anyone with write access may edit
    /// other people's comments). Commands belong to whoever typed them.
    pub sender: Actor,
    /// For `edited`: the body before the edit (`changes.body.from`), so
    /// that an edit runs only the commands it added.
    #[serde(default)]
    pub previous_body: Option<String>,
    /// When GitHub says the comment was created (ms since the epoch); an
    /// approval without a plan number only approves a plan shown before.
    #[serde(default)]
    pub created_at_ms: Option<i64>,
    /// Set for a comment on a line of a pull request's diff
    /// (`pull_request_review_comment`): the bot answers in its thread.
    #[serde(default)]
    pub review: Option<Box<ReviewThread>>,
}

/// Where a review comment sits: its thread and the code it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewThread {
    /// The thread's first comment, which replies go under (the comment
    /// itself when it starts a thread).
    pub root_id: u64,
    /// Whether the comment replies to another (it is not the root).
    pub is_reply: bool,
    pub path: String,
    /// The line it is on at `commit_id` (`None` when outdated).
    pub line: Option<u64>,
    /// On a removed line (`side: LEFT`): `line` counts in the base.
    #[serde(default)]
    pub left: bool,
    /// The diff hunk GitHub shows with it (the pull request author's code).
    pub diff_hunk: String,
    pub commit_id: String,
}

impl IssueComment {
    /// Whether this delivery is an edit by someone other than the
    /// comment's author (compared by GitHub user id, never by login).
    pub fn edited_by_another(&self) -> bool {
        self.action == "edited" && self.sender.id != self.author.id
    }
}

/// An RFC 3339 time as GitHub writes it (`2011-04-14T16:00:49Z`), in ms
/// since the epoch.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A pull request was opened, reopened, pushed to or marked ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub action: String,
    pub repo: Repo,
    pub installation_id: u64,
    pub number: u64,
    pub head_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub draft: bool,
    pub author: Actor,
    pub sender: Actor,
}

/// An issue was opened or labeled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub action: String,
    pub repo: Repo,
    pub installation_id: u64,
    pub number: u64,
    pub title: String,
    pub labels: Vec<String>,
    /// The label just added, for `labeled`.
    pub label: Option<String>,
    /// The issue's body as delivered with this event: a labelled-issue
    /// plan asks for exactly what the labeller could read, not a later edit.
    #[serde(default)]
    pub body: Option<String>,
    pub sender: Actor,
}

/// A check run's button was pressed, or a re-run was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    pub action: String,
    pub repo: Repo,
    pub installation_id: u64,
    pub check_run_id: u64,
    pub head_sha: String,
    pub name: String,
    /// The button's identifier, for `requested_action`.
    pub requested_action: Option<String>,
    pub pull_requests: Vec<u64>,
    /// The id the creating App gave the check run (ours: `pr:<number>`,
    /// which also names a fork's pull request, for which GitHub sends an
    /// empty `pull_requests`).
    #[serde(default)]
    pub external_id: Option<String>,
    /// The App that created the check run: only our own are acted on.
    #[serde(default)]
    pub app_id: Option<u64>,
    pub sender: Actor,
    /// A `check_suite` event ("Re-run all checks"): `check_run_id` is then
    /// the suite's id, and the suite is the App's own (`app_id`).
    #[serde(default)]
    pub suite: bool,
    /// How a completed check run ended (`failure`, `timed_out`, …).
    #[serde(default)]
    pub conclusion: Option<String>,
    /// The slug of the App that created it (`github-actions` for a job of
    /// a workflow, whose check run id is the job's id).
    #[serde(default)]
    pub app_slug: Option<String>,
}

/// The conclusions of a completed check run that the bot explains.
pub const FAILED_CONCLUSIONS: &[&str] = &["failure", "timed_out"];

/// The App was installed or uninstalled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub action: String,
    pub installation_id: u64,
    pub account: String,
    pub sender: Actor,
}

/// A delivery after parsing: something to act on, or a reason to ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    IssueComment(IssueComment),
    PullRequest(PullRequest),
    Issue(Issue),
    CheckRun(Box<CheckRun>),
    Installation(Installation),
}

/// What a delivery turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// GitHub's `ping`, sent when a hook is created.
    Ping,
    /// An event the bot acts on.
    Event(Event),
    /// A well-formed delivery that needs no work, and why.
    Ignored(Ignored),
}

/// A well-formed delivery that needs no work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub repo: Option<String>,
    pub reason: String,
}

/// A delivery of an event we handle whose JSON does not have the shape
/// GitHub documents.
#[derive(Debug, thiserror::Error)]
#[error("payload is not a valid `{event}` event: {source}")]
pub struct ParseError {
    pub event: String,
    #[source]
    pub source: serde_json::Error,
}

impl Event {
    /// The `action` field of the payload.
    pub fn action(&self) -> &str {
        match self {
            Event::IssueComment(e) => &e.action,
            Event::PullRequest(e) => &e.action,
            Event::Issue(e) => &e.action,
            Event::CheckRun(e) => &e.action,
            Event::Installation(e) => &e.action,
        }
    }

    pub fn installation_id(&self) -> u64 {
        match self {
            Event::IssueComment(e) => e.installation_id,
            Event::PullRequest(e) => e.installation_id,
            Event::Issue(e) => e.installation_id,
            Event::CheckRun(e) => e.installation_id,
            Event::Installation(e) => e.installation_id,
        }
    }

    pub fn repo(&self) -> Option<&Repo> {
        match self {
            Event::IssueComment(e) => Some(&e.repo),
            Event::PullRequest(e) => Some(&e.repo),
            Event::Issue(e) => Some(&e.repo),
            Event::CheckRun(e) => Some(&e.repo),
            Event::Installation(_) => None,
        }
    }

    /// The issue or pull request number the event is about, if any.
    pub fn number(&self) -> Option<u64> {
        match self {
            Event::IssueComment(e) => Some(e.number),
            Event::PullRequest(e) => Some(e.number),
            Event::Issue(e) => Some(e.number),
            Event::CheckRun(e) => e.pull_number(),
            Event::Installation(_) => None,
        }
    }
}

impl CheckRun {
    /// The pull request a check run is about: ours say it in their
    /// external id; others by GitHub's `pull_requests` (empty for forks).
    pub fn pull_number(&self) -> Option<u64> {
        // A failed check is anyone's: its external id means nothing here.
        if self.action == "completed" {
            return self.pull_requests.first().copied();
        }
        self.external_id
            .as_deref()
            .and_then(|x| x.strip_prefix("pr:"))
            .and_then(|n| n.parse().ok())
            .or_else(|| self.pull_requests.first().copied())
    }
}

// ---- wire shapes: only the fields we read ----

#[derive(Deserialize)]
struct WireInstallationRef {
    id: u64,
}

#[derive(Deserialize)]
struct WireRepo {
    id: u64,
    full_name: String,
}

impl From<WireRepo> for Repo {
    fn from(r: WireRepo) -> Self {
        Repo {
            id: r.id,
            full_name: r.full_name,
        }
    }
}

#[derive(Deserialize)]
struct WireIssueComment {
    action: String,
    issue: WireIssue,
    comment: WireComment,
    #[serde(default)]
    changes: Option<WireChanges>,
    repository: WireRepo,
    sender: Actor,
    installation: Option<WireInstallationRef>,
}

/// What an `edited` delivery changed.
#[derive(Deserialize)]
struct WireChanges {
    body: Option<WireFrom>,
}

#[derive(Deserialize)]
struct WireFrom {
    from: Option<String>,
}

#[derive(Deserialize)]
struct WireIssue {
    number: u64,
    #[serde(default)]
    title: String,
    /// Present (with URLs) only when the issue is a pull request.
    pull_request: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    labels: Vec<WireLabel>,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct WireLabel {
    name: String,
}

#[derive(Deserialize)]
struct WireComment {
    id: u64,
    body: Option<String>,
    user: Actor,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct WireReviewCommentEvent {
    action: String,
    comment: WireReviewComment,
    pull_request: WirePullNumber,
    #[serde(default)]
    changes: Option<WireChanges>,
    repository: WireRepo,
    sender: Actor,
    installation: Option<WireInstallationRef>,
}

#[derive(Deserialize)]
struct WireReviewComment {
    id: u64,
    body: Option<String>,
    user: Actor,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    in_reply_to_id: Option<u64>,
    #[serde(default)]
    path: String,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    diff_hunk: String,
    #[serde(default)]
    commit_id: String,
    #[serde(default)]
    side: Option<String>,
}

#[derive(Deserialize)]
struct WirePullNumber {
    number: u64,
}

#[derive(Deserialize)]
struct WirePullRequestEvent {
    action: String,
    number: u64,
    pull_request: WirePull,
    repository: WireRepo,
    sender: Actor,
    installation: Option<WireInstallationRef>,
}

#[derive(Deserialize)]
struct WirePull {
    head: WireRef,
    base: WireRef,
    #[serde(default)]
    draft: bool,
    user: Actor,
}

#[derive(Deserialize)]
struct WireRef {
    sha: String,
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct WireIssuesEvent {
    action: String,
    issue: WireIssue,
    label: Option<WireLabel>,
    repository: WireRepo,
    sender: Actor,
    installation: Option<WireInstallationRef>,
}

#[derive(Deserialize)]
struct WireCheckRunEvent {
    action: String,
    check_run: WireCheckRun,
    requested_action: Option<WireRequestedAction>,
    repository: WireRepo,
    sender: Actor,
    installation: Option<WireInstallationRef>,
}

#[derive(Deserialize)]
struct WireCheckRun {
    id: u64,
    head_sha: String,
    name: String,
    #[serde(default)]
    pull_requests: Vec<WirePullRef>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    app: Option<WireApp>,
    #[serde(default)]
    conclusion: Option<String>,
}

/// The App a check run or suite belongs to (`null` in a few payloads).
#[derive(Deserialize)]
struct WireApp {
    id: u64,
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Deserialize)]
struct WireCheckSuiteEvent {
    action: String,
    check_suite: WireCheckSuite,
    repository: WireRepo,
    sender: Actor,
    installation: Option<WireInstallationRef>,
}

#[derive(Deserialize)]
struct WireCheckSuite {
    id: u64,
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<WirePullRef>,
    #[serde(default)]
    app: Option<WireApp>,
}

#[derive(Deserialize)]
struct WirePullRef {
    number: u64,
    #[serde(default)]
    base: Option<WirePullBase>,
}

#[derive(Deserialize)]
struct WirePullBase {
    #[serde(default)]
    repo: Option<WireInstallationRef>,
}

/// The numbers of the pull requests in `repo_id` among `pulls`: GitHub also
/// lists pull requests of other repositories whose head is the same commit
/// (a fork's pull request into its own parent, say), whose numbers mean
/// nothing here.
fn pulls_in(pulls: Vec<WirePullRef>, repo_id: u64) -> Vec<u64> {
    pulls
        .into_iter()
        .filter(|p| {
            p.base
                .as_ref()
                .and_then(|b| b.repo.as_ref())
                .is_none_or(|r| r.id == repo_id)
        })
        .map(|p| p.number)
        .collect()
}

#[derive(Deserialize)]
struct WireRequestedAction {
    identifier: String,
}

#[derive(Deserialize)]
struct WireInstallationEvent {
    action: String,
    installation: WireInstallation,
    sender: Actor,
}

#[derive(Deserialize)]
struct WireInstallation {
    id: u64,
    account: Option<WireAccount>,
}

#[derive(Deserialize)]
struct WireAccount {
    /// Organizations and users have `login`; enterprises have `slug`.
    login: Option<String>,
    slug: Option<String>,
}

/// Just enough of any payload to record an ignored delivery usefully.
#[derive(Deserialize)]
struct WireEnvelope {
    action: Option<String>,
    installation: Option<WireInstallationRef>,
    repository: Option<WireRepo>,
}

/// Which `action`s of each event create work. Everything else is recorded
/// as ignored.
fn wanted(event: &str, action: &str) -> bool {
    matches!(
        (event, action),
        (
            "issue_comment" | "pull_request_review_comment",
            "created" | "edited"
        ) | (
            "pull_request",
            "opened" | "reopened" | "synchronize" | "ready_for_review" | "closed"
        ) | ("issues", "opened" | "labeled" | "closed")
            | (
                "check_run",
                "requested_action" | "rerequested" | "completed"
            )
            | ("check_suite", "rerequested")
            | ("installation", "created" | "deleted")
    )
}

/// The cheapest test for a possible command, run at intake so that the
/// ordinary chatter on a busy repository never reaches the queue. The
/// markdown-aware parser in the worker decides for real.
pub const COMMAND_PREFIX: &str = "/agentic";

fn ignored(envelope: WireEnvelope, reason: impl Into<String>) -> Parsed {
    Parsed::Ignored(Ignored {
        action: envelope.action,
        installation_id: envelope.installation.map(|i| i.id),
        repo: envelope.repository.map(|r| r.full_name),
        reason: reason.into(),
    })
}

/// A handled event's payload in its wire shape.
enum Wire {
    IssueComment(WireIssueComment),
    ReviewComment(WireReviewCommentEvent),
    PullRequest(WirePullRequestEvent),
    Issues(WireIssuesEvent),
    CheckRun(WireCheckRunEvent),
    CheckSuite(WireCheckSuiteEvent),
    Installation(WireInstallationEvent),
}

impl Wire {
    fn parse(event: &str, body: &[u8]) -> Option<Result<Wire, serde_json::Error>> {
        use serde_json::from_slice as from;
        Some(match event {
            "issue_comment" => from(body).map(Wire::IssueComment),
            "pull_request_review_comment" => from(body).map(Wire::ReviewComment),
            "pull_request" => from(body).map(Wire::PullRequest),
            "issues" => from(body).map(Wire::Issues),
            "check_run" => from(body).map(Wire::CheckRun),
            "check_suite" => from(body).map(Wire::CheckSuite),
            "installation" => from(body).map(Wire::Installation),
            _ => return None,
        })
    }

    fn envelope(&self) -> WireEnvelope {
        let (action, installation, repo) = match self {
            Wire::IssueComment(w) => (&w.action, w.installation.as_ref(), Some(&w.repository)),
            Wire::ReviewComment(w) => (&w.action, w.installation.as_ref(), Some(&w.repository)),
            Wire::PullRequest(w) => (&w.action, w.installation.as_ref(), Some(&w.repository)),
            Wire::Issues(w) => (&w.action, w.installation.as_ref(), Some(&w.repository)),
            Wire::CheckRun(w) => (&w.action, w.installation.as_ref(), Some(&w.repository)),
            Wire::CheckSuite(w) => (&w.action, w.installation.as_ref(), Some(&w.repository)),
            Wire::Installation(w) => (&w.action, Some(&w.installation.as_ref_id()), None),
        };
        WireEnvelope {
            action: Some(action.clone()),
            installation: installation.map(|i| WireInstallationRef { id: i.id }),
            repository: repo.map(|r| WireRepo {
                id: r.id,
                full_name: r.full_name.clone(),
            }),
        }
    }
}

impl WireInstallation {
    fn as_ref_id(&self) -> WireInstallationRef {
        WireInstallationRef { id: self.id }
    }
}

/// Parse one delivery. `event` is the `X-GitHub-Event` header.
///
/// Events we do not handle need not even be JSON: they are recorded as
/// ignored with whatever action and repository can be read. A handled event
/// is parsed once into its wire shape; if that fails, the delivery is still
/// ignored when its action is one we do not act on (GitHub may shape those
/// differently), and otherwise it is a [`ParseError`].
pub fn parse(event: &str, body: &[u8]) -> Result<Parsed, ParseError> {
    let err = |source| ParseError {
        event: event.to_string(),
        source,
    };
    if event == "ping" {
        return Ok(Parsed::Ping);
    }
    let wire = match Wire::parse(event, body) {
        None => {
            let envelope = serde_json::from_slice(body).unwrap_or(WireEnvelope {
                action: None,
                installation: None,
                repository: None,
            });
            return Ok(ignored(envelope, format!("event `{event}` is not handled")));
        }
        Some(Ok(wire)) => wire,
        Some(Err(e)) => {
            let envelope: WireEnvelope = serde_json::from_slice(body).map_err(err)?;
            let action = envelope.action.clone().unwrap_or_default();
            if !wanted(event, &action) {
                return Ok(ignored(
                    envelope,
                    format!("action `{action}` of `{event}` is not handled"),
                ));
            }
            return Err(err(e));
        }
    };
    let envelope = wire.envelope();
    let action = envelope.action.clone().unwrap_or_default();
    if !wanted(event, &action) {
        return Ok(ignored(
            envelope,
            format!("action `{action}` of `{event}` is not handled"),
        ));
    }
    let Some(installation_id) = envelope.installation.as_ref().map(|i| i.id) else {
        // A repository or organization webhook, not an App delivery: there
        // is no installation to act as, so nothing can be done with it.
        return Ok(ignored(envelope, "no installation in the payload"));
    };
    match to_event(wire, installation_id) {
        Ok(parsed) => Ok(Parsed::Event(parsed)),
        Err(reason) => Ok(ignored(envelope, reason)),
    }
}

/// The event a wanted delivery's wire shape stands for, or why it needs
/// no work after all.
fn to_event(wire: Wire, installation_id: u64) -> Result<Event, &'static str> {
    Ok(match wire {
        Wire::IssueComment(w) => Event::IssueComment(issue_comment(w, installation_id)?),
        Wire::ReviewComment(w) => Event::IssueComment(review_comment(w, installation_id)?),
        Wire::PullRequest(w) => Event::PullRequest(PullRequest {
            action: w.action,
            repo: w.repository.into(),
            installation_id,
            number: w.number,
            head_sha: w.pull_request.head.sha,
            head_ref: w.pull_request.head.name,
            base_ref: w.pull_request.base.name,
            draft: w.pull_request.draft,
            author: w.pull_request.user,
            sender: w.sender,
        }),
        Wire::Issues(w) => Event::Issue(Issue {
            action: w.action,
            repo: w.repository.into(),
            installation_id,
            number: w.issue.number,
            title: w.issue.title,
            labels: w.issue.labels.into_iter().map(|l| l.name).collect(),
            label: w.label.map(|l| l.name),
            body: w.issue.body,
            sender: w.sender,
        }),
        Wire::CheckRun(w) => Event::CheckRun(Box::new(check_run(w, installation_id)?)),
        // "Re-run all checks" on a suite: GitHub sends it to the suite's
        // App only; for ours it re-runs our review check run.
        Wire::CheckSuite(w) => Event::CheckRun(Box::new(CheckRun {
            pull_requests: pulls_in(w.check_suite.pull_requests, w.repository.id),
            action: w.action,
            repo: w.repository.into(),
            installation_id,
            check_run_id: w.check_suite.id,
            head_sha: w.check_suite.head_sha,
            name: String::new(),
            requested_action: None,
            external_id: None,
            app_id: w.check_suite.app.map(|a| a.id),
            sender: w.sender,
            suite: true,
            conclusion: None,
            app_slug: None,
        })),
        Wire::Installation(w) => Event::Installation(Installation {
            action: w.action,
            installation_id,
            account: w
                .installation
                .account
                .and_then(|a| a.login.or(a.slug))
                .unwrap_or_default(),
            sender: w.sender,
        }),
    })
}

/// A check run's button, a re-run, or a completed check run that failed
/// (one that passed, or was skipped or cancelled, needs no explaining and
/// never reaches the queue).
fn check_run(w: WireCheckRunEvent, installation_id: u64) -> Result<CheckRun, &'static str> {
    let conclusion = w.check_run.conclusion;
    if w.action == "completed"
        && !conclusion
            .as_deref()
            .is_some_and(|c| FAILED_CONCLUSIONS.contains(&c))
    {
        return Err("a completed check run that did not fail");
    }
    let pull_requests = pulls_in(w.check_run.pull_requests, w.repository.id);
    let (app_id, app_slug) = match w.check_run.app {
        Some(app) => (Some(app.id), app.slug),
        None => (None, None),
    };
    Ok(CheckRun {
        action: w.action,
        repo: w.repository.into(),
        installation_id,
        check_run_id: w.check_run.id,
        head_sha: w.check_run.head_sha,
        name: w.check_run.name,
        requested_action: w.requested_action.map(|a| a.identifier),
        pull_requests,
        external_id: w.check_run.external_id.filter(|e| !e.is_empty()),
        app_id,
        sender: w.sender,
        suite: false,
        conclusion,
        app_slug,
    })
}

/// A comment that may carry a command, or why it runs nothing: written or
/// edited by a bot, edited by someone else, or without the command prefix.
fn issue_comment(w: WireIssueComment, installation_id: u64) -> Result<IssueComment, &'static str> {
    let body = w.comment.body.unwrap_or_default();
    if w.sender.is_bot() || w.comment.user.is_bot() {
        return Err("comment by a bot");
    }
    if w.action == "edited" && w.sender.id != w.comment.user.id {
        // Commands belong to whoever typed them: an edit of someone
        // else's comment runs nothing, and costs nothing.
        return Err("comment edited by someone other than its author");
    }
    if !body.contains(COMMAND_PREFIX) {
        return Err("comment has no command");
    }
    Ok(IssueComment {
        action: w.action,
        repo: w.repository.into(),
        installation_id,
        number: w.issue.number,
        on_pull_request: w.issue.pull_request.is_some(),
        comment_id: w.comment.id,
        body,
        author: w.comment.user,
        sender: w.sender,
        previous_body: w.changes.and_then(|c| c.body).and_then(|b| b.from),
        created_at_ms: w.comment.created_at.as_deref().and_then(parse_time_ms),
        review: None,
    })
}

/// A comment on a line of a pull request's diff. Besides commands, a new
/// reply may be talking to the bot (in a thread it started) and a new
/// comment may mention it: those are kept for the job, which knows the
/// bot's login and who started the thread. An edit runs only the commands
/// it added, as on the conversation tab.
fn review_comment(
    w: WireReviewCommentEvent,
    installation_id: u64,
) -> Result<IssueComment, &'static str> {
    let body = w.comment.body.unwrap_or_default();
    if w.sender.is_bot() || w.comment.user.is_bot() {
        return Err("comment by a bot");
    }
    if w.action == "edited" && w.sender.id != w.comment.user.id {
        return Err("comment edited by someone other than its author");
    }
    let maybe_talking =
        w.action == "created" && (w.comment.in_reply_to_id.is_some() || body.contains('@'));
    if !body.contains(COMMAND_PREFIX) && !maybe_talking {
        return Err("review comment has no command and is not a reply");
    }
    Ok(IssueComment {
        action: w.action,
        repo: w.repository.into(),
        installation_id,
        number: w.pull_request.number,
        on_pull_request: true,
        comment_id: w.comment.id,
        body,
        author: w.comment.user,
        sender: w.sender,
        previous_body: w.changes.and_then(|c| c.body).and_then(|b| b.from),
        created_at_ms: w.comment.created_at.as_deref().and_then(parse_time_ms),
        review: Some(Box::new(ReviewThread {
            root_id: w.comment.in_reply_to_id.unwrap_or(w.comment.id),
            is_reply: w.comment.in_reply_to_id.is_some(),
            path: w.comment.path,
            line: w.comment.line,
            left: w.comment.side.as_deref() == Some("LEFT"),
            diff_hunk: w.comment.diff_hunk,
            commit_id: w.comment.commit_id,
        })),
    })
}
