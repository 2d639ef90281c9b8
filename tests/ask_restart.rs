//! The real binary killed with SIGKILL while `/agentic ask` waits for the
//! model, then restarted: exactly one status comment, holding the answer.

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
