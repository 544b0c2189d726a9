//! OpenTelemetry export: a span per call and a child per upstream attempt, continuing the
//! caller's trace into the provider's request, received by an in-process OTLP/HTTP endpoint.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Every span the collector has received so far.
async fn exported(collector: &MockServer) -> Vec<Value> {
    let mut spans = Vec::new();
    for request in received(collector).await {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            continue;
        };
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                spans.extend(scope["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    spans
}

fn attribute(span: &Value, key: &str) -> Value {
    let value = span["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == key)
        .map(|a| a["value"].clone());
    match value {
        Some(v) => v
            .get("stringValue")
            .or(v.get("intValue"))
            .or(v.get("boolValue"))
            .cloned()
            .unwrap_or(Value::Null),
        None => Value::Null,
    }
}

#[tokio::test]
async fn spans_continue_the_callers_trace_through_each_attempt_to_the_provider() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&upstream)
        .await;
    mount_openai(&upstream, "traced", &[]).await;
    let service = Service::start(
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.uri()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let (caller_trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let mut p = params("gpt-4.1-mini");
    p["a2a_context"] = json!({"source_agent": "planner", "session_id": "s-9"});
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete", "params": p});
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let (_, answer) = service
        .post_raw(request.to_string(), &[("traceparent", &traceparent)])
        .await;
    assert_eq!(answer["result"]["trace_id"], caller_trace, "{answer}");
    let call_span_id = answer["result"]["a2a_context"]["span_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let deadline = Instant::now() + Duration::from_secs(15);
    let spans = loop {
        let spans = exported(&collector).await;
        let attempts = spans.iter().filter(|s| s["name"] == "llm.attempt").count();
        if spans.iter().any(|s| s["name"] == "llm.call") && attempts == 2 {
            break spans;
        }
        assert!(Instant::now() < deadline, "spans never arrived: {spans:#?}");
        tokio::task::yield_now().await;
    };
    let call = spans.iter().find(|s| s["name"] == "llm.call").unwrap();
    assert_eq!(
        call["traceId"], caller_trace,
        "the caller's trace continues"
    );
    assert_eq!(call["parentSpanId"], caller_span, "under the caller's span");
    assert_eq!(
        call["spanId"],
        call_span_id.as_str(),
        "the answer names the exported span"
    );
    for (key, expected) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.system", json!("openai")),
        ("gen_ai.request.model", json!("gpt-4.1-mini")),
        ("gen_ai.response.finish_reasons", json!("stop")),
        ("a2a.trace_id", json!(caller_trace)),
        ("a2a.source_agent", json!("planner")),
        ("a2a.session_id", json!("s-9")),
    ] {
        assert_eq!(attribute(call, key), expected, "{key}: {call:#}");
    }
    assert_eq!(
        attribute(call, "gen_ai.usage.input_tokens")
            .to_string()
            .trim_matches('"'),
        "9"
    );

    let attempts: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "llm.attempt")
        .collect();
    let mut numbers: Vec<String> = attempts
        .iter()
        .map(|a| {
            attribute(a, "attempt")
                .to_string()
                .trim_matches('"')
                .to_owned()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, ["1", "2"]);
    let failed = attempts
        .iter()
        .find(|a| attribute(a, "error.type") == "provider_unavailable")
        .expect("the 503 attempt");
    assert_eq!(
        attribute(failed, "http.response.status_code")
            .to_string()
            .trim_matches('"'),
        "503"
    );
    let sent: Vec<String> = received(&upstream)
        .await
        .iter()
        .map(|r| r.headers["traceparent"].to_str().unwrap().to_owned())
        .collect();
    for attempt in &attempts {
        assert_eq!(attempt["traceId"], caller_trace);
        assert_eq!(
            attempt["parentSpanId"],
            call_span_id.as_str(),
            "attempts are children of the call"
        );
        let span_id = attempt["spanId"].as_str().unwrap();
        let expected = format!("00-{caller_trace}-{span_id}-01");
        assert!(
            sent.contains(&expected),
            "no upstream request carried {expected}: {sent:?}"
        );
    }
}
