//! Golden requests: the exact bytes this service sends each provider, for conversations taken
//! from the fixtures' requests and for the rules each provider's mapping applies (merged turns,
//! system text, images, reasoning, temperature). They pin the wire across refactors of the
//! provider layer: a change to what goes upstream shows here as a diff, never silently.
//!
//! `LLMRPC_BLESS=1 cargo test --test it golden::` rewrites
//! `tests/fixtures/golden/requests.json` after an intended change; review its diff like code.

use crate::common;

use std::collections::BTreeMap;

use common::upstream::{ALL, Mocked};
use common::*;
use serde_json::{Value, json};
use wiremock::MockServer;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/golden/requests.json"
);

const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg==";

/// Each case's params without `model`; the model is each provider's suite model unless the case
/// names one per provider.
fn cases() -> Vec<(&'static str, Value, Option<[&'static str; 3]>)> {
    vec![
        // openai/chat_completion_request.json (its `developer` role is our `system`).
        (
            "openai_default",
            json!({"messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!"}
            ]}),
            None,
        ),
        // openai/chat_completion_request_image.json: an https image.
        (
            "openai_image_url",
            json!({"max_tokens": 300, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/wikipedia/commons/thumb/d/dd/Gfp-wisconsin-madison-the-nature-boardwalk.jpg/2560px-Gfp-wisconsin-madison-the-nature-boardwalk.jpg"}}
            ]}]}),
            None,
        ),
        // openai/chat_completion_request_stream_usage.json: sampling, stop, text parts.
        (
            "openai_sampling",
            json!({"max_tokens": 64, "temperature": 0.2, "top_p": 1, "stop": ["\n\n"], "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": [{"type": "text", "text": "Say hello."}]}
            ]}),
            None,
        ),
        // anthropic/messages_request.json: history, an inline image, sampling, metadata.
        (
            "anthropic_messages",
            json!({"max_tokens": 1024, "temperature": 0.7, "top_p": 0.9, "stop": ["\n\nHuman:"],
                "metadata": {"user_id": "user-1234"}, "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "Hello, Claude"},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                    {"type": "text", "text": "What is in this image?"}
                ]}
            ]}),
            None,
        ),
        // anthropic/messages_request_system_blocks.json: system and user as text parts.
        (
            "anthropic_system_parts",
            json!({"max_tokens": 512, "messages": [
                {"role": "system", "content": [{"type": "text", "text": "You are a concise assistant."}]},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]}
            ]}),
            None,
        ),
        // gemini/generate_content_request.json.
        (
            "gemini_generate_content",
            json!({"max_tokens": 1024, "temperature": 0.7, "top_p": 0.95, "stop": ["END"], "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi! How can I help?"},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}}
                ]}
            ]}),
            None,
        ),
        // Two system messages (one of parts), consecutive turns of one role, a prefill.
        (
            "merged_turns_and_prefill",
            json!({"reasoning_effort": "medium", "messages": [
                {"role": "system", "content": "Rule one."},
                {"role": "system", "content": [{"type": "text", "text": "Rule"}, {"type": "text", "text": "two."}]},
                {"role": "user", "content": "First."},
                {"role": "user", "content": [{"type": "text", "text": "Second."}]},
                {"role": "assistant", "content": "Partial"},
                {"role": "assistant", "content": " answer"}
            ]}),
            None,
        ),
        // Reasoning models: token cap, effort, and Anthropic's temperature ceiling.
        (
            "reasoning_high",
            json!({"reasoning_effort": "high", "max_tokens": 2048, "temperature": 1.5, "top_p": 0.5,
                "messages": [{"role": "user", "content": "Think."}]}),
            Some(["o4-mini", "claude-sonnet-4-5", "gemini-2.5-pro"]),
        ),
        (
            "reasoning_on_older_models",
            json!({"reasoning_effort": "low", "temperature": 1.5,
                "messages": [{"role": "user", "content": "Think."}]}),
            Some(["gpt-4o-mini", "claude-3-5-haiku-latest", "gemini-2.0-flash"]),
        ),
    ]
}

/// What one upstream request was: its path and query, the headers a provider mapping sets, and
/// the body's exact text.
fn seen(request: &wiremock::Request) -> Value {
    let headers: BTreeMap<&str, &str> = [
        "content-type",
        "authorization",
        "x-api-key",
        "anthropic-version",
        "x-goog-api-key",
    ]
    .into_iter()
    .filter_map(|name| Some((name, request.headers.get(name)?.to_str().ok()?)))
    .collect();
    json!({
        "method": request.method.as_str(),
        "path": request.url.path(),
        "query": request.url.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(&request.body),
    })
}

#[tokio::test]
async fn every_request_sent_upstream_is_byte_for_byte_the_golden_one() {
    let mut actual = BTreeMap::new();
    for (index, provider) in ALL.into_iter().enumerate() {
        let upstream = MockServer::start().await;
        provider
            .mount_complete(&upstream, "ok", provider.stop())
            .await;
        provider.mount_stream(&upstream, &["o", "k"]).await;
        let service = provider.start(&upstream, &[]);
        for (name, case, models) in cases() {
            let model = models.map_or(provider.model(), |m| m[index]);
            let mut params = case.clone();
            params["model"] = json!(model);
            let answer = service.call("llm.complete", params.clone()).await;
            assert!(answer.get("result").is_some(), "{name}: {answer}");
            let response = service.sse_request(json!(1), params).send().await.unwrap();
            let events = sse_events(response).await;
            assert_eq!(
                events.last().map(|e| &e["result"]["done"]),
                Some(&json!(true)),
                "{name}: {events:?}"
            );
            let requests = received(&upstream).await;
            let [.., complete, stream] = requests.as_slice() else {
                panic!("{name}: {} requests", requests.len());
            };
            let key = |mode: &str| format!("{name}/{}/{mode}", provider.name());
            actual.insert(key("complete"), seen(complete));
            actual.insert(key("stream"), seen(stream));
        }
    }
    let actual = Value::Object(actual.into_iter().collect());
    if std::env::var("LLMRPC_BLESS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        std::fs::write(GOLDEN, text).unwrap();
        return;
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
    for (key, expected) in golden.as_object().unwrap() {
        assert_eq!(actual.get(key), Some(expected), "{key}");
    }
    assert_eq!(
        actual.as_object().unwrap().len(),
        golden.as_object().unwrap().len(),
        "cases were added or removed: bless the golden file"
    );
}
