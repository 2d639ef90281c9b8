//! The LLM client: any OpenAI-compatible `/chat/completions` endpoint,
//! through async-openai. Requests and answers are plain JSON (async-openai's
//! "bring your own types"), so we control exactly what is sent: an
//! assistant turn with tool calls carries `"content": ""`, which llama.cpp's
//! server requires and every other server accepts.

use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::Client;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::config::Config;

/// One model turn.
#[derive(Debug, Clone)]
pub struct Turn {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The raw JSON text the model produced.
    pub arguments: String,
}

/// Why a model call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint answered with an error status, or could not be reached
    /// (`status` is `None` then).
    #[error("the model endpoint failed{}: {message}", .status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Api {
        status: Option<u16>,
        message: String,
    },
    #[error("the model's answer is not a chat completion: {0}")]
    Malformed(String),
}

impl LlmError {
    /// Worth another try: timeouts, the network, and 408, 409, 429 and 5xx
    /// answers. A request the endpoint refuses (400, 401, 403, 404, 422 …)
    /// will be refused again: running the conversation again only spends.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Timeout(_) => true,
            LlmError::Api { status: None, .. } => true,
            LlmError::Api {
                status: Some(s), ..
            } => matches!(*s, 408 | 409 | 429) || *s >= 500,
            LlmError::Malformed(_) => false,
        }
    }
}

fn api_error(e: async_openai::error::OpenAIError) -> LlmError {
    use async_openai::error::OpenAIError;
    match e {
        OpenAIError::ApiError(r) => LlmError::Api {
            status: Some(r.status_code.as_u16()),
            message: r.api_error.to_string(),
        },
        OpenAIError::Reqwest(e) => LlmError::Api {
            status: e.status().map(|s| s.as_u16()),
            message: e.without_url().to_string(),
        },
        // An error body that is not OpenAI's shape (a proxy's HTML page):
        // the request was refused, and would be again.
        OpenAIError::JSONDeserialize(e, _) => LlmError::Malformed(e.to_string()),
        other => LlmError::Api {
            status: None,
            message: other.to_string(),
        },
    }
}

/// The model endpoint and its settings.
#[derive(Clone)]
pub struct Llm {
    client: Client<OpenAIConfig>,
    pub model: String,
    timeout: Duration,
    tries: u32,
    /// The longest answer asked for (`max_tokens`).
    pub max_tokens: u32,
}

impl Llm {
    pub fn new(config: &Config) -> Llm {
        let mut oc = OpenAIConfig::new().with_api_base(&config.openai_base_url);
        if let Some(key) = &config.openai_api_key {
            oc = oc.with_api_key(key.expose_secret());
        }
        Llm {
            client: Client::with_config(oc),
            model: config.model.clone(),
            timeout: config.llm_timeout,
            tries: config.llm_timeout_tries,
            max_tokens: config.llm_max_tokens,
        }
    }

    /// One chat completion. async-openai already retries 429 and 5xx
    /// answers (3 times, with backoff); this adds the per-call timeout, and
    /// tries again after a timeout up to the configured number of tries.
    /// `max_tokens` caps the answer (at most the configured cap).
    pub async fn complete(
        &self,
        messages: &[Value],
        tools: &[Value],
        max_tokens: u32,
    ) -> Result<Turn, LlmError> {
        let mut request = json!({
            "model": self.model,
            "messages": messages,
            "stream": false,
            "max_tokens": max_tokens.clamp(1, self.max_tokens),
        });
        if !tools.is_empty() {
            request["tools"] = Value::Array(tools.to_vec());
            request["tool_choice"] = json!("auto");
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let chat = self.client.chat();
            let call = chat.create_byot::<Value, Value>(request.clone());
            match tokio::time::timeout(self.timeout, call).await {
                Err(_) if attempt < self.tries => {
                    tracing::warn!(
                        attempt,
                        timeout_s = self.timeout.as_secs(),
                        "model call timed out; trying again"
                    );
                }
                Err(_) => return Err(LlmError::Timeout(self.timeout)),
                Ok(Err(e)) => return Err(api_error(e)),
                Ok(Ok(v)) => return parse_turn(&v, started.elapsed()),
            }
        }
    }
}

fn parse_turn(v: &Value, elapsed: Duration) -> Result<Turn, LlmError> {
    let choice = v["choices"]
        .get(0)
        .ok_or_else(|| LlmError::Malformed("no choices".into()))?;
    let message = &choice["message"];
    let mut tool_calls = Vec::new();
    if let Some(calls) = message["tool_calls"].as_array() {
        for c in calls {
            let name = c["function"]["name"]
                .as_str()
                .ok_or_else(|| LlmError::Malformed("a tool call without a name".into()))?;
            tool_calls.push(ToolCall {
                id: c["id"].as_str().unwrap_or_default().to_string(),
                name: name.to_string(),
                arguments: match &c["function"]["arguments"] {
                    Value::String(s) => s.clone(),
                    Value::Null => "{}".into(),
                    other => other.to_string(),
                },
            });
        }
    }
    Ok(Turn {
        content: message["content"].as_str().map(str::to_string),
        tool_calls,
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        elapsed,
    })
}

/// The assistant turn as it goes back into the conversation.
pub fn assistant_message(turn: &Turn) -> Value {
    if turn.tool_calls.is_empty() {
        return json!({ "role": "assistant", "content": turn.content.clone().unwrap_or_default() });
    }
    json!({
        "role": "assistant",
        // Never omitted: llama.cpp rejects a follow-up turn without it.
        "content": turn.content.clone().unwrap_or_default(),
        "tool_calls": turn.tool_calls.iter().map(|c| json!({
            "id": c.id,
            "type": "function",
            "function": { "name": c.name, "arguments": c.arguments },
        })).collect::<Vec<_>>(),
    })
}
