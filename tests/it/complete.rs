//! `llm.complete` end to end: a real server, a real JSON-RPC client, a wiremock upstream.

use crate::common;

use common::*;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use serde_json::{Value, json};
use wiremock::MockServer;

#[tokio::test]
async fn trace_id_comes_from_the_context_the_header_or_is_generated() {
    let upstream = MockServer::start().await;
    mount_echo(&upstream).await;
    let service = Service::start(&upstream, &[]);
    let request = |extra: Value| {
        let mut r = json!({"jsonrpc": "2.0", "id": 7, "method": "llm.complete", "params": params("gpt-4.1-mini")});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    };
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Top level, beside params (the A2A convention), wins over params and over the header.
    let mut both =
        request(json!({"a2a_context": {"trace_id": "top-level", "source_agent": "planner"}}));
    both["params"]["a2a_context"] = json!({"trace_id": "in-params"});
    let (_, answer) = service
        .post_raw(both.to_string(), &[("traceparent", traceparent)])
        .await;
    assert_eq!(answer["result"]["trace_id"], "top-level");
    assert_eq!(answer["result"]["content"], "echo:top-level");
    assert_eq!(answer["result"]["a2a_context"]["source_agent"], "planner");

    // From a valid traceparent header: the upstream request continues that W3C trace.
    let (_, answer) = service
        .post_raw(
            request(json!({})).to_string(),
            &[("traceparent", traceparent)],
        )
        .await;
    assert_eq!(
        answer["result"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let last = received(&upstream).await.pop().unwrap();
    let sent = last
        .headers
        .get("traceparent")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{sent}"
    );

    // An invalid header is ignored and an id generated.
    for headers in [vec![("traceparent", "00-XYZ-00f067aa0ba902b7-01")], vec![]] {
        let (_, answer) = service
            .post_raw(request(json!({})).to_string(), &headers)
            .await;
        let id = answer["result"]["trace_id"].as_str().unwrap().to_owned();
        assert!(is_hex(&id, 32), "{id}");
        assert_eq!(answer["result"]["content"], format!("echo:{id}"));
    }

    // In a batch, each element keeps its own context.
    let batch = json!([
        request(json!({"a2a_context": {"trace_id": "batch-a"}})),
        {"jsonrpc": "2.0", "id": 8, "method": "llm.complete", "params": params("gpt-4.1-mini"), "a2a_context": {"trace_id": "batch-b"}},
    ]);
    let (_, answers) = service.post(&batch).await;
    let mut ids: Vec<(i64, String)> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_i64().unwrap(),
                a["result"]["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            (7, "echo:batch-a".to_owned()),
            (8, "echo:batch-b".to_owned())
        ]
    );
}

#[tokio::test]
async fn every_log_line_of_a_call_carries_its_trace_id_and_no_key() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "hi", &[]).await;
    let service = Service::start(&upstream, &[]);
    let mut p = params("gpt-4.1-mini");
    p["a2a_context"] = json!({"trace_id": "log-trace-1", "source_agent": "auditor"});
    let answer = service.call("llm.complete", p).await;
    assert_eq!(answer["result"]["trace_id"], "log-trace-1");
    service.wait_for_log(|l| l.contains("call finished") && l.contains("log-trace-1"));

    let call_lines: Vec<String> = service
        .logs()
        .into_iter()
        .filter(|l| l.contains("\"span\""))
        .collect();
    assert!(
        call_lines.len() >= 3,
        "expected request, response and finish lines: {call_lines:?}"
    );
    for line in &call_lines {
        // The call's span is the outermost; an attempt's may be nested inside it.
        let v: Value = serde_json::from_str(line).unwrap();
        let call = &v["spans"][0];
        assert_eq!(call["name"], "llm.call", "{line}");
        assert_eq!(call["trace_id"], "log-trace-1", "{line}");
        assert_eq!(call["source_agent"], "auditor", "{line}");
    }
    assert!(service.logs().iter().all(|l| !l.contains(OPENAI_KEY)));
}

#[tokio::test]
async fn a_hundred_concurrent_calls_each_get_their_own_answer() {
    let upstream = MockServer::start().await;
    mount_echo(&upstream).await;
    let service = Service::start(&upstream, &[]);
    let calls = (0..100).map(|i| {
        let service = &service;
        async move {
            let mut p = params("gpt-4.1-mini");
            p["a2a_context"] = json!({"trace_id": format!("concurrent-{i}")});
            (i, service.call("llm.complete", p).await)
        }
    });
    let answers = futures::future::join_all(calls).await;
    for (i, answer) in answers {
        assert_eq!(
            answer["result"]["trace_id"],
            format!("concurrent-{i}"),
            "{answer}"
        );
        assert_eq!(
            answer["result"]["content"],
            format!("echo:concurrent-{i}"),
            "{answer}"
        );
    }
    assert_eq!(received(&upstream).await.len(), 100);
}

#[tokio::test]
async fn plain_http_endpoints_report_health_readiness_and_metrics() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "hi", &["h", "i"]).await;
    let service = Service::start(&upstream, &[]);
    service.call("llm.complete", params("gpt-4.1-mini")).await;
    service.call("llm.complete", params("no-such-model")).await;
    let stream = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.stream", "params": params("gpt-4.1-mini")});
    let response = http_client()
        .post(service.url())
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(stream.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(sse_events(response).await.len(), 3);

    let get = |p: &str| http_client().get(format!("{}{p}", service.url())).send();
    let health = get("/health").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    let ready: Value = get("/ready").await.unwrap().json().await.unwrap();
    assert_eq!(ready["providers"]["openai"]["configured"], true);
    assert_eq!(ready["providers"]["anthropic"]["configured"], false);

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for line in [
        r#"llm_requests_total{provider="openai",model="gpt-4.1-mini",status="ok"} 2"#,
        r#"llm_requests_total{provider="none",model="none",status="model_not_found"} 1"#,
        r#"llm_tokens_total{provider="openai",model="gpt-4.1-mini",token_type="output"} 6"#,
        r#"llm_errors_total{provider="none",model="none",error_type="model_not_found"} 1"#,
        r#"llm_request_duration_seconds_count{provider="openai",model="gpt-4.1-mini"} 2"#,
        r#"llm_time_to_first_token_seconds_count{provider="openai",model="gpt-4.1-mini"} 1"#,
        r#"llm_active_requests{provider="openai"} 0"#,
        r#"llm_retries_total{provider="openai"} 0"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    let snapshot = service.call("llm.metrics", json!({})).await["result"].clone();
    assert_eq!(snapshot["total_requests"], 3);
    assert_eq!(snapshot["total_tokens"], 20);
    assert_eq!(
        snapshot["by_provider"]["openai"],
        json!({"requests": 2, "tokens": 20, "errors": 0})
    );
    assert_eq!(snapshot["in_flight"], 0);

    assert_eq!(get("/nope").await.unwrap().status(), 404);
}

#[tokio::test]
async fn models_lists_the_catalog_with_configuration_and_governance() {
    let upstream = MockServer::start().await;
    let service = Service::start(
        &upstream,
        &[("LLMRPC_ALLOWED_MODELS", "openai/gpt-4.1-mini,fast")],
    );
    let result = service.call("llm.models", json!(null)).await["result"].clone();
    let models = result["models"].as_array().unwrap();
    assert_eq!(result["count"], models.len());
    let find = |id: &str| {
        models
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))
            .clone()
    };
    let mini = find("openai/gpt-4.1-mini");
    assert_eq!(mini["configured"], true);
    assert_eq!(mini["allowed"], true);
    assert_eq!(mini["supports_streaming"], true);
    assert_eq!(mini["context_window"], 1_047_576);
    assert_eq!(find("openai/gpt-4o")["allowed"], false);
    // Allowed through the tier `fast`, which lists it.
    assert_eq!(find("openai/gpt-5-mini")["allowed"], true);
    assert_eq!(find("openai/gpt-5-mini")["aliases"], json!(["fast"]));
    assert_eq!(
        result["allowed_models"],
        json!(["openai/gpt-4.1-mini", "fast"])
    );
}

#[tokio::test]
async fn rpc_discover_serves_the_published_openrpc_document() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);
    let client = HttpClientBuilder::default().build(service.url()).unwrap();
    let served: Value = client.request("rpc.discover", rpc_params![]).await.unwrap();
    let published: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proto-docs/openrpc.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, published);
    assert!(served["openrpc"].as_str().unwrap().starts_with("1."));
}
