//! The two-person rule against insiders: a repository member with write
//! access who wants a change that should need someone else. Each test is
//! one way around a rule (an edit, a race, a rename, a plan slipped in,
//! a dead apply, a close), driven through the real router, the fake
//! GitHub, the scripted model and moto, and asserts on moto's state and
//! on what was stored and posted.

mod support;

use serde_json::json;
use support::github::FakeGitHub;
use support::llm::Step;
use support::moto::{self, REGION};
use support::plans::{app, app_with, post, reply_of, say, MOTO, TAG};
use support::{comment_payload, delivery_id, edited_payload, user_id, TestApp};

/// Deliver `payload` as an `issue_comment`; 202.
async fn deliver_comment(app: &TestApp, payload: &[u8]) {
    let res = app.deliver("issue_comment", &delivery_id(), payload).await;
    assert_eq!(res.status(), 202);
}

/// The bot's last comment on issue 57, without its marker.
fn last_reply(gh: &FakeGitHub) -> String {
    let body = gh.comments(57).last().unwrap().body.clone();
    body.split("\n\n<!-- agentic:job=")
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_edit_runs_only_what_its_author_added_and_nothing_for_anyone_else() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let old = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_terminate_instances", json!({ "instance_ids": [old] })),
        Step::Answer("Terminate the old worker.".into()),
    ]);
    let app = app(&gh, &llm).await;
    say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan terminate the old worker",
    )
    .await;
    // The maintainer asked for the status earlier, in a comment of hers.
    let hers = 990001;
    deliver_comment(
        &app,
        &comment_payload(
            "created",
            57,
            false,
            hers,
            "mia-maintainer",
            "/agentic status",
        ),
    )
    .await;
    app.wait_for_jobs(2).await;
    let comments = gh.comments(57).len();

    // The writer edits her comment to approve his own destructive plan.
    let forged = edited_payload(
        57,
        false,
        hers,
        "mia-maintainer",
        "bob-reviewer",
        "/agentic status",
        "/agentic status\n/agentic approve 1",
    );
    deliver_comment(&app, &forged).await;
    assert_eq!(
        app.store().jobs().await.unwrap().len(),
        2,
        "an edit by someone other than the author is not even queued"
    );
    assert!(app.store().plan_approvals(1).await.unwrap().is_empty());
    assert_eq!(gh.comments(57).len(), comments, "and nothing is said");
    let refused = say(&app, &gh, 57, 3, "bob-reviewer", "/agentic apply 1").await;
    assert!(
        refused.starts_with("I cannot apply plan 1 yet."),
        "{refused}"
    );
    assert_eq!(moto::state(&aws, &old).await, "running");

    // She edits it herself to approve: only the approval runs, as hers.
    let own = edited_payload(
        57,
        false,
        hers,
        "mia-maintainer",
        "mia-maintainer",
        "/agentic status",
        "/agentic status\n/agentic approve 1",
    );
    deliver_comment(&app, &own).await;
    app.wait_for_jobs(4).await;
    let approved = last_reply(&gh);
    assert!(
        approved.starts_with("@mia-maintainer approved plan 1"),
        "only the added command ran: {approved}"
    );
    assert!(!approved.contains("Approvals:"), "status did not run again");
    let approvals = app.store().plan_approvals(1).await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].approver_id, user_id("mia-maintainer"));
    // An edit that adds no command runs nothing.
    let nothing_new = edited_payload(
        57,
        false,
        hers,
        "mia-maintainer",
        "mia-maintainer",
        "/agentic status\n/agentic approve 1",
        "/agentic status\n/agentic approve 1\n\nThanks!",
    );
    deliver_comment(&app, &nothing_new).await;
    app.wait_for_jobs(5).await;
    assert_eq!(app.store().plan_approvals(1).await.unwrap().len(), 1);
    let applied = say(&app, &gh, 57, 6, "bob-reviewer", "/agentic apply 1").await;
    assert!(applied.starts_with("Plan 1 is applied."), "{applied}");
    assert_eq!(moto::state(&aws, &old).await, "terminated");
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_bare_approve_approves_only_the_one_plan_shown_before_it() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let worker = moto::instance(&aws, &[TAG]).await;
    let database = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool(
            "aws_terminate_instances",
            json!({ "instance_ids": [worker] }),
        ),
        Step::Answer("Terminate the worker.".into()),
        Step::Tool(
            "aws_terminate_instances",
            json!({ "instance_ids": [database] }),
        ),
        Step::Answer("Terminate the database.".into()),
        Step::Tool(
            "aws_terminate_instances",
            json!({ "instance_ids": [database] }),
        ),
        Step::Answer("Terminate the database after all.".into()),
    ]);
    let app = app(&gh, &llm).await;
    // The maintainer's approval was written before the plan was shown.
    let written_before = support::github_now();
    say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan retire the worker",
    )
    .await;
    let mut early: serde_json::Value = serde_json::from_slice(&comment_payload(
        "created",
        57,
        false,
        880002,
        "mia-maintainer",
        "/agentic approve",
    ))
    .unwrap();
    early["comment"]["created_at"] = written_before.into();
    deliver_comment(&app, &serde_json::to_vec(&early).unwrap()).await;
    app.wait_for_jobs(2).await;
    let refused = last_reply(&gh);
    assert!(
        refused.starts_with("Plan 1 was shown after your comment was written"),
        "{refused}"
    );
    assert!(app.store().plan_approvals(1).await.unwrap().is_empty());

    // A second plan slipped in: a bare approve could mean either.
    say(
        &app,
        &gh,
        57,
        3,
        "bob-reviewer",
        "/agentic plan retire the database",
    )
    .await;
    for (n, command) in [
        (4, "/agentic approve"),
        (5, "/agentic apply"),
        (6, "/agentic cancel"),
    ] {
        let user = if n == 4 {
            "mia-maintainer"
        } else {
            "bob-reviewer"
        };
        let asked = say(&app, &gh, 57, n, user, command).await;
        assert!(
            asked.starts_with("More than one plan could be meant here, so I did nothing."),
            "{command}: {asked}"
        );
        assert!(asked.contains("- plan 1 (hash `") && asked.contains("- plan 2 (hash `"));
    }
    for id in [1, 2] {
        let plan = app.store().plan(id).await.unwrap().unwrap();
        assert_eq!(plan.status, "proposed", "nothing was cancelled");
        assert!(app.store().plan_approvals(id).await.unwrap().is_empty());
    }

    // Named by the hash the plan comment shows, plan 1 is approved alone.
    let first = app.store().plan(1).await.unwrap().unwrap();
    let by_hash = say(
        &app,
        &gh,
        57,
        7,
        "mia-maintainer",
        &format!("/agentic approve {}", &first.hash[..12]),
    )
    .await;
    assert!(
        by_hash.starts_with("@mia-maintainer approved plan 1"),
        "{by_hash}"
    );
    assert!(app.store().plan_approvals(2).await.unwrap().is_empty());
    let unknown = say(&app, &gh, 57, 8, "bob-reviewer", "/agentic apply 9").await;
    assert_eq!(
        unknown,
        "There is no plan `9` on this thread; `/agentic status` lists them."
    );
    let applied = say(&app, &gh, 57, 9, "bob-reviewer", "/agentic apply 1").await;
    assert!(applied.starts_with("Plan 1 is applied."), "{applied}");
    assert_eq!(moto::state(&aws, &worker).await, "terminated");
    assert_eq!(moto::state(&aws, &database).await, "running");
    // Plan 2 is now the one plan open: a bare command may mean it.
    let withdrawn = say(&app, &gh, 57, 10, "bob-reviewer", "/agentic cancel").await;
    assert!(withdrawn.starts_with("Plan 2 is withdrawn"), "{withdrawn}");
    // A plan withdrawn and replaced while an approver read it: the one plan
    // waiting now is not what a bare approve may take.
    say(
        &app,
        &gh,
        57,
        11,
        "bob-reviewer",
        "/agentic plan the database",
    )
    .await;
    let bare = say(&app, &gh, 57, 12, "mia-maintainer", "/agentic approve").await;
    assert!(
        bare.starts_with("Another plan was proposed on this thread in the last day"),
        "{bare}"
    );
    assert!(app.store().plan_approvals(3).await.unwrap().is_empty());
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_renamed_requester_is_still_the_requester() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let old = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_terminate_instances", json!({ "instance_ids": [old] })),
        Step::Answer("Terminate it.".into()),
    ]);
    let app = app(&gh, &llm).await;
    say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan terminate it",
    )
    .await;
    // Bob, promoted and renamed, approves under his new login: the same id.
    gh.role("bob-renamed", "maintain");
    let mut renamed: serde_json::Value = serde_json::from_slice(&comment_payload(
        "created",
        57,
        false,
        880002,
        "bob-renamed",
        "/agentic approve 1",
    ))
    .unwrap();
    for who in ["sender", "comment"] {
        let user = if who == "comment" {
            &mut renamed["comment"]["user"]
        } else {
            &mut renamed["sender"]
        };
        user["id"] = user_id("bob-reviewer").into();
    }
    deliver_comment(&app, &serde_json::to_vec(&renamed).unwrap()).await;
    app.wait_for_jobs(2).await;
    let approved = last_reply(&gh);
    assert!(
        approved.contains("need an approval by someone other than @bob-reviewer"),
        "{approved}"
    );
    let stored = app.store().plan_approvals(1).await.unwrap();
    assert_eq!(stored[0].approver_id, user_id("bob-reviewer"));
    let refused = say(&app, &gh, 57, 3, "bob-renamed", "/agentic apply 1").await;
    assert!(
        refused.starts_with("I cannot apply plan 1 yet."),
        "{refused}"
    );
    assert_eq!(moto::state(&aws, &old).await, "running");
    app.stop().await;
    llm.assert_clean();
}

/// The Apply button of plan `id`'s check run, pressed by `who`.
fn press_apply(gh: &FakeGitHub, id: i64, who: &str) -> Vec<u8> {
    let runs = gh.check_runs();
    let (&run_id, _) = runs
        .iter()
        .find(|(_, r)| r["external_id"] == format!("plan:{id}"))
        .expect("the plan's check run");
    let mut v: serde_json::Value =
        serde_json::from_slice(&support::fixture("check_run.requested_action.json")).unwrap();
    v["check_run"]["id"] = run_id.into();
    v["check_run"]["name"] = "agentic plan".into();
    v["check_run"]["external_id"] = format!("plan:{id}").into();
    v["check_run"]["pull_requests"] = json!([]);
    v["requested_action"] = json!({ "identifier": "apply" });
    v["sender"]["login"] = who.into();
    v["sender"]["id"] = user_id(who).into();
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn two_applies_at_once_run_it_once_and_keep_its_locks() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let first = moto::instance(&aws, &[TAG]).await;
    let second = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool(
            "aws_stop_instances",
            json!({ "instance_ids": [first, second] }),
        ),
        Step::Answer("Stop both.".into()),
        Step::Tool("aws_reboot_instances", json!({ "instance_ids": [second] })),
        Step::Answer("Reboot the second.".into()),
    ]);
    // Each applied step is followed by a long pause, ended by a cancel.
    let app = app_with(&gh, &llm, &[("AGENTIC_TEST_STEP_DELAY_MS", "60000")]).await;
    say(&app, &gh, 57, 1, "bob-reviewer", "/agentic plan stop both").await;
    say(
        &app,
        &gh,
        57,
        2,
        "bob-reviewer",
        "/agentic plan reboot the second",
    )
    .await;
    // The button and the command, delivered together.
    let res = app
        .deliver(
            "check_run",
            &delivery_id(),
            &press_apply(&gh, 1, "bob-reviewer"),
        )
        .await;
    assert_eq!(res.status(), 202);
    post(&app, 3, "bob-reviewer", "/agentic apply 1").await;
    support::wait_until("the first step, and the other apply answered", || async {
        let runs = app.store().plan_step_runs(1).await.unwrap();
        let done = app
            .store()
            .jobs()
            .await
            .unwrap()
            .iter()
            .filter(|j| j.state == "done")
            .count();
        (runs.iter().any(|r| r.step == 1 && r.state == "done") && done == 3).then_some(())
    })
    .await;
    let key = |i: &str| format!("ec2:{REGION}:{i}");
    assert_eq!(
        app.store().plan_locks(1).await.unwrap(),
        {
            let mut k = vec![key(&first), key(&second)];
            k.sort();
            k
        },
        "the loser released nothing"
    );
    // A third apply, of another plan on the same instance, must wait.
    post(&app, 5, "bob-reviewer", "/agentic apply 2").await;
    let third = support::wait_until("the third apply", || async {
        let jobs = app.store().jobs().await.unwrap();
        (jobs.len() == 5 && jobs[4].state == "done").then(|| jobs[4].id)
    })
    .await;
    assert_eq!(
        reply_of(&gh, third),
        "I cannot apply plan 2 now: plan 1 is being applied to the same resources. Try again when it is done."
    );
    assert_eq!(moto::state(&aws, &second).await, "running");
    // The cancel ends the pause; the plan ran its first step once.
    post(&app, 6, "bob-reviewer", "/agentic cancel 1").await;
    app.wait_for_jobs(6).await;
    let actions: Vec<String> = app
        .store()
        .audit_log(Some(support::github::REPO), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .filter(|a| a == "plan.apply_started" || a == "plan.step_applied")
        .collect();
    assert_eq!(actions, ["plan.apply_started", "plan.step_applied"]);
    assert_eq!(
        app.store().plan(1).await.unwrap().unwrap().status,
        "cancelled"
    );
    assert!(app.store().plan_locks(1).await.unwrap().is_empty());
    assert_eq!(moto::state(&aws, &first).await, "stopped");
    assert_eq!(moto::state(&aws, &second).await, "running");
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn taking_over_a_dead_apply_checks_everything_again() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let old = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_terminate_instances", json!({ "instance_ids": [old] })),
        Step::Answer("Terminate it.".into()),
    ]);
    let app = app(&gh, &llm).await;
    say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan terminate it",
    )
    .await;
    let approved = say(&app, &gh, 57, 2, "mia-maintainer", "/agentic approve 1").await;
    assert!(approved.contains("Ready"), "{approved}");
    // An apply started by a job that is gone, before any step ran; then
    // the maintainer is demoted.
    let store = app.store();
    let key = format!("ec2:{REGION}:{old}");
    assert_eq!(
        store.begin_apply(1, 999, &[key]).await.unwrap(),
        agentic::store::ApplyStart::Started
    );
    gh.role("mia-maintainer", "write");
    let refused = say(&app, &gh, 57, 3, "bob-reviewer", "/agentic apply").await;
    assert!(
        refused.starts_with("I cannot apply plan 1 yet.")
            && refused.contains("need an approval by someone other than @bob-reviewer with the maintain or admin role"),
        "{refused}"
    );
    assert_eq!(moto::state(&aws, &old).await, "running");
    assert_eq!(
        store.plan(1).await.unwrap().unwrap().apply_job_id,
        Some(999)
    );
    // Promoted again, her approval carries it; the reply names who resumed.
    gh.role("mia-maintainer", "maintain");
    let applied = say(&app, &gh, 57, 4, "bob-reviewer", "/agentic apply").await;
    assert!(
        applied.starts_with(
            "@bob-reviewer resumed plan 1's apply, which had stopped midway.\n\nPlan 1 is applied."
        ),
        "{applied}"
    );
    assert_eq!(moto::state(&aws, &old).await, "terminated");
    let taken = store
        .audit_log(Some(support::github::REPO), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.action == "plan.apply_taken_over")
        .expect("audited");
    assert_eq!(taken.actor.as_deref(), Some("bob-reviewer"));
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_close_by_someone_who_may_not_cancel_lets_an_approved_apply_finish() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let first = moto::instance(&aws, &[TAG]).await;
    let second = moto::instance(&aws, &[TAG]).await;
    let third = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool(
            "aws_stop_instances",
            json!({ "instance_ids": [first, second] }),
        ),
        Step::Answer("Stop both.".into()),
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [third] })),
        Step::Answer("Stop the third.".into()),
    ]);
    // A short pause after each step: the close comes in it.
    let app = app_with(&gh, &llm, &[("AGENTIC_TEST_STEP_DELAY_MS", "3000")]).await;
    say(&app, &gh, 57, 1, "bob-reviewer", "/agentic plan stop both").await;
    say(
        &app,
        &gh,
        57,
        2,
        "bob-reviewer",
        "/agentic plan stop the third",
    )
    .await;
    post(&app, 3, "bob-reviewer", "/agentic apply 1").await;
    support::plans::first_step_done(&app, 1).await;
    // The triager closes it mid-apply.
    let mut closed: serde_json::Value =
        serde_json::from_slice(&support::fixture("issues.labeled.json")).unwrap();
    closed["action"] = "closed".into();
    closed.as_object_mut().unwrap().remove("label");
    closed["sender"]["login"] = "tina-triage".into();
    closed["sender"]["id"] = user_id("tina-triage").into();
    let res = app
        .deliver(
            "issues",
            &delivery_id(),
            &serde_json::to_vec(&closed).unwrap(),
        )
        .await;
    assert_eq!(res.status(), 202);
    app.wait_for_jobs(4).await;
    let notice = gh
        .comments(57)
        .into_iter()
        .map(|c| c.body)
        .find(|b| b.starts_with("@tina-triage closed this thread."))
        .expect("the close is answered");
    assert!(
        notice.contains("stopping an apply needs the **write** role, so plan 1 goes on with its approved steps to the end"),
        "{notice}"
    );
    let plan = app.store().plan(1).await.unwrap().unwrap();
    assert_eq!(plan.status, "applied", "the apply ran to its end");
    assert_eq!(plan.cancel_requested_by, None);
    assert_eq!(moto::state(&aws, &first).await, "stopped");
    assert_eq!(moto::state(&aws, &second).await, "stopped");
    // The plan still waiting is withdrawn all the same.
    assert_eq!(
        app.store().plan(2).await.unwrap().unwrap().status,
        "cancelled"
    );
    assert_eq!(moto::state(&aws, &third).await, "running");
    let applied = reply_of(&gh, app.store().jobs().await.unwrap()[2].id);
    assert!(applied.starts_with("Plan 1 is applied."), "{applied}");
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn without_an_apply_role_nothing_is_applied_unless_the_operator_says_so() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let builder = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [builder] })),
        Step::Answer("Stop it.".into()),
    ]);
    let app = support::plans::app_with(&gh, &llm, &[]).await;
    let plan = say(&app, &gh, 57, 1, "bob-reviewer", "/agentic plan stop it").await;
    // The operator allowed it in this world: every plan says so.
    assert!(
        plan.contains("applies plans with its own AWS credentials and no session policy"),
        "{plan}"
    );
    let runs = gh.check_runs();
    let summary = runs.values().next().unwrap()["output"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(summary.contains("no session policy"), "{summary}");
    app.stop().await;

    // Without that word and without an apply role: refused, nothing runs.
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [builder] })),
        Step::Answer("Stop it.".into()),
    ]);
    support::plans::configure(&gh);
    let app = TestApp::start(
        support::plans::plan_options(&gh, &llm).without("AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY"),
    )
    .await;
    let plan = say(&app, &gh, 57, 1, "bob-reviewer", "/agentic plan stop it").await;
    assert!(!plan.contains("no session policy"), "{plan}");
    let refused = say(&app, &gh, 57, 2, "bob-reviewer", "/agentic apply").await;
    assert!(
        refused.starts_with(
            "I cannot apply plan 1: no apply role is configured (`AGENTIC_AWS_APPLY_ROLE_ARN`)"
        ),
        "{refused}"
    );
    assert_eq!(moto::state(&aws, &builder).await, "running");
    assert_eq!(
        app.store().plan(1).await.unwrap().unwrap().status,
        "proposed"
    );
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_plan_comment_edited_by_someone_else_cannot_be_approved() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let old = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_terminate_instances", json!({ "instance_ids": [old] })),
        Step::Answer("Terminate it.".into()),
    ]);
    let app = app(&gh, &llm).await;
    // Two plans in one comment: the second is not made (one job, one plan).
    let reply = say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan terminate it\n\n/agentic plan and the database too",
    )
    .await;
    assert!(
        reply.ends_with("One plan per comment: I skipped this `/agentic plan`. Ask for it in a comment of its own."),
        "{reply}"
    );
    assert_eq!(
        app.store()
            .plans(support::github::REPO, 57)
            .await
            .unwrap()
            .len(),
        1
    );
    // The writer rewrites the bot's plan comment to show a harmless plan.
    let shown = gh.comments(57).last().unwrap().clone();
    let forged = shown.body.replace(
        "**destructive** `ec2:TerminateInstances`",
        "**write** `ec2:StopInstances`",
    );
    gh.edit_comment(shown.id, &forged);
    let refused = say(&app, &gh, 57, 2, "mia-maintainer", "/agentic approve 1").await;
    assert!(
        refused.starts_with("Plan 1's comment is not as I posted it"),
        "{refused}"
    );
    assert!(app.store().plan_approvals(1).await.unwrap().is_empty());
    let apply = say(&app, &gh, 57, 3, "bob-reviewer", "/agentic apply 1").await;
    assert!(apply.starts_with("I cannot apply plan 1 yet."), "{apply}");
    assert_eq!(moto::state(&aws, &old).await, "running");
    app.stop().await;
    llm.assert_clean();
}
