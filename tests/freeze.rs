//! The operator's freeze switch end to end: set in the store (as
//! `agentic freeze` does), honoured by the real router, the worker and the
//! apply path, with moto behind the real AWS SDK. Assertions are on moto's
//! state, the stored plan and locks, the audit log, and what was posted.

mod support;

use serde_json::json;
use support::github::REPO;
use support::llm::Step;
use support::moto::{self, REGION};
use support::plans::{app, app_with, post, reply_of, say, MOTO, TAG};

#[tokio::test]
async fn a_freeze_stops_a_new_apply_shows_on_plans_and_unfreeze_lets_it_run() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let aws = moto::aws(REGION).await;
    let builder = moto::instance(&aws, &[TAG]).await;
    let (gh, llm) = support::world().await;
    llm.script([
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [builder] })),
        Step::Answer("Stop the builder.".into()),
    ]);
    let app = app(&gh, &llm).await;
    app.store()
        .set_freeze("incident 42: <b>@acme/oncall</b> is on it", "ops-alice")
        .await
        .unwrap();
    // Planning goes on, and the plan says applies are frozen.
    let reply = say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan stop the builder",
    )
    .await;
    assert!(reply.contains("**Plan 1**"), "{reply}");
    assert!(
        reply.contains("🧊 Applies are frozen by the operator (`ops-alice`, since "),
        "{reply}"
    );
    assert!(
        reply.contains("): incident 42: &lt;b&gt;`@`acme/oncall&lt;/b&gt; is on it. This plan can be approved, but nothing is applied until the freeze is lifted."),
        "the reason is shown, escaped: {reply}"
    );
    let plan = app.store().plan(1).await.unwrap().unwrap();
    let check_run = &gh.check_runs()[&plan.check_run_id.unwrap()];
    assert!(
        check_run["output"]["summary"]
            .as_str()
            .unwrap()
            .contains("🧊 Applies are frozen"),
        "{check_run}"
    );
    // `/agentic status` says so too.
    let status = say(&app, &gh, 57, 2, "bob-reviewer", "/agentic status").await;
    assert!(
        status.contains("🧊 Applies are frozen by the operator"),
        "{status}"
    );
    // No apply starts.
    let refused = say(&app, &gh, 57, 3, "bob-reviewer", "/agentic apply 1").await;
    assert!(
        refused.starts_with(
            "🧊 I cannot apply plan 1 now: applies are frozen by the operator (`ops-alice`, since "
        ),
        "{refused}"
    );
    assert!(
        refused.ends_with("Nothing ran; `/agentic apply 1` works again once the freeze is lifted."),
        "{refused}"
    );
    assert_eq!(moto::state(&aws, &builder).await, "running");
    assert_eq!(
        app.store().plan(1).await.unwrap().unwrap().status,
        "proposed"
    );
    assert!(
        app.store().plan_locks(1).await.unwrap().is_empty(),
        "no lock taken"
    );
    // Lifted: the same apply runs.
    let lifted = app.store().lift_freeze("ops-alice").await.unwrap();
    assert_eq!(lifted.unwrap().set_by, "ops-alice");
    assert_eq!(
        app.store().lift_freeze("ops-alice").await.unwrap(),
        None,
        "once"
    );
    let applied = say(&app, &gh, 57, 4, "bob-reviewer", "/agentic apply 1").await;
    assert!(applied.starts_with("Plan 1 is applied."), "{applied}");
    assert_eq!(moto::state(&aws, &builder).await, "stopped");
    // Both switches are in the audit log, by who flipped them.
    let log = app.store().audit_log(None, None, 1000).await.unwrap();
    let flips: Vec<(String, Option<String>)> = log
        .iter()
        .filter(|a| a.action.starts_with("freeze."))
        .map(|a| (a.action.clone(), a.actor.clone()))
        .collect();
    assert_eq!(
        flips,
        [
            ("freeze.set".to_string(), Some("ops-alice".to_string())),
            ("freeze.lifted".to_string(), Some("ops-alice".to_string()))
        ]
    );
    assert!(log
        .iter()
        .any(|a| a.action == "plan.apply_refused" && format!("{:?}", a.detail).contains("frozen")));
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_freeze_pauses_a_running_apply_between_steps_and_it_resumes_after() {
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
    ]);
    // A long pause after the first step (ended early by the freeze).
    let app = app_with(&gh, &llm, &[("AGENTIC_TEST_STEP_DELAY_MS", "60000")]).await;
    say(&app, &gh, 57, 1, "bob-reviewer", "/agentic plan stop both").await;
    post(&app, 2, "bob-reviewer", "/agentic apply 1").await;
    support::plans::first_step_done(&app, 1).await;
    app.store()
        .set_freeze("bad deploy in eu-west-1", "ops-alice")
        .await
        .unwrap();
    let jobs = app.wait_for_jobs(2).await;
    let paused = reply_of(&gh, jobs[1].id);
    assert!(
        paused.starts_with("🧊 Plan 1 paused before step 2: applies are frozen by the operator (`ops-alice`, since "),
        "{paused}"
    );
    assert!(
        paused.contains("): bad deploy in eu-west-1. The steps marked ✅ ran; the rest did not. The plan stays `applying` and keeps its locks; `/agentic apply 1` resumes it once the freeze is lifted."),
        "{paused}"
    );
    assert!(
        paused.contains(&format!(
            "⏭️ 2. **write** `ec2:StopInstances` on `{second}`"
        )),
        "{paused}"
    );
    assert_eq!(moto::state(&aws, &first).await, "stopped");
    assert_eq!(moto::state(&aws, &second).await, "running");
    let plan = app.store().plan(1).await.unwrap().unwrap();
    assert_eq!(plan.status, "applying");
    assert_eq!(
        app.store().plan_locks(1).await.unwrap().len(),
        2,
        "it keeps its locks"
    );
    // Still frozen: asking again changes nothing.
    let still = say(&app, &gh, 57, 3, "bob-reviewer", "/agentic apply 1").await;
    assert!(still.starts_with("🧊 I cannot apply plan 1 now"), "{still}");
    assert_eq!(moto::state(&aws, &second).await, "running");
    // Unfrozen: the apply resumes where it stopped, without running step 1
    // again.
    app.store().lift_freeze("ops-alice").await.unwrap();
    let resumed = say(&app, &gh, 57, 4, "bob-reviewer", "/agentic apply 1").await;
    assert!(
        resumed.starts_with(
            "@bob-reviewer resumed plan 1's apply, which had stopped midway.\n\nPlan 1 is applied."
        ),
        "{resumed}"
    );
    assert_eq!(moto::state(&aws, &second).await, "stopped");
    let runs = app.store().plan_step_runs(1).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.state == "done"));
    let applied: usize = app
        .store()
        .audit_log(Some(REPO), None, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|a| a.action == "plan.step_applied")
        .count();
    assert_eq!(applied, 2, "each step ran once");
    assert!(app.store().plan_locks(1).await.unwrap().is_empty());
    app.stop().await;
    llm.assert_clean();
}
