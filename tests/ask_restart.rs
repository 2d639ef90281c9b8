//! The real binary killed with SIGKILL while `/agentic ask` or a review
//! waits for the model, then restarted: exactly one status comment holding
//! the answer; exactly one review and one check run, completed.

mod support;

use std::time::Duration;

use serde_json::json;
use support::github::{FakeGitHub, Pull, Thread, APP_ID, REPO};
use support::llm::{FakeLlm, Step};
use support::{comment_payload, delivery_id, sign, test_key_path, wait_until, SECRET};

fn spawn(dir: &std::path::Path, port: u16, gh: &FakeGitHub, llm: &FakeLlm) -> std::process::Child {
    let key = test_key_path();
    support::spawn_serve(
        dir,
        port,
        &[
            ("AGENTIC_GITHUB_APP_ID", &APP_ID.to_string()),
            ("AGENTIC_GITHUB_PRIVATE_KEY_PATH", &key),
            ("AGENTIC_GITHUB_API_URL", &gh.url),
            ("OPENAI_BASE_URL", &llm.url),
            ("OPENAI_API_KEY", support::OPENAI_KEY),
            ("AGENTIC_PROGRESS_INTERVAL_SECS", "3600"),
        ],
    )
}

#[tokio::test]
async fn killed_mid_answer_and_restarted_leaves_one_comment_with_the_answer() {
    agentic::install_crypto_provider();
    let gh = FakeGitHub::start().await;
    gh.role("bob-reviewer", "write");
    gh.thread(
        42,
        Thread {
            title: "t".into(),
            body: "b".into(),
            author: "alice-ops".into(),
            author_type: String::new(),
            pull: Some(Pull {
                head_sha: "9f1c".into(),
                head_ref: "x".into(),
                base_ref: "main".into(),
                files: vec![],
                ..Default::default()
            }),
            comments: vec![],
        },
    );
    let llm = FakeLlm::start().await;
    // The first process waits on the model until it dies; the second gets
    // the answer.
    llm.script([
        Step::Stall(Duration::from_secs(20)),
        Step::Answer("Nothing risky.".into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = spawn(dir.path(), port, &gh, &llm);
    support::wait_healthy(&http, &base).await;
    let body = comment_payload(
        "created",
        42,
        true,
        900100,
        "bob-reviewer",
        "/agentic ask is this risky?",
    );
    let res = support::post_delivery(
        &http,
        &base,
        "issue_comment",
        &delivery_id(),
        &body,
        &sign(SECRET, &body),
    )
    .await;
    assert_eq!(res.status(), 202);
    wait_until("the model call to be in flight", || async {
        (llm.requests().len() == 1).then_some(())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let comments = gh.comments(42);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.starts_with("⏳ Working on it…"));

    let mut child = spawn(dir.path(), port, &gh, &llm);
    let answered = wait_until("the answer after the restart", || async {
        let c = gh.comments(42);
        let done = c
            .first()
            .is_some_and(|c| c.body.starts_with("Nothing risky."));
        done.then_some(c)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(answered.len(), 1, "exactly one status comment");
    assert_eq!(answered[0].body, "Nothing risky.\n\n<!-- agentic:job=1 -->");
    let writes = gh.take_writes();
    let created: Vec<_> = writes
        .iter()
        .filter(|w| w.method == "POST" && w.path == format!("/repos/{REPO}/issues/42/comments"))
        .collect();
    assert_eq!(created.len(), 1, "{writes:#?}");
    let reactions = writes
        .iter()
        .filter(|w| w.path.ends_with("/reactions") && w.body == json!({ "content": "eyes" }))
        .count();
    assert_eq!(reactions, 1, "only the first run of a command reacts");
    let edits: Vec<_> = writes.iter().filter(|w| w.method == "PATCH").collect();
    assert_eq!(edits.last().unwrap().body["body"], answered[0].body);
    assert_eq!(writes.len(), 1 + reactions + edits.len());
    gh.assert_all_seen();
}

#[tokio::test]
async fn killed_mid_review_and_restarted_posts_one_review_on_one_check_run() {
    agentic::install_crypto_provider();
    let gh = FakeGitHub::start().await;
    let head = "44aa000000000000000000000000000000000001";
    gh.thread(
        44,
        Thread {
            title: "retry: exponential backoff".into(),
            body: "b".into(),
            author: "alice-ops".into(),
            pull: Some(Pull {
                head_sha: head.into(),
                head_ref: "exp-backoff".into(),
                base_ref: "main".into(),
                files: vec![(
                    "src/retry.rs".into(),
                    "@@ -1,2 +1,2 @@\n fn a() {}\n-fn b() {}\n+fn b() { panic!() }".into(),
                )],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let llm = FakeLlm::start().await;
    let submit = Step::Tool(
        "submit_review",
        json!({ "summary": "One risk.", "comments": [{ "path": "src/retry.rs", "line": 2, "anchor": "fn b() { panic!() }", "severity": "major", "body": "`b` panics." }] }),
    );
    llm.script([Step::Stall(Duration::from_secs(20)), submit]);
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = spawn(dir.path(), port, &gh, &llm);
    support::wait_healthy(&http, &base).await;
    let mut event: serde_json::Value =
        serde_json::from_slice(&support::fixture("pull_request.opened.json")).unwrap();
    event["number"] = 44.into();
    event["pull_request"]["number"] = 44.into();
    event["pull_request"]["head"]["sha"] = head.into();
    let body = serde_json::to_vec(&event).unwrap();
    let res = support::post_delivery(
        &http,
        &base,
        "pull_request",
        &delivery_id(),
        &body,
        &sign(SECRET, &body),
    )
    .await;
    assert_eq!(res.status(), 202);
    wait_until("the model call to be in flight", || async {
        (llm.requests().len() == 1).then_some(())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(gh.check_runs().len(), 1, "the check run was started");

    let mut child = spawn(dir.path(), port, &gh, &llm);
    wait_until("the review after the restart", || async {
        let done = gh.check_runs().values().all(|r| r["status"] == "completed");
        (done && !gh.reviews(44).is_empty()).then_some(())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(gh.reviews(44).len(), 1, "exactly one review");
    assert_eq!(gh.review_comments(44).len(), 1);
    let runs = gh.check_runs();
    assert_eq!(
        runs.len(),
        1,
        "the restarted run finished the same check run"
    );
    let run = runs.values().next().unwrap();
    assert_eq!(run["conclusion"], "neutral");
    assert_eq!(run["annotations"].as_array().unwrap().len(), 1);
    gh.take_writes();
    gh.assert_all_seen();
}
