//! Who may do what, end to end: every command × every role × (the plan's
//! requester, someone else) × (a new comment, edited by its author, edited
//! by someone else), plus the label and the Apply button, through the real
//! router, the fake GitHub and the scripted model. The expected outcome of
//! each case comes from the code's own rules (`agentic::authz`), which also
//! print the README's table: the docs, the rules and the behaviour agree.
//! Every payload claims `author_association: OWNER`; roles come from
//! GitHub's permission API, so the claim changes nothing.

mod support;

use agentic::authz;
use agentic::command::Command;
use agentic::domain::Role;
use serde_json::json;
use support::github::REPO;
use support::moto::REGION;
use support::plans::{plan_options, MOTO};
use support::{comment_payload, delivery_id, edited_payload, user_id, TestApp};

/// How the command reached the bot.
#[derive(Debug, Clone, Copy, PartialEq)]
enum How {
    New,
    EditedByAuthor,
    EditedByAnother,
}

/// Whose command it is, against the plan it names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Requester,
    SomeoneElse,
}

/// One case of the matrix: its delivery, and what the rules say.
struct Case {
    what: String,
    role: Role,
    delivery: String,
    /// `None`: nothing may run at all (an edit by someone else).
    allowed: Option<bool>,
}

/// What a job's audit records say happened to its command.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// It ran (whatever it then found to do).
    Ran,
    /// Refused for the role it needs.
    RefusedForRole,
    /// Not answered: an outsider's notice was spent.
    Quiet,
}

fn seen(audit: &[(String, Option<String>)]) -> Seen {
    let refusals: Vec<serde_json::Value> = audit
        .iter()
        .filter(|(action, _)| action == "command.refused")
        .map(|(_, detail)| serde_json::from_str(detail.as_deref().unwrap_or("null")).unwrap())
        .collect();
    match refusals.first() {
        None => Seen::Ran,
        Some(d) if d.get("needed").is_some() => Seen::RefusedForRole,
        Some(_) => Seen::Quiet,
    }
}

/// The comment that gives `command`, naming plan `plan` where it takes one.
fn text(command: &Command, plan: i64) -> String {
    match command {
        Command::Help => "/agentic help".into(),
        Command::Ask { .. } => "/agentic ask what is this?".into(),
        Command::Review => "/agentic review".into(),
        Command::Describe => "/agentic describe".into(),
        Command::Plan { .. } => "/agentic plan stop nothing".into(),
        Command::Approve { .. } => format!("/agentic approve {plan}"),
        Command::Apply { .. } => format!("/agentic apply {plan}"),
        Command::Cancel { .. } => format!("/agentic cancel {plan}"),
        Command::Status => "/agentic status".into(),
    }
}

/// `payload` with a forged `author_association` on the comment.
fn forged(payload: Vec<u8>) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    v["comment"]["author_association"] = "OWNER".into();
    serde_json::to_vec(&v).unwrap()
}

/// A destructive one-step plan on issue 57 requested by `login`, stored as
/// the plan workflow stores it; its id.
async fn plan_by(app: &TestApp, job: i64, login: &str) -> i64 {
    let step = agentic::plan::PlanStep {
        service: "ec2".into(),
        action: "TerminateInstances".parse().unwrap(),
        region: Some(REGION.into()),
        resource: format!("i-{job:017x}"),
        arguments: json!({ "instance_ids": [format!("i-{job:017x}")] }),
        risk: agentic::domain::RiskTier::Destructive,
    };
    app.store()
        .create_plan(
            job,
            REPO,
            57,
            (login, user_id(login)),
            None,
            &[step],
            i64::MAX,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn every_command_role_author_and_edit_gets_the_documented_answer() {
    let _turn = MOTO.lock().await;
    let (gh, llm) = support::world().await;
    llm.otherwise("Nothing to add.");
    support::plans::configure(&gh);
    let app = TestApp::start(
        plan_options(&gh, &llm)
            // Many commands from many people at once: the limits that would
            // defer them are not what this test is about.
            .var("AGENTIC_SENDER_COMMANDS_PER_MINUTE", "100000")
            .var("AGENTIC_INSTALLATION_COMMANDS_PER_MINUTE", "100000")
            .var("AGENTIC_CONTENT_PER_MINUTE", "100000")
            .var("AGENTIC_CONTENT_PER_HOUR", "100000")
            .var("AGENTIC_WORKER_CONCURRENCY", "8")
            .var("AGENTIC_MAX_JOBS_PER_INSTALLATION", "8"),
    )
    .await;
    let mut cases = Vec::new();
    let mut n = 0u64;
    for role in Role::ALL {
        for command in Command::all() {
            for how in [How::New, How::EditedByAuthor, How::EditedByAnother] {
                for who in [Who::Requester, Who::SomeoneElse] {
                    n += 1;
                    // Everyone is someone new: one person's notice window
                    // never hides another case's answer.
                    let login = format!("m{n}-{}", role.as_str());
                    if role > Role::None {
                        gh.role(&login, role.as_str());
                    }
                    let requester = match who {
                        Who::Requester => login.clone(),
                        Who::SomeoneElse => format!("r{n}"),
                    };
                    let plan = plan_by(&app, 100_000 + n as i64, &requester).await;
                    let body = text(&command, plan);
                    let comment = 770_000 + n;
                    let payload = match how {
                        How::New => comment_payload("created", 57, false, comment, &login, &body),
                        How::EditedByAuthor => {
                            edited_payload(57, false, comment, &login, &login, "Thanks.", &body)
                        }
                        // An admin edits this person's comment to say it.
                        How::EditedByAnother => {
                            gh.role("an-admin", "admin");
                            edited_payload(57, false, comment, &login, "an-admin", "Thanks.", &body)
                        }
                    };
                    let delivery = delivery_id();
                    let res = app
                        .deliver("issue_comment", &delivery, &forged(payload))
                        .await;
                    assert_eq!(res.status(), 202);
                    cases.push(Case {
                        role,
                        what: format!("{body} by {login} ({who:?}, {how:?})"),
                        delivery,
                        allowed: (how != How::EditedByAnother)
                            .then(|| role >= authz::required_role(&command)),
                    });
                }
            }
        }
    }
    // The label and the button, by each role.
    for role in Role::ALL {
        for (path, command) in authz::OTHER_PATHS {
            n += 1;
            let login = format!("m{n}-{}", role.as_str());
            if role > Role::None {
                gh.role(&login, role.as_str());
            }
            let (event, payload) = if matches!(command, Command::Plan { .. }) {
                let mut v: serde_json::Value =
                    serde_json::from_slice(&support::fixture("issues.labeled.json")).unwrap();
                v["label"]["name"] = "agentic".into();
                v["sender"]["login"] = login.clone().into();
                v["sender"]["id"] = user_id(&login).into();
                ("issues", serde_json::to_vec(&v).unwrap())
            } else {
                let plan = plan_by(&app, 100_000 + n as i64, &format!("r{n}")).await;
                let mut v: serde_json::Value =
                    serde_json::from_slice(&support::fixture("check_run.requested_action.json"))
                        .unwrap();
                v["check_run"]["name"] = "agentic plan".into();
                v["check_run"]["external_id"] = format!("plan:{plan}").into();
                v["check_run"]["pull_requests"] = json!([]);
                v["requested_action"] = json!({ "identifier": "apply" });
                v["sender"]["login"] = login.clone().into();
                v["sender"]["id"] = user_id(&login).into();
                ("check_run", serde_json::to_vec(&v).unwrap())
            };
            let delivery = delivery_id();
            let res = app.deliver(event, &delivery, &payload).await;
            assert_eq!(res.status(), 202);
            cases.push(Case {
                role,
                what: format!("{path} by {login}"),
                delivery,
                allowed: Some(role >= authz::required_role(&command)),
            });
        }
    }
    let queued = cases.iter().filter(|c| c.allowed.is_some()).count();
    let jobs = app.wait_for_jobs(queued).await;
    let mut wrong = Vec::new();
    for case in &cases {
        let job = jobs.iter().find(|j| j.delivery_id == case.delivery);
        let seen = match job {
            None => None,
            Some(job) => Some(seen(&app.store().audit_records(job.id).await.unwrap())),
        };
        let fits = match (case.allowed, seen) {
            (None, None) => true,
            (Some(true), Some(Seen::Ran)) => true,
            (Some(false), Some(Seen::RefusedForRole)) => true,
            // A refusal is a notice: one per person per notice window, and
            // an installation only so many; past that, quiet.
            (Some(false), Some(Seen::Quiet)) => true,
            // So is anything from someone without triage, help included.
            (Some(true), Some(Seen::Quiet)) => case.role < Role::Triage,
            _ => false,
        };
        if !fits {
            wrong.push(format!(
                "{}: expected {:?}, saw {seen:?}",
                case.what, case.allowed
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases disagree with the rules:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    // Only people allowed to approve left approvals, and a requester's own
    // approval never carries their plan.
    for plan in app.store().plans(REPO, 57).await.unwrap() {
        for a in app.store().plan_approvals(plan.id).await.unwrap() {
            assert!(a.role >= Role::Write, "{a:?}");
            if plan.requester_id == Some(a.approver_id) {
                let facts = agentic::plan::PlanFacts {
                    steps: &plan.steps,
                    hash: &plan.hash,
                    requester: &plan.requester,
                    requester_id: plan.requester_id,
                    requester_role: a.role,
                    head_sha: None,
                    expires_at: plan.expires_at,
                    rules: agentic::plan::ApprovalRules::default(),
                };
                assert!(
                    !agentic::plan::missing(&facts, std::slice::from_ref(&a), None, 0).is_empty(),
                    "a requester's own approval carried plan {}",
                    plan.id
                );
            }
        }
    }
    app.stop().await;
}

/// The README's table is the one the rules make.
#[test]
fn the_readme_prints_the_rules_as_they_are() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = "<!-- authz-matrix:start (generated by agentic::authz::matrix_markdown; a test checks it) -->\n";
    let end = "<!-- authz-matrix:end -->";
    let from = readme
        .find(start)
        .expect("the README has the table's start marker")
        + start.len();
    let to = readme[from..].find(end).expect("and its end marker") + from;
    assert_eq!(
        &readme[from..to],
        authz::matrix_markdown(),
        "regenerate the README's table from agentic::authz::matrix_markdown()"
    );
}
