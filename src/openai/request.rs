//! An OpenAI Chat Completions request body, turned into the params of `llm.complete`: what the two
//! share is checked by the same rules (`crate::params`), what only OpenAI clients send is read
//! here (`stream`, `stream_options`, `n`, `max_completion_tokens`, the `developer` role) or
//! passed on to OpenAI as it is, and nothing a common client sends is refused for being unknown.

use serde_json::{Map, Value};

/// A body taken apart.
pub(super) struct Translated {
    /// What `llm.complete` takes.
    pub params: Map<String, Value>,
    /// Members passed on to OpenAI as they came.
    pub passthrough: Map<String, Value>,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the usage.
    pub include_usage: bool,
}

/// Chat Completions members that `llm.complete` has too, under the same name and meaning.
const SHARED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "reasoning_effort",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "metadata",
    "a2a_context",
];

/// Members OpenAI takes that no other provider has an equivalent for: sent to OpenAI as they
/// came, dropped for the others (Gemini and Anthropic map the few they have, see
/// `proto-docs/openai-compat.md`).
const PASSED_TO_OPENAI: &[&str] = &[
    "user",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "store",
    "service_tier",
    "prediction",
    "modalities",
    "audio",
    "verbosity",
    "web_search_options",
    "prompt_cache_key",
    "safety_identifier",
];

/// What a message may carry into `llm.complete`; OpenAI's other members (`name`, `refusal`,
/// `annotations`, `audio`) describe nothing a provider needs and are dropped.
const MESSAGE_MEMBERS: &[&str] = &["role", "content", "tool_calls", "tool_call_id"];

/// Splits the body into `llm.complete` params, the members passed to OpenAI as they are, and this
/// surface's own options. `Err` is a refusal with the parameter it is about.
pub(super) fn translate(body: Map<String, Value>) -> Result<Translated, (String, &'static str)> {
    let mut out = Translated {
        params: Map::new(),
        passthrough: Map::new(),
        stream: false,
        include_usage: false,
    };
    let mut max_completion_tokens = None;
    for (name, value) in body {
        match name.as_str() {
            "stream" => out.stream = value.as_bool().unwrap_or(false),
            "stream_options" => {
                out.include_usage = value["include_usage"].as_bool().unwrap_or(false);
            }
            "n" if !(value.is_null() || value == 1) => {
                let message =
                    format!("n = {value} is not supported: llmrpc answers one choice (n = 1)");
                return Err((message, "n"));
            }
            "max_completion_tokens" => max_completion_tokens = Some(value),
            "messages" => {
                out.params.insert(name, messages(value));
            }
            _ if SHARED.contains(&name.as_str()) => {
                out.params.insert(name, value);
            }
            _ if PASSED_TO_OPENAI.contains(&name.as_str()) && !value.is_null() => {
                out.passthrough.insert(name, value);
            }
            _ => {}
        }
    }
    // Reasoning models take `max_completion_tokens`; the provider layer sends it as each one
    // needs.
    if let Some(max) = max_completion_tokens.filter(|v| !v.is_null()) {
        out.params.entry("max_tokens").or_insert(max);
    }
    Ok(out)
}

/// OpenAI's `developer` role is its newer name for `system`; members no provider needs go.
fn messages(value: Value) -> Value {
    let Value::Array(list) = value else {
        return value;
    };
    let list = list
        .into_iter()
        .map(|message| match message {
            Value::Object(mut fields) => {
                if fields.get("role").and_then(Value::as_str) == Some("developer") {
                    fields.insert("role".into(), Value::from("system"));
                }
                fields.retain(|k, _| MESSAGE_MEMBERS.contains(&k.as_str()));
                Value::Object(fields)
            }
            other => other,
        })
        .collect();
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn split(body: Value) -> (Value, Value, Translated) {
        let Value::Object(body) = body else {
            panic!("not an object")
        };
        let out = translate(body).unwrap();
        let (params, passed) = (out.params.clone(), out.passthrough.clone());
        (Value::Object(params), Value::Object(passed), out)
    }

    #[test]
    fn openai_members_are_read_passed_on_or_dropped_never_refused() {
        let (params, passed, options) = split(json!({
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "developer", "content": "Be brief.", "name": "ops"},
                {"role": "user", "content": "hi", "name": "ana"}
            ],
            "stream": true, "stream_options": {"include_usage": true},
            "n": 1, "max_completion_tokens": 64, "seed": 7, "user": "u-1",
            "frequency_penalty": 0.5, "logprobs": false, "store": false,
            "metadata": {"team": "a"}, "some_future_field": {"x": 1},
            "a2a_context": {"trace_id": "t-1"}
        }));
        assert_eq!(
            params,
            json!({
                "model": "gpt-4.1-mini",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                "max_tokens": 64, "metadata": {"team": "a"}, "a2a_context": {"trace_id": "t-1"}
            })
        );
        assert_eq!(
            passed,
            json!({"seed": 7, "user": "u-1", "frequency_penalty": 0.5, "logprobs": false, "store": false})
        );
        assert!(options.stream && options.include_usage);
    }

    #[test]
    fn max_tokens_wins_over_max_completion_tokens_and_n_must_be_one() {
        let (params, _, options) = split(json!({"max_tokens": 5, "max_completion_tokens": 9}));
        assert_eq!(params["max_tokens"], 5);
        assert!(!options.stream);
        let Value::Object(body) = json!({"n": 2}) else {
            unreachable!()
        };
        let (message, param) = translate(body).err().unwrap();
        assert_eq!(param, "n");
        assert!(message.contains("n = 2 is not supported"), "{message}");
    }
}
