//! The Messages body for a call: the turns (Anthropic has no system role and wants user and
//! assistant to alternate), content blocks and images, extended thinking, sampling and
//! structured output. Tools and the turns of a tool loop are `tools.rs`'s.

use serde_json::{Value, json};

use super::models::MODELS;
use super::tools::{tool, tool_choice, tool_result, tool_use_blocks, uses_tools};
use crate::types::{
    ChatRequest, Content, ImageSource, Message, Part, Reasoning, ReasoningEffort, ResponseFormat,
    Role, system_prompt,
};

/// Anthropic requires `max_tokens`; this is the cap when the caller sets none.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Anthropic's highest temperature.
const MAX_TEMPERATURE: f64 = 1.0;

/// Room left for the visible answer when thinking spends its whole budget.
const ANSWER_ROOM: u32 = 1024;

/// Models that accept extended thinking ([`Reasoning::ThinkingBudget`] in the table); older ones
/// reject the `thinking` field.
fn supports_thinking(model: &str) -> bool {
    MODELS.capabilities(model).reasoning == Reasoning::ThinkingBudget
}

fn thinking_budget(effort: ReasoningEffort) -> u32 {
    match effort {
        ReasoningEffort::Low => 1024,
        ReasoningEffort::Medium => 4096,
        ReasoningEffort::High => 16384,
    }
}

/// Models that take a JSON Schema for the answer natively (`output_config.format`), as the
/// table says.
fn supports_structured_outputs(model: &str) -> bool {
    MODELS.capabilities(model).json_schema
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
/// The `max_tokens` a call is sent with, at most: thinking raises it to its budget and room
/// for the answer. (A prefilled call, whose thinking stays off, may be sent with less.)
pub(super) fn output_cap(model: &str, req: &ChatRequest) -> u32 {
    let max_tokens = req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let thinking = req
        .reasoning_effort
        .filter(|_| supports_thinking(model) && !uses_tools(req))
        .map(thinking_budget);
    match thinking {
        Some(budget) => max_tokens.max(budget.saturating_add(ANSWER_ROOM)),
        None => max_tokens,
    }
}

pub(super) fn request_body(req: &ChatRequest, stream: bool) -> Value {
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
    said.chain(tool_use_blocks(message))
        .map(Piece::Block)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::Anthropic;
    use crate::providers::testing::*;

    /// The output a team is reserved for is what is sent: `reasoning_effort: high` with
    /// `max_tokens: 16` goes as 17,408 (the 16,384 budget and room for the answer), which the
    /// reservation once priced as 16.
    #[test]
    fn the_output_cap_is_the_max_tokens_sent() {
        let mut req = request(
            "claude-sonnet-4-5",
            vec![Message::new(Role::User, Content::Text("hi".into()))],
        );
        req.max_tokens = Some(16);
        assert_eq!(output_cap(&req.model, &req), 16);
        req.reasoning_effort = Some(ReasoningEffort::High);
        assert_eq!(output_cap(&req.model, &req), 17_408);
        assert_eq!(request_body(&req, false)["max_tokens"], 17_408);
        req.model = "claude-3-5-haiku-latest".into();
        assert_eq!(output_cap(&req.model, &req), 16);
    }

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
}
