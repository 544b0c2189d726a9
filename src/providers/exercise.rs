//! An adapter's parsers run over arbitrary bytes, as the fuzz targets do (through
//! [`exercise`](super::exercise), which picks the adapter by name): whatever a provider sends,
//! no parser may panic or hang.

use super::adapter::Adapter;

/// The first byte picks the answer, stream or error parser; the rest is what the provider sent.
pub(crate) fn parsers<A: Adapter>(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => drop(A::parse_response(body)),
        1 => {
            let mut decoder = crate::sse::SseDecoder::new();
            let mut events = decoder.push(body);
            events.extend(decoder.finish());
            let mut state = A::StreamState::default();
            for event in &events {
                if !matches!(A::parse_stream_event(event, &mut state), Ok(Some(_))) {
                    break;
                }
            }
        }
        _ => drop(A::parse_error(400 + u16::from(selector % 200), body)),
    }
}
