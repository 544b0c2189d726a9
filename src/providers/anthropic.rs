//! Anthropic Messages (`POST /v1/messages`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::driver::invalid_body;
use super::{Adapter, Fault, Outgoing};
use crate::error::{Error, ErrorKind};
use crate::sse::SseEvent;
use crate::types::{
    ChatRequest, ChatResponse, Content, FinishReason, ImageSource, Message, ModelInfo, Part,
    ProviderName, ReasoningEffort, ResponseFormat, Role, StreamEvent, ToolCall, ToolCallDelta,
    ToolChoice, ToolDef, Usage, system_prompt,
};

const NAME: ProviderName = ProviderName::Anthropic;

/// The API version the official SDKs still send; newer features come as `anthropic-beta` flags.
const API_VERSION: &str = "2023-06-01";

/// Anthropic requires `max_tokens`; this is the cap when the caller sets none.
const DEFAULT_MAX_TOKENS: u32 = 1024;
/// Anthropic's highest temperature.
const MAX_TEMPERATURE: f64 = 1.0;

/// Room left for the visible answer when thinking spends its whole budget.
const ANSWER_ROOM: u32 = 1024;

const CATALOG: &[ModelInfo] = &[
    ModelInfo::new("claude-opus-4-1", 200_000),
    ModelInfo::new("claude-opus-4-5", 200_000),
    ModelInfo::new("claude-sonnet-4-5", 200_000),
    ModelInfo::new("claude-sonnet-4", 200_000),
    ModelInfo::new("claude-haiku-4-5", 200_000),
    ModelInfo::new("claude-3-7-sonnet-latest", 200_000),
    ModelInfo::new("claude-3-5-haiku-latest", 200_000),
];

/// The adapter: requests and answers of the Messages API.
pub struct Anthropic;

impl Adapter for Anthropic {
    const NAME: ProviderName = NAME;
    const CATALOG: &'static [ModelInfo] = CATALOG;
    const ENDPOINT: &'static str = "/v1/messages";
    type StreamState = StreamState;

    fn request(
        endpoint: &reqwest::Url,
        key: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            url: endpoint.clone(),
            auth: ("x-api-key", key.to_owned()),
            headers: &[("anthropic-version", API_VERSION)],
            body: request_body(req, stream),
        })
    }

    fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
        parse_response(body)
    }

    /// `message_stop` ends the answer.
    fn parse_stream_event(
        event: &SseEvent,
        state: &mut StreamState,
    ) -> Result<Option<Vec<StreamEvent>>, Error> {
        parse_stream_event(event.event.as_deref(), &event.data, state)
    }

    fn parse_error(_: u16, body: &[u8]) -> Fault {
        parse_error(body)
    }
}

/// Models that accept extended thinking; older ones reject the `thinking` field.
fn supports_thinking(model: &str) -> bool {
    [
        "claude-opus-4",
        "claude-sonnet-4",
        "claude-3-7-sonnet",
        "claude-haiku-4-5",
    ]
    .iter()
    .any(|p| model.starts_with(p))
}

fn thinking_budget(effort: ReasoningEffort) -> u32 {
    match effort {
        ReasoningEffort::Low => 1024,
        ReasoningEffort::Medium => 4096,
        ReasoningEffort::High => 16384,
    }
}

/// Models that take a JSON Schema for the answer natively (`output_config.format`, generally
/// available without a beta header), as Anthropic's structured outputs page lists them.
fn supports_structured_outputs(model: &str) -> bool {
    [
        "claude-opus-4-5",
        "claude-opus-4-6",
        "claude-sonnet-4-5",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
    ]
    .iter()
    .any(|p| model.starts_with(p))
}

/// Whether a call uses tools: it offers some, or its history holds calls or their results.
fn uses_tools(req: &ChatRequest) -> bool {
    !req.tools.is_empty()
        || req
            .messages
            .iter()
            .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty())
}

/// The Messages body for a request.
///
/// System messages become the top-level `system` string and consecutive turns of one role are
/// merged, since Anthropic has no system role and wants user and assistant to alternate. Tool
/// results are user turns to Anthropic, so consecutive ones (and a user message right after
/// them) become one user turn.
///
/// `reasoning_effort` turns on extended thinking with a fixed budget. Anthropic counts thinking
/// inside `max_tokens` (as OpenAI's reasoning models do) and requires `max_tokens` above the
/// budget, so the cap becomes `max(max_tokens, budget + 1024)`: a caller's larger cap is kept
/// and at least 1024 tokens are left for the answer. Thinking rejects `temperature` and `top_p`
/// and a prefilled (final assistant) turn, so the sampling knobs are dropped with thinking on,
/// and thinking stays off after a prefill.
///
/// Thinking also stays off for a call that uses tools ([`uses_tools`]): with both, Anthropic
/// requires each earlier assistant turn's thinking blocks sent back with their signatures, which
/// the OpenAI-shaped history callers replay cannot carry.
fn request_body(req: &ChatRequest, stream: bool) -> Value {
    let mut turns: Vec<(Role, Vec<Piece>)> = Vec::new();
    for message in &req.messages {
        let (role, pieces) = match (message.role, &message.content) {
            (Role::System, _) => continue,
            (Role::Tool, _) => (Role::User, vec![Piece::Block(tool_result(message))]),
            (role, _) if !message.tool_calls.is_empty() => (role, tool_use_pieces(message)),
            (role, Some(content)) => (role, vec![Piece::Content(content)]),
            (_, None) => continue,
        };
        match turns.last_mut() {
            Some((last, earlier)) if *last == role => earlier.extend(pieces),
            _ => turns.push((role, pieces)),
        }
    }
    let prefilled = matches!(turns.last(), Some((Role::Assistant, _)));
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, pieces)| {
            let content = match pieces.as_slice() {
                [Piece::Content(Content::Text(text))] => json!(text),
                _ => Value::Array(pieces.into_iter().flat_map(Piece::blocks).collect()),
            };
            json!({ "role": role, "content": content })
        })
        .collect();

    let mut max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let thinking = req
        .reasoning_effort
        .filter(|_| supports_thinking(&req.model) && !prefilled && !uses_tools(req))
        .map(thinking_budget);
    let mut body = json!({ "model": req.model, "messages": messages });
    if let Some(budget) = thinking {
        max_tokens = max_tokens.max(budget.saturating_add(ANSWER_ROOM));
        body["thinking"] = json!({ "type": "enabled", "budget_tokens": budget });
    } else {
        if let Some(t) = req.temperature {
            // The contract's range is OpenAI's, 0–2; Anthropic's ends at 1, which is sent for
            // anything above, so that a call falling back to Claude is not refused for it.
            body["temperature"] = json!(t.min(MAX_TEMPERATURE));
        }
        if let Some(p) = req.top_p {
            body["top_p"] = json!(p);
        }
    }
    body["max_tokens"] = json!(max_tokens);
    let mut system = system_prompt(&req.messages);
    match output_format(req) {
        Some(OutputFormat::Native(config)) => body["output_config"] = config,
        Some(OutputFormat::Instruction(text)) => {
            system = Some(match system {
                Some(prompt) => format!("{prompt}\n\n{text}"),
                None => text,
            });
        }
        None => {}
    }
    if let Some(system) = system {
        body["system"] = json!(system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req.tools.iter().map(tool).collect();
        if let Some(choice) = tool_choice(req) {
            body["tool_choice"] = choice;
        }
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    // Chat Completions' `user` is Anthropic's `metadata.user_id`: an end user's opaque id.
    if let Some(user) = req.passthrough.get("user").filter(|u| u.is_string()) {
        body["metadata"] = json!({ "user_id": user });
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// One message's share of a turn: its content as the caller gave it, or a block made for it.
enum Piece<'a> {
    Content(&'a Content),
    Block(Value),
}

impl Piece<'_> {
    fn blocks(self) -> Vec<Value> {
        match self {
            Piece::Content(content) => content_blocks(content),
            Piece::Block(block) => vec![block],
        }
    }
}

/// An assistant turn that called tools: what it said, then a `tool_use` block per call. Empty
/// text blocks are left out, since Anthropic refuses them and such a turn often says nothing.
fn tool_use_pieces(message: &Message) -> Vec<Piece<'_>> {
    let said = message
        .content
        .iter()
        .flat_map(content_blocks)
        .filter(|block| block.get("text").and_then(Value::as_str) != Some(""));
    let calls = message.tool_calls.iter().map(|call| {
        // Params validation has made sure the arguments are the JSON text of an object.
        let input: Value = serde_json::from_str(&call.function.arguments).unwrap_or_default();
        json!({ "type": "tool_use", "id": call.id, "name": call.function.name, "input": input })
    });
    said.chain(calls).map(Piece::Block).collect()
}

/// A tool's answer: a `tool_result` block, its text left out when empty (the field is optional,
/// and Anthropic refuses empty text).
fn tool_result(message: &Message) -> Value {
    let mut block = json!({ "type": "tool_result", "tool_use_id": message.tool_call_id });
    let text = message.text();
    if !text.is_empty() {
        block["content"] = json!(text);
    }
    block
}

fn tool(def: &ToolDef) -> Value {
    let schema = def
        .parameters
        .clone()
        .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
    let mut tool = json!({ "name": def.name, "input_schema": schema });
    if let Some(description) = &def.description {
        tool["description"] = json!(description);
    }
    tool
}

/// Anthropic's `tool_choice`, which also carries what OpenAI's `parallel_tool_calls: false`
/// says (`disable_parallel_tool_use`); `none` takes no such flag.
fn tool_choice(req: &ChatRequest) -> Option<Value> {
    let one_at_a_time = req.parallel_tool_calls == Some(false);
    let mut choice = match &req.tool_choice {
        Some(ToolChoice::None) => return Some(json!({ "type": "none" })),
        Some(ToolChoice::Auto) => json!({ "type": "auto" }),
        Some(ToolChoice::Required) => json!({ "type": "any" }),
        Some(ToolChoice::Function(name)) => json!({ "type": "tool", "name": name }),
        None if one_at_a_time => json!({ "type": "auto" }),
        None => return None,
    };
    if one_at_a_time {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    Some(choice)
}

/// How a `response_format` reaches Claude.
enum OutputFormat {
    /// The `output_config` that constrains the answer to the schema.
    Native(Value),
    /// Words appended to the system prompt: the answer is then JSON as far as the model obeys.
    Instruction(String),
}

/// A JSON Schema goes natively to the models of [`supports_structured_outputs`], as an
/// instruction to any other; `json_object` is always an instruction, since Anthropic has no JSON
/// mode; `text` asks for nothing.
fn output_format(req: &ChatRequest) -> Option<OutputFormat> {
    match req.response_format.as_ref()? {
        ResponseFormat::JsonSchema { schema, .. } if supports_structured_outputs(&req.model) => {
            Some(OutputFormat::Native(json!({
                "format": { "type": "json_schema", "schema": schema }
            })))
        }
        ResponseFormat::JsonSchema { schema, .. } => Some(OutputFormat::Instruction(format!(
            "Respond with only a JSON object that conforms to this JSON Schema: {schema}"
        ))),
        ResponseFormat::JsonObject => Some(OutputFormat::Instruction(
            "Respond with only a JSON object.".to_owned(),
        )),
        ResponseFormat::Text => None,
    }
}

fn content_blocks(content: &Content) -> Vec<Value> {
    match content {
        Content::Text(text) => vec![json!({ "type": "text", "text": text })],
        Content::Parts(parts) => parts
            .iter()
            .map(|part| match part {
                Part::Text { text } => json!({ "type": "text", "text": text }),
                Part::ImageUrl { image_url } => image_block(image_url.source()),
            })
            .collect(),
    }
}

/// Anthropic takes inline images with the media type and data apart, and fetches URLs itself.
fn image_block(source: ImageSource<'_>) -> Value {
    let source = match source {
        ImageSource::Inline { media_type, data } => {
            json!({ "type": "base64", "media_type": media_type, "data": data })
        }
        ImageSource::Url(url) => json!({ "type": "url", "url": url }),
    };
    json!({ "type": "image", "source": source })
}

/// Counts as Anthropic reports them: a `null` or missing field is unknown, not zero.
#[derive(Deserialize, Default, Debug, Clone, Copy)]
#[serde(default)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Streamed usage is cumulative and `message_delta` may repeat only some fields.
    fn update(&mut self, newer: WireUsage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens = newer
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = newer
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
    }
}

impl From<WireUsage> for Usage {
    /// `input_tokens` excludes cached tokens, which the caller still sent as prompt.
    fn from(u: WireUsage) -> Self {
        let prompt = u.input_tokens.unwrap_or_default()
            + u.cache_creation_input_tokens.unwrap_or_default()
            + u.cache_read_input_tokens.unwrap_or_default();
        let completion = u.output_tokens.unwrap_or_default();
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

/// Text and tool calls reach the caller; thinking, server tools and future block types are
/// skipped.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    #[serde(other)]
    Other,
}

fn finish_reason(value: Option<&str>) -> FinishReason {
    match value {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|_| invalid_body(NAME, "response"))?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in wire.content {
        match block {
            WireBlock::Text { text } => content.push_str(&text),
            WireBlock::ToolUse { id, name, input } => {
                tool_calls.push(ToolCall::function(id, name, input.to_string()));
            }
            WireBlock::Other => {}
        }
    }
    Ok(ChatResponse {
        tool_calls,
        id: wire.id,
        model: wire.model,
        content,
        usage: wire.usage.into(),
        finish_reason: finish_reason(wire.stop_reason.as_deref()),
    })
}

/// What a stream remembers between events.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// The counts so far: `message_start` gives the input counts, each `message_delta` the
    /// output count to date.
    usage: WireUsage,
    /// Anthropic's index of each `tool_use` block, to the call's index among the calls (what
    /// callers see): input fragments name only the block, and text blocks count among blocks.
    tool_calls: BTreeMap<u32, u32>,
}

#[derive(Deserialize)]
struct WireEventType {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct WireMessageStart {
    message: WireStartedMessage,
}

#[derive(Deserialize)]
struct WireStartedMessage {
    model: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct WireBlockStart {
    index: u32,
    content_block: WireBlock,
}

#[derive(Deserialize)]
struct WireBlockDelta {
    index: Option<u32>,
    delta: WireDelta,
}

/// Text and tool input reach the caller; thinking, citations and future deltas are skipped.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessageDelta {
    #[serde(default)]
    delta: WireStop,
    usage: Option<WireUsage>,
}

#[derive(Deserialize, Default)]
struct WireStop {
    stop_reason: Option<String>,
}

fn parse<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, Error> {
    serde_json::from_str(data).map_err(|_| invalid_body(NAME, "stream event"))
}

/// One SSE event of the stream, named by its `event:` line (or, lacking one, its `type`).
/// `Ok(None)` is `message_stop`; unknown events and `ping` give no events.
///
/// A `tool_use` block's start gives the call's id and name, its `input_json_delta`s the
/// arguments' text in fragments (an input fragment of any other block, a server tool's, is
/// skipped).
fn parse_stream_event(
    event: Option<&str>,
    data: &str,
    state: &mut StreamState,
) -> Result<Option<Vec<StreamEvent>>, Error> {
    let tagged;
    let name = match event {
        Some(name) => name,
        None => {
            tagged = parse::<WireEventType>(data)?;
            tagged.kind.as_str()
        }
    };
    let mut events = Vec::new();
    match name {
        "message_start" => {
            let start: WireMessageStart = parse(data)?;
            state.usage.update(start.message.usage);
            if let Some(model) = start.message.model {
                events.push(StreamEvent::Model(model));
            }
        }
        "content_block_start" => {
            let start: WireBlockStart = parse(data)?;
            if let WireBlock::ToolUse { id, name, .. } = start.content_block {
                let index = u32::try_from(state.tool_calls.len()).unwrap_or(u32::MAX);
                state.tool_calls.insert(start.index, index);
                events.push(StreamEvent::ToolCall(ToolCallDelta {
                    index,
                    id: Some(id),
                    name: Some(name),
                    arguments: String::new(),
                }));
            }
        }
        "content_block_delta" => {
            let block: WireBlockDelta = parse(data)?;
            match block.delta {
                WireDelta::TextDelta { text } if !text.is_empty() => {
                    events.push(StreamEvent::Delta(text));
                }
                WireDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                    let call = block.index.and_then(|i| state.tool_calls.get(&i));
                    if let Some(&index) = call {
                        events.push(StreamEvent::ToolCall(ToolCallDelta {
                            index,
                            arguments: partial_json,
                            ..ToolCallDelta::default()
                        }));
                    }
                }
                _ => {}
            }
        }
        "message_delta" => {
            let delta: WireMessageDelta = parse(data)?;
            if let Some(reason) = delta.delta.stop_reason {
                events.push(StreamEvent::Finish(finish_reason(Some(&reason))));
            }
            if let Some(usage) = delta.usage {
                state.usage.update(usage);
                events.push(StreamEvent::Usage(state.usage.into()));
            }
        }
        "message_stop" => return Ok(None),
        "error" => {
            // Whatever the payload, an `error` event means the answer failed.
            let wire = serde_json::from_str::<WireErrorBody>(data)
                .map(|b| b.error)
                .unwrap_or_default();
            let kind = error_kind(&wire).unwrap_or(ErrorKind::ProviderUnavailable);
            let detail = Some(detail(&wire)).filter(|d| !d.is_empty());
            let message = format!(
                "anthropic: {}",
                detail.as_deref().unwrap_or("stream failed")
            );
            return Err(Error::new(kind, message).with_provider(NAME));
        }
        _ => {}
    }
    Ok(Some(events))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Deserialize)]
struct WireErrorBody {
    error: WireError,
}

/// The kind Anthropic's `error.type` names, when it names one we know.
fn error_kind(wire: &WireError) -> Option<ErrorKind> {
    let message = wire.message.to_ascii_lowercase();
    Some(match wire.kind.as_str() {
        "overloaded_error" | "api_error" | "timeout_error" => ErrorKind::ProviderUnavailable,
        "rate_limit_error" => ErrorKind::RateLimited,
        "invalid_request_error"
            if message.contains("prompt is too long")
                || message.contains("exceed context limit") =>
        {
            ErrorKind::ContextLengthExceeded
        }
        "not_found_error" => ErrorKind::ModelNotFound,
        "authentication_error" | "permission_error" => ErrorKind::ProviderAuth,
        "invalid_request_error" | "billing_error" | "request_too_large" => {
            ErrorKind::ProviderRejected
        }
        _ => return None,
    })
}

/// The message, or else the type; empty when the body says neither.
fn detail(wire: &WireError) -> String {
    if wire.message.is_empty() {
        wire.kind.clone()
    } else {
        wire.message.clone()
    }
}

/// Classifies by `error.type`; the status decides only when the body names no known type
/// (a proxy's HTML page, an empty body, a type added later).
fn parse_error(body: &[u8]) -> Fault {
    let wire = serde_json::from_slice::<WireErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_default();
    Fault {
        kind: error_kind(&wire),
        detail: detail(&wire),
        ..Fault::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::types::UpstreamTrace;
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    use std::time::Duration;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg==";

    /// The fixture's request, as a caller of this service would send it.
    fn fixture_request() -> ChatRequest {
        ChatRequest {
            max_tokens: Some(1024),
            temperature: Some(0.7),
            top_p: Some(0.9),
            stop: vec!["\n\nHuman:".into()],
            ..request(
                "claude-sonnet-4-5",
                vec![
                    text(Role::System, "You are a concise assistant."),
                    text(Role::User, "Hello, Claude"),
                    text(Role::Assistant, "Hello! How can I help?"),
                    parts(
                        Role::User,
                        vec![
                            image(&format!("data:image/png;base64,{PNG}")),
                            text_part("What is in this image?"),
                        ],
                    ),
                ],
            )
        }
    }

    #[test]
    fn body_matches_the_fixture_request() {
        let fixture = fixture_json::<Anthropic>("messages_request.json");
        let body = request_body(&fixture_request(), false);
        for field in [
            "model",
            "max_tokens",
            "system",
            "messages",
            "temperature",
            "top_p",
            "stop_sequences",
        ] {
            assert_eq!(body[field], fixture[field], "{field}");
        }
        assert!(body.get("stream").is_none());
        assert!(body.get("thinking").is_none());

        let fixture = fixture_json::<Anthropic>("messages_request_system_blocks.json");
        let req = ChatRequest {
            max_tokens: Some(512),
            ..request(
                "claude-sonnet-4-5",
                vec![
                    text(Role::System, "You are a concise assistant."),
                    parts(Role::User, vec![text_part("Hello")]),
                ],
            )
        };
        let body = request_body(&req, true);
        for field in ["model", "max_tokens", "messages", "stream"] {
            assert_eq!(body[field], fixture[field], "{field}");
        }
        assert_eq!(body["system"], fixture["system"][0]["text"]);
    }

    #[test]
    fn max_tokens_defaults_to_1024() {
        let fixture = fixture_json::<Anthropic>("messages_request_tools.json");
        let req = request(
            "claude-haiku-4-5",
            vec![text(Role::User, "What is the weather in SF?")],
        );
        let body = request_body(&req, false);
        for field in ["model", "max_tokens", "messages"] {
            assert_eq!(body[field], fixture[field], "{field}");
        }
        assert!(body.get("system").is_none());
        assert!(body.get("temperature").is_none());
        assert!(body.get("stop_sequences").is_none());
    }

    #[test]
    fn system_messages_move_to_the_top_and_turns_alternate() {
        let req = request(
            "claude-sonnet-4-5",
            vec![
                text(Role::System, "Be terse."),
                text(Role::User, "one"),
                text(Role::System, "Answer in French."),
                parts(Role::User, vec![text_part("two"), text_part("three")]),
                text(Role::Assistant, "un"),
                text(Role::Assistant, "deux"),
                text(Role::User, "four"),
            ],
        );
        let body = request_body(&req, false);
        assert_eq!(body["system"], "Be terse.\n\nAnswer in French.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "one"},
                    {"type": "text", "text": "two"},
                    {"type": "text", "text": "three"},
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "un"},
                    {"type": "text", "text": "deux"},
                ]},
                {"role": "user", "content": "four"},
            ])
        );
        let req = request(
            "claude-sonnet-4-5",
            vec![
                parts(Role::System, vec![text_part("a"), text_part("b")]),
                text(Role::User, "hi"),
            ],
        );
        assert_eq!(request_body(&req, false)["system"], "a\nb");
    }

    #[test]
    fn images_are_sent_inline_or_by_url() {
        let req = request(
            "claude-sonnet-4-5",
            vec![parts(
                Role::User,
                vec![
                    image("data:image/jpeg;base64,/9j/4AAQ"),
                    image("https://example.com/cat.png"),
                    text_part("Compare."),
                ],
            )],
        );
        let body = request_body(&req, false);
        assert_eq!(
            body["messages"][0]["content"],
            json!([
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "text", "text": "Compare."},
            ])
        );
    }

    #[test]
    fn reasoning_effort_turns_on_thinking_where_supported() {
        let mut req = fixture_request();
        req.reasoning_effort = Some(ReasoningEffort::Medium);
        let body = request_body(&req, true);
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 4096})
        );
        assert_eq!(body["max_tokens"], 4096 + 1024);
        assert!(body.get("temperature").is_none() && body.get("top_p").is_none());
        assert_eq!(body["stop_sequences"], json!(["\n\nHuman:"]));
        assert_eq!(body["stream"], true);

        req.max_tokens = Some(20_000);
        for (effort, budget) in [
            (ReasoningEffort::Low, 1024),
            (ReasoningEffort::Medium, 4096),
            (ReasoningEffort::High, 16384),
        ] {
            req.reasoning_effort = Some(effort);
            let body = request_body(&req, false);
            assert_eq!(body["thinking"]["budget_tokens"], budget);
            assert_eq!(body["max_tokens"], 20_000);
        }
        req.max_tokens = None;
        assert_eq!(request_body(&req, false)["max_tokens"], 16384 + 1024);

        for model in [
            "claude-opus-4-1",
            "claude-opus-4-5",
            "claude-sonnet-4",
            "claude-sonnet-4-5-20250929",
            "claude-3-7-sonnet-latest",
            "claude-haiku-4-5",
        ] {
            req.model = model.into();
            assert!(request_body(&req, false).get("thinking").is_some());
        }
        req.model = "claude-3-5-haiku-latest".into();
        let body = request_body(&req, false);
        assert!(body.get("thinking").is_none());
        assert_eq!(body["max_tokens"], 1024);
        assert_eq!(body["temperature"], 0.7);

        // A prefilled answer cannot be combined with thinking.
        req.model = "claude-sonnet-4-5".into();
        req.messages.push(text(Role::Assistant, "It is"));
        let body = request_body(&req, false);
        assert!(body.get("thinking").is_none());
        assert_eq!(body["temperature"], 0.7);
    }

    #[test]
    fn temperatures_above_anthropics_range_are_sent_as_its_maximum() {
        let mut req = request("claude-haiku-4-5", vec![text(Role::User, "hi")]);
        for (asked, sent) in [(0.0, 0.0), (0.7, 0.7), (1.0, 1.0), (1.5, 1.0), (2.0, 1.0)] {
            req.temperature = Some(asked);
            assert_eq!(request_body(&req, false)["temperature"], sent);
        }
    }

    #[test]
    fn parses_the_fixture_responses() {
        let r = parse_response(&fixture::<Anthropic>("messages_response.json")).unwrap();
        assert!(
            r.content
                .starts_with(r#"{"items":[{"product_name":"Green Tea""#)
        );
        assert_eq!(r.id.as_deref(), Some("msg_01T4jd6NyD9xGGtTPDC4ogy5"));
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(
            r.usage,
            Usage {
                prompt_tokens: 406,
                completion_tokens: 50,
                total_tokens: 456
            }
        );
        let r = parse_response(&fixture::<Anthropic>("messages_response_tool_use.json")).unwrap();
        assert_eq!(r.content, "");
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.usage.total_tokens, 656 + 74);
        assert_eq!(
            parse_response(b"<html>").unwrap_err().kind,
            ErrorKind::ProviderUnavailable
        );
    }

    #[test]
    fn response_text_skips_other_blocks_and_counts_cached_input() {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-5",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Hello", "citations": null},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                {"type": "text", "text": " world"},
            ],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 100,
                      "cache_read_input_tokens": null, "output_tokens": 5}
        });
        let r = parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.content, "Hello world");
        assert_eq!(r.finish_reason, FinishReason::Length);
        assert_eq!(
            r.usage,
            Usage {
                prompt_tokens: 110,
                completion_tokens: 5,
                total_tokens: 115
            }
        );
        for (reason, expected) in [
            ("stop_sequence", FinishReason::Stop),
            ("model_context_window_exceeded", FinishReason::Length),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Other),
        ] {
            assert_eq!(finish_reason(Some(reason)), expected);
        }
    }

    fn usage(prompt: u64, completion: u64) -> StreamEvent {
        StreamEvent::Usage(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        })
    }

    #[test]
    fn parses_the_fixture_streams() {
        let events =
            stream_events::<Anthropic>(&fixture::<Anthropic>("messages_stream.sse")).unwrap();
        assert_eq!(
            events.first(),
            Some(&StreamEvent::Model("claude-3-opus-latest".into()))
        );
        assert_eq!(text_of(&events), "Hello there!");
        assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));
        assert_eq!(events.last(), Some(&usage(11, 6)));

        let events =
            stream_events::<Anthropic>(&fixture::<Anthropic>("messages_stream_tool_use.sse"))
                .unwrap();
        assert_eq!(
            text_of(&events),
            "I'll check the current weather in Paris for you."
        );
        assert!(events.contains(&StreamEvent::Finish(FinishReason::ToolCalls)));
        assert_eq!(events.last(), Some(&usage(377, 65)));

        let events =
            stream_events::<Anthropic>(&fixture::<Anthropic>("messages_stream_refusal.sse"))
                .unwrap();
        assert_eq!(text_of(&events), "");
        assert!(events.contains(&StreamEvent::Finish(FinishReason::ContentFilter)));
        assert_eq!(events.last(), Some(&usage(20, 0)));

        let err = stream_events::<Anthropic>(&fixture::<Anthropic>(
            "messages_stream_error_overloaded.sse",
        ))
        .unwrap_err();
        assert_eq!(
            (err.kind, err.retryable, err.message.as_str()),
            (
                ErrorKind::ProviderUnavailable,
                true,
                "anthropic: Overloaded"
            )
        );
    }

    #[test]
    fn stream_events_tolerate_missing_names_unknown_events_and_partial_usage() {
        let mut state = StreamState::default();
        let start = r#"{"type":"message_start","message":{"model":"m","usage":{"input_tokens":3,"cache_read_input_tokens":7,"output_tokens":1}}}"#;
        assert_eq!(
            parse_stream_event(None, start, &mut state).unwrap(),
            Some(vec![StreamEvent::Model("m".into())])
        );
        for (event, data) in [
            (Some("ping"), r#"{"type": "ping"}"#),
            (Some("brand_new_event"), "not even json"),
            (
                Some("content_block_delta"),
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"x"}}"#,
            ),
            (
                Some("content_block_delta"),
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"brand_new_delta"}}"#,
            ),
            (
                Some("content_block_start"),
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            ),
        ] {
            assert_eq!(
                parse_stream_event(event, data, &mut state).unwrap(),
                Some(vec![]),
                "{data}"
            );
        }
        let delta = r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":9}}"#;
        assert_eq!(
            parse_stream_event(Some("message_delta"), delta, &mut state).unwrap(),
            Some(vec![
                StreamEvent::Finish(FinishReason::Length),
                usage(10, 9)
            ])
        );
        // A later delta may repeat the input counts; the latest of each field wins.
        let delta = r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":{"input_tokens":4,"output_tokens":12}}"#;
        assert_eq!(
            parse_stream_event(None, delta, &mut state).unwrap(),
            Some(vec![usage(11, 12)])
        );
        assert_eq!(
            parse_stream_event(None, r#"{"type":"message_stop"}"#, &mut state).unwrap(),
            None
        );
        assert!(parse_stream_event(Some("message_start"), "{", &mut state).is_err());
        assert!(parse_stream_event(None, "not json", &mut state).is_err());
    }

    #[test]
    fn stream_error_events_are_classified_like_http_errors() {
        let mut state = StreamState::default();
        for (error_type, kind, retryable) in [
            ("overloaded_error", ErrorKind::ProviderUnavailable, true),
            ("api_error", ErrorKind::ProviderUnavailable, true),
            ("rate_limit_error", ErrorKind::RateLimited, true),
            ("invalid_request_error", ErrorKind::ProviderRejected, false),
            ("brand_new_error", ErrorKind::ProviderUnavailable, true),
        ] {
            let data = json!({"type": "error", "error": {"type": error_type, "message": "m"}});
            let err = parse_stream_event(Some("error"), &data.to_string(), &mut state).unwrap_err();
            assert_eq!((err.kind, err.retryable), (kind, retryable), "{error_type}");
            assert_eq!(err.message, "anthropic: m");
        }
        let err = parse_stream_event(Some("error"), "oops", &mut state).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall::function(id.into(), name.into(), arguments.into())
    }

    fn weather_tool() -> ToolDef {
        let fixture = fixture_json::<Anthropic>("messages_request_tools.json");
        ToolDef {
            name: "get_weather".into(),
            description: fixture["tools"][0]["description"].as_str().map(Into::into),
            parameters: Some(fixture["tools"][0]["input_schema"].clone()),
            strict: None,
        }
    }

    #[test]
    fn tools_are_sent_as_the_fixture_request_has_them() {
        let req = ChatRequest {
            tools: vec![weather_tool()],
            ..request(
                "claude-haiku-4-5",
                vec![text(Role::User, "What is the weather in SF?")],
            )
        };
        assert_eq!(
            request_body(&req, false),
            fixture_json::<Anthropic>("messages_request_tools.json")
        );

        let bare = ToolDef {
            name: "now".into(),
            description: None,
            parameters: None,
            strict: None,
        };
        assert_eq!(
            tool(&bare),
            json!({"name": "now", "input_schema": {"type": "object", "properties": {}}})
        );
    }

    #[test]
    fn tool_choice_carries_parallel_tool_calls() {
        let mut req = ChatRequest {
            tools: vec![weather_tool()],
            ..request("claude-sonnet-4-5", vec![text(Role::User, "hi")])
        };
        let function = || Some(ToolChoice::Function("get_weather".into()));
        for (choice, parallel, expected) in [
            (None, None, None),
            (None, Some(true), None),
            (
                None,
                Some(false),
                Some(json!({"type": "auto", "disable_parallel_tool_use": true})),
            ),
            (Some(ToolChoice::Auto), None, Some(json!({"type": "auto"}))),
            (
                Some(ToolChoice::Required),
                None,
                Some(json!({"type": "any"})),
            ),
            (
                function(),
                None,
                Some(json!({"type": "tool", "name": "get_weather"})),
            ),
            (Some(ToolChoice::None), None, Some(json!({"type": "none"}))),
            (
                Some(ToolChoice::Required),
                Some(false),
                Some(json!({"type": "any", "disable_parallel_tool_use": true})),
            ),
            (
                function(),
                Some(false),
                Some(
                    json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}),
                ),
            ),
            (
                Some(ToolChoice::None),
                Some(false),
                Some(json!({"type": "none"})),
            ),
            (
                Some(ToolChoice::Auto),
                Some(true),
                Some(json!({"type": "auto"})),
            ),
        ] {
            req.tool_choice = choice.clone();
            req.parallel_tool_calls = parallel;
            let body = request_body(&req, false);
            assert_eq!(
                body.get("tool_choice"),
                expected.as_ref(),
                "{choice:?} {parallel:?}"
            );
        }
        // Without tools nothing about them is sent.
        req.tools.clear();
        req.tool_choice = None;
        let body = request_body(&req, false);
        assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    }

    #[test]
    fn replayed_tool_loops_become_tool_use_and_merged_tool_results() {
        let req = ChatRequest {
            tools: vec![weather_tool()],
            ..request(
                "claude-sonnet-4-5",
                vec![
                    text(Role::System, "Be terse."),
                    text(Role::User, "Weather in Paris and Rome?"),
                    assistant_calls(
                        Some("Let me check."),
                        vec![
                            call(
                                "toolu_1",
                                "get_weather",
                                r#"{"location":"Paris","units":"c"}"#,
                            ),
                            call(
                                "toolu_2",
                                "get_weather",
                                r#"{"location":"Rome","units":"c"}"#,
                            ),
                        ],
                    ),
                    tool_message("toolu_1", Content::Text("18C, cloudy".into())),
                    tool_message(
                        "toolu_2",
                        Content::Parts(vec![text_part("21C,"), text_part("sunny")]),
                    ),
                    text(Role::User, "And Oslo?"),
                    assistant_calls(
                        Some(""),
                        vec![call(
                            "toolu_3",
                            "get_weather",
                            r#"{"location":"Oslo","units":"c"}"#,
                        )],
                    ),
                    tool_message("toolu_3", Content::Text(String::new())),
                    text(Role::Assistant, "Paris 18C, Rome 21C, Oslo unknown."),
                    text(Role::User, "Thanks."),
                    assistant_calls(None, vec![call("toolu_4", "get_weather", "{}")]),
                    tool_message("toolu_4", Content::Text("?".into())),
                ],
            )
        };
        let body = request_body(&req, false);
        assert_eq!(body["system"], "Be terse.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                     "input": {"location": "Paris", "units": "c"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                     "input": {"location": "Rome", "units": "c"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, cloudy"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "21C,\nsunny"},
                    {"type": "text", "text": "And Oslo?"},
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_3", "name": "get_weather",
                     "input": {"location": "Oslo", "units": "c"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_3"},
                ]},
                {"role": "assistant", "content": "Paris 18C, Rome 21C, Oslo unknown."},
                {"role": "user", "content": "Thanks."},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_4", "name": "get_weather", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_4", "content": "?"},
                ]},
            ])
        );
    }

    #[test]
    fn thinking_stays_off_when_tools_are_in_play() {
        let thinking = |req: &ChatRequest| request_body(req, false).get("thinking").cloned();
        let mut req = ChatRequest {
            reasoning_effort: Some(ReasoningEffort::High),
            temperature: Some(0.5),
            ..request("claude-sonnet-4-5", vec![text(Role::User, "hi")])
        };
        assert!(thinking(&req).is_some());

        req.tools = vec![weather_tool()];
        let body = request_body(&req, false);
        assert!(body.get("thinking").is_none());
        assert_eq!(
            (&body["temperature"], &body["max_tokens"]),
            (&json!(0.5), &json!(1024))
        );

        // A history of calls and results is enough, even with no tools offered now.
        req.tools.clear();
        req.messages.extend([
            assistant_calls(None, vec![call("toolu_1", "get_weather", "{}")]),
            tool_message("toolu_1", Content::Text("18C".into())),
        ]);
        assert!(thinking(&req).is_none());
        req.messages.truncate(2);
        assert!(thinking(&req).is_none());
    }

    #[test]
    fn response_format_is_native_where_supported_and_an_instruction_elsewhere() {
        let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}},
                            "required": ["answer"], "additionalProperties": false});
        let json_schema = ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: schema.clone(),
            strict: Some(true),
        };
        let mut req = ChatRequest {
            response_format: Some(json_schema.clone()),
            ..request("claude-sonnet-4-5", vec![text(Role::User, "hi")])
        };
        for model in [
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
            "claude-opus-4-5",
            "claude-haiku-4-5-20251001",
            "claude-opus-4-6",
            "claude-sonnet-4-6",
        ] {
            req.model = model.into();
            let body = request_body(&req, false);
            assert_eq!(
                body["output_config"],
                json!({"format": {"type": "json_schema", "schema": schema}}),
                "{model}"
            );
            assert!(body.get("system").is_none(), "{model}");
        }

        let instruction =
            format!("Respond with only a JSON object that conforms to this JSON Schema: {schema}");
        for model in [
            "claude-opus-4-1",
            "claude-sonnet-4",
            "claude-3-5-haiku-latest",
        ] {
            req.model = model.into();
            let body = request_body(&req, false);
            assert!(body.get("output_config").is_none(), "{model}");
            assert_eq!(body["system"], instruction.as_str(), "{model}");
        }
        req.messages.insert(0, text(Role::System, "Be terse."));
        assert_eq!(
            request_body(&req, false)["system"],
            format!("Be terse.\n\n{instruction}").as_str()
        );

        req.model = "claude-sonnet-4-5".into();
        req.response_format = Some(ResponseFormat::JsonObject);
        let body = request_body(&req, false);
        assert!(body.get("output_config").is_none());
        assert_eq!(
            body["system"],
            "Be terse.\n\nRespond with only a JSON object."
        );

        req.response_format = Some(ResponseFormat::Text);
        assert_eq!(
            request_body(&req, false),
            request_body(
                &ChatRequest {
                    response_format: None,
                    ..req.clone()
                },
                false
            )
        );
    }

    #[test]
    fn answers_tool_use_blocks_become_tool_calls_in_order() {
        let r = parse_response(&fixture::<Anthropic>("messages_response_tool_use.json")).unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        let [asked] = r.tool_calls.as_slice() else {
            panic!("{:?}", r.tool_calls)
        };
        assert_eq!(
            (asked.id.as_str(), asked.function.name.as_str()),
            ("toolu_01A9HHF5Ezy3oBrKmSgfASm9", "get_weather")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&asked.function.arguments).unwrap(),
            json!({"location": "San Francisco, CA", "units": "f"})
        );

        let body = json!({
            "id": "msg_1", "model": "claude-sonnet-4-5", "stop_reason": "tool_use",
            "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
            "usage": {"input_tokens": 1, "output_tokens": 2}
        });
        let r = parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.content, "Checking both.");
        assert_eq!(
            r.tool_calls,
            vec![
                call("toolu_a", "get_weather", r#"{"location":"Paris"}"#),
                call("toolu_b", "get_time", "{}"),
            ]
        );
    }

    #[test]
    fn the_fixture_stream_gives_the_tool_call_in_pieces() {
        let events =
            stream_events::<Anthropic>(&fixture::<Anthropic>("messages_stream_tool_use.sse"))
                .unwrap();
        let pieces: Vec<&ToolCallDelta> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall(delta) => Some(delta),
                _ => None,
            })
            .collect();
        // The first piece names the call; the empty fragment after it is skipped.
        assert_eq!(
            pieces.first(),
            Some(&&ToolCallDelta {
                index: 0,
                id: Some("toolu_01NRLabsLyVHZPKxbKvkfSMn".into()),
                name: Some("get_weather".into()),
                arguments: String::new(),
            })
        );
        assert_eq!(pieces.len(), 5);
        assert!(
            pieces[1..]
                .iter()
                .all(|p| p.index == 0 && p.id.is_none() && p.name.is_none())
        );
        let calls = tool_calls_of(&events);
        assert_eq!(
            calls,
            vec![call(
                "toolu_01NRLabsLyVHZPKxbKvkfSMn",
                "get_weather",
                r#"{"location": "Paris"}"#
            )]
        );
        assert_eq!(
            serde_json::from_str::<Value>(&calls[0].function.arguments).unwrap(),
            json!({"location": "Paris"})
        );
    }

    #[test]
    fn tool_calls_are_numbered_among_calls_not_blocks() {
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let start = |index: u32, block: Value| {
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": block}),
            )
        };
        let input = |index: u32, partial: &str| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": partial}}),
            )
        };
        let sse = [
            event(
                "message_start",
                json!({"type": "message_start", "message": {"model": "claude-sonnet-4-5", "usage": {"input_tokens": 5}}}),
            ),
            start(0, json!({"type": "text", "text": ""})),
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Both."}}),
            ),
            start(1, json!({"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}})),
            input(1, "{\"location\":"),
            input(1, "\"Paris\"}"),
            start(2, json!({"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}})),
            input(2, ""),
            start(3, json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}})),
            input(3, "{\"query\":\"x\"}"),
            event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            ),
            event("message_stop", json!({"type": "message_stop"})),
        ]
        .concat();
        let events = stream_events::<Anthropic>(sse.as_bytes()).unwrap();
        let piece = |index, id: Option<&str>, name: Option<&str>, arguments: &str| {
            StreamEvent::ToolCall(ToolCallDelta {
                index,
                id: id.map(Into::into),
                name: name.map(Into::into),
                arguments: arguments.into(),
            })
        };
        assert_eq!(
            events,
            vec![
                StreamEvent::Model("claude-sonnet-4-5".into()),
                StreamEvent::Delta("Both.".into()),
                piece(0, Some("toolu_a"), Some("get_weather"), ""),
                piece(0, None, None, "{\"location\":"),
                piece(0, None, None, "\"Paris\"}"),
                piece(1, Some("toolu_b"), Some("get_time"), ""),
                StreamEvent::Finish(FinishReason::ToolCalls),
                usage(5, 9),
            ]
        );
        assert_eq!(
            tool_calls_of(&events),
            vec![
                call("toolu_a", "get_weather", r#"{"location":"Paris"}"#),
                call("toolu_b", "get_time", ""),
            ]
        );
    }

    fn fixture_headers(name: &str) -> HeaderMap {
        let text = String::from_utf8(fixture::<Anthropic>(name)).unwrap();
        let mut headers = HeaderMap::new();
        for line in text.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(
                    HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        headers
    }

    #[test]
    fn each_error_fixture_maps_to_its_contract_kind() {
        let empty = HeaderMap::new();
        for (status, file, kind, retryable) in [
            (
                400,
                "error_400_invalid_request.json",
                ErrorKind::ProviderRejected,
                false,
            ),
            (
                401,
                "error_401_authentication.json",
                ErrorKind::ProviderAuth,
                false,
            ),
            (
                403,
                "error_403_permission.json",
                ErrorKind::ProviderAuth,
                false,
            ),
            (
                404,
                "error_404_not_found.json",
                ErrorKind::ModelNotFound,
                false,
            ),
            (
                413,
                "error_413_request_too_large.json",
                ErrorKind::ProviderRejected,
                false,
            ),
            (
                429,
                "error_429_rate_limit.json",
                ErrorKind::RateLimited,
                true,
            ),
            (
                500,
                "error_500_api_error.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
            (
                529,
                "error_529_overloaded.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
        ] {
            let err = error_from_response::<Anthropic>(status, &empty, &fixture::<Anthropic>(file));
            assert_eq!(
                (err.kind, err.retryable, err.status),
                (kind, retryable, Some(status)),
                "{file}"
            );
            assert_eq!(err.provider, Some(NAME));
        }
        let err = error_from_response::<Anthropic>(
            429,
            &fixture_headers("error_429_rate_limit.headers.txt"),
            &fixture::<Anthropic>("error_429_rate_limit.json"),
        );
        assert_eq!(err.retry_after, Some(Duration::from_secs(12)));
        assert_eq!(
            err.message,
            "anthropic: This request would exceed the rate limit for your organization of 50,000 input tokens per minute."
        );
    }

    #[test]
    fn error_types_decide_and_statuses_fill_in() {
        let empty = HeaderMap::new();
        let body = |error_type: &str, message: &str| {
            json!({"type": "error", "error": {"type": error_type, "message": message}})
                .to_string()
                .into_bytes()
        };
        for (status, body, kind, retryable) in [
            (
                400,
                body(
                    "invalid_request_error",
                    "prompt is too long: 208310 tokens > 200000 maximum",
                ),
                ErrorKind::ContextLengthExceeded,
                false,
            ),
            (
                400,
                body(
                    "invalid_request_error",
                    "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000",
                ),
                ErrorKind::ContextLengthExceeded,
                false,
            ),
            (
                402,
                body("billing_error", "Your credit balance is too low"),
                ErrorKind::ProviderRejected,
                false,
            ),
            (
                504,
                body("timeout_error", "Request timed out"),
                ErrorKind::ProviderUnavailable,
                true,
            ),
            (
                418,
                body("brand_new_error", "?"),
                ErrorKind::ProviderRejected,
                false,
            ),
            (401, b"".to_vec(), ErrorKind::ProviderAuth, false),
            (403, b"Forbidden".to_vec(), ErrorKind::ProviderAuth, false),
            (404, b"".to_vec(), ErrorKind::ModelNotFound, false),
            (429, b"".to_vec(), ErrorKind::RateLimited, true),
            (408, b"".to_vec(), ErrorKind::ProviderRejected, true),
            (409, b"".to_vec(), ErrorKind::ProviderRejected, true),
            (413, b"<html>".to_vec(), ErrorKind::ProviderRejected, false),
            (
                502,
                b"Bad Gateway".to_vec(),
                ErrorKind::ProviderUnavailable,
                true,
            ),
            (529, b"".to_vec(), ErrorKind::ProviderUnavailable, true),
        ] {
            let err = error_from_response::<Anthropic>(status, &empty, &body);
            assert_eq!(
                (err.kind, err.retryable, err.status),
                (kind, retryable, Some(status)),
                "{status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        assert_eq!(
            error_from_response::<Anthropic>(502, &empty, b"Bad Gateway").message,
            "anthropic: HTTP 502"
        );
    }

    mod upstream {
        use super::*;
        use crate::config::Config;
        use crate::providers::{Driver, Provider, http_client};
        use futures::StreamExt;
        use wiremock::matchers::{body_partial_json, header, method, path};
        use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

        const KEY: &str = "test-anthropic-key-0123456789";

        fn provider(server: &MockServer) -> Driver<Anthropic> {
            // A trailing slash on the base URL must not double up in the path.
            let base = format!("{}/", server.uri());
            let env = |name: &str| match name {
                "ANTHROPIC_API_KEY" => Some(KEY.to_owned()),
                "ANTHROPIC_BASE_URL" => Some(base.clone()),
                _ => None,
            };
            let config = Config::load(None, &env).unwrap();
            Driver::new(
                http_client(Duration::from_secs(5)).unwrap(),
                config.provider(NAME).clone(),
            )
            .unwrap()
        }

        fn trace() -> UpstreamTrace {
            UpstreamTrace {
                traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
                request_id: "req-42".into(),
            }
        }

        fn expected_request() -> MockBuilder {
            Mock::given(method("POST"))
                .and(path("/v1/messages"))
                .and(header("x-api-key", KEY))
                .and(header("anthropic-version", API_VERSION))
                .and(header("traceparent", trace().traceparent.as_str()))
                .and(header("x-request-id", "req-42"))
        }

        #[tokio::test]
        async fn complete_sends_the_headers_and_parses_the_answer() {
            let server = MockServer::start().await;
            expected_request()
                .and(body_partial_json(
                    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024}),
                ))
                .respond_with(ResponseTemplate::new(200).set_body_raw(
                    fixture::<Anthropic>("messages_response.json"),
                    "application/json",
                ))
                .expect(1)
                .mount(&server)
                .await;
            let req = request("claude-sonnet-4-5", vec![text(Role::User, "hi")]);
            let r = provider(&server).complete(&req, &trace()).await.unwrap();
            assert_eq!(r.usage.total_tokens, 456);
        }

        #[tokio::test]
        async fn stream_stops_at_message_stop() {
            let server = MockServer::start().await;
            let mut body = fixture::<Anthropic>("messages_stream.sse");
            body.extend_from_slice(
                b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"AFTER\"}}\n\n",
            );
            expected_request()
                .and(body_partial_json(json!({"stream": true})))
                .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
                .expect(1)
                .mount(&server)
                .await;
            let req = request("claude-sonnet-4-5", vec![text(Role::User, "hi")]);
            let events: Vec<StreamEvent> = provider(&server)
                .stream(&req, &trace())
                .await
                .unwrap()
                .map(Result::unwrap)
                .collect()
                .await;
            assert_eq!(text_of(&events), "Hello there!");
            assert_eq!(events.last(), Some(&usage(11, 6)));
        }

        #[tokio::test]
        async fn http_errors_are_classified_and_redacted() {
            let server = MockServer::start().await;
            let body = json!({"type": "error", "error": {"type": "overloaded_error", "message": format!("Overloaded for {KEY}")}});
            expected_request()
                .respond_with(
                    ResponseTemplate::new(529)
                        .insert_header("retry-after", "3")
                        .set_body_json(body),
                )
                .mount(&server)
                .await;
            let req = request("claude-sonnet-4-5", vec![text(Role::User, "hi")]);
            let err = provider(&server)
                .complete(&req, &trace())
                .await
                .unwrap_err();
            assert_eq!(
                (err.kind, err.retryable, err.status, err.retry_after),
                (
                    ErrorKind::ProviderUnavailable,
                    true,
                    Some(529),
                    Some(Duration::from_secs(3))
                )
            );
            assert_eq!(err.message, "anthropic: Overloaded for [redacted]");
        }

        #[tokio::test]
        async fn stream_error_events_end_the_stream_with_an_error() {
            let server = MockServer::start().await;
            expected_request()
                .respond_with(ResponseTemplate::new(200).set_body_raw(
                    fixture::<Anthropic>("messages_stream_error_overloaded.sse"),
                    "text/event-stream",
                ))
                .mount(&server)
                .await;
            let req = request("claude-sonnet-4-5", vec![text(Role::User, "hi")]);
            let items: Vec<Result<StreamEvent, Error>> = provider(&server)
                .stream(&req, &trace())
                .await
                .unwrap()
                .collect()
                .await;
            assert_eq!(
                items[1].as_ref().unwrap(),
                &StreamEvent::Delta("Hello".into())
            );
            let err = items.last().unwrap().as_ref().unwrap_err();
            assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
        }
    }
}
