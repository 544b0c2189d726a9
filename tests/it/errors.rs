//! Every envelope error, every invalid-params rule the caller can hit, and every upstream error
//! mapping, as callers see them: exact codes, kinds and trace ids, and what reached upstream.

use crate::common;

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn assert_error(answer: &Value, code: i64, kind: &str) {
    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert_eq!(answer["error"]["data"]["kind"], kind, "{answer}");
    assert!(
        answer["error"]["data"]["trace_id"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{answer}"
    );
}

#[tokio::test]
async fn envelope_errors_use_the_standard_codes() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);

    let (status, answer) = service
        .post_raw("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".into(), &[])
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_i64()),
        (200, Some(-32700)),
        "{answer}"
    );

    let (_, answer) = service
        .post(&json!({"jsonrpc": "1.0", "id": 1, "method": "llm.models"}))
        .await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    let (_, answer) = service.post(&json!({"id": 1, "params": {}})).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    let answer = service.call("llm.nope", json!({})).await;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");

    let (_, answer) = service.post(&json!([])).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    // Plain HTTP cannot carry a subscription: the stream needs an event stream.
    let (status, answer) = service
        .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "llm.stream", "params": params("gpt-4.1-mini")}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32600,
            "message": "llm.stream over HTTP needs the header Accept: text/event-stream (or subscribe over a WebSocket)"}})
    );

    // A batch answers each element, errors included.
    let (_, answers) = service
        .post(&json!([
            {"jsonrpc": "2.0", "id": 1, "method": "llm.metrics"},
            {"jsonrpc": "2.0", "id": 2, "method": "llm.nope"},
            {"jsonrpc": "2.0", "id": 3, "method": "llm.complete", "params": {"model": 3}}
        ]))
        .await;
    let mut codes: Vec<(i64, Option<i64>)> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_i64().unwrap(), a["error"]["code"].as_i64()))
        .collect();
    codes.sort();
    assert_eq!(codes, vec![(1, None), (2, Some(-32601)), (3, Some(-32602))]);
    assert!(received(&upstream).await.is_empty());
}

/// A batch over the limit is refused whole before any of its calls runs, over HTTP and over a
/// WebSocket; at the limit, every call is answered.
#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole_and_nothing_is_sent() {
    use futures::{SinkExt, StreamExt};
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "hi", &[]).await;
    let service = Service::start(&upstream, &[("LLMRPC_MAX_BATCH", "3")]);
    let batch = |n: usize| {
        let calls: Vec<Value> = (0..n)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "llm.complete", "params": params("gpt-4.1-mini")}))
            .collect();
        Value::Array(calls).to_string()
    };
    let refusal = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
        "message": "a batch of 4 requests is over the limit of 3 (LLMRPC_MAX_BATCH): send it in smaller batches"}});
    let (status, answer) = service.post_raw(batch(4), &[]).await;
    assert_eq!((status, &answer), (200, &refusal));
    assert!(received(&upstream).await.is_empty());

    let (mut socket, _) = tokio_tungstenite::connect_async(service.ws_url())
        .await
        .unwrap();
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(batch(4)))
        .await
        .unwrap();
    let reply = socket.next().await.unwrap().unwrap().into_text().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&reply).unwrap(), refusal);
    assert!(received(&upstream).await.is_empty());

    let (_, answer) = service.post_raw(batch(3), &[]).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(3), "{answer}");
    assert_eq!(received(&upstream).await.len(), 3);
}

#[tokio::test]
async fn a_huge_body_gets_a_clear_error_and_the_service_keeps_serving() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "still here", &[]).await;
    let service = Service::start(&upstream, &[]);
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"llm.complete\",\"params\":{{\"model\":\"gpt-4.1-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}}}",
        "x".repeat(11 * 1024 * 1024)
    );
    let (status, answer) = service.post_raw(huge, &[]).await;
    assert_eq!(status, 413);
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600,
            "message": "request is larger than the limit of 10485760 bytes"}})
    );
    assert!(received(&upstream).await.is_empty());
    assert_eq!(
        service.call("llm.complete", params("gpt-4.1-mini")).await["result"]["content"],
        "still here"
    );
}

#[tokio::test]
async fn invalid_params_name_the_field_and_keep_the_trace_id() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "missing field `model`",
        ),
        (
            json!({"model": "gpt-4o", "messages": []}),
            "messages must be a non-empty array",
        ),
        (
            json!({"model": "gpt-4o", "messages": "hi"}),
            "messages: invalid type",
        ),
        (
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "max_tokens must be an integer ≥ 1",
        ),
        (
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
            "temperature must be a number from 0 to 2",
        ),
        (json!(["gpt-4o"]), "must be an object of named fields"),
    ];
    for (p, expected) in cases {
        let mut request = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete", "params": p, "a2a_context": {"trace_id": "bad-params"}});
        if !request["params"].is_object() {
            request.as_object_mut().unwrap().remove("a2a_context");
        }
        let (_, answer) = service.post(&request).await;
        assert_error(&answer, -32602, "invalid_params");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        if request.get("a2a_context").is_some() {
            assert_eq!(answer["error"]["data"]["trace_id"], "bad-params");
        }
    }
    let answer = service
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete"}))
        .await
        .1;
    assert_error(&answer, -32602, "invalid_params");
    assert!(received(&upstream).await.is_empty());
}

#[tokio::test]
async fn unknown_and_disallowed_models_never_reach_upstream() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;
    let service = Service::start(
        &upstream,
        &[("LLMRPC_ALLOWED_MODELS", "openai/gpt-4.1-mini")],
    );

    let answer = service.call("llm.complete", params("gpt-4o")).await;
    assert_error(&answer, -32602, "model_not_allowed");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai/gpt-4.1-mini"),
        "{answer}"
    );

    let service_open = Service::start(&upstream, &[]);
    let answer = service_open
        .call("llm.complete", params("llama-3-70b"))
        .await;
    assert_error(&answer, -32001, "model_not_found");
    assert!(received(&upstream).await.is_empty());

    let answer = service.call("llm.complete", params("gpt-4.1-mini")).await;
    assert_eq!(answer["result"]["content"], "ok", "{answer}");
    assert_eq!(received(&upstream).await.len(), 1);
    assert_eq!(
        service.call("llm.metrics", json!({})).await["result"]["governance_violations"],
        1
    );
}

#[tokio::test]
async fn an_unconfigured_provider_names_its_missing_key() {
    let service = Service::start_with(&[]);
    let answer = service.call("llm.complete", params("gpt-4.1-mini")).await;
    assert_error(&answer, -32005, "provider_auth");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("OPENAI_API_KEY"),
        "{answer}"
    );
    assert_eq!(answer["error"]["data"]["provider"], "openai");
    service.wait_for_log(|l| l.contains("WARN") && l.contains("ANTHROPIC_API_KEY"));
}

#[tokio::test]
async fn upstream_garbage_and_a_dead_upstream_are_provider_unavailable() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[]);
    assert_error(
        &service.call("llm.complete", params("gpt-4.1-mini")).await,
        -32004,
        "provider_unavailable",
    );

    let closed = ClosedPort::new();
    let dead = format!("{}/v1", closed.url());
    let service =
        Service::start_with(&[("OPENAI_API_KEY", OPENAI_KEY), ("OPENAI_BASE_URL", &dead)]);
    assert_error(
        &service.call("llm.complete", params("gpt-4.1-mini")).await,
        -32004,
        "provider_unavailable",
    );
}

#[tokio::test]
async fn a_hanging_upstream_ends_in_timeout_at_the_callers_deadline() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion_body("late"))
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[]);
    let mut p = params("gpt-4.1-mini");
    p["timeout_ms"] = json!(300);
    let answer = service.call("llm.complete", p).await;
    assert_error(&answer, -32003, "timeout");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 ms"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_allow_list_changes_on_sighup_without_a_restart() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("llmrpc.toml");
    std::fs::write(&file, "allowed_models = [\"openai/gpt-4.1-mini\"]\n").unwrap();
    let base = format!("{}/v1", upstream.uri());
    let service = Service::start_with(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("OPENAI_BASE_URL", &base),
        ("LLMRPC_CONFIG", file.to_str().unwrap()),
    ]);
    assert_error(
        &service.call("llm.complete", params("gpt-4o")).await,
        -32602,
        "model_not_allowed",
    );

    std::fs::write(
        &file,
        "allowed_models = [\"openai/gpt-4.1-mini\", \"gpt-4o\"]\n",
    )
    .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &service.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    service.wait_for_log(|l| l.contains("configuration reloaded"));
    assert_eq!(
        service.call("llm.complete", params("gpt-4o")).await["result"]["content"],
        "ok"
    );
}

/// A base URL that is not an http(s) URL is refused when the service starts, by name, rather
/// than failing every call that would use it.
#[test]
fn a_mistyped_base_url_stops_the_service_at_start() {
    for (var, value) in [
        ("OPENAI_BASE_URL", "api.openai.com/v1"),
        ("ANTHROPIC_BASE_URL", "ftp://example.com"),
        ("GEMINI_BASE_URL", "http://"),
    ] {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_llmrpc"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env_clear()
            .env("LLMRPC_DATABASE_URL", "off")
            .env(var, value)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
        let Ok(output) = rx.recv_timeout(std::time::Duration::from_secs(30)) else {
            let _ = std::process::Command::new("kill").arg(&pid).status();
            panic!("{var}={value}: the service started instead of refusing");
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var}={value} started: {stderr}");
        assert!(
            stderr.contains("base URL") && stderr.contains(value),
            "{var}={value}: {stderr}"
        );
    }
}

/// What jsonrpsee would answer with a bare `-32603` gets a `-32600` that says where a stream
/// can go: `llm.stream` in an HTTP batch (the whole batch, none of it run), and `llm.stream`
/// with a null id over HTTP.
#[tokio::test]
async fn streams_where_http_cannot_carry_them_are_invalid_requests() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "hi", &["hi"]).await;
    let service = Service::start(&upstream, &[]);
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "llm.complete", "params": params("gpt-4.1-mini")},
        {"jsonrpc": "2.0", "id": 2, "method": "llm.stream", "params": params("gpt-4.1-mini")},
    ]);
    let (_, answer) = service.post(&batch).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be part of an HTTP batch")
    );
    assert!(received(&upstream).await.is_empty());
    let null_id = json!({"jsonrpc": "2.0", "id": null, "method": "llm.stream", "params": params("gpt-4.1-mini")});
    let (_, answer) = service.post(&null_id).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
}

/// An answer over `LLMRPC_MAX_RESPONSE_BYTES` is an error instead: for one request our
/// `-32603` naming the limit, for a whole batch jsonrpsee's `-32011` (a code the contract does
/// not use). Small answers still come.
#[tokio::test]
async fn answers_over_the_response_limit_are_errors_instead() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[("LLMRPC_MAX_RESPONSE_BYTES", "1024")]);
    let answer = service.call("llm.models", json!({})).await;
    assert_error(&answer, -32603, "internal");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LLMRPC_MAX_RESPONSE_BYTES"),
        "{answer}"
    );
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "llm.metrics"}))
        .collect();
    let (_, answer) = service.post(&Value::Array(batch)).await;
    assert_eq!(answer["error"]["code"], -32011, "{answer}");
    assert!(service.call("llm.metrics", json!({})).await["result"].is_object());
}
