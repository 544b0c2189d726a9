//! Interop with the official `openai` Python SDK: the OpenAI-compatible surface driven by the
//! client agents actually use, against wiremock upstreams of the three providers. The SDK's side
//! of each case is tests/interop/openai_sdk.py (what the SDK parses and raises); this side sets
//! up the upstreams and checks what reached them. The SDK runs with `max_retries=0`, so each
//! call it makes is one request to the service.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::upstream::{ALL, ANTHROPIC_KEY, GEMINI_KEY, Mocked, Provider};
use common::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Runs the SDK script's `cases` against the service, failing with its output unless every one
/// passed.
fn run_sdk(service: &Service, cases: &[Value]) {
    // `make test` sets LLMRPC_TEST_PYTHON to the venv that has the pinned SDK.
    let python = std::env::var("LLMRPC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/openai_sdk.py");
    let output = Command::new("timeout")
        .arg("60")
        .arg(&python)
        .arg(script)
        .arg(service.url())
        .args(cases.iter().map(Value::to_string))
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!(
        "exit: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.code() != Some(3),
        "{python} lacks the openai package (tests/interop/requirements.txt): run the tests with \
         `make test`, or set LLMRPC_TEST_PYTHON to a Python that has it\n{report}"
    );
    assert!(output.status.success(), "the SDK failed a case\n{report}");
    print!("{stdout}");
    let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(passed, cases.len(), "not every case ran\n{report}");
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the upstream request asked for a stream, in the provider's own way.
fn streamed(req: &Request) -> bool {
    req.url.path().contains("stream")
        || String::from_utf8_lossy(&req.body).contains(r#""stream":true"#)
}

fn greeting(provider: Provider) -> String {
    format!("Hello from {}!", provider.name())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_completes_streams_and_calls_tools_on_every_provider() {
    let mut servers = Vec::new();
    for provider in ALL {
        let server = MockServer::start().await;
        // First: the tool loop's mocks answer only requests that offer its tool.
        provider.mount_tool_loop(&server).await;
        let name = format!("{}!", provider.name());
        provider
            .mount_stream(&server, &["Hello", " from ", &name])
            .await;
        provider
            .mount_complete(&server, &greeting(provider), provider.stop())
            .await;
        servers.push(server);
    }
    let openai_base = format!("{}/v1", servers[0].uri());
    let service = Service::start_with(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("OPENAI_BASE_URL", &openai_base),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("ANTHROPIC_BASE_URL", &servers[1].uri()),
        ("GEMINI_API_KEY", GEMINI_KEY),
        ("GEMINI_BASE_URL", &servers[2].uri()),
    ]);

    let mut cases = vec![json!({"case": "models", "present": [
        "openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash",
        "fast", "balanced", "premium"
    ]})];
    for provider in ALL {
        let model = provider.model();
        cases.extend([
            json!({"case": "complete", "model": model, "text": greeting(provider),
                   "usage": [9, 3, 12], "trace_id": "sdk-trace-1"}),
            json!({"case": "stream", "model": model, "text": greeting(provider),
                   "usage": [5, 3, 8], "trace_id": "sdk-trace-2"}),
            json!({"case": "tools", "model": model}),
            json!({"case": "tools_stream", "model": model}),
        ]);
    }
    // Refused by the service itself: nothing reaches an upstream.
    cases.extend([
        json!({"case": "error", "model": "llama-3", "expect": "NotFoundError",
               "status": 404, "code": "model_not_found", "param": "model"}),
        json!({"case": "error", "model": "llama-3", "stream": true, "expect": "NotFoundError",
               "status": 404, "code": "model_not_found", "param": "model"}),
        json!({"case": "error", "model": "gpt-4.1-mini", "params": {"temperature": 5},
               "expect": "BadRequestError", "status": 400, "code": "invalid_params",
               "param": "temperature"}),
        json!({"case": "error", "model": "gpt-4.1-mini", "params": {"n": 2},
               "expect": "BadRequestError", "status": 400, "code": "invalid_request",
               "param": "n"}),
    ]);
    run_sdk(&service, &cases);

    for (provider, server) in ALL.into_iter().zip(&servers) {
        let requests = received(server).await;
        // complete, stream, and two calls for each tool loop; none for the refusals.
        assert_eq!(
            requests.len(),
            6,
            "{provider:?}: one upstream request per SDK call"
        );
        for (trace_id, stream) in [("sdk-trace-1", false), ("sdk-trace-2", true)] {
            let carried: Vec<_> = requests
                .iter()
                .filter(|r| header(r, "x-request-id") == Some(trace_id))
                .collect();
            assert_eq!(carried.len(), 1, "{provider:?}: x-request-id {trace_id}");
            assert_eq!(streamed(carried[0]), stream, "{provider:?}: {trace_id}");
        }
    }
}

/// Answers the requests whose body contains `marker` (a case's prompt) with `answer`.
async fn mount_marked(server: &MockServer, marker: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(marker))
        .respond_with(answer)
        .mount(server)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_failures_are_the_sdks_exceptions_and_each_call_is_one_request() {
    let server = MockServer::start().await;
    let json_error = |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    let rate_limit = json!({"error": {"message": "Rate limit reached for gpt-4.1-mini on tokens per min (TPM)",
        "type": "tokens", "param": null, "code": "rate_limit_exceeded"}});
    let limited = json_error(429, rate_limit).insert_header("retry-after", "2");
    mount_marked(&server, "[429]", limited.clone()).await;
    mount_marked(&server, "[429 streamed]", limited).await;
    let server_error = json!({"error": {"message": "The server had an error", "type": "server_error",
        "param": null, "code": null}});
    mount_marked(&server, "[500]", json_error(500, server_error)).await;
    mount_marked(
        &server,
        "[503]",
        ResponseTemplate::new(503).set_body_string("Service Unavailable"),
    )
    .await;
    let bad_key = json!({"error": {"message": format!("Incorrect API key provided: {OPENAI_KEY}"),
        "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    mount_marked(&server, "[401]", json_error(401, bad_key)).await;
    let hanging = ResponseTemplate::new(200)
        .set_body_json(completion_body("too late"))
        .set_delay(Duration::from_secs(5));
    mount_marked(&server, "[hang]", hanging).await;
    let broken = ResponseTemplate::new(200)
        .insert_header("content-type", "text/event-stream")
        .set_body_string(Provider::Openai.broken_stream_body());
    mount_marked(&server, "[broken stream]", broken).await;

    // No retries of the service's either, so that each call is exactly one upstream request; a
    // deadline that ends the hanging call soon yet leaves the others room on a loaded machine; a
    // breaker that stays closed through the failures.
    let service = Service::start(
        &server,
        &[
            ("LLMRPC_MAX_RETRIES", "0"),
            ("LLMRPC_TIMEOUT_MS", "1000"),
            ("LLMRPC_BREAKER_THRESHOLD", "100"),
        ],
    );
    let model = "gpt-4.1-mini";
    let error = |prompt: &str, expect: &str, status: u16, code: &str| {
        json!({"case": "error", "model": model, "prompt": prompt, "expect": expect,
               "status": status, "code": code})
    };
    let mut rate_limited = error("[429]", "RateLimitError", 429, "rate_limit_exceeded");
    rate_limited["retry_after"] = json!("2");
    let mut rate_limited_streamed = error(
        "[429 streamed]",
        "RateLimitError",
        429,
        "rate_limit_exceeded",
    );
    rate_limited_streamed["stream"] = json!(true);
    let mut key_rejected = error("[401]", "InternalServerError", 502, "provider_auth");
    key_rejected["not_in_message"] = json!([OPENAI_KEY]);
    let cases = [
        rate_limited,
        rate_limited_streamed,
        error("[500]", "InternalServerError", 502, "provider_unavailable"),
        error("[503]", "InternalServerError", 502, "provider_unavailable"),
        key_rejected,
        error("[hang]", "InternalServerError", 504, "timeout"),
        json!({"case": "stream_error", "model": model, "prompt": "[broken stream]", "text": "par",
               "code": "provider_unavailable"}),
    ];
    run_sdk(&service, &cases);

    let requests = received(&server).await;
    for case in &cases {
        let marker = case["prompt"].as_str().unwrap();
        let quoted = serde_json::to_string(marker).unwrap();
        let sent = requests
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(&quoted))
            .count();
        assert_eq!(
            sent, 1,
            "{marker}: one failing SDK call, one upstream request"
        );
    }
    assert_eq!(requests.len(), cases.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_allow_list_is_permission_denied_and_lists_only_what_it_allows() {
    let server = MockServer::start().await;
    Provider::Openai
        .mount_complete(&server, "Hello!", "stop")
        .await;
    let service = Service::start(&server, &[("LLMRPC_ALLOWED_MODELS", "openai/gpt-4.1-mini")]);
    run_sdk(
        &service,
        &[
            json!({"case": "models", "exact": ["openai/gpt-4.1-mini"]}),
            json!({"case": "complete", "model": "gpt-4.1-mini", "text": "Hello!", "usage": [9, 3, 12]}),
            json!({"case": "error", "model": "gpt-4o", "expect": "PermissionDeniedError",
                   "status": 403, "code": "model_not_allowed", "param": "model"}),
        ],
    );
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1, "the refused call reached the upstream");
}
