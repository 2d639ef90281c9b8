//! The agent loop ending on a finishing tool (a review's `submit_review`),
//! against the scripted model: malformed arguments go back to the model
//! once with the error, then the conversation ends honestly.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use agentic::agent::tools::{Fence, Registry, Subject};
use agentic::agent::{converse, Budget, Finish, Outcome, Progress, Purpose, Task, Trace};
use agentic::review::{parse_submission, tool_spec, SUBMIT_REVIEW};
use serde_json::json;
use support::github::{FakeGitHub, Thread, REPO};
use support::llm::{FakeLlm, Step};

struct Quiet;
impl Progress for Quiet {
    fn step(
        &mut self,
        _: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

async fn run(llm: &FakeLlm) -> Outcome {
    run_with(llm, 100_000).await
}

/// [`run`] with a budget of `max_tokens` (the scripted model reports 150
/// a call).
async fn run_with(llm: &FakeLlm, max_tokens: u64) -> Outcome {
    agentic::install_crypto_provider();
    let gh = FakeGitHub::start().await;
    gh.accept_token("ghp_finishtesttoken0123456789abcdefghij");
    gh.thread(57, Thread::staging_issue());
    let vars: HashMap<String, String> = [
        ("OPENAI_BASE_URL", llm.url.as_str()),
        ("OPENAI_API_KEY", "sk-test-not-sent-anywhere"),
        ("AGENTIC_MODEL", "test-model"),
        (
            "AGENTIC_APP_CREDENTIALS_PATH",
            "/nonexistent/agentic-app.json",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = agentic::config::Config::from_vars(&vars).unwrap();
    let model = agentic::agent::llm::Llm::new(&config);
    let github = agentic::github::with_token(
        &gh.url,
        secrecy::SecretString::from("ghp_finishtesttoken0123456789abcdefghij".to_string()),
    )
    .unwrap();
    let subject = Subject {
        github,
        repo: REPO.into(),
        number: 57,
        head_sha: None,
        fence: Fence::new(),
        aws: None,
    };
    let store = agentic::store::Store::open("sqlite::memory:")
        .await
        .unwrap();
    let redactor = agentic::redact::Redactor::default();
    let trace = Trace {
        store: &store,
        job_id: None,
        delivery_id: None,
        actor: None,
        redactor: &redactor,
    };
    let budget = Budget {
        max_steps: 4,
        max_tokens,
        max_wall: Duration::from_secs(60),
        max_tool_calls_per_turn: 8,
    };
    let check = |args: &str| {
        parse_submission(args)
            .map(|s| json!({ "summary": s.summary, "findings": s.comments.len() }))
    };
    let finish = Finish {
        name: SUBMIT_REVIEW,
        spec: tool_spec(),
        check: &check,
    };
    converse(
        &model,
        &Registry::for_issue(),
        &subject,
        budget,
        Task {
            purpose: Purpose::Review,
            message: "Review it.".into(),
            finish: Some(&finish),
            plan: None,
        },
        &trace,
        &mut Quiet,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn malformed_arguments_are_sent_back_once_then_accepted() {
    let llm = FakeLlm::start().await;
    llm.script([
        Step::Tool(SUBMIT_REVIEW, json!({ "summary": 5 })),
        Step::Tool(SUBMIT_REVIEW, json!({ "summary": "Fine.", "comments": [] })),
    ]);
    let outcome = run(&llm).await;
    assert_eq!(
        outcome,
        Outcome::Submitted(json!({ "summary": "Fine.", "findings": 0 }))
    );
    let requests = llm.requests();
    let tools: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(tools.contains(&SUBMIT_REVIEW), "{tools:?}");
    let repair = requests[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(repair["role"], "tool");
    assert!(
        repair["content"]
            .as_str()
            .unwrap()
            .starts_with("error: the `submit_review` arguments are not valid at `summary`"),
        "{repair}"
    );
    llm.assert_clean();
}

#[tokio::test]
async fn malformed_twice_ends_honestly() {
    let llm = FakeLlm::start().await;
    llm.script([
        Step::Tool(
            SUBMIT_REVIEW,
            json!({ "summary": "x", "comments": [{ "path": "a" }] }),
        ),
        Step::Tool(SUBMIT_REVIEW, json!({ "verdict": "approve" })),
    ]);
    match run(&llm).await {
        Outcome::Stopped { reason } => assert!(
            reason.starts_with(
                "its `submit_review` arguments were malformed again after one correction"
            ),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    llm.assert_clean();
}

#[tokio::test]
async fn a_submission_on_the_turn_that_crosses_the_budget_is_kept() {
    let llm = FakeLlm::start().await;
    llm.script([Step::Tool(
        SUBMIT_REVIEW,
        json!({ "summary": "Done.", "comments": [] }),
    )]);
    // The one call costs 150 tokens of a budget of 100.
    let outcome = run_with(&llm, 100).await;
    assert_eq!(
        outcome,
        Outcome::Submitted(json!({ "summary": "Done.", "findings": 0 }))
    );
    llm.assert_clean();
    // Anything else on that turn still stops at the budget.
    let llm = FakeLlm::start().await;
    llm.script([Step::Tool("read_file", json!({ "path": "README.md" }))]);
    let outcome = run_with(&llm, 100).await;
    assert_eq!(
        outcome,
        Outcome::Stopped {
            reason: "it used its budget of 100 tokens".into()
        }
    );
    llm.assert_clean();
}
