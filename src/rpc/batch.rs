//! What one JSON-RPC message may be, over HTTP and WebSocket alike: its size, the length of a
//! batch, and no `llm.stream` inside an HTTP batch. Each refusal is one error for the whole
//! message, none of its calls made.

use serde_json::Value;

use super::errors;
use crate::api::{self, Method as _};

/// The answer to a batch of more than `max` requests. A batch is counted without parsing its
/// requests; anything that is not a JSON array is left for JSON-RPC to answer.
pub fn batch_too_long(body: &[u8], max: usize) -> Option<Value> {
    if !is_batch(body) {
        return None;
    }
    let requests: Vec<&serde_json::value::RawValue> = serde_json::from_slice(body).ok()?;
    if requests.len() > max {
        let message = format!(
            "a batch of {} requests is over the limit of {max} (LLMRPC_MAX_BATCH): send it in \
             smaller batches",
            requests.len()
        );
        return Some(errors::invalid_request(&Value::Null, &message));
    }
    None
}

/// Whether a JSON-RPC message is a batch: a JSON array, whitespace before it allowed.
pub fn is_batch(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// The answer to an HTTP batch holding an `llm.stream` call, which only a single request (as
/// Server-Sent Events) or a WebSocket can answer.
pub fn stream_in_http_batch(body: &[u8]) -> Option<Value> {
    memchr::memmem::find(body, api::Stream::NAME.as_bytes())?;
    #[derive(serde::Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
    }
    let requests: Vec<Method<'_>> = serde_json::from_slice(body).ok()?;
    requests
        .iter()
        .any(|r| r.method == Some(api::Stream::NAME))
        .then(|| {
            let message = "llm.stream cannot be part of an HTTP batch: send it alone with Accept: \
                       text/event-stream, or over a WebSocket, where batches may hold it";
            errors::invalid_request(&Value::Null, message)
        })
}

/// The answer to a message larger than the limit.
pub fn too_large(limit: usize) -> Value {
    let message = format!("request is larger than the limit of {limit} bytes");
    errors::invalid_request(&Value::Null, &message)
}
