//! One event of a Messages stream, named by its `event:` line: the message's start (model and
//! input counts), its content blocks' starts and deltas (text, and `tool_use` input in
//! fragments), its delta (stop reason and output counts), its stop, or an error.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::{invalid, stream_error};
use super::response::{WireBlock, WireUsage, finish_reason};
use crate::error::Error;
use crate::types::{StreamEvent, ToolCallDelta};

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
    serde_json::from_str(data).map_err(|_| invalid("stream event"))
}

/// One SSE event of the stream, named by its `event:` line (or, lacking one, its `type`).
/// `Ok(None)` is `message_stop`; unknown events and `ping` give no events.
///
/// A `tool_use` block's start gives the call's id and name, its `input_json_delta`s the
/// arguments' text in fragments (an input fragment of any other block, a server tool's, is
/// skipped).
pub(super) fn parse_stream_event(
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
        "error" => return Err(stream_error(data)),
        _ => {}
    }
    Ok(Some(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::providers::anthropic::Anthropic;
    use crate::providers::testing::*;
    use crate::types::{FinishReason, ToolCall, Usage};
    use serde_json::{Value, json};

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall::function(id.into(), name.into(), arguments.into())
    }

    fn usage(prompt: u64, completion: u64) -> StreamEvent {
        StreamEvent::Usage(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        })
    }

    #[test]
    fn the_fixture_streams_say_what_claude_said_and_end_with_their_usage() {
        let events =
            stream_events::<Anthropic>(&fixture::<Anthropic>("messages_stream.sse")).unwrap();
        assert_eq!(
            events.first(),
            Some(&StreamEvent::Model("claude-3-opus-latest".into()))
        );
        assert_eq!(text_of(&events), "Hello there!");
        assert_eq!(events.last(), Some(&usage(11, 6)));

        let events =
            stream_events::<Anthropic>(&fixture::<Anthropic>("messages_stream_tool_use.sse"))
                .unwrap();
        assert_eq!(
            text_of(&events),
            "I'll check the current weather in Paris for you."
        );
        assert_eq!(events.last(), Some(&usage(377, 65)));

        let events =
            stream_events::<Anthropic>(&fixture::<Anthropic>("messages_stream_refusal.sse"))
                .unwrap();
        assert_eq!(text_of(&events), "");
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
}
