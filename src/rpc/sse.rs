//! `llm.stream` over plain HTTP as Server-Sent Events (jsonrpsee's subscriptions are
//! WebSocket-only): every event's `data:` is a JSON-RPC response with the request's `id`.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::ready;
use futures::{StreamExt, stream};
use jsonrpsee::server::HttpResponse;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::call::start_stream;
use super::errors::{http_status, to_json};
use super::render::ChunkWriter;
use crate::access::Caller;
use crate::api::{self, Method as _};
use crate::context::TraceParent;
use crate::error::ErrorKind;
use crate::gateway::Gateway;

#[derive(Deserialize)]
struct StreamRequest<'a> {
    jsonrpc: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    method: &'a str,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

/// A single `llm.stream` request: what this transport answers.
pub struct StreamCall<'a> {
    id: Value,
    params: Option<&'a str>,
}

impl StreamCall<'_> {
    pub fn id(&self) -> &Value {
        &self.id
    }
}

/// Recognises a single `llm.stream` request; anything else (a batch, another method, malformed
/// JSON) is `None`, for the ordinary JSON-RPC path to answer.
pub fn stream_call(body: &[u8]) -> Option<StreamCall<'_>> {
    // Most requests are not streams: a scan for the name spares them a parse.
    memchr::memmem::find(body, api::Stream::NAME.as_bytes())?;
    let request: StreamRequest = serde_json::from_slice(body).ok()?;
    let id: Value = serde_json::from_str(request.id.get()).ok()?;
    let valid_id = matches!(id, Value::String(_) | Value::Number(_));
    (request.jsonrpc == "2.0" && request.method == api::Stream::NAME && valid_id).then(|| {
        StreamCall {
            id,
            params: request.params.map(RawValue::get),
        }
    })
}

/// Answers the call as an event stream.
pub async fn respond(
    gateway: Arc<Gateway>,
    call: StreamCall<'_>,
    traceparent: Option<TraceParent>,
    caller: Option<Arc<Caller>>,
) -> HttpResponse {
    let StreamCall { id, params } = call;
    let (ctx, span, stream) =
        start_stream(&gateway, params, traceparent.as_ref(), caller.as_ref()).await;

    match stream {
        // A refusal of the caller is a plain HTTP answer, as on every other path.
        Err(err) if err.kind == ErrorKind::Unauthorized => {
            let answer = json!({"jsonrpc": "2.0", "id": id, "error": to_json(&err, &ctx.trace_id)});
            crate::reply::json(http_status(&err), &answer)
        }
        Err(err) => {
            let answer = json!({"jsonrpc": "2.0", "id": id, "error": to_json(&err, &ctx.trace_id)});
            crate::sse::respond(stream::once(ready(event(&answer))), None, span)
        }
        Ok(chunks) => {
            let mut writer = ChunkWriter::new(ctx);
            let events = chunks.map(move |chunk| {
                let result = writer.render(chunk);
                event(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
            });
            crate::sse::respond(events, None, span)
        }
    }
}

fn event(response: &Value) -> Bytes {
    crate::sse::event(&response.to_string())
}
