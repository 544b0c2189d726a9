//! `llm.stream` over WebSocket (a subscription) and over HTTP as Server-Sent Events.

use crate::common;

use common::*;
use futures::{SinkExt, StreamExt};
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn assert_chunks(chunks: &[Value], trace_id: &str, deltas: &[&str]) {
    assert_eq!(chunks.len(), deltas.len() + 1, "{chunks:#?}");
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["index"], i, "{chunk}");
        assert_eq!(chunk["trace_id"], trace_id, "{chunk}");
    }
    for (chunk, delta) in chunks.iter().zip(deltas) {
        assert_eq!(chunk["delta"], *delta);
        assert_eq!(chunk["done"], false);
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["delta"], "");
    assert_eq!(last["finish_reason"], "stop");
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    );
    assert_eq!(last["provider"], "openai");
    assert_eq!(last["model"], "gpt-4.1-mini");
    assert_eq!(last["attempts"], 1);
    assert!(
        last["latency_ms"].is_u64() && last["ttft_ms"].is_u64(),
        "{last}"
    );
    assert_eq!(last["a2a_context"]["trace_id"], trace_id);
    assert!(is_hex(last["a2a_context"]["span_id"].as_str().unwrap(), 16));
    assert!(last.get("error").is_none());
}

fn stream_params(trace_id: &str) -> Value {
    let mut p = params("gpt-4.1-mini");
    p["a2a_context"] = json!({"trace_id": trace_id});
    p
}

#[tokio::test]
async fn a_top_level_context_reaches_websocket_calls_and_subscriptions() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ws", &["x"]).await;
    let service = Service::start(&upstream, &[]);
    let (mut ws, _) = tokio_tungstenite::connect_async(service.ws_url())
        .await
        .unwrap();
    let mut send = async |v: Value| ws.send(Message::text(v.to_string())).await.unwrap();
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete", "params": params("gpt-4.1-mini"),
                "a2a_context": {"trace_id": "ws-top-1", "source_agent": "planner"}}))
    .await;
    send(json!([{"jsonrpc": "2.0", "id": 2, "method": "llm.complete", "params": params("gpt-4.1-mini"),
                 "a2a_context": {"trace_id": "ws-batch-2"}}]))
    .await;
    send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "llm.stream", "params": params("gpt-4.1-mini"),
                "a2a_context": {"trace_id": "ws-sub-3"}}),
    )
    .await;

    let (mut complete, mut batch, mut chunks) = (None, None, Vec::new());
    while complete.is_none()
        || batch.is_none()
        || chunks.last().is_none_or(|c: &Value| c["done"] != true)
    {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        match &v {
            Value::Array(items) => batch = Some(items[0].clone()),
            _ if v["id"] == 1 => complete = Some(v),
            _ if v["method"] == "llm.stream.chunk" => chunks.push(v["params"]["result"].clone()),
            _ => assert_eq!(v["id"], 3, "subscription id answer: {v}"),
        }
    }
    let complete = complete.unwrap();
    assert_eq!(complete["result"]["trace_id"], "ws-top-1");
    assert_eq!(complete["result"]["a2a_context"]["source_agent"], "planner");
    assert_eq!(batch.unwrap()["result"]["trace_id"], "ws-batch-2");
    assert_chunks(&chunks, "ws-sub-3", &["x"]);
}

#[tokio::test]
async fn a_failure_before_the_first_chunk_is_the_error_of_the_request() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {"message": "slow down", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})))
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[]);

    let client = WsClientBuilder::default()
        .build(service.ws_url())
        .await
        .unwrap();
    let mut p = ObjectParams::new();
    for (k, v) in stream_params("early-ws").as_object().unwrap() {
        p.insert(k, v).unwrap();
    }
    let err = client
        .subscribe::<Value, _>("llm.stream", p, "llm.stream.cancel")
        .await
        .unwrap_err();
    let jsonrpsee::core::ClientError::Call(err) = err else {
        panic!("{err:?}")
    };
    assert_eq!(err.code(), -32002);
    let data: Value = serde_json::from_str(err.data().unwrap().get()).unwrap();
    assert_eq!(
        (data["kind"].as_str(), data["trace_id"].as_str()),
        (Some("rate_limited"), Some("early-ws"))
    );

    let response = service
        .sse_request(json!(5), stream_params("early-sse"))
        .send()
        .await
        .unwrap();
    let events = sse_events(response).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["id"], 5);
    assert_eq!(events[0]["error"]["code"], -32002);
    assert_eq!(events[0]["error"]["data"]["trace_id"], "early-sse");
}

#[tokio::test]
async fn an_upstream_body_that_stops_early_ends_the_stream_with_an_error_chunk() {
    let broken = format!(
        "data: {}\n\ndata: {}\n\n",
        json!({"model": "gpt-4.1-mini", "choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]}),
        json!({"error": {"message": "The server had an error", "type": "server_error"}})
    );
    let cut = format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]})
    );
    for (body, expected) in [
        (broken, "The server had an error"),
        (cut, "ended the stream before the answer finished"),
    ] {
        let upstream = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/event-stream")
                    .set_body_string(body),
            )
            .mount(&upstream)
            .await;
        let service = Service::start(&upstream, &[]);
        let response = service
            .sse_request(json!(1), stream_params("mid-1"))
            .send()
            .await
            .unwrap();
        let chunks: Vec<Value> = sse_events(response)
            .await
            .into_iter()
            .map(|e| e["result"].clone())
            .collect();
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        assert_eq!(chunks[0]["delta"], "par");
        let last = &chunks[1];
        assert_eq!(
            (last["index"].as_u64(), last["done"].as_bool()),
            (Some(1), Some(true)),
            "{last}"
        );
        assert_eq!(last["error"]["code"], -32004);
        assert_eq!(last["error"]["data"]["trace_id"], "mid-1");
        assert!(
            last["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{last}"
        );
    }
}

#[tokio::test]
async fn llm_stream_over_plain_http_says_how_to_stream() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);
    let answer = service.call("llm.stream", params("gpt-4.1-mini")).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Accept: text/event-stream")
    );
    assert!(received(&upstream).await.is_empty());
}

#[tokio::test]
async fn an_oversized_websocket_message_is_refused_and_the_connection_keeps_serving() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "fine", &[]).await;
    let service = Service::start(&upstream, &[]);
    let (mut ws, _) = tokio_tungstenite::connect_async(service.ws_url())
        .await
        .unwrap();
    let mut huge = params("gpt-4.1-mini");
    huge["messages"][0]["content"] = json!("x".repeat(11 * 1024 * 1024));
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete", "params": huge});
    ws.send(Message::text(request.to_string())).await.unwrap();
    let normal = json!({"jsonrpc": "2.0", "id": 2, "method": "llm.complete", "params": params("gpt-4.1-mini")});
    ws.send(Message::text(normal.to_string())).await.unwrap();
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        answers.push(serde_json::from_str::<Value>(message.to_text().unwrap()).unwrap());
    }
    let refused = answers
        .iter()
        .find(|a| a["id"].is_null())
        .expect("an answer to the oversized message");
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than the limit")
    );
    let served = answers.iter().find(|a| a["id"] == 2).unwrap();
    assert_eq!(served["result"]["content"], "fine");
    assert_eq!(received(&upstream).await.len(), 1);
}

/// An `llm.stream` inside a WebSocket batch is answered once, in the batch's array, and its
/// chunks follow that array, even when another element of the batch takes longer than the
/// stream (here a slow `llm.complete`).
#[tokio::test]
async fn a_stream_inside_a_websocket_batch_is_answered_once_before_its_chunks() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_partial_json(
            json!({"stream": true}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(&["a", "b"])),
        )
        .with_priority(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion_body("slow"))
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .with_priority(2)
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[]);
    let (mut ws, _) = tokio_tungstenite::connect_async(service.ws_url())
        .await
        .unwrap();
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "llm.stream", "params": params("gpt-4.1-mini")},
        {"jsonrpc": "2.0", "id": 2, "method": "llm.complete", "params": params("gpt-4.1-mini")},
    ]);
    ws.send(Message::text(batch.to_string())).await.unwrap();
    let mut messages = Vec::new();
    while !messages
        .last()
        .is_some_and(|m: &Value| m["params"]["result"]["done"] == true)
    {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        messages.push(serde_json::from_str::<Value>(message.to_text().unwrap()).unwrap());
    }
    let answers = messages[0]
        .as_array()
        .expect("the batch's array comes first");
    let subscription = &answers.iter().find(|a| a["id"] == 1).unwrap()["result"];
    assert_eq!(
        answers.iter().find(|a| a["id"] == 2).unwrap()["result"]["content"],
        "slow"
    );
    let chunks: Vec<&Value> = messages[1..].iter().collect();
    assert_eq!(chunks.len(), 3, "{messages:#?}");
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["method"], "llm.stream.chunk", "{chunk}");
        assert_eq!(&chunk["params"]["subscription"], subscription, "{chunk}");
        assert_eq!(chunk["params"]["result"]["index"], i, "{chunk}");
    }
}
