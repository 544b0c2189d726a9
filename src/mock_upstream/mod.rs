//! A fast fake of the three providers' APIs, for benchmarks, demos and the staging pipeline.
//! Each request chooses how it misbehaves, through options appended to the model name
//! (`gpt-4o-mini_chunks-20_interval-5`) or `x-mock-<option>` headers; see
//! `proto-docs/mock-upstream.md`. A request that offers tools is answered with a tool call, or
//! after a tool's result with that result echoed, so that agents' tool loops run against it too.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::types::ProviderName;
use answer::{Answer, Call};

mod answer;
mod tools;

/// Bodies that can fail, so that a stream can be cut off mid-answer.
type Body = BoxBody<Bytes, std::io::Error>;

/// How one request is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Wait before the response starts.
    pub latency: Duration,
    /// Deltas in a streamed answer (words in a whole one).
    pub chunks: u32,
    /// Wait between two deltas.
    pub interval: Duration,
    /// Answer with this error status instead.
    pub status: Option<u16>,
    /// `Retry-After` seconds to send with an error.
    pub retry_after: Option<u32>,
    /// Fail this percentage of requests with 503.
    pub fail_percent: u32,
    /// Never answer.
    pub hang: bool,
    /// Cut the connection after this many deltas.
    pub drop_after: Option<u32>,
    /// Answer 200 with a body that is not the provider's format.
    pub garbage: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunks: 5,
            interval: Duration::ZERO,
            status: None,
            retry_after: None,
            fail_percent: 0,
            hang: false,
            drop_after: None,
            garbage: false,
        }
    }
}

impl Behaviour {
    /// Reads options from the model name (`name_key-value_flag`) and then `x-mock-*` headers,
    /// which win.
    pub fn parse(model: &str, headers: &HeaderMap) -> Self {
        let mut behaviour = Self::default();
        for option in model.split('_').skip(1) {
            let (key, value) = option.split_once('-').unwrap_or((option, ""));
            behaviour.set(key, value);
        }
        for (name, value) in headers {
            if let (Some(key), Ok(value)) = (name.as_str().strip_prefix("x-mock-"), value.to_str())
            {
                behaviour.set(key, value);
            }
        }
        behaviour
    }

    fn set(&mut self, key: &str, value: &str) {
        let number = value.parse::<u64>().ok();
        let millis = number.map(Duration::from_millis);
        match key {
            "latency" => self.latency = millis.unwrap_or_default(),
            "chunks" => self.chunks = number.map_or(self.chunks, |n| n.min(100_000) as u32),
            "interval" => self.interval = millis.unwrap_or_default(),
            "status" => self.status = number.map(|n| n as u16),
            "retryafter" => self.retry_after = number.map(|n| n as u32),
            "fail" => self.fail_percent = number.map_or(0, |n| n.min(100) as u32),
            "hang" => self.hang = true,
            "drop" => self.drop_after = number.map(|n| n as u32),
            "garbage" => self.garbage = true,
            _ => {}
        }
    }
}

#[derive(Deserialize, Default)]
struct RequestHead {
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: bool,
    /// Only whether it is there: the rest of the body is read for the tool scenario alone.
    #[serde(default)]
    tools: Option<IgnoredAny>,
}

struct Mock {
    requests: AtomicU64,
}

/// Serves until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let mock = Arc::new(Mock {
        requests: AtomicU64::new(0),
    });
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let mock = Arc::clone(&mock);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let mock = Arc::clone(&mock);
                async move { Ok::<_, Infallible>(mock.answer(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

impl Mock {
    async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let api = match (req.method(), path.as_str()) {
            (&Method::POST, "/v1/chat/completions") => ProviderName::Openai,
            (&Method::POST, "/v1/messages") => ProviderName::Anthropic,
            (&Method::POST, p) if p.starts_with("/v1beta/models/") => ProviderName::Gemini,
            (&Method::GET, "/health") => {
                return respond(StatusCode::OK, "application/json", r#"{"status":"ok"}"#);
            }
            _ => return respond(StatusCode::NOT_FOUND, "text/plain", "unknown path"),
        };
        let headers = req.headers().clone();
        let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
            return respond(StatusCode::BAD_REQUEST, "text/plain", "broken body");
        };
        let request: RequestHead = serde_json::from_slice(&body).unwrap_or_default();
        let (model, stream) = match api {
            ProviderName::Gemini => {
                let rest = path.trim_start_matches("/v1beta/models/");
                let (model, method) = rest.split_once(':').unwrap_or((rest, ""));
                (model.to_owned(), method == "streamGenerateContent")
            }
            _ => (request.model, request.stream),
        };
        let behaviour = Behaviour::parse(&model, &headers);
        let n = self.requests.fetch_add(1, Ordering::Relaxed);

        if behaviour.hang {
            std::future::pending::<()>().await;
        }
        if !behaviour.latency.is_zero() {
            tokio::time::sleep(behaviour.latency).await;
        }
        let failing = behaviour.fail_percent > 0 && (n % 100) < u64::from(behaviour.fail_percent);
        if let Some(status) = behaviour.status.or(failing.then_some(503)) {
            return error(api, status, behaviour.retry_after);
        }
        if behaviour.garbage {
            return respond(StatusCode::OK, "application/json", "<html>surprise</html>");
        }
        let prompt_tokens = (body.len() / 4).max(1) as u64;
        let answer = request
            .tools
            .and_then(|_| tools::answer(api, &body))
            .unwrap_or(Answer::Words(behaviour.chunks));
        if stream {
            streamed(api, &model, answer, behaviour, prompt_tokens)
        } else {
            whole(api, &model, answer, prompt_tokens)
        }
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn text_of(words: u32) -> String {
    (0..words).map(|i| format!("tok{i} ")).collect()
}

/// Words of a text, as it is streamed: each up to and including its space.
fn words(text: &str) -> std::str::SplitInclusive<'_, char> {
    text.split_inclusive(' ')
}

/// The provider's usage object.
fn usage(api: ProviderName, prompt: u64, completion: u64) -> Value {
    match api {
        ProviderName::Openai => {
            json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
        }
        ProviderName::Anthropic => json!({"input_tokens": prompt, "output_tokens": completion}),
        ProviderName::Gemini => {
            json!({"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion})
        }
    }
}

fn whole(api: ProviderName, model: &str, answer: Answer, prompt: u64) -> Response<Body> {
    let body = match answer {
        Answer::Words(n) => whole_text(api, model, &text_of(n), u64::from(n), prompt),
        Answer::Echo(text) => whole_text(api, model, &text, words(&text).count() as u64, prompt),
        Answer::Call(call) => whole_call(api, model, call, prompt),
    };
    respond(StatusCode::OK, "application/json", body.to_string())
}

fn whole_text(api: ProviderName, model: &str, text: &str, completion: u64, prompt: u64) -> Value {
    let usage = usage(api, prompt, completion);
    match api {
        ProviderName::Openai => json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage
        }),
        ProviderName::Anthropic => json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": usage
        }),
        ProviderName::Gemini => json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model, "responseId": "mock"
        }),
    }
}

fn whole_call(api: ProviderName, model: &str, call: Call, prompt: u64) -> Value {
    let usage = usage(api, prompt, call.tokens());
    match api {
        ProviderName::Openai => json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_mock", "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            ]}, "finish_reason": "tool_calls"}],
            "usage": usage
        }),
        ProviderName::Anthropic => json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "tool_use", "id": "toolu_mock", "name": call.name, "input": call.input}],
            "stop_reason": "tool_use", "stop_sequence": null, "usage": usage
        }),
        // Gemini gives calls no id and finishes them with STOP.
        ProviderName::Gemini => json!({
            "candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": call.name, "args": call.input}}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "modelVersion": model, "responseId": "mock"
        }),
    }
}

fn error(api: ProviderName, status: u16, retry_after: Option<u32>) -> Response<Body> {
    let body = match api {
        ProviderName::Openai => {
            json!({"error": {"message": format!("mock error {status}"), "type": "server_error", "param": null, "code": null}})
        }
        ProviderName::Anthropic => {
            let kind = match status {
                429 => "rate_limit_error",
                529 => "overloaded_error",
                400..=499 => "invalid_request_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": format!("mock error {status}")}})
        }
        ProviderName::Gemini => {
            let kind = match status {
                429 => "RESOURCE_EXHAUSTED",
                503 => "UNAVAILABLE",
                400..=499 => "INVALID_ARGUMENT",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": format!("mock error {status}"), "status": kind}})
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = respond(status, "application/json", body.to_string());
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    response
}

fn openai_chunk(model: &str, delta: Value, finish: Value) -> String {
    let chunk = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

/// OpenAI's closing events: the chunk with `usage` and `[DONE]`.
fn openai_end(model: &str, usage: Value) -> String {
    let chunk = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [], "usage": usage});
    format!("data: {chunk}\n\ndata: [DONE]\n\n")
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn anthropic_start(model: &str, prompt: u64) -> String {
    anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
        "content": [], "model": model, "stop_reason": null, "usage": {"input_tokens": prompt, "output_tokens": 1}}}),
    )
}

/// Anthropic's closing events, after the one content block.
fn anthropic_end(stop_reason: &str, completion: u64) -> [String; 3] {
    [
        anthropic_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        anthropic_event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": completion}}),
        ),
        anthropic_event("message_stop", json!({"type": "message_stop"})),
    ]
}

/// The SSE events of a streamed text, in the provider's own format.
fn text_events(
    api: ProviderName,
    model: &str,
    deltas: impl Iterator<Item = String>,
    completion: u64,
    prompt: u64,
) -> Vec<String> {
    match api {
        ProviderName::Openai => {
            let mut out = vec![openai_chunk(
                model,
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )];
            out.extend(deltas.map(|d| openai_chunk(model, json!({"content": d}), Value::Null)));
            out.push(openai_chunk(model, json!({}), json!("stop")));
            out.push(openai_end(model, usage(api, prompt, completion)));
            out
        }
        ProviderName::Anthropic => {
            let mut out = vec![
                anthropic_start(model, prompt),
                anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
            ];
            out.extend(deltas.map(|d| {
                anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}))
            }));
            out.extend(anthropic_end("end_turn", completion));
            out
        }
        ProviderName::Gemini => {
            let mut out: Vec<String> = deltas
                .map(|d| {
                    let chunk = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": d}]}, "index": 0}], "modelVersion": model});
                    format!("data: {chunk}\r\n\r\n")
                })
                .collect();
            let last = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage(api, prompt, completion), "modelVersion": model});
            out.push(format!("data: {last}\r\n\r\n"));
            out
        }
    }
}

/// The SSE events of a streamed tool call, in the provider's own format: OpenAI and Anthropic
/// open the call and then send its arguments in pieces, Gemini sends it whole in one chunk.
fn call_events(api: ProviderName, model: &str, call: Call, prompt: u64) -> Vec<String> {
    let completion = call.tokens();
    match api {
        ProviderName::Openai => {
            let opening = json!({"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": "call_mock", "type": "function", "function": {"name": call.name, "arguments": ""}}
            ]});
            let mut out = vec![openai_chunk(model, opening, Value::Null)];
            out.extend(call.pieces().map(|piece| {
                let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
                openai_chunk(model, delta, Value::Null)
            }));
            out.push(openai_chunk(model, json!({}), json!("tool_calls")));
            out.push(openai_end(model, usage(api, prompt, completion)));
            out
        }
        ProviderName::Anthropic => {
            let mut out = vec![
                anthropic_start(model, prompt),
                anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "tool_use", "id": "toolu_mock", "name": call.name, "input": {}}}),
                ),
            ];
            out.extend(call.pieces().map(|piece| {
                anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}))
            }));
            out.extend(anthropic_end("tool_use", completion));
            out
        }
        ProviderName::Gemini => {
            let chunk = json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": call.name, "args": call.input}}]},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage(api, prompt, completion), "modelVersion": model});
            vec![format!("data: {chunk}\r\n\r\n")]
        }
    }
}

fn streamed(
    api: ProviderName,
    model: &str,
    answer: Answer,
    behaviour: Behaviour,
    prompt: u64,
) -> Response<Body> {
    let mut events = match answer {
        Answer::Words(n) => text_events(
            api,
            model,
            (0..n).map(|i| format!("tok{i} ")),
            u64::from(n),
            prompt,
        ),
        Answer::Echo(text) => {
            let completion = words(&text).count() as u64;
            text_events(
                api,
                model,
                words(&text).map(str::to_owned),
                completion,
                prompt,
            )
        }
        Answer::Call(call) => call_events(api, model, call, prompt),
    };
    // Cut after the opening events and `drop_after` deltas: the body errors, so the connection
    // is closed without the end of the answer.
    let opening = match api {
        ProviderName::Openai => 1,
        ProviderName::Anthropic => 2,
        ProviderName::Gemini => 0,
    };
    let cut = behaviour.drop_after.map(|n| opening + n as usize);
    if let Some(cut) = cut {
        events.truncate(cut.min(events.len()));
    }
    let interval = behaviour.interval;
    let frames =
        futures::stream::iter(events.into_iter().enumerate()).then(move |(i, event)| async move {
            if i > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(event)))
        });
    let cut_off = cut.map(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "dropped by request",
        ))
    });
    let body = StreamBody::new(frames.chain(futures::stream::iter(cut_off)));
    let mut response = Response::new(BodyExt::boxed(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response
}
