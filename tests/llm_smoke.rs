//! A smoke test of the real model client against a real small model
//! (SmolLM2-135M-Instruct served by llama.cpp's OpenAI-compatible server),
//! which `scripts/test.sh` starts on loopback and names in
//! `AGENTIC_SMOKE_LLM_URL`. It checks that the exchange is well-formed —
//! including a follow-up turn after a tool call, which llama.cpp refuses
//! unless the assistant turn carries `content` — never that the tiny
//! model's answer is right. Ignored in a plain `cargo test`; the test
//! script runs it with `--ignored` and it fails, saying why, without a model.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use agentic::agent::tools::{Registry, Subject};
use agentic::agent::{self, Budget, Outcome, Progress, Trace};
use agentic::store::Store;
use support::github::{FakeGitHub, Thread, REPO};

struct Quiet;

impl Progress for Quiet {
    fn step(
        &mut self,
        _text: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

#[tokio::test]
#[ignore = "needs a real model; scripts/test.sh serves one and runs this"]
async fn the_real_client_holds_a_well_formed_conversation_with_a_real_model() {
    let url = std::env::var("AGENTIC_SMOKE_LLM_URL")
        .expect("AGENTIC_SMOKE_LLM_URL must name a llama.cpp server (scripts/test.sh starts one)");
    agentic::install_crypto_provider();
    let gh = FakeGitHub::start().await;
    let token = "ghs_smoketest0123456789abcdefghijklmnop";
    gh.accept_token(token);
    gh.thread(57, Thread::staging_issue());
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("OPENAI_BASE_URL".into(), url);
    vars.insert("OPENAI_API_KEY".into(), "not-needed-by-llama-cpp".into());
    vars.insert("AGENTIC_MODEL".into(), "smollm2".into());
    vars.insert("AGENTIC_LLM_TIMEOUT_SECS".into(), "180".into());
    vars.insert("AGENTIC_LLM_TIMEOUT_TRIES".into(), "1".into());
    vars.insert(
        "AGENTIC_APP_CREDENTIALS_PATH".into(),
        "/nonexistent/agentic-app.json".into(),
    );
    let config = agentic::config::Config::from_vars(&vars).unwrap();
    let llm = agentic::agent::llm::Llm::new(&config);
    let github = agentic::github::with_token(&gh.url, secrecy::SecretString::from(token)).unwrap();
    let subject = Subject {
        github,
        repo: REPO.into(),
        number: 57,
        head_sha: None,
        fence: agentic::agent::tools::Fence::new(),
        aws: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
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
        max_steps: 3,
        max_tokens: 100_000,
        max_wall: Duration::from_secs(600),
        max_tool_calls_per_turn: 8,
    };
    let outcome = agent::converse(
        &llm,
        &Registry::for_issue(),
        &subject,
        budget,
        agent::Task {
            purpose: agent::Purpose::Answer,
            message:
                "Use the get_issue tool to read issue #57, then say in one sentence what it asks for."
                    .into(),
            finish: None,
            plan: None,
        },
        &trace,
        &mut Quiet,
    )
    .await
    .expect("every request was accepted by llama.cpp's server");
    match outcome {
        Outcome::Answer(a) => eprintln!("model answered: {a}"),
        Outcome::Stopped { reason } => eprintln!("model stopped: {reason}"),
        Outcome::Submitted(v) => panic!("no finishing tool was offered, yet: {v}"),
    }
    store.close().await;
}
