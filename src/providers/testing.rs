//! What the adapters' tests (and the conformance suite) share: their fixtures, conversations in
//! the common types, and an adapter's functions run over bytes the way the driver runs them.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::adapter::Adapter;
use crate::error::Error;
use crate::sse::SseDecoder;
use crate::types::{ChatRequest, Content, ImageUrl, Message, Part, Role, StreamEvent};

pub(super) fn fixture<A: Adapter>(name: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let path = format!("{dir}/{}/{name}", A::NAME);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(super) fn fixture_json<A: Adapter>(name: &str) -> Value {
    serde_json::from_slice(&fixture::<A>(name)).unwrap()
}

/// A recorded answer's headers (`<status line>` then `name: value` lines).
pub(super) fn fixture_headers<A: Adapter>(name: &str) -> HeaderMap {
    let text = String::from_utf8(fixture::<A>(name)).unwrap();
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

/// An error answer as the driver classifies it.
pub(super) fn error_from_response<A: Adapter>(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Error {
    super::driver::http_error::<A>(status, headers, body)
}

/// The events of a whole SSE body, up to the adapter's end event or the body's end.
pub(super) fn stream_events<A: Adapter>(bytes: &[u8]) -> Result<Vec<StreamEvent>, Error> {
    let mut decoder = SseDecoder::new();
    let mut events = decoder.push(bytes);
    events.extend(decoder.finish());
    let mut state = A::StreamState::default();
    let mut out = Vec::new();
    for event in events {
        match A::parse_stream_event(&event, &mut state)? {
            Some(parsed) => out.extend(parsed),
            None => break,
        }
    }
    Ok(out)
}

/// The text the deltas add up to.
pub(super) fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Delta(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub(super) fn text(role: Role, text: &str) -> Message {
    Message::new(role, Content::Text(text.into()))
}

pub(super) fn parts(role: Role, parts: Vec<Part>) -> Message {
    Message::new(role, Content::Parts(parts))
}

pub(super) fn image(url: &str) -> Part {
    Part::ImageUrl {
        image_url: ImageUrl { url: url.into() },
    }
}

pub(super) fn text_part(text: &str) -> Part {
    Part::Text { text: text.into() }
}

/// A request with only the model and the messages set.
pub(super) fn request(model: &str, messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages,
        ..ChatRequest::default()
    }
}

/// The tool calls a stream's pieces add up to.
pub(super) fn tool_calls_of(events: &[StreamEvent]) -> Vec<crate::types::ToolCall> {
    let mut assembler = crate::types::ToolCallAssembler::default();
    for event in events {
        if let StreamEvent::ToolCall(delta) = event {
            assembler.push(delta);
        }
    }
    assembler.finish()
}

/// An assistant turn of a tool loop: what it said, if anything, and the calls it made.
pub(super) fn assistant_calls(said: Option<&str>, calls: Vec<crate::types::ToolCall>) -> Message {
    Message {
        content: said.map(|text| Content::Text(text.into())),
        tool_calls: calls,
        ..Message::new(Role::Assistant, Content::Text(String::new()))
    }
}

/// A tool's result, answering the call `id`.
pub(super) fn tool_message(id: &str, content: Content) -> Message {
    Message {
        tool_call_id: Some(id.into()),
        ..Message::new(Role::Tool, content)
    }
}
