//! The `/agentic` grammar: a pure module, no I/O.
//!
//! A comment is first reduced to the text a reader sees as prose (markdown
//! code, quotes and HTML comments carry no commands), then every line that
//! starts with `/agentic` is one command, run in order.

mod markdown;

/// The prose of a comment as its reader sees it: outside code blocks,
/// quotes and HTML, and without inline code (where `@name` mentions
/// nobody).
pub fn prose_text(body: &str) -> String {
    markdown::prose_lines(body)
        .iter()
        .map(|line| line.split('`').step_by(2).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

use std::fmt;

/// The word that starts every command.
pub const PREFIX: &str = "/agentic";

/// A command a user can give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Ask {
        question: String,
    },
    Review,
    Describe,
    Plan {
        request: String,
    },
    /// A plan by number or short hash, or the thread's one waiting plan.
    Approve {
        plan: Option<PlanRef>,
    },
    Apply {
        plan: Option<PlanRef>,
    },
    Cancel {
        plan: Option<PlanRef>,
    },
    Status,
}

/// How a command names a plan: its number (`3`, `#3`) or the start of its
/// hash as every plan comment shows it (at least [`MIN_HASH_PREFIX`] hex
/// digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanRef {
    Number(i64),
    Hash(String),
}

/// The fewest hex digits that name a plan by its hash. Shorter digit
/// strings are plan numbers; plan comments show twelve.
pub const MIN_HASH_PREFIX: usize = 7;

impl PlanRef {
    /// Parse `3`, `#3` or a hash prefix such as `3fa1c9e2b7d4`.
    pub fn parse(text: &str) -> Option<PlanRef> {
        let text = text.trim();
        if let Some(n) = text.strip_prefix('#') {
            return n
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(PlanRef::Number);
        }
        let hex = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit());
        if text.len() < MIN_HASH_PREFIX {
            text.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(PlanRef::Number)
        } else if text.len() <= 64 && hex(text) {
            Some(PlanRef::Hash(text.to_ascii_lowercase()))
        } else {
            None
        }
    }

    /// Whether the plan with `id` and `hash` is the one named.
    pub fn names(&self, id: i64, hash: &str) -> bool {
        match self {
            PlanRef::Number(n) => *n == id,
            PlanRef::Hash(prefix) => hash.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for PlanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanRef::Number(n) => write!(f, "{n}"),
            PlanRef::Hash(h) => write!(f, "{h}"),
        }
    }
}

/// Every command name, for suggestions.
const NAMES: [&str; 9] = [
    "help", "ask", "review", "describe", "plan", "approve", "apply", "cancel", "status",
];

impl Command {
    /// What a comment's command is recorded as when it runs, so that an
    /// edit of the comment does not run it again. Spelled out here, never
    /// derived: renaming a variant or a field must not change which
    /// commands count as already run. (The spelling is what `Debug` gave
    /// when the key was introduced, so keys stored before stay valid.)
    pub fn claim_key(&self) -> String {
        fn plan(r: &Option<PlanRef>) -> String {
            match r {
                None => "None".into(),
                Some(PlanRef::Number(n)) => format!("Some(Number({n}))"),
                Some(PlanRef::Hash(h)) => format!("Some(Hash({h:?}))"),
            }
        }
        match self {
            Command::Help => "Help".into(),
            Command::Ask { question } => format!("Ask {{ question: {question:?} }}"),
            Command::Review => "Review".into(),
            Command::Describe => "Describe".into(),
            Command::Plan { request } => format!("Plan {{ request: {request:?} }}"),
            Command::Approve { plan: r } => format!("Approve {{ plan: {} }}", plan(r)),
            Command::Apply { plan: r } => format!("Apply {{ plan: {} }}", plan(r)),
            Command::Cancel { plan: r } => format!("Cancel {{ plan: {} }}", plan(r)),
            Command::Status => "Status".into(),
        }
    }

    /// The command's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::Ask { .. } => "ask",
            Command::Review => "review",
            Command::Describe => "describe",
            Command::Plan { .. } => "plan",
            Command::Approve { .. } => "approve",
            Command::Apply { .. } => "apply",
            Command::Cancel { .. } => "cancel",
            Command::Status => "status",
        }
    }

    /// Usage and a one-line description. An exhaustive match: a new command
    /// does not compile until it is documented here.
    pub fn usage(&self) -> (&'static str, &'static str) {
        match self {
            Command::Help => ("/agentic help", "show this list"),
            Command::Ask { .. } => (
                "/agentic ask <question>",
                "answer a question about this pull request or issue",
            ),
            Command::Review => ("/agentic review", "review the pull request's changes"),
            Command::Describe => (
                "/agentic describe",
                "write a description of the pull request",
            ),
            Command::Plan { .. } => (
                "/agentic plan <request>",
                "propose infrastructure changes as a plan to approve",
            ),
            Command::Approve { .. } => (
                "/agentic approve [plan]",
                "approve a plan by its number or hash (alone: the one plan waiting, shown before your comment)",
            ),
            Command::Apply { .. } => (
                "/agentic apply [plan]",
                "apply an approved plan by its number or hash (alone: the one plan open)",
            ),
            Command::Cancel { .. } => (
                "/agentic cancel [plan]",
                "withdraw a plan, or stop the work running here",
            ),
            Command::Status => (
                "/agentic status",
                "show this thread's plans and what each still needs",
            ),
        }
    }

    /// One example of every command, in help order.
    pub fn all() -> [Command; 9] {
        [
            Command::Help,
            Command::Ask {
                question: String::new(),
            },
            Command::Review,
            Command::Describe,
            Command::Plan {
                request: String::new(),
            },
            Command::Approve { plan: None },
            Command::Apply { plan: None },
            Command::Cancel { plan: None },
            Command::Status,
        ]
    }
}

/// A line that starts with `/agentic` but is not a valid command. Each has
/// a reply meant for the commenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `/agentic` alone.
    MissingCommand,
    /// An unknown word, with the closest command if one is close.
    Unknown {
        name: String,
        suggestion: Option<&'static str>,
    },
    /// A command that needs an argument got none.
    MissingArgument {
        command: &'static str,
        what: &'static str,
    },
    /// A command that takes no argument got one.
    UnexpectedArgument { command: &'static str },
    /// A command that takes a plan got something else.
    NotAPlanNumber {
        command: &'static str,
        given: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::MissingCommand => {
                write!(f, "`/agentic` needs a command; try `/agentic help`.")
            }
            ParseError::Unknown {
                name,
                suggestion: Some(s),
            } => write!(f, "Unknown command `{name}`; did you mean `{s}`?"),
            ParseError::Unknown {
                name,
                suggestion: None,
            } => write!(
                f,
                "Unknown command `{name}`; `/agentic help` lists the commands."
            ),
            ParseError::MissingArgument { command, what } => {
                write!(
                    f,
                    "`/agentic {command}` needs {what}, e.g. `/agentic {command} …`."
                )
            }
            ParseError::UnexpectedArgument { command } => {
                write!(f, "`/agentic {command}` takes no arguments.")
            }
            ParseError::NotAPlanNumber { command, given } => write!(
                f,
                "`/agentic {command}` takes a plan number (`/agentic {command} 3`), the start of its hash as the plan shows it (`/agentic {command} 3fa1c9e2b7d4`), or nothing, not `{given}`."
            ),
        }
    }
}

/// The commands in a comment, in order. Lines inside code, quotes and HTML
/// comments are not looked at.
pub fn parse_comment(body: &str) -> Vec<Result<Command, ParseError>> {
    let lines = markdown::prose_lines(body);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = command_rest(&lines[i]) else {
            i += 1;
            continue;
        };
        // A free-text argument goes on over the following lines until the
        // next command or a blank line.
        let text = rest.trim();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].trim().is_empty() && command_rest(&lines[j]).is_none() {
            j += 1;
        }
        let continuation: Vec<&str> = lines[i + 1..j].iter().map(|l| l.trim()).collect();
        out.push(parse_one(text, &continuation));
        i = j;
    }
    out
}

/// The text after `/agentic` if `line` is a command line.
fn command_rest(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let rest = line.strip_prefix(PREFIX)?;
    // `/agentics` is not ours.
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c.is_whitespace() => Some(rest),
        _ => None,
    }
}

fn parse_one(text: &str, continuation: &[&str]) -> Result<Command, ParseError> {
    let mut parts = text.splitn(2, char::is_whitespace);
    let name = parts.next().unwrap_or("").to_lowercase();
    let args = parts.next().unwrap_or("").trim();
    let free_text = || {
        let mut s = args.to_string();
        for line in continuation {
            if !s.is_empty() {
                s.push('\n');
            }
            s.push_str(line);
        }
        s
    };
    let no_args = |command: Command| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(ParseError::UnexpectedArgument {
                command: command.name(),
            })
        }
    };
    let plan_number = |command: &'static str| -> Result<Option<PlanRef>, ParseError> {
        if args.is_empty() {
            return Ok(None);
        }
        PlanRef::parse(args)
            .map(Some)
            .ok_or_else(|| ParseError::NotAPlanNumber {
                command,
                given: echoed(args),
            })
    };
    match name.as_str() {
        "" => Err(ParseError::MissingCommand),
        "help" => Ok(Command::Help),
        "ask" => match free_text() {
            q if q.is_empty() => Err(ParseError::MissingArgument {
                command: "ask",
                what: "a question",
            }),
            question => Ok(Command::Ask { question }),
        },
        "plan" => match free_text() {
            r if r.is_empty() => Err(ParseError::MissingArgument {
                command: "plan",
                what: "a description of the change",
            }),
            request => Ok(Command::Plan { request }),
        },
        "review" => no_args(Command::Review),
        "describe" => no_args(Command::Describe),
        "approve" => plan_number("approve").map(|plan| Command::Approve { plan }),
        "apply" => plan_number("apply").map(|plan| Command::Apply { plan }),
        "cancel" => plan_number("cancel").map(|plan| Command::Cancel { plan }),
        "status" => no_args(Command::Status),
        other => Err(ParseError::Unknown {
            name: echoed(other),
            suggestion: suggest(other),
        }),
    }
}

/// What someone typed, as a reply may quote it inside backticks: at most
/// 40 characters, and none that could close the code span, start a
/// mention or a line, or hide.
fn echoed(text: &str) -> String {
    text.chars()
        .take(40)
        .map(|c| {
            if c.is_alphanumeric() || "-_.#:/".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The commands of `now` that `before` did not have: what an edit added.
/// Each command of `before` cancels one equal command of `now`, so an edit
/// that repeats a command once more runs it once more.
pub fn added(
    now: Vec<Result<Command, ParseError>>,
    before: Vec<Result<Command, ParseError>>,
) -> Vec<Result<Command, ParseError>> {
    let mut before = before;
    now.into_iter()
        .filter(|c| match before.iter().position(|b| b == c) {
            Some(i) => {
                let _matched = before.remove(i);
                false
            }
            None => true,
        })
        .collect()
}

/// The command closest to a mistyped one, if it is close enough to be what
/// was meant.
fn suggest(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .map(|n| (strsim::damerau_levenshtein(name, n), *n))
        .filter(|(d, n)| *d <= 2 && *d < n.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The help text, generated from the commands.
pub fn help_text() -> String {
    let mut s = String::from("**agentic commands** — write one per line in a comment:\n\n");
    for c in Command::all() {
        let (usage, what) = c.usage();
        s.push_str(&format!("- `{usage}` — {what}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claim keys are stored: these spellings must never change.
    #[test]
    fn claim_keys_are_fixed_spellings() {
        let cases = [
            (Command::Help, "Help"),
            (
                Command::Ask {
                    question: "why \"x\"?".into(),
                },
                r#"Ask { question: "why \"x\"?" }"#,
            ),
            (Command::Review, "Review"),
            (Command::Describe, "Describe"),
            (
                Command::Plan {
                    request: "stop it".into(),
                },
                r#"Plan { request: "stop it" }"#,
            ),
            (Command::Approve { plan: None }, "Approve { plan: None }"),
            (
                Command::Apply {
                    plan: Some(PlanRef::Number(3)),
                },
                "Apply { plan: Some(Number(3)) }",
            ),
            (
                Command::Cancel {
                    plan: Some(PlanRef::Hash("3fa1c9e".into())),
                },
                r#"Cancel { plan: Some(Hash("3fa1c9e")) }"#,
            ),
            (Command::Status, "Status"),
        ];
        for (command, key) in cases {
            assert_eq!(command.claim_key(), key);
        }
    }

    fn ask(q: &str) -> Result<Command, ParseError> {
        Ok(Command::Ask {
            question: q.to_string(),
        })
    }

    #[test]
    fn approve_and_apply_take_an_optional_plan_number() {
        assert_eq!(
            parse_comment("/agentic approve"),
            [Ok(Command::Approve { plan: None })]
        );
        assert_eq!(
            parse_comment("/agentic approve 3"),
            [Ok(Command::Approve {
                plan: Some(PlanRef::Number(3))
            })]
        );
        assert_eq!(
            parse_comment("/agentic apply #12"),
            [Ok(Command::Apply {
                plan: Some(PlanRef::Number(12))
            })]
        );
        assert_eq!(
            parse_comment("/agentic approve 3FA1C9E2B7D4\n/agentic cancel 1234567"),
            [
                Ok(Command::Approve {
                    plan: Some(PlanRef::Hash("3fa1c9e2b7d4".into()))
                }),
                Ok(Command::Cancel {
                    plan: Some(PlanRef::Hash("1234567".into()))
                })
            ]
        );
        let e = parse_comment("/agentic apply soon").remove(0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`/agentic apply` takes a plan number (`/agentic apply 3`), the start of its hash as the plan shows it (`/agentic apply 3fa1c9e2b7d4`), or nothing, not `soon`."
        );
        assert!(parse_comment("/agentic approve 0")[0].is_err());
        assert!(parse_comment("/agentic approve abc")[0].is_err());
        assert!(PlanRef::Hash("3fa1c9e".into()).names(9, "3fa1c9e2b7d4aa"));
        assert!(!PlanRef::Number(3).names(9, "3fa1c9e2b7d4aa"));
    }

    #[test]
    fn an_edit_runs_only_what_it_added() {
        let before = parse_comment("/agentic status\n\n/agentic ask why?");
        let now = parse_comment(
            "/agentic status\n\n/agentic ask why?\n\n/agentic approve\n\n/agentic status",
        );
        assert_eq!(
            added(now, before),
            [Ok(Command::Approve { plan: None }), Ok(Command::Status)]
        );
        let same = parse_comment("/agentic apply 2");
        assert!(added(same.clone(), same).is_empty());
    }

    #[test]
    fn commands_at_line_start_in_order() {
        let body = "Thanks!\n/agentic help\n/agentic ask what changed?\nIt is about the VPC.\n\n/agentic status";
        assert_eq!(
            parse_comment(body),
            vec![
                Ok(Command::Help),
                ask("what changed?\nIt is about the VPC."),
                Ok(Command::Status)
            ]
        );
    }

    #[test]
    fn code_quotes_and_html_comments_carry_no_commands() {
        let body = "```\n/agentic apply\n```\n\n    /agentic apply\n\n> /agentic apply\n\n\
                    <!-- /agentic apply -->\n\nrun `/agentic apply` later\nnot /agentic apply either";
        assert_eq!(parse_comment(body), vec![]);
    }

    #[test]
    fn inline_code_inside_a_question_is_kept() {
        assert_eq!(
            parse_comment("/agentic ask is `x` safe?"),
            vec![ask("is `x` safe?")]
        );
        assert!(parse_comment("`/agentic apply`").is_empty());
    }

    #[test]
    fn errors_have_helpful_replies() {
        let r = parse_comment("/agentic aply\n\n/agentic\n\n/agentic ask\n\n/agentic cancel now\n\n/agentic frobnicate");
        assert_eq!(
            r.iter()
                .map(|e| e.as_ref().unwrap_err().to_string())
                .collect::<Vec<_>>(),
            [
                "Unknown command `aply`; did you mean `apply`?",
                "`/agentic` needs a command; try `/agentic help`.",
                "`/agentic ask` needs a question, e.g. `/agentic ask …`.",
                "`/agentic cancel` takes a plan number (`/agentic cancel 3`), the start of its hash as the plan shows it (`/agentic cancel 3fa1c9e2b7d4`), or nothing, not `now`.",
                "Unknown command `frobnicate`; `/agentic help` lists the commands.",
            ]
        );
        assert!(parse_comment("/agentics help").is_empty());
        // What is quoted back cannot close its code span or mention anyone.
        assert_eq!(
            parse_comment("/agentic x`@org/team`\n\n/agentic apply 1`<b>")[0]
                .as_ref()
                .unwrap_err()
                .to_string(),
            "Unknown command `x??org/team?`; `/agentic help` lists the commands."
        );
    }

    #[test]
    fn help_lists_every_command() {
        let help = help_text();
        for name in NAMES {
            assert!(help.contains(&format!("`/agentic {name}")), "{name}");
        }
    }
}
