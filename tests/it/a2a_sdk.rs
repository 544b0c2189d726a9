//! Interop with the official `a2a-sdk` Python client: the A2A agent surface driven as any A2A
//! client drives an agent, from its base URL alone. The SDK's side of each case is
//! tests/interop/a2a_sdk.py (what the SDK resolves, parses and raises); this side sets up the
//! upstreams and checks what reached them and what the ledger recorded.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::raw::{Behaviour, RawUpstream, Seen, sse_prefix};
use common::*;
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const MODEL: &str = "gpt-4.1-mini";
const TIERS: [&str; 3] = ["balanced", "fast", "premium"];
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// What the upstream streams for every prompt but `[stream]`'s.
const ANSWER: [&str; 3] = ["Hello", " from", " llmrpc!"];
const STREAMED: [&str; 4] = ["One", ", two", ", three", ", four."];

/// Runs the SDK script's `cases` against the service, failing with its output unless every one
/// passed; its stdout.
fn run_sdk(service: &Service, cases: &[Value]) -> String {
    // `make test` sets LLMRPC_TEST_PYTHON to the venv that has the pinned SDK.
    let python = std::env::var("LLMRPC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/a2a_sdk.py");
    let output = Command::new("timeout")
        .arg("60")
        .arg(&python)
        .arg(script)
        .arg(service.url())
        .args(cases.iter().map(Value::to_string))
        .output()
        .expect("run the SDK script");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = format!(
        "exit: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.code() != Some(3),
        "{python} lacks the a2a-sdk package (tests/interop/requirements.txt): run the tests with \
         `make test`, or set LLMRPC_TEST_PYTHON to a Python that has it\n{report}"
    );
    assert!(output.status.success(), "the SDK failed a case\n{report}");
    print!("{stdout}");
    let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(passed, cases.len(), "not every case ran\n{report}");
    stdout
}

/// The task id the script's line for `label` names (`task=<id>`).
fn task_of(stdout: &str, label: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("ok   {label}:")))
        .unwrap_or_else(|| panic!("no line for {label} in:\n{stdout}"));
    let id = line.split("task=").nth(1).expect("task=");
    id.split_whitespace().next().unwrap().to_owned()
}

/// Streams `pieces` to the streaming requests whose body contains `marker` (a case's prompt).
async fn mount_marked(server: &MockServer, marker: &str, pieces: &[&str], priority: u8) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains(marker))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(pieces)),
        )
        .with_priority(priority)
        .mount(server)
        .await;
}

/// An upstream answering `[stream]` with `STREAMED`, anything else with `ANSWER`.
async fn upstream() -> MockServer {
    let server = MockServer::start().await;
    mount_marked(&server, "[stream]", &STREAMED, 1).await;
    mount_marked(&server, "", &ANSWER, 2).await;
    server
}

/// The upstream requests whose body holds `marker`.
fn marked<'a>(requests: &'a [Request], marker: &str) -> Vec<&'a Request> {
    let quoted = serde_json::to_string(marker).unwrap();
    requests
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(&quoted))
        .collect()
}

/// `ops.trace` for `trace_id` (with `key` if any), once it holds `count` calls.
async fn trace(service: &Service, trace_id: &str, key: Option<&str>, count: usize) -> Vec<Value> {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ops.trace", "params": {"trace_id": trace_id}});
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, answer) = service.post_raw(body.to_string(), &headers).await;
        assert_eq!(status, 200, "{answer}");
        let calls = answer["result"].as_array().expect("calls").clone();
        if calls.len() >= count {
            assert_eq!(calls.len(), count, "{answer}");
            return calls;
        }
        assert!(Instant::now() < deadline, "ops.trace: {answer}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn card_case(service: &Service, security_schemes: &[&str]) -> Value {
    json!({"case": "card", "url": format!("{}/a2a", service.url()), "skills": TIERS,
           "security_schemes": security_schemes})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_resolves_the_card_sends_streams_and_gets_tasks() {
    let server = upstream().await;
    let service = Service::start(&server, &[]);
    let answer = ANSWER.concat();
    let cases = [
        card_case(&service, &[]),
        json!({"case": "send", "model": MODEL, "prompt": "[send]", "text": answer}),
        json!({"case": "stream", "model": MODEL, "prompt": "[stream]", "pieces": STREAMED}),
        json!({"case": "get", "model": MODEL, "prompt": "[get]", "text": answer}),
        // The SDK's caller names the trace and the conversation.
        json!({"case": "send", "model": MODEL, "prompt": "[traced]", "text": answer,
               "traceparent": TRACEPARENT, "context_id": "sdk-conversation-1"}),
        json!({"case": "unsupported"}),
        json!({"case": "version", "model": MODEL, "prompt": "[version]", "version": "2.0"}),
    ];
    let stdout = run_sdk(&service, &cases);

    // One streamed upstream request per message the service took, none for the refusal.
    let requests = received(&server).await;
    assert_eq!(requests.len(), 4);
    for marker in ["[send]", "[stream]", "[get]", "[traced]"] {
        let sent = marked(&requests, marker);
        assert_eq!(sent.len(), 1, "{marker}");
        let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(
            (&body["model"], &body["stream"]),
            (&json!(MODEL), &json!(true))
        );
    }
    assert!(marked(&requests, "[version]").is_empty());

    // The traceparent is the call's trace, upstream and in the ledger, with the SDK's contextId
    // as the conversation and the task as the SDK saw it.
    let traced = marked(&requests, "[traced]")[0];
    let upstream_tp = traced.headers["traceparent"].to_str().unwrap();
    assert!(
        upstream_tp.starts_with(&format!("00-{TRACE_ID}-")),
        "{upstream_tp}"
    );
    let calls = trace(&service, TRACE_ID, None, 1).await;
    let call = &calls[0];
    assert_eq!(call["method"], "a2a.SendMessage", "{call}");
    assert_eq!(call["conversation_id"], "sdk-conversation-1", "{call}");
    assert_eq!(call["task_id"], task_of(&stdout, "send [traced]"), "{call}");
    assert_eq!(call["status"], "ok", "{call}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_cancels_a_streaming_task_and_the_upstream_request_is_dropped() {
    let first = json!({"choices": [{"index": 0, "delta": {"content": "Once upon"}, "finish_reason": null}]});
    let mut upstream = RawUpstream::start(Behaviour::SendThenHang(sse_prefix(&format!(
        "data: {first}\n\n"
    ))))
    .await;
    let base = format!("{}/v1", upstream.url);
    let service =
        Service::start_with(&[("OPENAI_API_KEY", OPENAI_KEY), ("OPENAI_BASE_URL", &base)]);
    let case = json!({"case": "cancel", "model": MODEL, "prompt": "[cancel]",
                      "text": "Once upon", "traceparent": TRACEPARENT});
    let stdout = run_sdk(&service, &[case]);
    assert_eq!(upstream.next().await, Seen::Request);
    assert_eq!(upstream.next().await, Seen::Closed);
    let calls = trace(&service, TRACE_ID, None, 1).await;
    let call = &calls[0];
    assert_eq!(call["status"], "cancelled", "{call}");
    assert_eq!(call["method"], "a2a.SendStreamingMessage", "{call}");
    assert_eq!(
        call["task_id"],
        task_of(&stdout, "cancel [cancel]"),
        "{call}"
    );
}

fn first_admin_key(dir: &TempDir, url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .args([
            "admin", "keys", "create", "--team", "ops", "--role", "admin",
        ])
        .env_clear()
        .env("LLMRPC_DATABASE_URL", url)
        .current_dir(dir.path())
        .output()
        .expect("run llmrpc admin");
    assert!(
        out.status.success(),
        "llmrpc admin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_keys_the_sdk_needs_one_to_send_but_not_to_read_the_card() {
    let server = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/llmrpc.db", dir.path().display());
    let key = first_admin_key(&dir, &url);
    let service = Service::start(&server, &[("LLMRPC_DATABASE_URL", &url)]);
    let answer = ANSWER.concat();
    let unknown = "llmrpc-00000000000000000000000000000000deadbeef";
    let mut keyed_card = card_case(&service, &["bearer"]);
    keyed_card["key"] = json!(key);
    let cases = [
        card_case(&service, &["bearer"]),
        keyed_card,
        json!({"case": "send", "model": MODEL, "prompt": "[keyed]", "text": answer, "key": key,
               "traceparent": TRACEPARENT}),
        json!({"case": "refused", "model": MODEL, "prompt": "[anonymous]"}),
        json!({"case": "refused", "model": MODEL, "prompt": "[unknown key]", "key": unknown}),
    ];
    let stdout = run_sdk(&service, &cases);
    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(marked(&requests, "[keyed]").len(), 1);
    let calls = trace(&service, TRACE_ID, Some(&key), 1).await;
    assert_eq!(calls[0]["task_id"], task_of(&stdout, "send [keyed]"));
    assert_eq!(calls[0]["key_prefix"], &key[..15]);
}
