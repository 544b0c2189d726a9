//! One `data:` payload of a Chat Completions stream: a chunk of the answer, the usage chunk
//! (asked for with `stream_options.include_usage`), an error, or the `[DONE]` terminator.

use serde::Deserialize;

use super::error::{WireError, invalid, stream_error};
use super::response::{WireMessage, WireUsage, finish_reason};
use crate::error::Error;
use crate::types::{StreamEvent, ToolCallDelta};

#[derive(Deserialize)]
struct WireChunk {
    model: Option<String>,
    // Some compatible servers send `null` or omit the field on the usage chunk.
    choices: Option<Vec<WireChunkChoice>>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: WireMessage,
    finish_reason: Option<String>,
}

/// One `data:` payload of the stream: `Ok(None)` is the `[DONE]` terminator.
pub(super) fn parse_stream_data(data: &str) -> Result<Option<Vec<StreamEvent>>, Error> {
    if data.trim() == "[DONE]" {
        return Ok(None);
    }
    let chunk: WireChunk = serde_json::from_str(data).map_err(|_| invalid("stream event"))?;
    if let Some(err) = chunk.error {
        return Err(stream_error(err));
    }
    let mut events = Vec::new();
    if let Some(model) = chunk.model {
        events.push(StreamEvent::Model(model));
    }
    for choice in chunk.choices.unwrap_or_default().into_iter().take(1) {
        if let Some(text) = choice
            .delta
            .content
            .or(choice.delta.refusal)
            .filter(|t| !t.is_empty())
        {
            events.push(StreamEvent::Delta(text));
        }
        for call in choice.delta.tool_calls {
            events.push(StreamEvent::ToolCall(ToolCallDelta {
                index: call.index,
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments.unwrap_or_default(),
            }));
        }
        if let Some(reason) = choice.finish_reason {
            events.push(StreamEvent::Finish(finish_reason(Some(&reason))));
        }
    }
    if let Some(usage) = chunk.usage {
        events.push(StreamEvent::Usage(usage.into()));
    }
    Ok(Some(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::providers::openai::OpenAi;
    use crate::providers::testing::*;
    use serde_json::{Value, json};

    #[test]
    fn the_fixture_streams_say_what_the_model_said() {
        let events =
            stream_events::<OpenAi>(&fixture::<OpenAi>("chat_completion_stream.sse")).unwrap();
        assert!(text_of(&events).starts_with("I'm unable to"));
        let events =
            stream_events::<OpenAi>(&fixture::<OpenAi>("chat_completion_stream_refusal.sse"))
                .unwrap();
        // A refusal is what the model said; callers see it as the content.
        assert!(text_of(&events).ends_with("that request."));
    }

    #[test]
    fn tool_calls_are_assembled_from_streams() {
        let events =
            stream_events::<OpenAi>(&fixture::<OpenAi>("chat_completion_stream_tool_calls.sse"))
                .unwrap();
        let deltas: Vec<&ToolCallDelta> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(
            deltas[0].id.as_deref(),
            Some("call_4XzlGBLtUe9dy3GVNV4jhq7h")
        );
        assert_eq!(deltas[0].name.as_deref(), Some("get_weather"));
        assert!(
            deltas[1..]
                .iter()
                .all(|d| d.id.is_none() && d.name.is_none())
        );
        let mut assembler = crate::types::ToolCallAssembler::default();
        deltas.iter().for_each(|d| assembler.push(d));
        let calls = assembler.finish();
        let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
        assert!(args["city"].is_string(), "{args}");
    }

    proptest::proptest! {
        /// A streamed call's arguments, cut into fragments anywhere (inside a JSON string, inside
        /// a UTF-8 character once encoded) and its SSE bytes cut anywhere too, come back whole.
        #[test]
        fn streamed_arguments_assemble_whatever_the_cuts(
            city in "[a-zé€😀\"\\ ]{0,12}",
            fragment_cuts in proptest::collection::vec(0usize..64, 0..6),
            byte_cuts in proptest::collection::vec(0usize..4096, 0..8),
        ) {
            let arguments = json!({ "city": city }).to_string();
            let chars: Vec<char> = arguments.chars().collect();
            let mut points: Vec<usize> =
                fragment_cuts.iter().map(|c| c % (chars.len() + 1)).collect();
            points.sort_unstable();
            let mut sse = String::new();
            let mut last = 0;
            for (n, point) in points.into_iter().chain([chars.len()]).enumerate() {
                let mut call = json!({ "index": 0, "function": {
                    "arguments": chars[last..point].iter().collect::<String>() } });
                if n == 0 {
                    call["id"] = json!("call_1");
                    call["function"]["name"] = json!("get_weather");
                }
                let chunk = json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [call] } }] });
                sse += &format!("data: {chunk}\n\n");
                last = point;
            }
            sse += "data: [DONE]\n\n";
            let bytes = sse.as_bytes();
            let mut cuts: Vec<usize> = byte_cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut decoder = crate::sse::SseDecoder::new();
            let mut events = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                events.extend(decoder.push(&bytes[from..cut]));
                from = cut;
            }
            events.extend(decoder.finish());
            let mut assembler = crate::types::ToolCallAssembler::default();
            for event in events {
                let Some(parsed) = parse_stream_data(&event.data).unwrap() else {
                    break;
                };
                for e in parsed {
                    if let StreamEvent::ToolCall(delta) = e {
                        assembler.push(&delta);
                    }
                }
            }
            let calls = assembler.finish();
            proptest::prop_assert_eq!(calls.len(), 1);
            proptest::prop_assert_eq!(&calls[0].id, "call_1");
            proptest::prop_assert_eq!(&calls[0].function.arguments, &arguments);
        }
    }

    #[test]
    fn mid_stream_error_event_is_an_error() {
        let err =
            parse_stream_data(r#"{"error":{"message":"boom","type":"server_error"}}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
        assert!(parse_stream_data("not json").is_err());
    }
}
