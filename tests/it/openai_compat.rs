//! The OpenAI-compatible surface as raw HTTP sees it: exact shapes of answers, chunks and errors,
//! the trace headers, the ledger's record, and bad input answered in OpenAI's error shape. (The
//! official SDK drives it in tests/it/openai_sdk.rs.)

use crate::common;

use common::upstream::{ALL, Mocked, Provider};
use common::*;
use serde_json::{Value, json};
use wiremock::MockServer;

fn url(service: &Service) -> String {
    format!("{}/v1/chat/completions", service.url())
}

async fn post(service: &Service, body: Value) -> reqwest::Response {
    http_client()
        .post(url(service))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

/// The `data:` of every SSE event, `[DONE]` included, as text.
async fn raw_events(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_completion_is_openais_shape_on_every_provider() {
    for provider in ALL {
        let upstream = MockServer::start().await;
        provider
            .mount_complete(&upstream, "Hello there!", provider.stop())
            .await;
        let service = provider.start(&upstream, &[]);
        let body = json!({
            "model": provider.model(),
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi", "name": "ana"}],
            "seed": 7, "user": "u-1", "n": 1,
            "a2a_context": {"trace_id": format!("compat-{}", provider.name())}
        });
        let response = post(&service, body).await;
        assert_eq!(response.status(), 200, "{provider:?}");
        let trace_id = format!("compat-{}", provider.name());
        assert_eq!(header(&response, "x-llmrpc-trace-id"), trace_id);
        assert!(header(&response, "traceparent").starts_with("00-"));
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["object"], "chat.completion", "{answer}");
        assert!(answer["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(answer["model"], provider.model());
        assert_eq!(
            answer["choices"],
            json!([{"index": 0, "message": {"role": "assistant", "content": "Hello there!", "refusal": null},
                "logprobs": null, "finish_reason": "stop"}])
        );
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})
        );
        let sent: Value = received(&upstream).await[0].body_json().unwrap();
        assert_eq!(
            received(&upstream).await[0].headers["x-request-id"],
            trace_id.as_str()
        );
        assert_eq!(provider.system_prompt(&sent), "Be brief.");
        match provider {
            Provider::Openai => {
                assert_eq!((&sent["seed"], &sent["user"]), (&json!(7), &json!("u-1")))
            }
            Provider::Anthropic => assert_eq!(sent["metadata"], json!({"user_id": "u-1"})),
            Provider::Gemini => assert_eq!(sent["generationConfig"]["seed"], 7),
        }

        let records = service
            .call("ops.trace", json!({"trace_id": trace_id}))
            .await;
        assert_eq!(
            records["result"][0]["method"], "openai.chat.completions",
            "{records}"
        );
    }
}

#[tokio::test]
async fn a_stream_is_chat_completion_chunks_then_usage_then_done() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "Hello!", &["Hel", "lo", "!"]).await;
    let service = Service::start(&upstream, &[]);
    let body = json!({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hi"}],
        "stream": true, "stream_options": {"include_usage": true}});
    let response = post(&service, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let trace_id = header(&response, "x-llmrpc-trace-id").to_owned();
    let events = raw_events(response).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0).map(|choice| &choice["delta"]))
        .collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": "Hel"}));
    assert_eq!(deltas[1], &json!({"content": "lo"}));
    assert_eq!(deltas[2], &json!({"content": "!"}));
    assert_eq!(deltas[3], &json!({}));
    let finish = &chunks[3]["choices"][0]["finish_reason"];
    assert_eq!(finish, "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 8);
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["model"], "gpt-4.1-mini");
    }
    assert!(chunks[..4].iter().all(|c| c["usage"].is_null()));
    let records = service
        .call("ops.trace", json!({"trace_id": trace_id}))
        .await;
    assert_eq!(records["result"][0]["status"], "ok", "{records}");
}

#[tokio::test]
async fn a_stream_failing_midway_ends_with_an_error_event_and_no_done() {
    let upstream = MockServer::start().await;
    Provider::Openai
        .mount_raw_stream(&upstream, Provider::Openai.broken_stream_body())
        .await;
    let service = Service::start(&upstream, &[]);
    let body = json!({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": true});
    let events = raw_events(post(&service, body).await).await;
    assert!(!events.contains(&"[DONE]".to_owned()), "{events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "provider_unavailable", "{last}");
    assert_eq!(last["error"]["type"], "api_error");
}

#[tokio::test]
async fn bad_requests_get_openais_error_shape_and_nothing_is_sent() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "Hello!", &["Hel", "lo"]).await;
    let service = Service::start(
        &upstream,
        &[("LLMRPC_ALLOWED_MODELS", "openai/gpt-4.1-mini")],
    );
    let hi = json!([{"role": "user", "content": "Hi"}]);
    for (body, status, param, code) in [
        (json!([1, 2]), 400, Value::Null, "invalid_request"),
        (
            json!({"model": "gpt-4.1-mini", "messages": hi, "n": 2}),
            400,
            json!("n"),
            "invalid_request",
        ),
        (
            json!({"model": "gpt-4.1-mini", "messages": hi, "temperature": 3}),
            400,
            json!("temperature"),
            "invalid_params",
        ),
        (
            json!({"model": "gpt-4.1-mini", "messages": []}),
            400,
            json!("messages"),
            "invalid_params",
        ),
        (
            json!({"model": "llama-3", "messages": hi}),
            403,
            json!("model"),
            "model_not_allowed",
        ),
    ] {
        let response = post(&service, body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        assert!(response.headers().contains_key("x-llmrpc-trace-id"));
        assert_eq!(header(&response, "x-should-retry"), "false");
        let answer: Value = response.json().await.unwrap();
        let error = &answer["error"];
        assert_eq!(
            (&error["param"], error["code"].as_str()),
            (&param, Some(code)),
            "{answer}"
        );
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(error["type"].is_string());
    }
    assert!(received(&upstream).await.is_empty());
}

#[tokio::test]
async fn upstream_failures_map_to_the_statuses_openai_clients_expect() {
    let upstream = MockServer::start().await;
    Provider::Openai
        .mount_error(&upstream, 429, json!({"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}))
        .await;
    let service = Service::start(&upstream, &[("LLMRPC_MAX_RETRIES", "0")]);
    let response = post(
        &service,
        json!({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "x-should-retry"), "true");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "rate_limit_exceeded", "{answer}");
    assert_eq!(answer["error"]["type"], "rate_limit_error");
    assert_eq!(received(&upstream).await.len(), 1);
}

#[tokio::test]
async fn models_lists_what_a_caller_can_name() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);
    let response = http_client()
        .get(format!("{}/v1/models", service.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"openai/gpt-4.1-mini"), "{ids:?}");
    assert!(ids.contains(&"fast"), "{ids:?}");
    // Only OpenAI has a key here.
    assert!(
        !ids.iter().any(|id| id.starts_with("anthropic/")),
        "{ids:?}"
    );
    let entry = &list["data"][0];
    assert_eq!(
        (&entry["object"], &entry["owned_by"]),
        (&json!("model"), &json!("openai"))
    );

    for (id, status) in [
        ("openai/gpt-4.1-mini", 200),
        ("openai%2Fgpt-4.1-mini", 200),
        ("fast", 200),
        ("llama-3", 404),
    ] {
        let response = http_client()
            .get(format!("{}/v1/models/{id}", service.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{id}");
        let body: Value = response.json().await.unwrap();
        if status == 200 {
            assert_eq!(body["id"], id.replace("%2F", "/"));
        } else {
            assert_eq!(body["error"]["code"], "model_not_found", "{body}");
        }
    }
}
