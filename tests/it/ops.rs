//! What operators see by trace id: the ledger through `ops.trace`, `ops.usage`, `llmrpc trace`,
//! and the finished-call log line, with a real server.

use crate::common;

use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn traced(model: &str, trace_id: &str, agent: &str) -> Value {
    let mut p = params(model);
    p["a2a_context"] = json!({"trace_id": trace_id, "source_agent": agent, "session_id": "s-1"});
    p["metadata"] = json!({"ticket": 42});
    p
}

#[tokio::test]
async fn ops_trace_shows_every_call_and_attempt_of_a_trace_in_order() {
    let upstream = MockServer::start().await;
    // A call asking for 3 tokens fails once with 503, then succeeds; one asking for 4 is refused.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 3})))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 4})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": null}})))
        .with_priority(1)
        .mount(&upstream)
        .await;
    mount_openai(&upstream, "ok", &[]).await;
    let service = Service::start(&upstream, &[]);

    let first = service
        .call("llm.complete", traced("gpt-4.1-mini", "trace-a", "planner"))
        .await;
    assert_eq!(first["result"]["content"], "ok");
    let mut retried = traced("gpt-4.1-mini", "trace-a", "planner");
    retried["max_tokens"] = json!(3);
    assert_eq!(
        service.call("llm.complete", retried).await["result"]["attempts"],
        2
    );
    let mut refused = traced("gpt-4.1-mini", "trace-a", "planner");
    refused["max_tokens"] = json!(4);
    assert_eq!(
        service.call("llm.complete", refused).await["error"]["code"],
        -32007
    );
    service
        .call("llm.complete", traced("gpt-4.1-mini", "trace-b", "critic"))
        .await;

    let calls = service
        .call("ops.trace", json!({"trace_id": "trace-a"}))
        .await["result"]
        .clone();
    let calls = calls.as_array().unwrap();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    let statuses: Vec<&str> = calls
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "provider_rejected"]);
    for c in calls {
        assert_eq!(c["trace_id"], "trace-a");
        assert_eq!(c["source_agent"], "planner");
        assert_eq!(c["session_id"], "s-1");
        assert_eq!(c["method"], "llm.complete");
        assert_eq!(
            (c["provider"].as_str(), c["model"].as_str()),
            (Some("openai"), Some("gpt-4.1-mini"))
        );
        assert_eq!(c["metadata"], json!({"ticket": 42}));
        assert!(c["started_at"].as_str().unwrap() <= c["finished_at"].as_str().unwrap());
    }
    assert_eq!(calls[0]["usage"]["total_tokens"], 12);
    assert!(
        calls[0]["cost_usd"].as_f64().unwrap() > 0.0,
        "gpt-4.1-mini has a list price"
    );
    let attempts = calls[1]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (
            attempts[0]["status"].as_str(),
            attempts[0]["http_status"].as_u64()
        ),
        (Some("provider_unavailable"), Some(503))
    );
    assert_eq!(attempts[1]["status"], "ok");
    assert_eq!(calls[2]["attempts"][0]["http_status"], 400);
    assert!(calls[2]["error_message"].as_str().unwrap().contains("bad"));

    assert_eq!(
        service
            .call("ops.trace", json!({"trace_id": "nobody"}))
            .await["result"],
        json!([])
    );
    assert_eq!(
        service.call("ops.trace", json!({})).await["error"]["code"],
        -32602
    );

    let usage = service
        .call("ops.usage", json!({"group_by": "source_agent"}))
        .await["result"]
        .clone();
    let groups = usage["groups"].as_array().unwrap();
    let planner = groups.iter().find(|g| g["key"] == "planner").unwrap();
    assert_eq!(
        (planner["calls"].as_u64(), planner["errors"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(planner["total_tokens"], 24);
    let critic = groups.iter().find(|g| g["key"] == "critic").unwrap();
    assert_eq!(critic["calls"], 1);
    let by_provider = service
        .call("ops.usage", json!({"group_by": "provider"}))
        .await["result"]["groups"]
        .clone();
    assert_eq!(by_provider[0]["key"], "openai");
    assert_eq!(by_provider[0]["calls"], 4);
    let invalid = service
        .call("ops.usage", json!({"since": "yesterday"}))
        .await;
    assert_eq!(invalid["error"]["code"], -32602, "{invalid}");

    // The command-line view of the same trace.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .args(["trace", "--url", &service.url(), "trace-a"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("provider_rejected")
            && text.contains("HTTP 503")
            && text.contains("openai/gpt-4.1-mini")
            && text
                .lines()
                .next()
                .is_some_and(|header| header.split_whitespace().any(|c| c == "tools")),
        "{text}"
    );
}

#[tokio::test]
async fn a_cancelled_stream_is_recorded_as_cancelled() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(&["a"]))
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[]);
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.stream", "params": traced("gpt-4.1-mini", "gone", "planner")});
    let caller = tokio::spawn(post_to(
        service.url(),
        request.to_string(),
        &[("accept", "text/event-stream")],
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received(&upstream).await.is_empty() {
        assert!(std::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    caller.abort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let calls = service.call("ops.trace", json!({"trace_id": "gone"})).await["result"].clone();
        if calls[0]["status"] == "cancelled" {
            assert_eq!(calls[0]["method"], "llm.stream");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{calls}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_full_ledger_queue_drops_records_and_never_fails_a_call() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;
    let service = Service::start(&upstream, &[("LLMRPC_LEDGER_CAPACITY", "1")]);
    let answers: Vec<Value> = futures::stream::iter(0..300)
        .map(|_| service.call("llm.complete", params("gpt-4.1-mini")))
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(
        answers.iter().all(|a| a["result"]["content"] == "ok"),
        "every call succeeded"
    );
    let metrics = service.metrics().await;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("llm_ledger_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no drop counter in\n{metrics}"));
    assert!(
        dropped > 0,
        "with room for one record, 300 calls must drop some"
    );
    assert!(
        metrics.lines().any(|l| l == "llm_ledger_failed_total 0"),
        "dropped records are not failed writes:\n{metrics}"
    );
}

#[tokio::test]
async fn one_json_line_per_finished_call_carries_the_trace() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "ok", &[]).await;
    let service = Service::start(&upstream, &[]);
    service
        .call("llm.complete", traced("gpt-4.1-mini", "line-1", "planner"))
        .await;
    let line = service.wait_for_log(|l| l.contains("call finished") && l.contains("line-1"));
    let v: Value = serde_json::from_str(&line).unwrap();
    let fields = &v["fields"];
    assert_eq!(
        (fields["provider"].as_str(), fields["model"].as_str()),
        (Some("openai"), Some("gpt-4.1-mini"))
    );
    assert_eq!(fields["status"], "ok");
    assert_eq!(fields["attempts"], 1);
    assert_eq!(fields["prompt_tokens"], 9);
    assert!(fields["latency_ms"].is_u64());
    assert_eq!(v["span"]["source_agent"], "planner");
}

#[tokio::test]
async fn ops_refuse_an_invalid_context_exactly_as_llm_methods_do() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);
    for (context, message) in [
        (
            json!({"trace_id": "has space"}),
            "a2a_context.trace_id must be 1-128 characters of A-Za-z0-9._:-",
        ),
        (
            json!("x"),
            "invalid params: a2a_context: invalid type: string \"x\", expected struct A2aContext",
        ),
    ] {
        let mut complete = params("gpt-4.1-mini");
        complete["a2a_context"] = context.clone();
        for (method, p) in [
            ("llm.complete", complete),
            (
                "ops.trace",
                json!({"trace_id": "t", "a2a_context": context.clone()}),
            ),
            ("ops.usage", json!({"a2a_context": context.clone()})),
        ] {
            let answer = service.call(method, p).await;
            let error = &answer["error"];
            assert_eq!(
                (error["code"].as_i64(), error["message"].as_str()),
                (Some(-32602), Some(message)),
                "{method}: {answer}"
            );
            assert_eq!(error["data"]["kind"], "invalid_params", "{answer}");
            assert!(is_hex(error["data"]["trace_id"].as_str().unwrap(), 32));
        }
        // Top-level, as the A2A convention puts it.
        let (_, answer) = service
            .post(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "ops.usage", "a2a_context": context}),
            )
            .await;
        assert_eq!(answer["error"]["message"], message, "{answer}");
    }
    assert!(received(&upstream).await.is_empty());
}

#[tokio::test]
async fn ops_answer_and_log_under_a_top_level_context() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);
    let request = |params: Value, context: Value| json!({"jsonrpc": "2.0", "id": 1, "method": "ops.trace", "params": params, "a2a_context": context});

    let (_, answer) = service
        .post(&request(
            json!({}),
            json!({"trace_id": "oncall-1", "source_agent": "oncall"}),
        ))
        .await;
    assert_eq!(
        answer["error"],
        json!({"code": -32602,
            "message": "invalid params: missing field `trace_id`; expected {\"trace_id\": \"…\"}",
            "data": {"kind": "invalid_params", "trace_id": "oncall-1", "retryable": false}})
    );
    let line = service.wait_for_log(|l| l.contains("call refused") && l.contains("oncall-1"));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (
            v["span"]["name"].as_str(),
            v["span"]["method"].as_str(),
            v["span"]["trace_id"].as_str(),
            v["span"]["source_agent"].as_str()
        ),
        (
            Some("ops.call"),
            Some("ops.trace"),
            Some("oncall-1"),
            Some("oncall")
        ),
        "{line}"
    );

    // The top-level context wins over one in params, which is then never checked.
    let (_, answer) = service
        .post(&request(
            json!({"trace_id": "nobody", "a2a_context": {"trace_id": "bad id"}}),
            json!({"trace_id": "oncall-2"}),
        ))
        .await;
    assert_eq!(answer["result"], json!([]), "{answer}");
}
