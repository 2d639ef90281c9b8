//! Job kinds, and which jobs an event creates.

use crate::event::Event;
use crate::store::NewJob;

/// What a job does. Stored by name; the worker dispatches on it with an
/// exhaustive match, so a new kind does not compile until it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// `/agentic …` in an issue or pull-request comment.
    Command,
    /// Automatic review of a pull request that opened or got new commits.
    Review,
    /// An infrastructure task started from an issue.
    InfraTask,
    /// A check run's button, or a re-run request.
    CheckRunAction,
    /// The App was installed or uninstalled.
    Installation,
    /// A comment whose only command is `/agentic cancel`: leased ahead of
    /// the queue and outside the concurrency caps, since what it stops may
    /// be what fills them.
    Cancel,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        JobKind::Command,
        JobKind::Review,
        JobKind::InfraTask,
        JobKind::CheckRunAction,
        JobKind::Installation,
        JobKind::Cancel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Command => "command",
            JobKind::Review => "review",
            JobKind::InfraTask => "infra_task",
            JobKind::CheckRunAction => "check_run_action",
            JobKind::Installation => "installation",
            JobKind::Cancel => "cancel",
        }
    }

    pub fn parse(name: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The jobs one event creates (today one each; the list leaves room for an
/// event that fans out).
pub fn jobs_for(event: &Event) -> Vec<NewJob> {
    let kind = match event {
        Event::IssueComment(c) if only_cancel(&c.body) => JobKind::Cancel,
        Event::IssueComment(_) => JobKind::Command,
        Event::PullRequest(_) => JobKind::Review,
        Event::Issue(_) => JobKind::InfraTask,
        Event::CheckRun(_) => JobKind::CheckRunAction,
        Event::Installation(_) => JobKind::Installation,
    };
    let subject = match (event.repo(), event.number()) {
        (Some(repo), Some(n)) => format!("{}#{n}", repo.full_name),
        (Some(repo), None) => repo.full_name.clone(),
        (None, _) => format!("installation/{}", event.installation_id()),
    };
    vec![NewJob {
        installation_id: event.installation_id(),
        kind: kind.as_str().to_string(),
        subject,
        // Serializing our own small struct cannot fail.
        payload: serde_json::to_string(event).unwrap_or_default(),
    }]
}

/// The comment's commands are `/agentic cancel` and nothing else.
fn only_cancel(body: &str) -> bool {
    let parsed = crate::command::parse_comment(body);
    !parsed.is_empty()
        && parsed
            .iter()
            .all(|p| matches!(p, Ok(crate::command::Command::Cancel { .. })))
}

/// A running job's stop signal: `/agentic cancel` flags the job in the
/// store, the worker running it sees the flag and signals this, with who
/// asked. Most work is dropped at once; an apply and a review look at it
/// where stopping is safe (between steps; while the model thinks).
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    token: tokio_util::sync::CancellationToken,
    by: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Cancel {
    /// Ask the job to stop, on behalf of `by`; the first caller wins.
    pub fn cancel(&self, by: &str) {
        let _ = self.by.set(by.to_string());
        self.token.cancel();
    }

    /// Who asked the job to stop, once someone has.
    pub fn requested_by(&self) -> Option<&str> {
        self.by.get().map(String::as_str)
    }

    /// Wait until someone asks the job to stop; who.
    pub async fn requested(&self) -> String {
        self.token.cancelled().await;
        self.by.get().cloned().unwrap_or_default()
    }
}
