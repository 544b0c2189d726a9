//! One `data:` payload of a `streamGenerateContent?alt=sse` stream: a whole
//! `GenerateContentResponse` with only the new text and the new calls, or an error. There is no
//! end event: the answer ends with the body.

use super::error::{invalid, stream_error};
use super::response::{WireResponse, finish_with_calls};
use crate::error::Error;
use crate::types::{StreamEvent, ToolCallDelta};

/// What a stream remembers: how many calls it has passed on, which numbers the next one and
/// says, at the finish, that the answer asked for tools.
#[derive(Default)]
pub(crate) struct StreamCalls {
    calls: u32,
}

/// One `data:` payload of the stream: a whole `GenerateContentResponse` with only the new text
/// and the new calls. Gemini sends each call whole in one chunk, so each is one delta with its
/// id, name and all its arguments. Usage is complete only on the last chunk, so it is sent each
/// time and the last one wins.
pub(super) fn parse_stream_data(
    data: &str,
    state: &mut StreamCalls,
) -> Result<Vec<StreamEvent>, Error> {
    if data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut chunk: WireResponse =
        serde_json::from_str(data).map_err(|_| invalid("stream event"))?;
    if let Some(err) = chunk.error.take() {
        return Err(stream_error(err));
    }
    if let Some(err) = chunk.blocked() {
        return Err(err);
    }
    let mut events = Vec::new();
    if let Some(model) = chunk.model_version {
        events.push(StreamEvent::Model(model));
    }
    if let Some(candidate) = chunk.candidates.first() {
        let text = candidate.text();
        if !text.is_empty() {
            events.push(StreamEvent::Delta(text));
        }
        for call in candidate.tool_calls(state.calls) {
            events.push(StreamEvent::ToolCall(ToolCallDelta {
                index: state.calls,
                id: Some(call.id),
                name: Some(call.function.name),
                arguments: call.function.arguments,
            }));
            state.calls += 1;
        }
        if let Some(reason) = candidate.finish_reason.as_deref() {
            events.push(StreamEvent::Finish(finish_with_calls(
                Some(reason),
                state.calls > 0,
            )));
        }
    }
    if let Some(usage) = chunk.usage_metadata {
        events.push(StreamEvent::Usage(usage.into()));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::ErrorKind;
    use crate::providers::gemini::Gemini;
    use crate::providers::testing::*;

    #[test]
    fn the_fixture_streams_say_what_gemini_said() {
        for (name, text, model) in [
            (
                "stream_generate_content.sse",
                "Certainly! I'll create a simple \"Hello, World!\" page where each letter has a \
                 different color using inline styles for simplicity.  Each letter will be wrapped",
                "gemini-1.5-pro-002",
            ),
            (
                "stream_generate_content_current.sse",
                "Hello! How can I help you today?",
                "gemini-2.5-flash",
            ),
        ] {
            let events = stream_events::<Gemini>(&fixture::<Gemini>(name)).unwrap();
            assert_eq!(text_of(&events), text, "{name}");
            assert_eq!(events.first(), Some(&StreamEvent::Model(model.into())));
        }
    }

    /// One event of a stream that has just begun.
    fn stream_data(data: &str) -> Result<Vec<StreamEvent>, Error> {
        parse_stream_data(data, &mut StreamCalls::default())
    }

    #[test]
    fn errors_and_blocks_inside_a_stream_are_errors() {
        let err = stream_data(
            r#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12.5s"}]}}"#,
        )
        .unwrap_err();
        assert_eq!((err.kind, err.retryable), (ErrorKind::RateLimited, true));
        assert_eq!(err.retry_after, Some(Duration::from_millis(12_500)));
        assert_eq!(err.message, "gemini: slow down");
        let err = stream_data(
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
        let err = stream_data(r#"{"error":{"code":400,"message":"bad"}}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderRejected);
        let err = stream_data(
            r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"modelVersion":"gemini-2.5-flash"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (err.kind, err.retryable),
            (ErrorKind::ProviderRejected, false)
        );
        assert_eq!(
            stream_data("not json").unwrap_err().kind,
            ErrorKind::ProviderUnavailable
        );
    }
}
