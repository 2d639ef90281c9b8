//! The world of the plan tests: an app whose repository may plan AWS
//! changes in moto, with a maintainer and a triager besides the writer and
//! the reader every world has, and ways to speak on its threads.
#![allow(dead_code)]

use super::github::{FakeGitHub, REPO};
use super::llm::FakeLlm;
use super::moto::{self, REGION};
use super::{app_options, comment_payload, delivery_id, Options, TestApp};
use tokio::sync::Mutex;

/// One test at a time on the one moto.
pub static MOTO: Mutex<()> = Mutex::const_new(());

pub const TAG: (&str, &str) = ("agentic:repo", REPO);

pub async fn app(gh: &FakeGitHub, llm: &FakeLlm) -> TestApp {
    app_with(gh, llm, &[]).await
}

/// [`app`], with more settings.
pub async fn app_with(gh: &FakeGitHub, llm: &FakeLlm, vars: &[(&'static str, &str)]) -> TestApp {
    configure(gh);
    let mut options = plan_options(gh, llm);
    for (k, v) in vars {
        options = options.var(k, *v);
    }
    TestApp::start(options).await
}

/// The plan world's people and repository settings: a maintainer and a
/// triager, and AWS in moto's region with the required tag.
pub fn configure(gh: &FakeGitHub) {
    gh.role("mia-maintainer", "maintain")
        .role("tina-triage", "triage");
    gh.file(
        "main",
        ".github/agentic.yml",
        &format!("aws:\n  regions: [{REGION}]\n  required_tag: agentic:repo={REPO}\n"),
    );
}

/// Options for an app that plans in moto. moto ignores session policies,
/// so these tests apply with the base credentials, which the operator must
/// allow explicitly (`AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY`).
pub fn plan_options(gh: &FakeGitHub, llm: &FakeLlm) -> Options {
    app_options(gh, llm)
        .var("AWS_ENDPOINT_URL", moto::url())
        .var("AWS_REGION", REGION)
        .var("AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY", "true")
}

/// `user` comments `body` on issue 57 (or pull request 42); waits for the
/// job; the bot's reply.
pub async fn say(
    app: &TestApp,
    gh: &FakeGitHub,
    number: u64,
    n: usize,
    user: &str,
    body: &str,
) -> String {
    let payload = comment_payload(
        "created",
        number,
        number == 42,
        880000 + n as u64,
        user,
        body,
    );
    let res = app.deliver("issue_comment", &delivery_id(), &payload).await;
    assert_eq!(res.status(), 202);
    app.wait_for_jobs(n).await;
    let reply = gh.comments(number).last().unwrap().body.clone();
    reply
        .split("\n\n<!-- agentic:job=")
        .next()
        .unwrap()
        .to_string()
}

/// Deliver `user`'s comment on issue 57 without waiting for its job.
pub async fn post(app: &TestApp, n: u64, user: &str, body: &str) {
    let payload = comment_payload("created", 57, false, 880000 + n, user, body);
    let res = app.deliver("issue_comment", &delivery_id(), &payload).await;
    assert_eq!(res.status(), 202);
}

/// The bot's comment that job `job` wrote on issue 57, without its marker.
pub fn reply_of(gh: &FakeGitHub, job: i64) -> String {
    let marker = super::marker(job);
    gh.comments(57)
        .into_iter()
        .find(|c| c.body.contains(&marker))
        .map(|c| {
            c.body
                .split("\n\n<!-- agentic:job=")
                .next()
                .unwrap()
                .to_string()
        })
        .unwrap_or_default()
}

/// Wait until step 1 of plan `plan` has run (an apply is between steps).
pub async fn first_step_done(app: &TestApp, plan: i64) {
    super::wait_until("the first step", || async {
        let runs = app.store().plan_step_runs(plan).await.unwrap();
        runs.iter()
            .any(|r| r.step == 1 && r.state == "done")
            .then_some(())
    })
    .await;
}
