//! A whole Chat Completions answer, and the wire types its stream's chunks share with it.

use serde::Deserialize;

use super::error::invalid;
use crate::error::Error;
use crate::types::{ChatResponse, FinishReason, ToolCall, Usage};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let total = if u.total_tokens > 0 {
            u.total_tokens
        } else {
            u.prompt_tokens + u.completion_tokens
        };
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: total,
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct WireMessage {
    pub(super) content: Option<String>,
    pub(super) refusal: Option<String>,
    #[serde(default)]
    pub(super) tool_calls: Vec<WireToolCall>,
}

/// A whole call in an answer, or a piece of one in a stream (where all but `index` may be
/// missing).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WireToolCall {
    pub(super) index: u32,
    pub(super) id: Option<String>,
    pub(super) function: WireFunction,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WireFunction {
    pub(super) name: Option<String>,
    pub(super) arguments: Option<String>,
}

pub(super) fn finish_reason(value: Option<&str>) -> FinishReason {
    match value {
        Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        _ => FinishReason::Other,
    }
}

pub(super) fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(|_| invalid("response"))?;
    let choice = wire
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid("response (no choices)"))?;
    // A refusal is what the model said; callers see it as the content.
    let content = choice
        .message
        .content
        .or(choice.message.refusal)
        .unwrap_or_default();
    let tool_calls = choice
        .message
        .tool_calls
        .into_iter()
        .map(|call| {
            let WireFunction { name, arguments } = call.function;
            let arguments = arguments.unwrap_or_default();
            ToolCall::function(
                call.id.unwrap_or_default(),
                name.unwrap_or_default(),
                arguments,
            )
        })
        .collect();
    Ok(ChatResponse {
        tool_calls,
        id: wire.id,
        model: wire.model,
        content,
        usage: wire.usage.map(Usage::from).unwrap_or_default(),
        finish_reason: finish_reason(choice.finish_reason.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::OpenAi;
    use crate::providers::testing::fixture;
    use serde_json::{Value, json};

    #[test]
    fn parses_the_fixture_responses() {
        let r = parse_response(&fixture::<OpenAi>("chat_completion.json")).unwrap();
        assert_eq!(r.content, "Hello! How can I assist you today?");
        assert_eq!(
            r.usage,
            Usage {
                prompt_tokens: 19,
                completion_tokens: 10,
                total_tokens: 29
            }
        );
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(r.model.as_deref(), Some("gpt-5.4"));
        let r = parse_response(&fixture::<OpenAi>("chat_completion_tool_calls.json")).unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert!(parse_response(&fixture::<OpenAi>("chat_completion_image_input.json")).is_ok());
    }

    #[test]
    fn tool_calls_are_read_from_answers() {
        let r = parse_response(&fixture::<OpenAi>("chat_completion_tool_calls.json")).unwrap();
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.content, "");
        let [call] = r.tool_calls.as_slice() else {
            panic!("{:?}", r.tool_calls);
        };
        assert_eq!(
            (call.id.as_str(), call.function.name.as_str()),
            ("call_abc123", "get_current_weather")
        );
        let args: Value = serde_json::from_str(&call.function.arguments).unwrap();
        assert_eq!(args, json!({"location": "Boston, MA"}));
    }
}
