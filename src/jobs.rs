//! Job kinds, and which jobs an event creates.

use crate::domain::JobKind;
use crate::event::Event;
use crate::store::NewJob;

/// The jobs one event creates (today one each; the list leaves room for an
/// event that fans out).
pub fn jobs_for(event: &Event) -> Vec<NewJob> {
    let kind = match event {
        Event::IssueComment(c) if only_cancel(&c.body) => JobKind::Cancel,
        Event::IssueComment(_) => JobKind::Command,
        Event::PullRequest(_) => JobKind::Review,
        Event::Issue(_) => JobKind::InfraTask,
        Event::CheckRun(r) if r.action == "completed" => JobKind::CiExplain,
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
