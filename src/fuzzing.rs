//! Entry points for the fuzz targets in `tests/fuzz/`: each runs the parsers that face the
//! network on arbitrary bytes, as the service would on a request or an upstream answer. A target
//! fails on a panic, a hang or runaway memory; the SSE decoder is also checked against itself.
//! Built only with the `fuzzing` feature (and in tests, which replay the committed seeds), so
//! the library's surface stays as it is.

use crate::types::ProviderName;

/// A JSON-RPC message at the port: a `traceparent` header line, then the body (single or
/// batch), its top-level `a2a_context`, the stream check and each request's params.
pub fn envelope(data: &[u8]) {
    crate::rpc::exercise(data);
}

/// The params of `llm.complete` / `llm.stream`, as JSON text.
pub fn params(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        drop(crate::params::parse(Some(text), None));
    }
}

/// The SSE decoder: the bytes fed whole and in pieces (the first byte sets their size) must give
/// the same events.
pub fn sse(data: &[u8]) {
    let Some((&size, body)) = data.split_first() else {
        return;
    };
    let whole = decode(body, body.len().max(1));
    let pieces = decode(body, usize::from(size % 16) + 1);
    assert_eq!(whole, pieces, "the events depend on how the bytes were cut");
}

fn decode(body: &[u8], piece: usize) -> Vec<crate::sse::SseEvent> {
    let mut decoder = crate::sse::SseDecoder::new();
    let mut events: Vec<_> = body.chunks(piece).flat_map(|c| decoder.push(c)).collect();
    events.extend(decoder.finish());
    events
}

/// One provider's answer, stream or error parser (the first byte picks), on what it sent.
pub fn provider(name: ProviderName, data: &[u8]) {
    crate::providers::exercise(name, data);
}

/// A request body of the OpenAI-compatible surface (first byte even) or the A2A one (odd).
pub fn surfaces(data: &[u8]) {
    match data.split_first() {
        Some((selector, body)) if selector % 2 == 0 => crate::openai::exercise(body),
        Some((_, body)) => crate::a2a::exercise(body),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every committed input (the seeds, and each input that once found a bug), run again: what
    /// once passed must still pass. The corpus a fuzzing run grows is not committed.
    #[test]
    fn the_committed_seeds_still_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds");
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 7] = [
            ("envelope", envelope),
            ("params", params),
            ("sse", sse),
            ("openai", |d| provider(ProviderName::Openai, d)),
            ("anthropic", |d| provider(ProviderName::Anthropic, d)),
            ("gemini", |d| provider(ProviderName::Gemini, d)),
            ("surfaces", surfaces),
        ];
        for (target, run) in targets {
            let dir = std::fs::read_dir(root.join(target)).unwrap();
            let mut inputs = 0;
            for entry in dir {
                run(&std::fs::read(entry.unwrap().path()).unwrap());
                inputs += 1;
            }
            assert!(inputs > 0, "the seeds of {target} are missing");
        }
    }
}
