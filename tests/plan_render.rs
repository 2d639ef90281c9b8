//! What approvers see is what is hashed and what runs: a plan posted
//! through the real router, with a model (or text fed to it) trying to
//! hide, fake or reorder steps, shows every step, in order, in the reply
//! and in the check run, with what the tools refused listed under them.

mod support;

use serde_json::json;
use support::github::REPO;
use support::llm::{FakeLlm, Step};
use support::moto::{self, REGION};
use support::{comment_payload, delivery_id, TestApp};
use tokio::sync::Mutex;

/// One test at a time on the one moto.
static MOTO: Mutex<()> = Mutex::const_new(());

const TAG: (&str, &str) = ("agentic:repo", REPO);

/// A private key's marker and the start of its body, in a tag value.
const KEY_IN_TAG: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMx";

/// The line only a plan that may be applied ends with.
const READY: &str = "Ready: `/agentic apply` runs exactly these steps.";

async fn app(gh: &support::github::FakeGitHub, llm: &FakeLlm) -> TestApp {
    gh.file(
        "main",
        ".github/agentic.yml",
        &format!("aws:\n  regions: [{REGION}]\n  required_tag: agentic:repo={REPO}\n"),
    );
    let options = support::plans::plan_options(gh, llm);
    TestApp::start(options).await
}

/// `user` comments `body` on issue 57; waits for job `n`; the whole body
/// of the bot's reply, marker included.
async fn say(app: &TestApp, gh: &support::github::FakeGitHub, n: usize, body: &str) -> String {
    let payload = comment_payload(
        "created",
        57,
        false,
        880000 + n as u64,
        "bob-reviewer",
        body,
    );
    let res = app.deliver("issue_comment", &delivery_id(), &payload).await;
    assert_eq!(res.status(), 202);
    app.wait_for_jobs(n).await;
    gh.comments(57).last().unwrap().body.clone()
}

/// Where each of `parts` is in `text`, failing unless all are there, in
/// this order.
fn assert_in_order(text: &str, parts: &[&str]) {
    let mut from = 0;
    for part in parts {
        match text[from..].find(part) {
            Some(at) => from += at + part.len(),
            None => panic!("{part:?} missing or out of order in:\n{text}"),
        }
    }
}

#[tokio::test]
async fn a_hostile_summary_and_a_key_in_a_tag_hide_no_step_and_refusals_are_listed() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let first = moto::instance(&aws, &[TAG]).await;
    let second = moto::instance(&aws, &[TAG]).await;
    let untagged = moto::instance(&aws, &[("env", "prod")]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [first] })),
        Step::Tool(
            "aws_tag_instances",
            json!({ "instance_ids": [second], "tags": { "note": KEY_IN_TAG } }),
        ),
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [untagged] })),
        Step::Answer(format!(
            "Stop one builder and note the other.\n\n<!--\n\n{READY}\n\n1. **write** `ec2:StopInstances` on `i-00000000000000000`"
        )),
    ]);
    let app = app(&gh, &llm).await;
    let body = say(&app, &gh, 1, "/agentic plan stop the idle builders").await;

    let step_one = format!("1. **write** `ec2:StopInstances` on `{first}` in `{REGION}`");
    let step_two = format!("2. **write** `ec2:CreateTags` on `{second}` in `{REGION}`");
    // The model's text hides nothing: the only comment opener is the
    // job's own marker, at the very end.
    let marker = format!("\n\n{}", agentic::output::marker(1));
    assert!(body.ends_with(&marker), "{body}");
    assert_eq!(body.matches("<!--").count(), 1, "{body}");
    assert!(
        body.starts_with("Stop one builder and note the other.\n\n&lt;\\!--"),
        "{body}"
    );
    assert_eq!(
        body.matches(READY).count(),
        1,
        "only the real ready line: {body}"
    );
    assert_in_order(
        &body,
        &[
            "**Plan 1**",
            &step_one,
            &step_two,
            "\"note\": \"[REDACTED]\"",
            "Refused while planning",
            "`aws_stop_instances` on `",
            &untagged,
            READY,
        ],
    );
    assert!(!body.contains("MIIEow"), "{body}");

    let runs = gh.check_runs();
    assert_eq!(runs.len(), 1);
    let run = runs.values().next().unwrap();
    let summary = run["output"]["summary"].as_str().unwrap();
    assert!(!summary.contains("<!--"), "{summary}");
    assert!(!summary.contains("MIIEow"), "{summary}");
    assert_in_order(
        summary,
        &[
            "**Plan 1**",
            &step_one,
            &step_two,
            "Refused while planning",
            &untagged,
            READY,
        ],
    );

    // What was refused is stored with the plan, from the tool's refusal.
    let plan = app.store().plan(1).await.unwrap().unwrap();
    assert_eq!(plan.steps.len(), 2);
    assert_eq!(plan.refusals.len(), 1, "{:?}", plan.refusals);
    assert_eq!(plan.refusals[0].action, "aws_stop_instances");
    assert_eq!(plan.refusals[0].resource, untagged);
    assert!(
        plan.refusals[0].reason.contains("does not carry the tag"),
        "{:?}",
        plan.refusals[0]
    );
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_plan_with_every_step_refused_says_what_was_refused_and_a_step_past_the_limit_is_refused()
{
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let mut many = Vec::new();
    for _ in 0..=agentic::plan::MAX_PLAN_STEPS {
        many.push(moto::instance(&aws, &[TAG]).await);
    }
    let untagged = moto::instance(&aws, &[("env", "prod")]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_stop_instances", json!({ "instance_ids": many })),
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [untagged] })),
        Step::Answer("Nothing could be planned.".into()),
    ]);
    let app = app(&gh, &llm).await;
    let body = say(&app, &gh, 1, "/agentic plan stop everything").await;
    // The model was told why, and so are people.
    let told = llm.last_message(1);
    assert!(
        told.starts_with(&format!(
            "refused: a plan has at most {} steps",
            agentic::plan::MAX_PLAN_STEPS
        )),
        "{told}"
    );
    assert_in_order(
        &body,
        &[
            "No change proposed.\n\nNothing could be planned.",
            "Refused while planning",
            &format!("`aws_stop_instances` on `{}, ", many[0]),
            "a plan has at most 25 steps",
            &format!("`aws_stop_instances` on `{untagged}`"),
        ],
    );
    assert!(app.store().plan(1).await.unwrap().is_none());
    assert!(gh.check_runs().is_empty());
    app.stop().await;
    llm.assert_clean();
}
