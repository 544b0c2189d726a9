//! The A2A agent surface (contract §9) against a real `llmrpc serve`, over raw HTTP: the agent
//! card, `SendMessage` / `SendStreamingMessage` / `GetTask` / `CancelTask` in the 1.0 dialect and
//! their 0.3 names, A2A's error codes and `ErrorInfo` shape, the ledger's record of each task,
//! and keys and teams on `/a2a`. tests/it/a2a_sdk.rs drives the same surface with the official SDK.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::raw::{Behaviour, RawUpstream, Seen, sse_prefix};
use common::*;
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MODEL: &str = "gpt-4.1-mini";
/// What the upstream streams, and so the task's answer.
const PIECES: [&str; 3] = ["Hello", " from", " the agent!"];
const ANSWER: &str = "Hello from the agent!";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// How long anything asynchronous (a task, the ledger, an upstream) may take to show.
const PATIENCE: Duration = Duration::from_secs(10);
/// What the mock's stream costs in tokens, as the task's metadata shows it.
fn usage() -> Value {
    json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
}

fn a2a_url(service: &Service) -> String {
    format!("{}/a2a", service.url())
}

/// POSTs `body` to `/a2a` with `headers` (nothing else): the HTTP status and the answer.
async fn post_a2a(service: &Service, body: String, headers: &[(&str, &str)]) -> (u16, Value) {
    post_to(a2a_url(service), body, headers).await
}

/// One 1.0 request (`A2A-Version: 1.0`, id `"req-1"`, plus `headers`); the answer, which must
/// come with HTTP 200 as every A2A answer but the refusals of a key.
async fn rpc_with(
    service: &Service,
    method: &str,
    params: Value,
    headers: &[(&str, &str)],
) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": "req-1", "method": method, "params": params});
    let mut all = vec![("a2a-version", "1.0")];
    all.extend_from_slice(headers);
    let (status, answer) = post_a2a(service, body.to_string(), &all).await;
    assert_eq!(status, 200, "{method}: {answer}");
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["id"], "req-1", "{answer}");
    answer
}

async fn rpc(service: &Service, method: &str, params: Value) -> Value {
    rpc_with(service, method, params, &[]).await
}

/// A 1.0 user message of `text`, for `model` when given.
fn message(text: &str, model: Option<&str>) -> Value {
    let mut message = json!({"messageId": "msg-1", "role": "ROLE_USER", "parts": [{"text": text}]});
    if let Some(model) = model {
        message["metadata"] = json!({"model": model});
    }
    message
}

fn send(text: &str) -> Value {
    json!({"message": message(text, Some(MODEL))})
}

/// The result of a call that must have succeeded.
#[track_caller]
fn result(answer: &Value) -> &Value {
    assert!(answer["error"].is_null(), "{answer}");
    &answer["result"]
}

/// Asserts an A2A error: its code, and `data` as exactly one `google.rpc.ErrorInfo` of domain
/// llmrpc with `reason`; returns the ErrorInfo's metadata.
#[track_caller]
fn assert_a2a_error(answer: &Value, code: i64, reason: &str) -> Value {
    let error = &answer["error"];
    assert_eq!(error["code"], code, "{answer}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    let data = error["data"].as_array().expect("error.data is a list");
    assert_eq!(data.len(), 1, "{answer}");
    let info = &data[0];
    assert_eq!(
        info["@type"], "type.googleapis.com/google.rpc.ErrorInfo",
        "{answer}"
    );
    assert_eq!(info["reason"], reason, "{answer}");
    assert_eq!(info["domain"], "llmrpc", "{answer}");
    assert!(info["metadata"].is_object(), "{answer}");
    assert!(answer["result"].is_null(), "{answer}");
    info["metadata"].clone()
}

/// Asserts an RFC 3339 UTC time with milliseconds, as the service writes them.
#[track_caller]
fn assert_timestamp(value: &Value) {
    let ts = value
        .as_str()
        .unwrap_or_else(|| panic!("no timestamp: {value}"));
    let b = ts.as_bytes();
    assert!(
        ts.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && ts.ends_with('Z'),
        "not RFC 3339 with milliseconds: {ts}"
    );
}

#[track_caller]
fn assert_uuid(id: &Value) {
    let id = id.as_str().unwrap_or_else(|| panic!("not a string: {id}"));
    let groups: Vec<&str> = id.split('-').collect();
    assert_eq!(
        groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12],
        "{id}"
    );
    assert!(groups.iter().all(|g| is_hex(g, g.len())), "{id}");
}

/// A 1.0 task as the service shows it once completed with `ANSWER`.
fn completed_task(task: &Value, context_id: &str, trace_id: &str) -> Value {
    json!({
        "id": task["id"], "contextId": context_id,
        "status": {"state": "TASK_STATE_COMPLETED", "timestamp": task["status"]["timestamp"]},
        "artifacts": [{"artifactId": "answer", "name": "answer", "parts": [{"text": ANSWER}]}],
        "metadata": {"trace_id": trace_id, "model": MODEL, "provider": "openai", "usage": usage()},
    })
}

/// An upstream that streams `PIECES` to every streaming request (every A2A call streams).
async fn streaming_upstream() -> MockServer {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "not streamed", &PIECES).await;
    upstream
}

/// Polls `GetTask` until the task is in `state`, failing after `PATIENCE` with the last answer.
async fn task_becomes(service: &Service, id: &str, state: &str, headers: &[(&str, &str)]) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = rpc_with(service, "GetTask", json!({"id": id}), headers).await;
        let task = result(&answer);
        if task["status"]["state"] == state {
            return task.clone();
        }
        assert!(
            Instant::now() < deadline,
            "task {id} never became {state}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The calls the ledger holds under `trace_id`, read with `ops.trace` (with `key` if any).
async fn ledger_trace(service: &Service, trace_id: &str, key: Option<&str>) -> Vec<Value> {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ops.trace", "params": {"trace_id": trace_id}});
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, answer) = service.post_raw(body.to_string(), &headers).await;
    assert_eq!(status, 200, "{answer}");
    answer["result"]
        .as_array()
        .unwrap_or_else(|| panic!("ops.trace: {answer}"))
        .clone()
}

/// Reads `ops.trace` until `count` calls are there with a status each (their records are
/// written when they end, a little after the answer).
async fn ledger_has(service: &Service, trace_id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let calls = ledger_trace(service, trace_id, None).await;
        if calls.len() >= count {
            assert_eq!(calls.len(), count, "{calls:?}");
            return calls;
        }
        assert!(Instant::now() < deadline, "the ledger has {calls:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The JSON of the SSE events of an A2A stream, read as they arrive; comments (keep-alives)
/// skipped.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event, or `None` once the service closed the stream.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if event.starts_with(':') {
                    continue;
                }
                let data = event
                    .trim_end()
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data event: {event:?}"));
                return Some(serde_json::from_str(data).expect("event JSON"));
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("no event within the patience")
                .expect("the stream broke");
            match chunk {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => {
                    assert!(self.buffer.trim().is_empty(), "left: {:?}", self.buffer);
                    return None;
                }
            }
        }
    }

    /// The next event's result (asserting the request's id on it).
    async fn result(&mut self) -> Value {
        let event = self.next().await.expect("the stream ended early");
        assert_eq!(event["jsonrpc"], "2.0", "{event}");
        assert_eq!(event["id"], "req-s", "{event}");
        result(&event).clone()
    }
}

/// Opens a stream of `method` (`SendStreamingMessage` or `message/stream`) with `headers`.
async fn open_stream(
    service: &Service,
    method: &str,
    params: Value,
    headers: &[(&str, &str)],
) -> Events {
    let body = json!({"jsonrpc": "2.0", "id": "req-s", "method": method, "params": params});
    let mut request = http_client()
        .post(a2a_url(service))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST /a2a");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "{:?}",
        response.headers()
    );
    Events {
        response,
        buffer: String::new(),
    }
}

/// The first delta of an OpenAI stream, "par", after which a `RawUpstream` hangs.
fn first_delta() -> String {
    let chunk =
        json!({"choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]});
    format!("data: {chunk}\n\n")
}

fn raw_service(upstream: &RawUpstream, extra: &[(&str, &str)]) -> Service {
    let base = format!("{}/v1", upstream.url);
    let mut env = vec![
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("OPENAI_BASE_URL", base.as_str()),
    ];
    env.extend_from_slice(extra);
    Service::start_with(&env)
}

async fn get_card(service: &Service, host: Option<&str>) -> Value {
    let mut request = http_client().get(format!("{}/.well-known/agent-card.json", service.url()));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let response = request.send().await.expect("GET the card");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("card JSON")
}

/// The card without its prose: `description` (the card's and each skill's) checked, then
/// removed, so that the rest can be compared exactly.
fn without_prose(mut card: Value) -> Value {
    let description = card["description"].take();
    assert!(
        description
            .as_str()
            .is_some_and(|d| d.contains("message.metadata.model")),
        "{description}"
    );
    card.as_object_mut().unwrap().remove("description");
    for skill in card["skills"].as_array_mut().expect("skills") {
        let id = skill["id"].as_str().expect("skill id").to_owned();
        let description = skill.as_object_mut().unwrap().remove("description");
        let description = description.as_ref().and_then(Value::as_str).unwrap_or("");
        assert!(
            description.contains(&format!("`{id}`")) && description.contains("openai/"),
            "skill {id}: {description:?}"
        );
    }
    card
}

/// The card of a service without keys, prose aside, for the JSON-RPC URL `url`.
fn expected_card(url: &str) -> Value {
    let skill = |id: &str| json!({"id": id, "name": id, "tags": ["llm", "chat"]});
    json!({
        "name": "llmrpc",
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "url": url,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
        "capabilities": {"streaming": true, "pushNotifications": false},
        "defaultInputModes": ["text/plain", "application/json", "image/png", "image/jpeg",
                              "image/webp", "image/gif"],
        "defaultOutputModes": ["text/plain"],
        "skills": [skill("balanced"), skill("fast"), skill("premium")],
    })
}

#[tokio::test]
async fn the_card_has_the_tiers_as_skills_and_an_absolute_url_from_the_host() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[]);
    let card = get_card(&service, None).await;
    let url = format!("http://{}/a2a", service.addr);
    assert_eq!(without_prose(card), expected_card(&url));

    // Behind a proxy that keeps the Host, the card names the host its caller used.
    let card = get_card(&service, Some("agents.example:8443")).await;
    assert_eq!(
        without_prose(card),
        expected_card("http://agents.example:8443/a2a")
    );
    assert!(received(&upstream).await.is_empty());
}

#[tokio::test]
async fn the_card_uses_the_configured_public_url_whatever_the_host() {
    let upstream = MockServer::start().await;
    let service = Service::start(
        &upstream,
        &[("LLMRPC_PUBLIC_URL", "https://llm.example.com/gateway/")],
    );
    for host in [None, Some("internal:9000")] {
        let card = get_card(&service, host).await;
        assert_eq!(
            without_prose(card),
            expected_card("https://llm.example.com/gateway/a2a")
        );
    }
}

#[tokio::test]
async fn send_message_answers_the_completed_task_with_the_upstreams_text() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);

    // A caller's contextId and traceparent are the task's.
    let mut params = send("Say hello.");
    params["message"]["contextId"] = json!("ctx-given");
    let answer = rpc_with(
        &service,
        "SendMessage",
        params,
        &[("traceparent", TRACEPARENT)],
    )
    .await;
    let task = &result(&answer)["task"];
    assert_uuid(&task["id"]);
    assert_timestamp(&task["status"]["timestamp"]);
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": "req-1",
               "result": {"task": completed_task(task, "ctx-given", TRACE_ID)}})
    );

    // Without them, a new context (a UUID, not the task's id) and a new trace.
    let answer = rpc(&service, "SendMessage", send("Say hello.")).await;
    let task = &result(&answer)["task"];
    assert_uuid(&task["contextId"]);
    assert_ne!(task["contextId"], task["id"]);
    let trace_id = task["metadata"]["trace_id"].as_str().expect("trace_id");
    assert!(is_hex(trace_id, 32) && trace_id != TRACE_ID, "{trace_id}");
    let context_id = task["contextId"].as_str().unwrap();
    assert_eq!(task, &completed_task(task, context_id, trace_id));

    // One streamed upstream request each, the user's text as the message, the trace carried.
    let requests = received(&upstream).await;
    assert_eq!(requests.len(), 2);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], MODEL, "{body}");
    assert_eq!(body["stream"], true, "{body}");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}]),
        "{body}"
    );
    let traceparent = requests[0].headers["traceparent"].to_str().unwrap();
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "{traceparent}"
    );
}

#[tokio::test]
async fn the_model_is_the_messages_then_the_requests_then_the_default() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let with_default = Service::start(&upstream, &[("LLMRPC_DEFAULT_MODEL", "gpt-4o")]);
    let both = json!({"message": message("Hi.", Some("gpt-4.1-mini")), "metadata": {"model": "gpt-4o-mini"}});
    let request_only =
        json!({"message": message("Hi.", None), "metadata": {"model": "gpt-4o-mini"}});
    let neither = json!({"message": message("Hi.", None)});
    let cases = [
        (&service, both, "gpt-4.1-mini"),
        (&service, request_only, "gpt-4o-mini"),
        (&with_default, neither.clone(), "gpt-4o"),
        // No default configured: the tier "fast", which is OpenAI's gpt-5-mini here.
        (&service, neither, "gpt-5-mini"),
    ];
    for (i, (service, params, model)) in cases.into_iter().enumerate() {
        let answer = rpc(service, "SendMessage", params).await;
        let task = &result(&answer)["task"];
        assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{answer}");
        assert_eq!(task["metadata"]["model"], model, "{answer}");
        let requests = received(&upstream).await;
        let body: Value = serde_json::from_slice(&requests[i].body).unwrap();
        assert_eq!(body["model"], model, "case {i}");
    }
}

#[tokio::test]
async fn the_0_3_dialect_is_answered_in_its_own_shape() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let message = json!({"kind": "message", "messageId": "m-03", "role": "user",
        "contextId": "ctx-03", "parts": [{"kind": "text", "text": "Say hello."}],
        "metadata": {"model": MODEL}});
    // As a 0.3 client sends it: no A2A-Version header.
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "message/send",
                      "params": {"message": message}});
    let (status, answer) = post_a2a(&service, body.to_string(), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let task = result(&answer);
    assert_uuid(&task["id"]);
    assert_timestamp(&task["status"]["timestamp"]);
    let trace_id = task["metadata"]["trace_id"].clone();
    let expected = json!({
        "kind": "task", "id": task["id"], "contextId": "ctx-03",
        "status": {"state": "completed", "timestamp": task["status"]["timestamp"]},
        "artifacts": [{"artifactId": "answer", "name": "answer",
                       "parts": [{"kind": "text", "text": ANSWER}]}],
        "metadata": {"trace_id": trace_id, "model": MODEL, "provider": "openai", "usage": usage()},
    });
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 3, "result": expected})
    );

    // tasks/get answers in 0.3 too, with the 0.3 version header.
    let body =
        json!({"jsonrpc": "2.0", "id": 4, "method": "tasks/get", "params": {"id": task["id"]}});
    let (status, got) = post_a2a(&service, body.to_string(), &[("a2a-version", "0.3")]).await;
    assert_eq!(status, 200);
    assert_eq!(got, json!({"jsonrpc": "2.0", "id": 4, "result": expected}));

    // message/stream: a task, artifact updates, a final status update.
    let mut events = open_stream(
        &service,
        "message/stream",
        json!({"message": message}),
        &[("a2a-version", "0.3.0")],
    )
    .await;
    let first = events.result().await;
    assert_eq!(
        (&first["kind"], &first["status"]["state"]),
        (&json!("task"), &json!("working")),
        "{first}"
    );
    let id = first["id"].clone();
    let mut text = String::new();
    let last = loop {
        let event = events.result().await;
        if event["kind"] != "artifact-update" {
            break event;
        }
        assert_eq!(event["taskId"], id);
        assert_eq!(event["contextId"], "ctx-03");
        assert_eq!(event["append"], !text.is_empty(), "{event}");
        let parts = &event["artifact"]["parts"];
        assert_eq!(parts[0]["kind"], "text", "{event}");
        text += parts[0]["text"].as_str().unwrap();
    };
    assert_eq!(text, ANSWER);
    assert_eq!(last["kind"], "status-update", "{last}");
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(last["status"]["state"], "completed", "{last}");
    assert_eq!(last["taskId"], id);
    assert!(events.next().await.is_none(), "the stream goes on");
}

#[tokio::test]
async fn return_immediately_answers_a_working_task_that_get_task_later_finds_completed() {
    let upstream = MockServer::start().await;
    // Slow enough that the task is still at work when the answer leaves.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(&PIECES))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[]);
    let mut params = send("Say hello.");
    params["configuration"] = json!({"returnImmediately": true});
    let answer = rpc(&service, "SendMessage", params).await;
    let task = result(&answer)["task"].clone();
    assert_eq!(
        task,
        json!({"id": task["id"], "contextId": task["contextId"],
               "status": {"state": "TASK_STATE_WORKING", "timestamp": task["status"]["timestamp"]},
               "metadata": {"trace_id": task["metadata"]["trace_id"]}})
    );
    let id = task["id"].as_str().unwrap();
    let done = task_becomes(&service, id, "TASK_STATE_COMPLETED", &[]).await;
    let context_id = task["contextId"].as_str().unwrap();
    let trace_id = task["metadata"]["trace_id"].as_str().unwrap();
    assert_eq!(done, completed_task(&done, context_id, trace_id));

    // 0.3's way of asking: blocking false.
    let message = json!({"kind": "message", "messageId": "m", "role": "user",
        "parts": [{"kind": "text", "text": "Say hello."}], "metadata": {"model": MODEL}});
    let answer = rpc(
        &service,
        "message/send",
        json!({"message": message, "configuration": {"blocking": false}}),
    )
    .await;
    let task = result(&answer);
    assert_eq!(
        (&task["kind"], &task["status"]["state"]),
        (&json!("task"), &json!("working")),
        "{answer}"
    );
    let id = task["id"].as_str().unwrap();
    task_becomes(&service, id, "TASK_STATE_COMPLETED", &[]).await;
}

#[tokio::test]
async fn send_streaming_message_streams_the_task_its_pieces_in_order_and_its_end() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let mut params = send("Say hello.");
    params["message"]["contextId"] = json!("ctx-stream");
    let mut events = open_stream(
        &service,
        "SendStreamingMessage",
        params,
        &[("a2a-version", "1.0"), ("traceparent", TRACEPARENT)],
    )
    .await;

    let first = events.result().await;
    let task = &first["task"];
    assert_uuid(&task["id"]);
    assert_timestamp(&task["status"]["timestamp"]);
    assert_eq!(
        first,
        json!({"task": {"id": task["id"], "contextId": "ctx-stream",
            "status": {"state": "TASK_STATE_WORKING", "timestamp": task["status"]["timestamp"]},
            "metadata": {"trace_id": TRACE_ID}}})
    );
    let id = task["id"].clone();
    for (i, piece) in PIECES.iter().enumerate() {
        let update = events.result().await;
        assert_eq!(
            update,
            json!({"artifactUpdate": {"taskId": id, "contextId": "ctx-stream",
                "artifact": {"artifactId": "answer", "name": "answer", "parts": [{"text": piece}]},
                "append": i > 0, "lastChunk": false}}),
            "piece {i}"
        );
    }
    let last = events.result().await;
    let status = &last["statusUpdate"]["status"];
    assert_timestamp(&status["timestamp"]);
    assert_eq!(
        last,
        json!({"statusUpdate": {"taskId": id, "contextId": "ctx-stream",
            "status": {"state": "TASK_STATE_COMPLETED", "timestamp": status["timestamp"]},
            "metadata": {"trace_id": TRACE_ID, "model": MODEL, "provider": "openai", "usage": usage()}}})
    );
    assert!(events.next().await.is_none(), "the stream goes on");

    // The task keeps its whole answer for GetTask.
    let answer = rpc(&service, "GetTask", json!({"id": id})).await;
    let task = result(&answer);
    assert_eq!(task, &completed_task(task, "ctx-stream", TRACE_ID));
    assert_eq!(received(&upstream).await.len(), 1);
}

#[tokio::test]
async fn a_stream_reader_that_goes_away_leaves_the_task_running_to_its_end() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(&PIECES))
                .set_delay(Duration::from_millis(300)),
        )
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[]);
    let mut events = open_stream(
        &service,
        "SendStreamingMessage",
        send("Say hello."),
        &[("a2a-version", "1.0")],
    )
    .await;
    let first = events.result().await;
    let id = first["task"]["id"].as_str().unwrap().to_owned();
    drop(events);
    let task = task_becomes(&service, &id, "TASK_STATE_COMPLETED", &[]).await;
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], ANSWER);
}

#[tokio::test]
async fn unknown_and_finished_tasks_are_a2as_not_found_and_not_cancelable() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let traced = [("traceparent", TRACEPARENT)];
    for method in ["GetTask", "CancelTask"] {
        let answer = rpc_with(&service, method, json!({"id": "no-such-task"}), &traced).await;
        let metadata = assert_a2a_error(&answer, -32001, "TASK_NOT_FOUND");
        assert_eq!(metadata, json!({"trace_id": TRACE_ID}), "{answer}");
    }
    let answer = rpc(&service, "SendMessage", send("Say hello.")).await;
    let id = result(&answer)["task"]["id"].clone();
    let answer = rpc_with(&service, "CancelTask", json!({"id": id}), &traced).await;
    let metadata = assert_a2a_error(&answer, -32002, "TASK_NOT_CANCELABLE");
    assert_eq!(metadata, json!({"trace_id": TRACE_ID}), "{answer}");
    // Still there, still completed.
    let answer = rpc(&service, "GetTask", json!({"id": id})).await;
    assert_eq!(result(&answer)["status"]["state"], "TASK_STATE_COMPLETED");
    // 0.3's names answer alike.
    let answer = rpc(&service, "tasks/get", json!({"id": "no-such-task"})).await;
    assert_a2a_error(&answer, -32001, "TASK_NOT_FOUND");
    let answer = rpc(&service, "tasks/cancel", json!({"id": id})).await;
    assert_a2a_error(&answer, -32002, "TASK_NOT_CANCELABLE");
}

#[tokio::test]
async fn cancel_task_stops_a_running_stream_and_drops_its_upstream_request() {
    let mut upstream =
        RawUpstream::start(Behaviour::SendThenHang(sse_prefix(&first_delta()))).await;
    let service = raw_service(&upstream, &[]);
    let mut events = open_stream(
        &service,
        "SendStreamingMessage",
        send("Write a long story."),
        &[("a2a-version", "1.0"), ("traceparent", TRACEPARENT)],
    )
    .await;
    let first = events.result().await;
    let id = first["task"]["id"].clone();
    assert_eq!(upstream.next().await, Seen::Request);
    let piece = events.result().await;
    assert_eq!(
        piece["artifactUpdate"]["artifact"]["parts"][0]["text"],
        "par"
    );

    let answer = rpc(&service, "CancelTask", json!({"id": id})).await;
    let task = result(&answer);
    assert_eq!(task["id"], id);
    assert_eq!(task["status"]["state"], "TASK_STATE_CANCELED", "{answer}");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], "par", "{answer}");
    assert_eq!(upstream.next().await, Seen::Closed);

    // The stream ends with the cancellation.
    let last = events.result().await;
    assert_eq!(
        last["statusUpdate"]["status"]["state"], "TASK_STATE_CANCELED",
        "{last}"
    );
    assert!(events.next().await.is_none(), "the stream goes on");
    let answer = rpc(&service, "GetTask", json!({"id": id})).await;
    assert_eq!(result(&answer)["status"]["state"], "TASK_STATE_CANCELED");
    // Canceling again: it has ended.
    let answer = rpc(&service, "CancelTask", json!({"id": id})).await;
    assert_a2a_error(&answer, -32002, "TASK_NOT_CANCELABLE");

    let calls = ledger_has(&service, TRACE_ID, 1).await;
    assert_eq!(calls[0]["status"], "cancelled", "{:?}", calls[0]);
    assert_eq!(calls[0]["task_id"], id);
    assert_eq!(calls[0]["method"], "a2a.SendStreamingMessage");
}

#[tokio::test]
async fn cancel_task_stops_a_task_still_waiting_for_its_first_byte() {
    let mut upstream = RawUpstream::start(Behaviour::SendThenHang(String::new())).await;
    let service = raw_service(&upstream, &[]);
    let mut params = send("Think for a long time.");
    params["configuration"] = json!({"returnImmediately": true});
    let answer = rpc_with(
        &service,
        "SendMessage",
        params,
        &[("traceparent", TRACEPARENT)],
    )
    .await;
    let task = &result(&answer)["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_WORKING");
    assert_eq!(upstream.next().await, Seen::Request);
    let answer = rpc(&service, "CancelTask", json!({"id": task["id"]})).await;
    let canceled = result(&answer);
    assert_eq!(
        canceled["status"]["state"], "TASK_STATE_CANCELED",
        "{answer}"
    );
    assert!(canceled.get("artifacts").is_none(), "{answer}");
    assert_eq!(upstream.next().await, Seen::Closed);
    let calls = ledger_has(&service, TRACE_ID, 1).await;
    assert_eq!(calls[0]["status"], "cancelled", "{:?}", calls[0]);
    assert_eq!(calls[0]["task_id"], task["id"]);
}

#[tokio::test]
async fn the_ledger_has_each_task_under_the_callers_trace_and_context() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let traced = [("a2a-version", "1.0"), ("traceparent", TRACEPARENT)];
    let mut params = send("Say hello.");
    params["message"]["contextId"] = json!("conversation-7");
    let answer = rpc_with(&service, "SendMessage", params.clone(), &traced[1..]).await;
    let sent = result(&answer)["task"]["id"].clone();
    let mut events = open_stream(&service, "SendStreamingMessage", params, &traced).await;
    let streamed = events.result().await["task"]["id"].clone();
    while events.next().await.is_some() {}

    let calls = ledger_has(&service, TRACE_ID, 2).await;
    for (method, task_id) in [
        ("a2a.SendMessage", &sent),
        ("a2a.SendStreamingMessage", &streamed),
    ] {
        let call = calls
            .iter()
            .find(|c| c["method"] == method)
            .unwrap_or_else(|| panic!("no {method} in {calls:?}"));
        assert_eq!(call["trace_id"], TRACE_ID, "{call}");
        assert_eq!(call["conversation_id"], "conversation-7", "{call}");
        assert_eq!(&call["task_id"], task_id, "{call}");
        assert_eq!(call["status"], "ok", "{call}");
        assert_eq!(call["requested_model"], MODEL, "{call}");
        assert_eq!(call["provider"], "openai", "{call}");
        assert_eq!(call["usage"], usage(), "{call}");
    }
}

/// POSTs `body` to `/a2a` with the A2A-Version `version` (none if `None`) and a traceparent,
/// and asserts the A2A error it gets: HTTP 200, the request's `id`, `code` and `reason`, and
/// the trace named.
async fn assert_refused(
    service: &Service,
    body: String,
    version: Option<&str>,
    (code, reason): (i64, &str),
    id: Value,
) {
    let mut headers = vec![("traceparent", TRACEPARENT)];
    headers.extend(version.map(|v| ("a2a-version", v)));
    let (status, answer) = post_a2a(service, body.clone(), &headers).await;
    assert_eq!(status, 200, "{body}: {answer}");
    assert_eq!(answer["jsonrpc"], "2.0", "{body}: {answer}");
    assert_eq!(answer["id"], id, "{body}: {answer}");
    let metadata = assert_a2a_error(&answer, code, reason);
    assert_eq!(metadata, json!({"trace_id": TRACE_ID}), "{body}: {answer}");
}

#[tokio::test]
async fn requests_the_agent_does_not_serve_get_a2as_error_codes_with_http_200() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let request = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}).to_string()
    };
    const UNSUPPORTED: (i64, &str) = (-32004, "UNSUPPORTED_OPERATION");
    const NO_PUSH: (i64, &str) = (-32003, "PUSH_NOTIFICATION_NOT_SUPPORTED");
    const NO_EXTENDED_CARD: (i64, &str) = (-32007, "EXTENDED_AGENT_CARD_NOT_CONFIGURED");
    const NO_METHOD: (i64, &str) = (-32601, "METHOD_NOT_FOUND");
    const BAD_VERSION: (i64, &str) = (-32009, "VERSION_NOT_SUPPORTED");
    const BAD_REQUEST: (i64, &str) = (-32600, "INVALID_REQUEST");
    const BAD_PARAMS: (i64, &str) = (-32602, "INVALID_PARAMS");

    // Methods this agent does not serve, by their 1.0 and their 0.3 names.
    for (method, version, error) in [
        ("ListTasks", Some("1.0"), UNSUPPORTED),
        ("SubscribeToTask", Some("1.0"), UNSUPPORTED),
        ("tasks/resubscribe", None, UNSUPPORTED),
        ("CreateTaskPushNotificationConfig", Some("1.0"), NO_PUSH),
        ("ListTaskPushNotificationConfigs", Some("1.0"), NO_PUSH),
        ("tasks/pushNotificationConfig/set", None, NO_PUSH),
        ("GetExtendedAgentCard", Some("1.0"), NO_EXTENDED_CARD),
        ("agent/getAuthenticatedExtendedCard", None, NO_EXTENDED_CARD),
        ("DoSomething", Some("1.0"), NO_METHOD),
        ("llm.complete", Some("1.0"), NO_METHOD),
    ] {
        let body = request(method, json!({"id": "t"}));
        assert_refused(&service, body, version, error, json!(9)).await;
    }
    // Versions other than 1.0 and 0.3.
    for version in ["2.0", "0.2", "1.1"] {
        let body = request("SendMessage", send("Hi."));
        assert_refused(&service, body, Some(version), BAD_VERSION, json!(9)).await;
    }
    // Envelopes that are not one JSON-RPC request.
    let envelopes = [
        (
            "{\"jsonrpc\": \"2.0\", \"id\": 9, \"method\": ".to_owned(),
            (-32700, "PARSE_ERROR"),
        ),
        (
            json!([{"jsonrpc": "2.0", "id": 9, "method": "GetTask"}]).to_string(),
            BAD_REQUEST,
        ),
        ("\"GetTask\"".to_owned(), BAD_REQUEST),
    ];
    for (body, error) in envelopes {
        assert_refused(&service, body, Some("1.0"), error, Value::Null).await;
    }
    let no_jsonrpc = json!({"id": 9, "method": "GetTask", "params": {"id": "t"}}).to_string();
    assert_refused(&service, no_jsonrpc, Some("1.0"), BAD_REQUEST, json!(9)).await;
    // Params that do not make a message, or ask what a task here cannot do.
    let pdf = json!({"url": "https://example.com/a.pdf", "mediaType": "application/pdf"});
    let params = [
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER"}}),
            BAD_PARAMS,
        ),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "parts": []}}),
            BAD_PARAMS,
        ),
        (
            "SendMessage",
            json!({"message": {"parts": [{"nothing": 1}]}}),
            BAD_PARAMS,
        ),
        ("SendStreamingMessage", json!({}), BAD_PARAMS),
        ("GetTask", json!({}), BAD_PARAMS),
        ("CancelTask", json!({"id": 7}), BAD_PARAMS),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "parts": [pdf]}}),
            (-32005, "CONTENT_TYPE_NOT_SUPPORTED"),
        ),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "taskId": "t-1", "parts": [{"text": "And?"}]}}),
            UNSUPPORTED,
        ),
    ];
    for (method, params, error) in params {
        let body = request(method, params);
        assert_refused(&service, body, Some("1.0"), error, json!(9)).await;
    }
    // 1.0.x and 0.3.x versions, and none, are all served.
    for version in [Some("1.0.1"), Some("0.3.0"), None] {
        let body = request("GetTask", json!({"id": "t"}));
        let error = (-32001, "TASK_NOT_FOUND");
        assert_refused(&service, body, version, error, json!(9)).await;
    }
    assert!(received(&upstream).await.is_empty());
}

#[tokio::test]
async fn a_model_that_does_not_exist_fails_the_task_and_calls_no_upstream() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let params = json!({"message": message("Hi.", Some("llama-3"))});
    let answer = rpc_with(
        &service,
        "SendMessage",
        params.clone(),
        &[("traceparent", TRACEPARENT)],
    )
    .await;
    let task = &result(&answer)["task"];
    let status = &task["status"];
    assert_eq!(status["state"], "TASK_STATE_FAILED", "{answer}");
    assert_eq!(task["metadata"]["kind"], "model_not_found", "{answer}");
    assert_eq!(task["metadata"]["trace_id"], TRACE_ID, "{answer}");
    let reason = status["message"]["parts"][0]["text"].as_str().unwrap();
    assert!(reason.contains("llama-3"), "{answer}");
    assert_eq!(
        status["message"],
        json!({"messageId": format!("{}-status", task["id"].as_str().unwrap()),
               "role": "ROLE_AGENT", "parts": [{"text": reason}],
               "taskId": task["id"], "contextId": task["contextId"]})
    );
    assert!(task.get("artifacts").is_none(), "{answer}");
    let got = rpc(&service, "GetTask", json!({"id": task["id"]})).await;
    assert_eq!(result(&got), task);

    // Streamed: the task, then its failure.
    let mut events = open_stream(
        &service,
        "SendStreamingMessage",
        params,
        &[("a2a-version", "1.0")],
    )
    .await;
    assert_eq!(
        events.result().await["task"]["status"]["state"],
        "TASK_STATE_WORKING"
    );
    let last = events.result().await;
    let update = &last["statusUpdate"];
    assert_eq!(update["status"]["state"], "TASK_STATE_FAILED", "{last}");
    assert_eq!(update["metadata"]["kind"], "model_not_found", "{last}");
    assert!(events.next().await.is_none());
    assert!(received(&upstream).await.is_empty());
}

// Keys and teams: a service on a SQLite database whose first admin key was made with the CLI.

fn database_url(dir: &TempDir) -> String {
    format!("sqlite://{}/llmrpc.db", dir.path().display())
}

/// `llmrpc admin keys create --team ops --role admin` on the database in `dir`: the key.
fn first_admin_key(dir: &TempDir) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .args([
            "admin", "keys", "create", "--team", "ops", "--role", "admin",
        ])
        .env_clear()
        .env("LLMRPC_DATABASE_URL", database_url(dir))
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

/// A JSON-RPC admin call on `/` with the admin key: its result.
async fn admin(service: &Service, key: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let auth = format!("Bearer {key}");
    let (status, answer) = service
        .post_raw(body.to_string(), &[("authorization", &auth)])
        .await;
    assert_eq!(status, 200, "{method}: {answer}");
    result(&answer).clone()
}

#[tokio::test]
async fn with_keys_the_card_declares_bearer_auth_and_a2a_refuses_anonymous_callers() {
    let upstream = streaming_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let key = first_admin_key(&dir);
    let url = database_url(&dir);
    let service = Service::start(&upstream, &[("LLMRPC_DATABASE_URL", &url)]);

    // The card needs no key, and says how to present one.
    let card = get_card(&service, None).await;
    let mut expected = expected_card(&format!("http://{}/a2a", service.addr));
    expected["securitySchemes"] = json!({"bearer": {"httpAuthSecurityScheme": {
        "scheme": "Bearer", "bearerFormat": "llmrpc caller key",
        "description": "A caller key (llmrpc-…) made with llmrpc admin keys create"}}});
    expected["securityRequirements"] = json!([{"schemes": {"bearer": {"list": []}}}]);
    assert_eq!(without_prose(card), expected);

    let body = json!({"jsonrpc": "2.0", "id": "req-1", "method": "SendMessage",
                      "params": send("Say hello.")})
    .to_string();
    let unknown = "Bearer llmrpc-00000000000000000000000000000000deadbeef";
    for (auth, denial) in [(None, "missing_key"), (Some(unknown), "unknown_key")] {
        let mut headers = vec![("a2a-version", "1.0"), ("traceparent", TRACEPARENT)];
        headers.extend(auth.map(|a| ("authorization", a)));
        let (status, answer) = post_a2a(&service, body.clone(), &headers).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["id"], "req-1", "{answer}");
        let metadata = assert_a2a_error(&answer, -32000, "unauthorized");
        assert_eq!(
            metadata,
            json!({"trace_id": TRACE_ID, "reason": denial}),
            "{answer}"
        );
    }
    assert!(received(&upstream).await.is_empty());

    let auth = format!("Bearer {key}");
    let answer = rpc_with(
        &service,
        "SendMessage",
        send("Say hello."),
        &[("authorization", &auth)],
    )
    .await;
    let task = &result(&answer)["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{answer}");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], ANSWER);
}

#[tokio::test]
async fn a_caller_sees_and_cancels_only_its_own_teams_tasks() {
    let upstream = streaming_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let admin_key = first_admin_key(&dir);
    let url = database_url(&dir);
    let service = Service::start(&upstream, &[("LLMRPC_DATABASE_URL", &url)]);
    let mut keys = Vec::new();
    for team in ["a", "b"] {
        admin(
            &service,
            &admin_key,
            "admin.teams.create",
            json!({"name": team}),
        )
        .await;
        let made = admin(
            &service,
            &admin_key,
            "admin.keys.create",
            json!({"team_id": team, "role": "caller"}),
        )
        .await;
        keys.push(format!("Bearer {}", made["key"].as_str().unwrap()));
    }
    let (a, b) = (
        [("authorization", keys[0].as_str())],
        [("authorization", keys[1].as_str())],
    );
    let admin_auth = format!("Bearer {admin_key}");
    let admin_auth = [("authorization", admin_auth.as_str())];

    let answer = rpc_with(&service, "SendMessage", send("Say hello."), &a).await;
    let task = result(&answer)["task"].clone();
    let id = task["id"].clone();
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{answer}");
    // Another team's task reads as one that does not exist, for a look as for a cancel.
    for method in ["GetTask", "CancelTask"] {
        let answer = rpc_with(&service, method, json!({"id": id}), &b).await;
        assert_a2a_error(&answer, -32001, "TASK_NOT_FOUND");
    }
    for auth in [&a, &admin_auth] {
        let answer = rpc_with(&service, "GetTask", json!({"id": id}), auth).await;
        assert_eq!(result(&answer), &task);
    }

    // Another replica on the same database knows the task from the ledger: how it ended, not
    // what the model said; and the same team rule holds there.
    let replica = Service::start(&upstream, &[("LLMRPC_DATABASE_URL", &url)]);
    let answer = rpc_with(&replica, "GetTask", json!({"id": id}), &a).await;
    let recorded = result(&answer);
    assert_timestamp(&recorded["status"]["timestamp"]);
    assert_eq!(
        recorded,
        &json!({"id": id, "contextId": task["contextId"],
            "status": {"state": "TASK_STATE_COMPLETED", "timestamp": recorded["status"]["timestamp"]},
            "metadata": {"trace_id": task["metadata"]["trace_id"], "provider": "openai", "model": MODEL}})
    );
    for method in ["GetTask", "CancelTask"] {
        let answer = rpc_with(&replica, method, json!({"id": id}), &b).await;
        assert_a2a_error(&answer, -32001, "TASK_NOT_FOUND");
    }
    let answer = rpc_with(&replica, "CancelTask", json!({"id": id}), &a).await;
    assert_a2a_error(&answer, -32002, "TASK_NOT_CANCELABLE");
    assert_eq!(received(&upstream).await.len(), 1);
}

/// A contextId is the conversation's id, logged, spanned and kept in the ledger with every
/// call: it is bounded as `a2a_context.conversation_id` is on `llm.*` (a 1 MB one once added
/// 3 MB of log and a 1 MB ledger row), and refused before anything goes upstream.
#[tokio::test]
async fn a_context_id_over_256_characters_is_refused() {
    let upstream = streaming_upstream().await;
    let service = Service::start(&upstream, &[]);
    let mut params = send("Say hello.");
    params["message"]["contextId"] = json!("c".repeat(1_000_000));
    let answer = rpc(&service, "SendMessage", params).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        "message.contextId must be at most 256 characters"
    );
    assert_eq!(received(&upstream).await.len(), 0);
}
