//! The provider suite: every scenario runs against each of OpenAI, Anthropic and Gemini, so that
//! callers cannot tell which provider answered except by the `provider` field.

use crate::common;

use common::upstream::{ALL, Mocked, Provider};
use common::*;
use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};
use wiremock::MockServer;

fn conversation(model: &str, trace_id: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Describe this image."},
            {"role": "user", "content": [
                {"type": "text", "text": "Briefly."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}
        ],
        "a2a_context": {"trace_id": trace_id, "source_agent": "suite"}
    })
}

fn object_params(value: Value) -> ObjectParams {
    let mut params = ObjectParams::new();
    for (k, v) in value.as_object().unwrap() {
        params.insert(k, v).unwrap();
    }
    params
}

#[tokio::test]
async fn complete_maps_the_conversation_and_the_answer_for_every_provider() {
    for provider in ALL {
        let upstream = MockServer::start().await;
        provider
            .mount_complete(&upstream, "Hello there!", provider.stop())
            .await;
        let service = provider.start(&upstream, &[]);
        let trace_id = format!("suite-{}", provider.name());
        let answer = service
            .call("llm.complete", conversation(provider.model(), &trace_id))
            .await;
        let result = &answer["result"];
        assert_eq!(result["content"], "Hello there!", "{provider:?}: {answer}");
        assert_eq!(
            result["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}),
            "{provider:?}"
        );
        assert_eq!(result["finish_reason"], "stop", "{provider:?}");
        assert_eq!(result["provider"], provider.name());
        assert_eq!(result["model"], provider.model());
        assert_eq!(result["attempts"], 1);
        assert_eq!(result["trace_id"], trace_id.as_str());
        let span_id = result["a2a_context"]["span_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(is_hex(&span_id, 16));

        let requests = received(&upstream).await;
        assert_eq!(requests.len(), 1, "{provider:?}");
        let sent = &requests[0];
        assert!(
            provider.authenticated(sent),
            "{provider:?} auth headers: {:?}",
            sent.headers
        );
        assert_eq!(sent.headers["x-request-id"], trace_id.as_str());
        let traceparent = sent.headers["traceparent"].to_str().unwrap();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert!(
            parts.len() == 4 && parts[0] == "00" && is_hex(parts[1], 32) && parts[2] == span_id,
            "{traceparent}"
        );
        let body: Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(
            provider.system_prompt(&body),
            "You are terse.",
            "{provider:?}: {body}"
        );
        assert_eq!(
            provider.roles(&body),
            provider.expected_roles(),
            "{provider:?}: {body}"
        );
        assert!(provider.has_inline_image(&body), "{provider:?}: {body}");
        assert!(
            sent.url.as_str().contains(provider.model())
                || body.to_string().contains(provider.model())
        );
    }
}

#[tokio::test]
async fn finish_reasons_are_normalised_for_every_provider() {
    for provider in ALL {
        for (native, expected) in provider.finish_cases() {
            let upstream = MockServer::start().await;
            provider.mount_complete(&upstream, "x", native).await;
            let service = provider.start(&upstream, &[]);
            let answer = service.call("llm.complete", params(provider.model())).await;
            assert_eq!(
                answer["result"]["finish_reason"], expected,
                "{provider:?} {native}: {answer}"
            );
        }
    }
}

async fn ws_chunks(service: &Service, params: Value) -> Vec<Value> {
    let client = WsClientBuilder::default()
        .build(service.ws_url())
        .await
        .unwrap();
    let mut sub: Subscription<Value> = client
        .subscribe("llm.stream", object_params(params), "llm.stream.cancel")
        .await
        .unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = sub.next().await {
        let chunk = chunk.unwrap();
        let done = chunk["done"] == true;
        chunks.push(chunk);
        if done {
            break;
        }
    }
    chunks
}

async fn sse_chunks(service: &Service, params: Value) -> Vec<Value> {
    sse_stream(service, params)
        .await
        .into_iter()
        .map(|e| e["result"].clone())
        .collect()
}

/// The SSE events of one `llm.stream` request (each a JSON-RPC response).
async fn sse_stream(service: &Service, params: Value) -> Vec<Value> {
    let response = service.sse_request(json!(11), params).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(response).await;
    assert!(
        events
            .iter()
            .all(|e| e["id"] == 11 && e["jsonrpc"] == "2.0"),
        "{events:?}"
    );
    events
}

fn assert_stream(provider: Provider, chunks: &[Value], trace_id: &str) {
    let deltas: Vec<&str> = chunks
        .iter()
        .filter(|c| c["done"] == false)
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["Hel", "lo", "!"], "{provider:?}: {chunks:?}");
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["index"], i);
        assert_eq!(chunk["trace_id"], trace_id);
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["finish_reason"], "stop", "{provider:?}: {last}");
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}),
        "{provider:?}: {last}"
    );
    assert_eq!(last["provider"], provider.name());
    assert_eq!(last["model"], provider.model());
    assert!(last.get("error").is_none(), "{last}");
}

#[tokio::test]
async fn streams_arrive_in_order_over_websocket_and_sse_for_every_provider() {
    for provider in ALL {
        let upstream = MockServer::start().await;
        provider.mount_stream(&upstream, &["Hel", "lo", "!"]).await;
        let service = provider.start(&upstream, &[]);
        let trace_id = format!("stream-{}", provider.name());
        let ws = ws_chunks(&service, conversation(provider.model(), &trace_id)).await;
        assert_stream(provider, &ws, &trace_id);
        let sse = sse_chunks(&service, conversation(provider.model(), &trace_id)).await;
        assert_stream(provider, &sse, &trace_id);
        for sent in received(&upstream).await {
            assert!(provider.authenticated(&sent), "{provider:?}");
            assert_eq!(sent.headers["x-request-id"], trace_id.as_str());
        }
    }
}

#[tokio::test]
async fn a_mid_stream_provider_error_ends_the_stream_with_an_error_chunk() {
    for provider in ALL {
        let upstream = MockServer::start().await;
        provider
            .mount_raw_stream(&upstream, provider.broken_stream_body())
            .await;
        let service = provider.start(&upstream, &[]);
        let mut p = params(provider.model());
        p["a2a_context"] = json!({"trace_id": "broken"});
        let chunks = sse_chunks(&service, p).await;
        assert_eq!(chunks.len(), 2, "{provider:?}: {chunks:?}");
        assert_eq!(chunks[0]["delta"], "par");
        let last = &chunks[1];
        assert_eq!(last["done"], true);
        assert_eq!(last["error"]["code"], -32004, "{provider:?}: {last}");
        assert_eq!(last["error"]["data"]["kind"], "provider_unavailable");
        assert_eq!(last["error"]["data"]["trace_id"], "broken");
        assert_eq!(last["error"]["data"]["provider"], provider.name());
    }
}

#[tokio::test]
async fn each_upstream_error_maps_to_its_contract_code_for_every_provider() {
    for provider in ALL {
        for (status, body, code, kind) in provider.error_cases() {
            let upstream = MockServer::start().await;
            provider.mount_error(&upstream, status, body.clone()).await;
            // One attempt: this is about the mapping; retries have their own tests.
            let service = provider.start(&upstream, &[("LLMRPC_MAX_RETRIES", "0")]);
            let mut p = params(provider.model());
            p["a2a_context"] = json!({"trace_id": format!("err-{status}")});
            let answer = service.call("llm.complete", p.clone()).await;
            let what = format!("{provider:?} {status} {body}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{what}");
            let data = &answer["error"]["data"];
            assert_eq!(data["kind"], kind, "{what}");
            assert_eq!(data["trace_id"], format!("err-{status}"), "{what}");
            assert_eq!(data["status"], status, "{what}");
            assert_eq!(data["provider"], provider.name(), "{what}");
            assert_eq!(data["attempts"], 1, "{what}");
            assert!(data["retry_after_ms"].as_u64().is_some(), "{what}");
            assert!(
                !answer.to_string().contains(provider.key()),
                "the key leaked: {what}"
            );

            // The same error before the first chunk is the error of the stream request itself.
            let events = sse_stream(&service, p).await;
            assert_eq!(events.len(), 1, "{what}");
            assert_eq!(events[0]["error"]["code"], code, "{what}");
            assert_eq!(
                events[0]["error"]["data"]["trace_id"],
                format!("err-{status}"),
                "{what}"
            );
            service.wait_for_log(|l| {
                l.contains("call failed") && l.contains(&format!("err-{status}"))
            });
            assert!(
                service.logs().iter().all(|l| !l.contains(provider.key())),
                "the key leaked into the logs: {what}"
            );
        }
    }
}
