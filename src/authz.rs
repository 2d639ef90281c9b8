//! Who may do what. Decided from the commenter's role on the repository
//! (GitHub's collaborator-permission API), never from the payload's
//! author association.

use crate::command::Command;
use crate::github::Role;

/// The least role a command needs. An exhaustive match: a new command does
/// not compile until its permission is decided.
pub fn required_role(command: &Command) -> Role {
    match command {
        Command::Help => Role::None,
        Command::Ask { .. } | Command::Status | Command::Review => Role::Triage,
        // It edits the author's pull request body.
        Command::Describe => Role::Write,
        Command::Plan { .. } | Command::Apply { .. } | Command::Cancel { .. } => Role::Write,
        // Approving is checked again against the plan's risk (two-person
        // rule for destructive steps) when plans exist.
        Command::Approve { .. } => Role::Write,
    }
}

/// The reply to someone whose role is too low.
pub fn denial(user: &str, command: &Command, needed: Role, has: Role) -> String {
    format!(
        "@{user} `/agentic {}` needs the **{}** role or higher on this repository; you have **{}**.",
        command.name(),
        needed.as_str(),
        has.as_str()
    )
}
