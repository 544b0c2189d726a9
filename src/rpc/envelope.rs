//! The A2A convention puts `a2a_context` beside `params`, as a member of the request object.
//! jsonrpsee drops members it does not know, so it is moved into `params` before jsonrpsee parses
//! the request: for a single request, for each element of a batch, over HTTP and WebSocket alike.
//! When `params` already has one, the top-level context wins.

use serde_json::{Map, Value};

/// Returns the rewritten message, or `None` when there is nothing to move (the common case,
/// decided without parsing).
pub fn hoist_a2a_context(message: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(message, b"a2a_context")?;
    let mut value: Value = serde_json::from_slice(message).ok()?;
    let moved = match &mut value {
        Value::Object(request) => hoist(request),
        Value::Array(batch) => {
            let mut any = false;
            for request in batch.iter_mut().filter_map(Value::as_object_mut) {
                any |= hoist(request);
            }
            any
        }
        _ => false,
    };
    if moved {
        serde_json::to_vec(&value).ok()
    } else {
        None
    }
}

fn hoist(request: &mut Map<String, Value>) -> bool {
    let Some(context) = request.remove("a2a_context") else {
        return false;
    };
    // Positional params cannot carry it; the method answers that params must be named.
    if let Value::Object(params) = request
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        params.insert("a2a_context".to_owned(), context);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hoisted(v: Value) -> Value {
        serde_json::from_slice(&hoist_a2a_context(v.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn moves_the_context_into_params_and_wins_over_one_there() {
        let out = hoisted(json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete",
            "params": {"model": "m", "a2a_context": {"trace_id": "inner"}}, "a2a_context": {"trace_id": "outer"}}));
        assert_eq!(
            out,
            json!({"jsonrpc": "2.0", "id": 1, "method": "llm.complete",
            "params": {"model": "m", "a2a_context": {"trace_id": "outer"}}})
        );
    }

    #[test]
    fn creates_params_and_handles_batches() {
        let out = hoisted(json!([
            {"jsonrpc": "2.0", "id": 1, "method": "llm.models", "a2a_context": {"trace_id": "a"}},
            {"jsonrpc": "2.0", "id": 2, "method": "llm.models"}
        ]));
        assert_eq!(out[0]["params"], json!({"a2a_context": {"trace_id": "a"}}));
        assert_eq!(out[1].get("params"), None);
    }

    #[test]
    fn leaves_everything_else_alone() {
        assert_eq!(
            hoist_a2a_context(br#"{"jsonrpc":"2.0","id":1,"method":"llm.models"}"#),
            None
        );
        assert_eq!(hoist_a2a_context(b"{not json a2a_context"), None);
        assert_eq!(hoist_a2a_context(br#"{"params":{"a2a_context":{}}}"#), None);
    }
}
