//! The operator's scope ceilings (`AGENTIC_POLICY_FILE`) end to end: the
//! real router, the fake GitHub, the scripted model and moto. A repository's
//! own `.github/agentic.yml` is written by whoever can merge to it; each test
//! has it ask for more than the operator allows and checks what was posted,
//! what the model was offered, what was stored and what moto has.

mod support;

use std::io::Write;

use serde_json::json;
use support::github::{FakeGitHub, REPO};
use support::llm::{FakeLlm, Step};
use support::moto::{self, OTHER_REGION, REGION};
use support::plans::{plan_options, say, MOTO, TAG};
use support::TestApp;

/// A policy file with `text`, kept for the test's length.
fn policy(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// A ceiling for the test repository (`acme/widgets`) with `aws` lines.
fn ceiling(aws: &str) -> String {
    format!("repositories:\n  \"acme-platform/*\":\n    aws:\n{aws}")
}

/// The repository's own file: `aws` lines under its `aws:` section.
fn repo_config(gh: &FakeGitHub, aws: &str) {
    gh.file("main", ".github/agentic.yml", &format!("aws:\n{aws}"));
}

async fn app(gh: &FakeGitHub, llm: &FakeLlm, policy: &tempfile::NamedTempFile) -> TestApp {
    gh.role("mia-maintainer", "maintain")
        .role("max-maintainer", "maintain");
    TestApp::start(
        plan_options(gh, llm).var("AGENTIC_POLICY_FILE", policy.path().to_str().unwrap()),
    )
    .await
}

fn own_tag() -> String {
    format!("  required_tag: agentic:repo={REPO}\n")
}

/// The names of the tools offered in the model's request `n`.
fn offered(llm: &FakeLlm, n: usize) -> Vec<String> {
    llm.requests()[n]["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_repository_outside_the_policy_file_gets_no_aws_tool() {
    let (gh, llm) = support::world().await;
    repo_config(&gh, &format!("  regions: [{REGION}]\n{}", own_tag()));
    let file = policy("repositories:\n  \"other-org/*\":\n    aws:\n      regions: [eu-west-1]\n");
    llm.script([Step::Answer("Nothing to see.".into())]);
    let app = app(&gh, &llm, &file).await;
    // A plan: refused before the model is asked anything.
    let reply = say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan stop the builders",
    )
    .await;
    assert!(
        reply.starts_with("⚠️ `.github/agentic.yml` on the default branch has an `aws` section, but this server's policy file gives this repository no AWS scope; no AWS tool runs for this repository until it is fixed."),
        "{reply}"
    );
    assert!(
        reply.contains("I cannot plan or apply AWS changes here"),
        "{reply}"
    );
    assert!(llm.requests().is_empty(), "the model was not asked to plan");
    assert!(app.store().plan(1).await.unwrap().is_none());
    // A question: answered, with no AWS tool on offer.
    let reply = say(
        &app,
        &gh,
        57,
        2,
        "bob-reviewer",
        "/agentic ask which instances run?",
    )
    .await;
    assert!(reply.contains("Nothing to see."), "{reply}");
    let tools = offered(&llm, 0);
    assert!(!tools.is_empty(), "the GitHub tools are offered");
    assert!(
        tools.iter().all(|t| !t.starts_with("aws_")),
        "no AWS tool: {tools:?}"
    );
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_region_beyond_the_ceiling_is_said_once_and_a_step_there_is_refused() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    let there = moto::aws(OTHER_REGION).await;
    let near = moto::instance(&here, &[TAG]).await;
    let far = moto::instance(&there, &[TAG]).await;
    let (gh, llm) = support::world().await;
    // The repository names both regions; the operator allows one.
    repo_config(
        &gh,
        &format!("  regions: [{REGION}, {OTHER_REGION}]\n{}", own_tag()),
    );
    let file = policy(&ceiling(&format!("      regions: [{REGION}]\n")));
    llm.script([
        Step::Tool(
            "aws_stop_instances",
            json!({ "instance_ids": [far], "region": OTHER_REGION }),
        ),
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [near] })),
        Step::Answer("Stop both builders.".into()),
    ]);
    let app = app(&gh, &llm, &file).await;
    let reply = say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan stop both builders",
    )
    .await;
    let warning = format!(
        "⚠️ `.github/agentic.yml` on the default branch asks for more than this server's ceiling (`acme-platform/*`) allows: region `{OTHER_REGION}`; the ceiling applies instead."
    );
    assert!(reply.starts_with(&warning), "{reply}");
    assert_eq!(
        reply.matches("server's ceiling").count(),
        1,
        "said once: {reply}"
    );
    // The model was told the allowed regions, and its step there refused.
    assert!(
        llm.requests()[0]["messages"]
            .to_string()
            .contains(&format!("(allowed regions: {REGION})")),
        "the model sees the bounded scope"
    );
    assert!(
        llm.last_message(1)
            .starts_with(&format!("refused: region `{OTHER_REGION}` is not in")),
        "{}",
        llm.last_message(1)
    );
    let plan = app.store().plan(1).await.unwrap().unwrap();
    assert_eq!(plan.steps.len(), 1);
    assert_eq!(plan.steps[0].resource, near);
    let applied = say(&app, &gh, 57, 2, "bob-reviewer", "/agentic apply 1").await;
    assert!(applied.contains("Plan 1 is applied."), "{applied}");
    assert_eq!(moto::state(&here, &near).await, "stopped");
    assert_eq!(moto::state(&there, &far).await, "running");
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn a_required_tag_naming_another_repository_is_refused() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    // Another team's instance, carrying its repository's tag.
    let theirs = moto::instance(&here, &[("agentic:repo", "acme/payments")]).await;
    let (gh, llm) = support::world().await;
    repo_config(
        &gh,
        &format!("  regions: [{REGION}]\n  required_tag: agentic:repo=acme/payments\n"),
    );
    // With a policy that would allow the region, and without one.
    let file = policy(&ceiling(&format!("      regions: [{REGION}]\n")));
    for with_policy in [true, false] {
        let app = if with_policy {
            app(&gh, &llm, &file).await
        } else {
            TestApp::start(plan_options(&gh, &llm)).await
        };
        let reply = say(
            &app,
            &gh,
            57,
            1,
            "bob-reviewer",
            "/agentic plan stop their builder",
        )
        .await;
        assert!(
            reply.starts_with(&format!("⚠️ `.github/agentic.yml` on the default branch sets `aws.required_tag` to `agentic:repo=acme/payments`, but the tag's value must be this repository's own name (`agentic:repo={REPO}`)")),
            "{reply}"
        );
        assert!(
            reply.contains("no AWS tool runs for this repository"),
            "{reply}"
        );
        assert!(llm.requests().is_empty(), "the model was not asked");
        assert!(app.store().plan(1).await.unwrap().is_none());
        app.stop().await;
    }
    assert_eq!(moto::state(&here, &theirs).await, "running");
}

#[tokio::test]
async fn max_tier_write_refuses_a_terminate_plan_and_a_tightened_file_stops_a_waiting_one() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    let old = moto::instance(&here, &[TAG]).await;
    let idle = moto::instance(&here, &[TAG]).await;
    let (gh, llm) = support::world().await;
    repo_config(&gh, &format!("  regions: [{REGION}]\n{}", own_tag()));
    let file = policy(&ceiling(&format!(
        "      regions: [{REGION}]\n      max_tier: write\n"
    )));
    llm.script([
        Step::Tool("aws_terminate_instances", json!({ "instance_ids": [old] })),
        Step::Answer("Terminate the old worker.".into()),
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [idle] })),
        Step::Answer("Stop the idle one.".into()),
    ]);
    let app = app(&gh, &llm, &file).await;
    let reply = say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan terminate the old worker",
    )
    .await;
    assert!(
        reply.starts_with("⚠️ I cannot make this plan: it is destructive, and this server's ceiling for this repository (`acme-platform/*`) allows plans up to write only. Nothing was planned."),
        "{reply}"
    );
    assert!(
        reply.contains("`ec2:TerminateInstances`"),
        "the steps are listed: {reply}"
    );
    assert!(
        app.store().plan(1).await.unwrap().is_none(),
        "nothing stored"
    );
    // A write plan is made; then the operator tightens the file to read
    // and reloads it: the waiting plan no longer applies.
    let reply = say(
        &app,
        &gh,
        57,
        2,
        "bob-reviewer",
        "/agentic plan stop the idle one",
    )
    .await;
    assert!(reply.contains("**Plan 1**"), "{reply}");
    std::fs::write(
        file.path(),
        ceiling(&format!(
            "      regions: [{REGION}]\n      max_tier: read\n"
        )),
    )
    .unwrap();
    let state = &app.running.as_ref().unwrap().state;
    assert_eq!(state.reload_policy(), Ok(1));
    let refused = say(&app, &gh, 57, 3, "bob-reviewer", "/agentic apply 1").await;
    assert_eq!(
        refused,
        "I cannot apply plan 1: it is write, and this server's ceiling for this repository (`acme-platform/*`) allows plans up to read only. Nothing ran."
    );
    // A bad file on reload is refused, naming the key; the policy in force
    // stays.
    std::fs::write(
        file.path(),
        ceiling("      regions: [x]\n      max_tier: all\n"),
    )
    .unwrap();
    let e = state.reload_policy().unwrap_err();
    assert!(e.contains("max_tier"), "{e}");
    let still = say(&app, &gh, 57, 4, "bob-reviewer", "/agentic apply 1").await;
    assert!(still.contains("allows plans up to read only"), "{still}");
    assert_eq!(moto::state(&here, &old).await, "running");
    assert_eq!(moto::state(&here, &idle).await, "running");
    let refusals: Vec<String> = app
        .store()
        .audit_log(Some(REPO), None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .filter(|a| a.ends_with("refused"))
        .collect();
    assert!(
        refusals.contains(&"plan.refused".to_string()),
        "{refusals:?}"
    );
    assert!(
        refusals.contains(&"plan.apply_refused".to_string()),
        "{refusals:?}"
    );
    app.stop().await;
    llm.assert_clean();
}

#[tokio::test]
async fn the_ceilings_approval_floor_holds_against_a_looser_repository_setting() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    let old = moto::instance(&here, &[TAG]).await;
    let (gh, llm) = support::world().await;
    // The repository asks for one destructive approval; the operator's
    // floor is two.
    repo_config(
        &gh,
        &format!(
            "  regions: [{REGION}]\n{}  approvals:\n    destructive_approvals: 1\n    write_needs_second_person: true\n",
            own_tag()
        ),
    );
    let file = policy(&ceiling(&format!(
        "      regions: [{REGION}]\n      destructive_approvals: 2\n"
    )));
    llm.script([
        Step::Tool("aws_terminate_instances", json!({ "instance_ids": [old] })),
        Step::Answer("Terminate the old worker.".into()),
    ]);
    let app = app(&gh, &llm, &file).await;
    let reply = say(
        &app,
        &gh,
        57,
        1,
        "bob-reviewer",
        "/agentic plan terminate the old worker",
    )
    .await;
    assert!(
        reply.contains("allows: looser `aws.approvals`; the ceiling applies instead."),
        "{reply}"
    );
    assert!(reply.contains("**Plan 1**"), "{reply}");
    say(&app, &gh, 57, 2, "mia-maintainer", "/agentic approve 1").await;
    let refused = say(&app, &gh, 57, 3, "bob-reviewer", "/agentic apply 1").await;
    assert!(
        refused.contains("\n\nI cannot apply plan 1 yet."),
        "{refused}"
    );
    assert_eq!(
        moto::state(&here, &old).await,
        "running",
        "one maintainer is not enough"
    );
    say(&app, &gh, 57, 4, "max-maintainer", "/agentic approve 1").await;
    let applied = say(&app, &gh, 57, 5, "bob-reviewer", "/agentic apply 1").await;
    assert!(applied.contains("Plan 1 is applied."), "{applied}");
    assert_eq!(moto::state(&here, &old).await, "terminated");
    app.stop().await;
    llm.assert_clean();
}

#[test]
fn a_bad_policy_file_stops_start_up_with_one_line_naming_the_key() {
    let file = policy(&ceiling(
        "      regions: [eu-west-1]\n      buckets: ['a[']\n",
    ));
    let vars = std::collections::HashMap::from([(
        "AGENTIC_POLICY_FILE".to_string(),
        file.path().to_str().unwrap().to_string(),
    )]);
    let e = agentic::config::Config::from_vars(&vars)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("AGENTIC_POLICY_FILE: `repositories.\"acme-platform/*\"`: `aws.buckets`: `a[` is not a glob"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let missing = std::collections::HashMap::from([(
        "AGENTIC_POLICY_FILE".to_string(),
        "/nonexistent/policy.yml".to_string(),
    )]);
    let e = agentic::config::Config::from_vars(&missing)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("AGENTIC_POLICY_FILE: cannot read `/nonexistent/policy.yml`"),
        "{e}"
    );
}

/// The real binary: SIGHUP reloads the file; a bad file is refused, logged
/// naming the key, and the process goes on with the policy in force.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_policy_file_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy(&ceiling("      regions: [eu-west-1]\n"));
    let log = dir.path().join("serve.log");
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut serve = support::spawn_serve_logged(
        dir.path(),
        port,
        &[
            ("AGENTIC_POLICY_FILE", file.path().to_str().unwrap()),
            ("RUST_LOG", "info"),
        ],
        &log,
    );
    support::wait_healthy(&http, &base).await;
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        read().contains("repositories' AWS scopes are bounded by the operator's ceilings"),
        "{}",
        read()
    );
    let hup = |pid: u32| {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    std::fs::write(
        file.path(),
        ceiling("      regions: [eu-west-1]\n      max_tier: all\n"),
    )
    .unwrap();
    hup(serve.id());
    support::poll_until("the refusal", || async {
        read().contains("reload refused").then_some(())
    })
    .await;
    let line = read()
        .lines()
        .find(|l| l.contains("reload refused"))
        .unwrap()
        .to_string();
    assert!(line.contains("max_tier"), "{line}");
    assert!(serve.try_wait().unwrap().is_none(), "still running");
    std::fs::write(
        file.path(),
        format!(
            "{}  \"acme-platform/sandbox\": {{}}\n",
            ceiling("      regions: [eu-west-1]\n")
        ),
    )
    .unwrap();
    hup(serve.id());
    support::poll_until("the reload", || async {
        read()
            .lines()
            .any(|l| {
                l.contains("AGENTIC_POLICY_FILE reloaded")
                    && l.contains("entries")
                    && l.ends_with("2")
            })
            .then_some(())
    })
    .await;
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    serve.kill().unwrap();
    serve.wait().unwrap();
}

/// A ceiling tightened while an apply runs stops the steps it no longer
/// allows: the scope is read again before every step.
#[tokio::test]
async fn a_ceiling_tightened_mid_apply_stops_the_next_step() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    let first = moto::instance(&here, &[TAG]).await;
    let second = moto::instance(&here, &[TAG]).await;
    let (gh, llm) = support::world().await;
    repo_config(&gh, &format!("  regions: [{REGION}]\n{}", own_tag()));
    let file = policy(&ceiling(&format!("      regions: [{REGION}]\n")));
    llm.script([
        Step::Tool(
            "aws_stop_instances",
            json!({ "instance_ids": [first, second] }),
        ),
        Step::Answer("Stop both.".into()),
    ]);
    gh.role("mia-maintainer", "maintain");
    // A pause between the two steps, in which the operator tightens the
    // file and reloads it.
    let app = TestApp::start(
        plan_options(&gh, &llm)
            .var("AGENTIC_POLICY_FILE", file.path().to_str().unwrap())
            .var("AGENTIC_TEST_STEP_DELAY_MS", "2000"),
    )
    .await;
    say(&app, &gh, 57, 1, "bob-reviewer", "/agentic plan stop both").await;
    support::plans::post(&app, 2, "bob-reviewer", "/agentic apply 1").await;
    support::plans::first_step_done(&app, 1).await;
    std::fs::write(
        file.path(),
        ceiling(&format!(
            "      regions: [{REGION}]\n      max_tier: read\n"
        )),
    )
    .unwrap();
    assert_eq!(app.running.as_ref().unwrap().state.reload_policy(), Ok(1));
    let jobs = app.wait_for_jobs(2).await;
    let reply = support::plans::reply_of(&gh, jobs[1].id);
    assert!(reply.starts_with("Plan 1 stopped at step 2"), "{reply}");
    assert!(reply.contains("allows plans up to read only"), "{reply}");
    assert_eq!(moto::state(&here, &first).await, "stopped");
    assert_eq!(moto::state(&here, &second).await, "running");
    assert_eq!(app.store().plan(1).await.unwrap().unwrap().status, "failed");
    app.stop().await;
    llm.assert_clean();
}

/// A repository renamed, transferred or deleted leaves its name: another
/// repository that takes the name (and names the old tag) gets no AWS until
/// the operator confirms it.
#[tokio::test]
async fn a_name_taken_by_another_repository_gets_no_aws_until_the_operator_says_so() {
    let _turn = MOTO.lock().await;
    moto::reset().await;
    let here = moto::aws(REGION).await;
    let theirs = moto::instance(&here, &[TAG]).await;
    let (gh, llm) = support::world().await;
    repo_config(&gh, &format!("  regions: [{REGION}]\n{}", own_tag()));
    let file = policy(&ceiling(&format!("      regions: [{REGION}]\n")));
    llm.script([
        Step::Tool("aws_stop_instances", json!({ "instance_ids": [theirs] })),
        Step::Answer("Stop it.".into()),
    ]);
    // The first repository of that name: AWS, and its name is bound.
    let first = app(&gh, &llm, &file).await;
    let reply = say(&first, &gh, 57, 1, "bob-reviewer", "/agentic plan stop it").await;
    assert!(reply.contains("**Plan 1**"), "{reply}");
    let dir = first.stop().await;
    // Another repository takes the name: its deliveries carry its own id.
    let second = TestApp::start_in(
        dir,
        plan_options(&gh, &llm).var("AGENTIC_POLICY_FILE", file.path().to_str().unwrap()),
    )
    .await;
    let as_other = |n: u64, body: &str| {
        let mut v: serde_json::Value = serde_json::from_slice(&support::comment_payload(
            "created",
            57,
            false,
            880000 + n,
            "bob-reviewer",
            body,
        ))
        .unwrap();
        let first_id = v["repository"]["id"].as_u64().unwrap();
        v["repository"]["id"] = (first_id + 1).into();
        (first_id, serde_json::to_vec(&v).unwrap())
    };
    let (first_id, payload) = as_other(2, "/agentic apply 1");
    let res = second
        .deliver("issue_comment", &support::delivery_id(), &payload)
        .await;
    assert_eq!(res.status(), 202);
    second.wait_for_jobs(2).await;
    let reply = gh.comments(57).last().unwrap().body.clone();
    assert!(
        reply.contains(&format!(
            "belonged to another repository (id {first_id}) when this bot first gave it AWS, and this is repository {}",
            first_id + 1
        )),
        "{reply}"
    );
    assert!(
        reply.contains("I cannot plan or apply AWS changes here"),
        "{reply}"
    );
    assert_eq!(moto::state(&here, &theirs).await, "running");
    // The operator confirms it: AWS as the settings allow.
    assert!(second
        .store()
        .forget_repo_name(REPO, "ops-alice")
        .await
        .unwrap());
    let (_, payload) = as_other(3, "/agentic apply 1");
    let res = second
        .deliver("issue_comment", &support::delivery_id(), &payload)
        .await;
    assert_eq!(res.status(), 202);
    second.wait_for_jobs(3).await;
    let reply = gh.comments(57).last().unwrap().body.clone();
    assert!(reply.contains("Plan 1 is applied."), "{reply}");
    let log = second.store().audit_log(None, None, 1000).await.unwrap();
    assert!(log
        .iter()
        .any(|a| a.action == "repo.name_forgotten" && a.actor.as_deref() == Some("ops-alice")));
    second.stop().await;
    llm.assert_clean();
}
