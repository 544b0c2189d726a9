//! `POST /`: one JSON-RPC request or a batch, its body already read. The message limits first,
//! the top-level `a2a_context` moved into `params`, a single `llm.stream` answered as
//! Server-Sent Events, everything else run by jsonrpsee; and the answer to a caller without a
//! valid key, in the same shape.

use std::sync::Arc;

use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::Full;
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde_json::{Value, json};
use tower::Service;

use super::batch::{batch_too_long, is_batch, stream_in_http_batch};
use super::call::Refusal;
use super::errors;
use super::service::{RpcService, into_rpc_request};
use super::{envelope, sse};
use crate::access::Caller;
use crate::context::TraceParent;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::reply;

use crate::reply::BoxError;

/// Answers one `POST /` of a known caller (or an anonymous one, where that is allowed).
pub async fn answer(
    gateway: &Arc<Gateway>,
    max_batch: usize,
    parts: http::request::Parts,
    body: Bytes,
    mut rpc: RpcService,
    caller: Option<Arc<Caller>>,
) -> Result<HttpResponse, BoxError> {
    let batch = is_batch(&body);
    let refused = batch
        .then(|| batch_too_long(&body, max_batch).or_else(|| stream_in_http_batch(&body)))
        .flatten();
    if let Some(answer) = refused {
        return Ok(reply::json(StatusCode::OK, &answer));
    }
    let body = envelope::hoist_a2a_context(&body)
        .map(Bytes::from)
        .unwrap_or(body);
    if let Some(call) = sse::stream_call(&body) {
        if accepts_event_stream(&parts.headers) {
            let tp = TraceParent::from_headers(&parts.headers);
            return Ok(sse::respond(Arc::clone(gateway), call, tp, caller).await);
        }
        // jsonrpsee would answer a subscription over plain HTTP with an internal error.
        let message = "llm.stream over HTTP needs the header Accept: text/event-stream (or subscribe over a WebSocket)";
        let answer = errors::invalid_request(call.id(), message);
        return Ok(reply::json(StatusCode::OK, &answer));
    }
    let mut req = into_rpc_request(http::Request::from_parts(
        parts,
        HttpBody::new(Full::new(body)),
    ));
    let refusal = Refusal::default();
    req.extensions_mut().insert(refusal.clone());
    if let Some(caller) = caller {
        req.extensions_mut().insert(caller);
    }
    let mut response = rpc.call(req).await?;
    // A single call refused for its caller answers 401 or 403, as the contract asks; in a
    // batch, one refused call does not decide the status of the others.
    if let Some(status) = refusal.status().filter(|_| !batch) {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// The answer to a request without a valid key: 401 (403 for a known caller a method refuses)
/// with a JSON-RPC error carrying the request's id and trace id, the trace read from the
/// request's `a2a_context` as a call's would be.
pub fn refused(headers: &http::HeaderMap, body: Option<&[u8]>, err: &Error) -> HttpResponse {
    let request: Value = body
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let a2a = request
        .get("a2a_context")
        .or_else(|| request.get("params").and_then(|p| p.get("a2a_context")));
    let (ctx, _) = crate::params::context(a2a, TraceParent::from_headers(headers).as_ref());
    tracing::info!(trace_id = ctx.trace_id, "caller refused: {}", err.message);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let answer = json!({"jsonrpc": "2.0", "id": id, "error": errors::to_json(err, &ctx.trace_id)});
    reply::json(errors::http_status(err), &answer)
}

fn accepts_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")))
}
