//! A whole Messages answer, and the wire types its stream's events share with it (usage, content
//! blocks, stop reasons).

use serde::Deserialize;
use serde_json::Value;

use super::error::invalid;
use crate::error::Error;
use crate::types::{ChatResponse, FinishReason, ToolCall, Usage};

/// Counts as Anthropic reports them: a `null` or missing field is unknown, not zero.
#[derive(Deserialize, Default, Debug, Clone, Copy)]
#[serde(default)]
pub(super) struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Streamed usage is cumulative and `message_delta` may repeat only some fields.
    pub(super) fn update(&mut self, newer: WireUsage) {
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
pub(super) enum WireBlock {
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

pub(super) fn finish_reason(value: Option<&str>) -> FinishReason {
    match value {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

pub(super) fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(|_| invalid("response"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::Anthropic;
    use crate::providers::testing::*;
    use serde_json::json;

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall::function(id.into(), name.into(), arguments.into())
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
}
