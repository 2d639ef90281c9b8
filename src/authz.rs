//! Who may do what. Decided from the commenter's role on the repository
//! (GitHub's collaborator-permission API), never from the payload's
//! author association.

use crate::command::Command;
use crate::domain::Role;

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

/// The ways in, besides a comment, that run a command on someone's behalf.
pub const OTHER_PATHS: [(&str, Command); 2] = [
    (
        "the trigger label on an issue (asks for a plan from its text)",
        Command::Plan {
            request: String::new(),
        },
    ),
    (
        "the **Apply** button of a plan's check run",
        Command::Apply { plan: None },
    ),
];

/// Who may run what by default, as the README prints it: a row per command
/// and per other way in, a column per role. Made from [`required_role`]
/// and [`Command::all`], so the documentation cannot drift from the
/// behaviour (a test compares the README with this).
pub fn matrix_markdown() -> String {
    let mut out = String::from("| | ");
    out.push_str(
        &Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" |\n|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    let row = |out: &mut String, what: String, command: &Command| {
        let needed = required_role(command);
        let cells: Vec<&str> = Role::ALL
            .iter()
            .map(|r| if *r >= needed { "✅" } else { "—" })
            .collect();
        out.push_str(&format!("| {what} | {} |\n", cells.join(" | ")));
    };
    for command in Command::all() {
        row(&mut out, format!("`{}`", command.usage().0), &command);
    }
    for (what, command) in OTHER_PATHS {
        row(&mut out, what.to_string(), &command);
    }
    out
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
