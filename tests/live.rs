//! Live calls to the real providers: one complete, one stream and one tool loop each. Not part of `make test`:
//! `make test-live` runs them, with `LLMRPC_LIVE=1` and the keys of `.env.test`.
//!
//! A harness of its own (libtest-mimic; `harness = false` in Cargo.toml), because whether a trial
//! can run is only known when it runs, and it must then be reported as *ignored* with the reason,
//! not as passed. Both reasons show in the standard test output:
//! - without `LLMRPC_LIVE=1` (so in `cargo test` and `make test`), every trial is ignored;
//! - a provider whose key is empty in `.env.test` is ignored, naming the key.

// A test fails by panicking: its helpers may unwrap and expect as its #[test]s do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The helpers of the integration tests' binary (tests/it/main.rs), shared with it.
#[path = "it/common/mod.rs"]
mod common;

use common::*;
use libtest_mimic::{Arguments, Completion, Trial};
use serde_json::json;

/// Each provider: its name, key variable, base URL variable, and the model the trial asks for.
const PROVIDERS: [(&str, &str, &str, &str); 3] = [
    (
        "openai",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "gpt-4.1-mini",
    ),
    (
        "anthropic",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "claude-haiku-4-5",
    ),
    (
        "gemini",
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "gemini-2.5-flash",
    ),
];

fn main() {
    let args = Arguments::from_args();
    let enabled = std::env::var("LLMRPC_LIVE").as_deref() == Ok("1");
    let trials = PROVIDERS
        .into_iter()
        .map(|(provider, key_var, base_var, model)| {
            Trial::ignorable_test(format!("live_{provider}"), move || {
                if !enabled {
                    return Ok(Completion::ignored_with(
                        "live: needs LLMRPC_LIVE=1; run `make test-live`",
                    ));
                }
                if env_test_value(key_var).is_empty() {
                    return Ok(Completion::ignored_with(format!(
                        "{key_var} is empty in .env.test"
                    )));
                }
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(live(provider, key_var, base_var, model));
                Ok(Completion::Completed)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// The value of `name` in `.env.test`, trimmed; empty when it is missing.
fn env_test_value(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.test");
    dotenvy::from_path_iter(path)
        .map(|iter| {
            iter.filter_map(Result::ok)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

async fn live(provider: &str, key_var: &str, base_var: &str, model: &str) {
    let (key, base) = (env_test_value(key_var), env_test_value(base_var));
    let mut env = vec![(key_var, key.as_str())];
    if !base.is_empty() {
        env.push((base_var, base.as_str()));
    }
    let service = Service::start_with(&env);
    let mut p = params(model);
    p["max_tokens"] = json!(32);
    let answer = service.call("llm.complete", p.clone()).await;
    assert!(
        answer["result"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{answer}"
    );
    assert_eq!(answer["result"]["provider"], provider);

    let response = service.sse_request(json!(1), p).send().await.unwrap();
    let events = sse_events(response).await;
    let last = &events.last().unwrap()["result"];
    assert_eq!(last["done"], true, "{events:?}");
    assert!(last.get("error").is_none(), "{last}");
    assert!(events.len() >= 2, "no delta arrived: {events:?}");

    // A tool loop: the model must call the tool, then answers from its result.
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let mut messages =
        json!([{"role": "user", "content": "What is the weather in Paris? Use the tool."}]);
    let ask = json!({"model": model, "max_tokens": 256, "messages": messages, "tools": tools, "tool_choice": "required"});
    let asked = service.call("llm.complete", ask).await;
    let result = &asked["result"];
    assert_eq!(result["finish_reason"], "tool_calls", "{asked}");
    let call = &result["tool_calls"][0];
    let args: serde_json::Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{call}");
    let turns = messages.as_array_mut().unwrap();
    turns.push(json!({"role": "assistant", "content": null, "tool_calls": result["tool_calls"]}));
    turns.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "18 C and sunny"}));
    let answer = json!({"model": model, "max_tokens": 256, "messages": messages, "tools": tools});
    let answered = service.call("llm.complete", answer).await;
    assert!(
        answered["result"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("18")),
        "{answered}"
    );
}
