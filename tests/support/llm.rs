//! A scripted OpenAI-compatible `/v1/chat/completions` server on loopback.
//! It answers from a prepared script, checks each request the way a strict
//! server would, and records every request for assertions.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub enum Step {
    /// Call a tool with these arguments.
    Tool(&'static str, Value),
    /// Answer with this text.
    Answer(String),
    /// Take this long, then fail (the client has given up by then). The
    /// next step is left for the client's next request.
    Stall(Duration),
    /// Fail with this HTTP status.
    Status(u16),
    /// Call several tools in one turn.
    Tools(Vec<(&'static str, Value)>),
    /// Answer with this text after this long.
    Slow(Duration, String),
}

#[derive(Default)]
pub struct Inner {
    pub script: VecDeque<Step>,
    pub requests: Vec<Value>,
    pub auth: Vec<String>,
    pub problems: Vec<String>,
    /// What to answer once the script is used up (`None`: that is a
    /// problem the test fails on).
    pub otherwise: Option<String>,
    calls: u64,
}

#[derive(Clone)]
pub struct FakeLlm {
    pub url: String,
    pub inner: Arc<Mutex<Inner>>,
}

impl FakeLlm {
    pub async fn start() -> FakeLlm {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .layer(axum::middleware::map_response(super::signal_changed))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeLlm { url, inner }
    }

    /// Answer `text` to every request past the script, for tests that
    /// drive many conversations whose content does not matter.
    pub fn otherwise(&self, text: &str) -> &Self {
        self.inner.lock().unwrap().otherwise = Some(text.to_string());
        self
    }

    pub fn script(&self, steps: impl IntoIterator<Item = Step>) -> &Self {
        self.inner.lock().unwrap().script.extend(steps);
        self
    }

    /// The content of the last message of request `n` (from 0): what
    /// the model was told last, such as a tool's answer.
    pub fn last_message(&self, n: usize) -> String {
        self.requests()[n]["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// The first user message of request `n` (from 0): what the model
    /// was asked.
    pub fn user_message(&self, n: usize) -> String {
        self.requests()[n]["messages"][1]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Fail the test on malformed requests or an unused script.
    pub fn assert_clean(&self) {
        let inner = self.inner.lock().unwrap();
        assert!(
            inner.problems.is_empty(),
            "malformed requests: {:?}",
            inner.problems
        );
        assert!(
            inner.script.is_empty(),
            "script not used up: {:?}",
            inner.script
        );
    }
}

/// What a strict server (llama.cpp's, OpenAI's) would refuse.
fn check(request: &Value) -> Result<(), String> {
    if request["model"].as_str().is_none_or(|m| m.is_empty()) {
        return Err("no model".into());
    }
    let messages = request["messages"].as_array().ok_or("no messages")?;
    let mut call_ids = Vec::new();
    // OpenAI refuses a conversation in which a tool call has no answer.
    let mut unanswered: Vec<String> = Vec::new();
    for m in messages {
        if m["role"] != "tool" && !unanswered.is_empty() {
            return Err(format!("tool calls without an answer: {unanswered:?}"));
        }
        if m["role"] == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or_default();
            unanswered.retain(|u| u != id);
        }
        if m["role"] == "assistant" {
            for c in m["tool_calls"].as_array().into_iter().flatten() {
                unanswered.push(c["id"].as_str().unwrap_or_default().to_string());
            }
        }
        match m["role"].as_str() {
            Some("system" | "user") => {
                if !m["content"].is_string() {
                    return Err("system/user message without string content".into());
                }
            }
            Some("assistant") => {
                if !m["content"].is_string() {
                    return Err(
                        "assistant message without a `content` string (llama.cpp rejects it)"
                            .into(),
                    );
                }
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    call_ids.push(c["id"].as_str().unwrap_or_default().to_string());
                    if c["type"] != "function" || !c["function"]["arguments"].is_string() {
                        return Err("malformed tool call".into());
                    }
                }
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                if !call_ids.iter().any(|c| c == id) {
                    return Err(format!("tool answer for unknown call `{id}`"));
                }
                if !m["content"].is_string() {
                    return Err("tool message without content".into());
                }
            }
            other => return Err(format!("unknown role {other:?}")),
        }
    }
    Ok(())
}

async fn complete(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let step = {
        let mut st = inner.lock().unwrap();
        st.requests.push(request.clone());
        st.auth.push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        );
        if let Err(e) = check(&request) {
            st.problems.push(e.clone());
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": { "message": e, "type": "invalid_request_error" } })),
            )
                .into_response();
        }
        let next = st.script.pop_front();
        next.or_else(|| st.otherwise.clone().map(Step::Answer))
    };
    // The request is recorded: a test may be waiting for it to be in flight.
    agentic::test_hooks::changed();
    if let Some(Step::Slow(d, _)) = &step {
        tokio::time::sleep(*d).await;
    }
    if let Some(Step::Stall(d)) = step {
        tokio::time::sleep(d).await;
        return (
            StatusCode::GATEWAY_TIMEOUT,
            Json(json!({ "error": { "message": "stalled", "type": "server_error" } })),
        )
            .into_response();
    }
    let n = {
        let mut st = inner.lock().unwrap();
        st.calls += 1;
        st.calls
    };
    let message = match step {
        Some(Step::Answer(text) | Step::Slow(_, text)) => {
            json!({ "role": "assistant", "content": text })
        }
        Some(Step::Tools(calls)) => {
            json!({ "role": "assistant", "content": null, "tool_calls": calls.iter().enumerate().map(|(i, (name, args))| json!(
                { "id": format!("call_{n}_{i}"), "type": "function", "function": { "name": name, "arguments": args.to_string() } }
            )).collect::<Vec<_>>() })
        }
        Some(Step::Tool(name, args)) => {
            json!({ "role": "assistant", "content": null, "tool_calls": [
                { "id": format!("call_{n}"), "type": "function", "function": { "name": name, "arguments": args.to_string() } }
            ]})
        }
        Some(Step::Status(s)) => {
            return (
                StatusCode::from_u16(s).unwrap(),
                Json(json!({ "error": { "message": "scripted failure", "type": "server_error" } })),
            )
                .into_response();
        }
        Some(Step::Stall(_)) | None => {
            inner
                .lock()
                .unwrap()
                .problems
                .push("request beyond the script".into());
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": { "message": "no script", "type": "server_error" } })),
            )
                .into_response();
        }
    };
    let finish = if message.get("tool_calls").is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    Json(json!({
        "id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": 1764057600, "model": request["model"],
        "choices": [{ "index": 0, "message": message, "finish_reason": finish, "logprobs": null }],
        "usage": { "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150 }
    }))
    .into_response()
}
