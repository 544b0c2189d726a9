//! The three providers' wire formats as wiremock answers, so that one suite can run every
//! scenario against each provider.

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path, path_regex};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

use super::{OPENAI_KEY, Service};

pub const ANTHROPIC_KEY: &str = "test-anthropic-key-0123456789abcdef";
pub const GEMINI_KEY: &str = "AIza-test-0123456789abcdefghij";

/// The crate's one enum of the providers, under the name the suite reads best.
pub use llmrpc::ProviderName as Provider;

pub const ALL: [Provider; 3] = Provider::ALL;

fn fixture(provider: &str, name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/{provider}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

/// Each provider as the tests' wiremock upstream plays it: its wire formats, the model and key
/// the suite uses, and the mounts of every scenario.
#[allow(async_fn_in_trait)]
pub trait Mocked: Copy {
    fn name(self) -> &'static str;

    /// The model the suite calls, as the caller names it and as the provider receives it.
    fn model(self) -> &'static str;

    fn key(self) -> &'static str;

    /// A service whose only configured provider is this one, pointed at `server`.
    fn start(self, server: &MockServer, extra: &[(&str, &str)]) -> Service;

    fn endpoint(self, stream: bool) -> MockBuilder;

    fn streaming_endpoint(self) -> MockBuilder;

    /// A whole answer of `content` finishing with the provider's own `finish` value; usage is
    /// 9 prompt + 3 completion tokens.
    fn completion_json(self, content: &str, finish: &str) -> Value;

    /// Answers every non-streaming call with `content`, finishing with `finish`.
    async fn mount_complete(self, server: &MockServer, content: &str, finish: &str);

    /// Answers `times` non-streaming requests with the error, then falls through to whatever
    /// else is mounted.
    async fn mount_error_times(self, server: &MockServer, status: u16, body: Value, times: u64);

    /// Answers every call with its own `x-request-id`: as the content of a whole answer, and as
    /// the one delta of a stream.
    async fn mount_echo(self, server: &MockServer);

    /// The provider's natural "stop" finish value.
    fn stop(self) -> &'static str;

    /// Native finish values and what callers must see for each.
    fn finish_cases(self) -> Vec<(&'static str, &'static str)>;

    /// Streams `pieces`, then the finish and usage (5 prompt + 3 completion tokens).
    async fn mount_stream(self, server: &MockServer, pieces: &[&str]);

    fn stream_body(self, pieces: &[&str]) -> String;

    /// A stream that sends one delta and then the provider's own mid-stream error.
    fn broken_stream_body(self) -> String;

    async fn mount_raw_stream(self, server: &MockServer, body: String);

    async fn mount_error(self, server: &MockServer, status: u16, body: Value);

    /// Each upstream error (status, body) with the code and kind callers must get.
    fn error_cases(self) -> Vec<(u16, Value, i64, &'static str)>;

    /// Whether the request authenticated the provider's way, with the key nowhere in the URL.
    fn authenticated(self, req: &Request) -> bool;

    /// The system prompt as the provider received it.
    fn system_prompt(self, body: &Value) -> String;

    /// The roles of the conversation turns as the provider received them (system excluded).
    fn roles(self, body: &Value) -> Vec<String>;

    /// The roles callers' `user, assistant, user, user` turns must arrive as.
    fn expected_roles(self) -> Vec<&'static str>;

    /// Whether the data: URL image reached the provider as inline base64 data.
    fn has_inline_image(self, body: &Value) -> bool;

    /// An answer that calls `get_weather` with `{"city":"Paris"}`, in the provider's own form.
    fn tool_call_json(self) -> Value;

    /// The same call streamed, its arguments cut in three fragments where the provider cuts.
    fn tool_call_stream_body(self) -> String;

    /// A tool loop, for requests that offer `get_weather` (before anything else mounted): with
    /// the tool's result ("18 C") in the request the model answers `It is 18 C in Paris.`;
    /// otherwise it calls the tool, complete or streamed.
    async fn mount_tool_loop(self, server: &MockServer);
}

impl Mocked for Provider {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn model(self) -> &'static str {
        match self {
            Self::Openai => "gpt-4.1-mini",
            Self::Anthropic => "claude-sonnet-4-5",
            Self::Gemini => "gemini-2.5-flash",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Openai => OPENAI_KEY,
            Self::Anthropic => ANTHROPIC_KEY,
            Self::Gemini => GEMINI_KEY,
        }
    }

    fn start(self, server: &MockServer, extra: &[(&str, &str)]) -> Service {
        let (key_var, base_var, base) = match self {
            Self::Openai => (
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
                format!("{}/v1", server.uri()),
            ),
            Self::Anthropic => ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", server.uri()),
            Self::Gemini => ("GEMINI_API_KEY", "GEMINI_BASE_URL", server.uri()),
        };
        let mut env = vec![(key_var, self.key()), (base_var, base.as_str())];
        env.extend_from_slice(extra);
        Service::start_with(&env)
    }

    fn endpoint(self, stream: bool) -> MockBuilder {
        match (self, stream) {
            (Self::Openai, _) => Mock::given(method("POST")).and(path("/v1/chat/completions")),
            (Self::Anthropic, _) => Mock::given(method("POST")).and(path("/v1/messages")),
            (Self::Gemini, false) => Mock::given(method("POST"))
                .and(path_regex(r"^/v1beta/models/[^/]+:generateContent$")),
            (Self::Gemini, true) => Mock::given(method("POST"))
                .and(path_regex(r"^/v1beta/models/[^/]+:streamGenerateContent$")),
        }
    }

    fn streaming_endpoint(self) -> MockBuilder {
        match self {
            Self::Gemini => self.endpoint(true),
            _ => self
                .endpoint(true)
                .and(body_partial_json(json!({"stream": true}))),
        }
    }

    fn completion_json(self, content: &str, finish: &str) -> Value {
        match self {
            Self::Openai => json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini-2025-04-14",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}),
            Self::Anthropic => json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": content}], "stop_reason": finish, "stop_sequence": null,
                "usage": {"input_tokens": 9, "output_tokens": 3}}),
            Self::Gemini => json!({
                "candidates": [{"content": {"role": "model", "parts": [{"text": content}]}, "finishReason": finish, "index": 0}],
                "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
                "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}),
        }
    }

    async fn mount_complete(self, server: &MockServer, content: &str, finish: &str) {
        let body = self.completion_json(content, finish);
        self.endpoint(false)
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .with_priority(2)
            .mount(server)
            .await;
    }

    async fn mount_error_times(self, server: &MockServer, status: u16, body: Value, times: u64) {
        self.endpoint(false)
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .up_to_n_times(times)
            .with_priority(1)
            .mount(server)
            .await;
    }

    async fn mount_echo(self, server: &MockServer) {
        fn id(req: &Request) -> String {
            req.headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned()
        }
        self.streaming_endpoint()
            .respond_with(move |req: &Request| {
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/event-stream")
                    .set_body_string(self.stream_body(&[&id(req)]))
            })
            .with_priority(1)
            .mount(server)
            .await;
        self.endpoint(false)
            .respond_with(move |req: &Request| {
                ResponseTemplate::new(200)
                    .set_body_json(self.completion_json(&id(req), self.stop()))
            })
            .with_priority(2)
            .mount(server)
            .await;
    }

    fn stop(self) -> &'static str {
        match self {
            Self::Openai => "stop",
            Self::Anthropic => "end_turn",
            Self::Gemini => "STOP",
        }
    }

    fn finish_cases(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Self::Openai => vec![
                ("stop", "stop"),
                ("length", "length"),
                ("content_filter", "content_filter"),
                ("tool_calls", "tool_calls"),
            ],
            Self::Anthropic => vec![
                ("end_turn", "stop"),
                ("stop_sequence", "stop"),
                ("max_tokens", "length"),
                ("refusal", "content_filter"),
                ("tool_use", "tool_calls"),
                ("pause_turn", "other"),
            ],
            Self::Gemini => vec![
                ("STOP", "stop"),
                ("MAX_TOKENS", "length"),
                ("SAFETY", "content_filter"),
                ("RECITATION", "content_filter"),
                ("PROHIBITED_CONTENT", "content_filter"),
                ("MALFORMED_FUNCTION_CALL", "other"),
            ],
        }
    }

    async fn mount_stream(self, server: &MockServer, pieces: &[&str]) {
        let body = self.stream_body(pieces);
        self.streaming_endpoint()
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/event-stream")
                    .set_body_string(body),
            )
            .with_priority(1)
            .mount(server)
            .await;
    }

    fn stream_body(self, pieces: &[&str]) -> String {
        match self {
            Self::Openai => super::stream_body(pieces),
            Self::Anthropic => {
                let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
                let mut out = event(
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_s", "type": "message",
                    "role": "assistant", "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null,
                    "usage": {"input_tokens": 5, "output_tokens": 1}}}),
                );
                out += &event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                );
                out += &event("ping", json!({"type": "ping"}));
                for piece in pieces {
                    out += &event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                    );
                }
                out += &event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                );
                out += &event(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 3}}),
                );
                out + &event("message_stop", json!({"type": "message_stop"}))
            }
            Self::Gemini => {
                // Gemini's real frames end in CRLF.
                let mut out = String::new();
                for piece in pieces {
                    let chunk = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": piece}]}, "index": 0}],
                        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}, "modelVersion": "gemini-2.5-flash"});
                    out += &format!("data: {chunk}\r\n\r\n");
                }
                let last = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8}, "modelVersion": "gemini-2.5-flash"});
                out + &format!("data: {last}\r\n\r\n")
            }
        }
    }

    fn broken_stream_body(self) -> String {
        match self {
            Self::Openai => format!(
                "data: {}\n\ndata: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]}),
                json!({"error": {"message": "The server had an error", "type": "server_error"}})
            ),
            Self::Anthropic => {
                let head = self.stream_body(&["par"]);
                let cut = head.find("event: content_block_stop").unwrap();
                format!(
                    "{}event: error\ndata: {}\n\n",
                    &head[..cut],
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                )
            }
            Self::Gemini => format!(
                "data: {}\r\n\r\ndata: {}\r\n\r\n",
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "par"}]}, "index": 0}]}),
                json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
            ),
        }
    }

    async fn mount_raw_stream(self, server: &MockServer, body: String) {
        self.streaming_endpoint()
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/event-stream")
                    .set_body_string(body),
            )
            .mount(server)
            .await;
    }

    async fn mount_error(self, server: &MockServer, status: u16, body: Value) {
        for stream in [false, true] {
            self.endpoint(stream)
                .respond_with(
                    ResponseTemplate::new(status)
                        .set_body_json(body.clone())
                        .insert_header("retry-after", "2"),
                )
                .mount(server)
                .await;
        }
    }

    fn error_cases(self) -> Vec<(u16, Value, i64, &'static str)> {
        let f = |name: &str| fixture(self.name(), name);
        match self {
            Self::Openai => vec![
                (
                    400,
                    f("error_400_invalid_request.json"),
                    -32007,
                    "provider_rejected",
                ),
                (
                    400,
                    json!({"error": {"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
                    -32006,
                    "context_length_exceeded",
                ),
                (
                    401,
                    json!({"error": {"message": format!("Incorrect API key provided: {OPENAI_KEY}"), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
                    -32005,
                    "provider_auth",
                ),
                (
                    403,
                    json!({"error": {"message": "region", "type": "x", "param": null, "code": null}}),
                    -32005,
                    "provider_auth",
                ),
                (
                    404,
                    f("error_404_model_not_found.json"),
                    -32001,
                    "model_not_found",
                ),
                (429, f("error_429_rate_limit.json"), -32002, "rate_limited"),
                (
                    500,
                    f("error_500_server_error.json"),
                    -32004,
                    "provider_unavailable",
                ),
                (
                    503,
                    json!("Service Unavailable"),
                    -32004,
                    "provider_unavailable",
                ),
            ],
            Self::Anthropic => vec![
                (
                    400,
                    f("error_400_invalid_request.json"),
                    -32007,
                    "provider_rejected",
                ),
                (
                    400,
                    json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}}),
                    -32006,
                    "context_length_exceeded",
                ),
                (
                    401,
                    f("error_401_authentication.json"),
                    -32005,
                    "provider_auth",
                ),
                (403, f("error_403_permission.json"), -32005, "provider_auth"),
                (
                    404,
                    f("error_404_not_found.json"),
                    -32001,
                    "model_not_found",
                ),
                (429, f("error_429_rate_limit.json"), -32002, "rate_limited"),
                (
                    500,
                    f("error_500_api_error.json"),
                    -32004,
                    "provider_unavailable",
                ),
                (
                    529,
                    f("error_529_overloaded.json"),
                    -32004,
                    "provider_unavailable",
                ),
            ],
            Self::Gemini => vec![
                (
                    400,
                    json!({"error": {"code": 400, "message": "Invalid value at 'contents'", "status": "INVALID_ARGUMENT"}}),
                    -32007,
                    "provider_rejected",
                ),
                (
                    400,
                    json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}),
                    -32006,
                    "context_length_exceeded",
                ),
                (
                    400,
                    f("error_400_api_key_invalid.json"),
                    -32005,
                    "provider_auth",
                ),
                (
                    403,
                    f("error_403_permission_denied.json"),
                    -32005,
                    "provider_auth",
                ),
                (
                    404,
                    f("error_404_not_found.json"),
                    -32001,
                    "model_not_found",
                ),
                (
                    429,
                    f("error_429_resource_exhausted.json"),
                    -32002,
                    "rate_limited",
                ),
                (
                    500,
                    f("error_500_internal.json"),
                    -32004,
                    "provider_unavailable",
                ),
                (
                    503,
                    f("error_503_unavailable.json"),
                    -32004,
                    "provider_unavailable",
                ),
                (
                    504,
                    f("error_504_deadline_exceeded.json"),
                    -32004,
                    "provider_unavailable",
                ),
            ],
        }
    }

    fn authenticated(self, req: &Request) -> bool {
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let in_url = req.url.as_str().contains(self.key());
        !in_url
            && match self {
                Self::Openai => header("authorization") == Some(format!("Bearer {OPENAI_KEY}")),
                Self::Anthropic => {
                    header("x-api-key").as_deref() == Some(ANTHROPIC_KEY)
                        && header("anthropic-version").is_some()
                }
                Self::Gemini => header("x-goog-api-key").as_deref() == Some(GEMINI_KEY),
            }
    }

    fn system_prompt(self, body: &Value) -> String {
        match self {
            Self::Openai => body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Self::Anthropic => match &body["system"] {
                Value::String(s) => s.clone(),
                blocks => blocks
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b["text"].as_str())
                    .collect(),
            },
            Self::Gemini => {
                let instruction = if body["systemInstruction"].is_null() {
                    &body["system_instruction"]
                } else {
                    &body["systemInstruction"]
                };
                instruction["parts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["text"].as_str())
                    .collect()
            }
        }
    }

    fn roles(self, body: &Value) -> Vec<String> {
        let turns = match self {
            Self::Openai | Self::Anthropic => &body["messages"],
            Self::Gemini => &body["contents"],
        };
        turns
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["role"].as_str().unwrap_or_default().to_owned())
            .filter(|r| r != "system")
            .collect()
    }

    fn expected_roles(self) -> Vec<&'static str> {
        match self {
            // OpenAI takes turns as they are; the others need alternation, so the last two merge.
            Self::Openai => vec!["user", "assistant", "user", "user"],
            Self::Anthropic => vec!["user", "assistant", "user"],
            Self::Gemini => vec!["user", "model", "user"],
        }
    }

    fn has_inline_image(self, body: &Value) -> bool {
        let text = body.to_string();
        let data = "iVBORw0KGgo=";
        match self {
            Self::Openai => text.contains(&format!("data:image/png;base64,{data}")),
            Self::Anthropic => {
                text.contains("\"base64\"") && text.contains(data) && text.contains("image/png")
            }
            Self::Gemini => {
                (text.contains("inline_data") || text.contains("inlineData")) && text.contains(data)
            }
        }
    }

    fn tool_call_json(self) -> Value {
        match self {
            Self::Openai => json!({
                "id": "chatcmpl-t", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]}, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}),
            Self::Anthropic => json!({
                "id": "msg_t", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 20, "output_tokens": 5}}),
            Self::Gemini => json!({
                "candidates": [{"content": {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
                ]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5, "totalTokenCount": 25},
                "modelVersion": "gemini-2.5-flash"}),
        }
    }

    fn tool_call_stream_body(self) -> String {
        match self {
            Self::Openai => {
                let chunk = |delta: Value, finish: Value| {
                    let choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
                    format!(
                        "data: {}\n\n",
                        json!({"model": "gpt-4.1-mini", "choices": [choice]})
                    )
                };
                let mut out = chunk(
                    json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_1",
                        "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                    Value::Null,
                );
                for piece in ["{\"ci", "ty\":\"Pa", "ris\"}"] {
                    out += &chunk(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                        Value::Null,
                    );
                }
                out += &chunk(json!({}), json!("tool_calls"));
                out += &format!(
                    "data: {}\n\n",
                    json!({"choices": [], "usage":
                    {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}})
                );
                out + "data: [DONE]\n\n"
            }
            Self::Anthropic => {
                let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
                let mut out = event(
                    "message_start",
                    json!({"type": "message_start", "message": {
                    "id": "msg_t", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
                    "stop_reason": null, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
                );
                out += &event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
                );
                for piece in ["", "{\"ci", "ty\":\"Pa", "ris\"}"] {
                    out += &event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": piece}}),
                    );
                }
                out += &event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                );
                out += &event(
                    "message_delta",
                    json!({"type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 5}}),
                );
                out + &event("message_stop", json!({"type": "message_stop"}))
            }
            Self::Gemini => format!("data: {}\r\n\r\n", self.tool_call_json()),
        }
    }

    async fn mount_tool_loop(self, server: &MockServer) {
        fn body(req: &Request) -> std::borrow::Cow<'_, str> {
            String::from_utf8_lossy(&req.body)
        }
        let answered =
            |req: &Request| body(req).contains("get_weather") && body(req).contains("18 C");
        let asking =
            |req: &Request| body(req).contains("get_weather") && !body(req).contains("18 C");
        let streamed = |req: &Request| {
            body(req).contains(r#""stream":true"#) || req.url.path().contains("stream")
        };
        let answer = self.completion_json("It is 18 C in Paris.", self.stop());
        self.endpoint(false)
            .and(answered)
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .with_priority(1)
            .mount(server)
            .await;
        self.streaming_endpoint()
            .and(asking)
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/event-stream")
                    .set_body_string(self.tool_call_stream_body()),
            )
            .with_priority(1)
            .mount(server)
            .await;
        self.endpoint(false)
            .and(asking)
            .and(move |req: &Request| !streamed(req))
            .respond_with(ResponseTemplate::new(200).set_body_json(self.tool_call_json()))
            .with_priority(1)
            .mount(server)
            .await;
    }
}
