//! `llm.stream` over plain HTTP as Server-Sent Events (jsonrpsee's subscriptions are
//! WebSocket-only): every event's `data:` is a JSON-RPC response with the request's `id`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::StreamBody;
use hyper::body::Frame;
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::errors::to_json;
use super::methods::{ChunkWriter, start_stream};
use crate::context::TraceParent;
use crate::gateway::Gateway;

/// Chunks buffered between the upstream and a slow reader; beyond it the upstream waits.
const BUFFER: usize = 16;

#[derive(Deserialize)]
struct StreamRequest<'a> {
    jsonrpc: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    method: &'a str,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

/// Answers the body as an event stream when it is a single `llm.stream` request; anything else
/// (a batch, another method, malformed JSON) is `None`, for the ordinary JSON-RPC path to answer.
pub async fn respond(
    gateway: Arc<Gateway>,
    body: &[u8],
    traceparent: Option<TraceParent>,
) -> Option<HttpResponse> {
    let request: StreamRequest = serde_json::from_slice(body).ok()?;
    let valid_id = matches!(
        serde_json::from_str::<Value>(request.id.get()),
        Ok(Value::String(_) | Value::Number(_))
    );
    if request.jsonrpc != "2.0" || request.method != "llm.stream" || !valid_id {
        return None;
    }
    let id: Value = serde_json::from_str(request.id.get()).ok()?;
    let params = request.params.map(RawValue::get);
    let (ctx, span, stream) = start_stream(&gateway, params, traceparent.as_ref()).await;

    let (tx, rx) = mpsc::channel::<Bytes>(BUFFER);
    match stream {
        Err(err) => {
            let event =
                event(&json!({"jsonrpc": "2.0", "id": id, "error": to_json(&err, &ctx.trace_id)}));
            // The receiver is alive until the response below is dropped.
            let _ = tx.try_send(event);
        }
        Ok(mut chunks) => {
            let mut writer = ChunkWriter::new(ctx);
            let pump = async move {
                loop {
                    // A reader that goes away closes the channel, which drops the upstream request.
                    let chunk = tokio::select! {
                        chunk = chunks.next() => chunk,
                        () = tx.closed() => break,
                    };
                    let Some(chunk) = chunk else { break };
                    let result = writer.render(chunk);
                    if tx
                        .send(event(
                            &json!({"jsonrpc": "2.0", "id": id, "result": result}),
                        ))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            };
            tokio::spawn(pump.instrument(span));
        }
    }
    let frames = receiver_stream(rx).map(|bytes| Ok::<_, Infallible>(Frame::data(bytes)));
    let response = http::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-cache")
        .body(HttpBody::new(StreamBody::new(frames)))
        .ok()?;
    Some(response)
}

fn event(response: &Value) -> Bytes {
    Bytes::from(format!("data: {response}\n\n"))
}

fn receiver_stream(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
