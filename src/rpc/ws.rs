//! JSON-RPC over WebSocket. jsonrpsee runs the connection (calls, batches, subscriptions), but
//! drops an `a2a_context` beside `params` before anything of ours sees it. So the caller's socket
//! ends here, each text message gets its context moved into `params`, and the messages are
//! relayed to a jsonrpsee connection over an in-process pipe.

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonrpsee::server::{HttpBody, HttpResponse, StopHandle, serve_with_graceful_shutdown};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};

use super::batch::{batch_too_long, too_large};
use super::envelope::hoist_a2a_context;
use super::service::{RpcService, into_rpc_request};
use crate::access::Caller;
use crate::api::{self, Method as _};

/// Headers of the caller's upgrade request that its calls need (trace context).
const FORWARDED: [&str; 2] = ["traceparent", "tracestate"];

/// Bytes in flight between the relay and jsonrpsee.
const PIPE_BYTES: usize = 16 * 1024;

/// Small buffers: JSON-RPC messages are small, and a thousand open sockets must stay cheap.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// What one message on a socket may hold.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    pub max_bytes: usize,
    pub max_batch: usize,
}

pub fn upgrade(
    mut req: http::Request<Incoming>,
    rpc: RpcService,
    stop: StopHandle,
    limits: MessageLimits,
    caller: Option<Arc<Caller>>,
) -> HttpResponse {
    let headers = req.headers();
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v == "13");
    let Some(key) = headers.get("sec-websocket-key").filter(|_| version_ok) else {
        return crate::reply::text(
            http::StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let Ok(mut inner_request) = "ws://llmrpc.internal/".into_client_request() else {
        return crate::reply::text(http::StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    for name in FORWARDED {
        if let Some(value) = headers.get(name) {
            inner_request.headers_mut().insert(name, value.clone());
        }
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let outer =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config()))
                .await;
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        // The caller authenticated at the upgrade; every call of the connection is theirs.
        let service = tower::service_fn(move |req: http::Request<Incoming>| {
            let mut rpc = rpc.clone();
            let mut req = into_rpc_request(req.map(HttpBody::new));
            if let Some(caller) = &caller {
                req.extensions_mut().insert(Arc::clone(caller));
            }
            tower::Service::call(&mut rpc, req)
        });
        tokio::spawn(serve_with_graceful_shutdown(
            theirs,
            service,
            stop.shutdown(),
        ));
        match tokio_tungstenite::client_async_with_config(inner_request, ours, Some(config())).await
        {
            Ok((inner, _)) => relay(outer, inner, limits).await,
            Err(e) => tracing::warn!("internal WebSocket handshake failed: {e}"),
        }
    });
    http::Response::builder()
        .status(http::StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept)
        .body(HttpBody::default())
        .unwrap_or_else(|_| {
            crate::reply::text(http::StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        })
}

/// Relays until either side closes, then closes the other: a caller that goes away ends its
/// subscriptions, which drops their upstream requests. A message over the size limit, or a batch
/// over the batch limit, is answered here with the same error as over HTTP.
async fn relay<A, B>(outer: WebSocketStream<A>, inner: WebSocketStream<B>, limits: MessageLimits)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut outer_tx, mut outer_rx) = outer.split();
    let (mut inner_tx, mut inner_rx) = inner.split();
    let (reply_tx, mut replies) = mpsc::channel::<Message>(8);
    let batched = Mutex::new(BatchedStreams::default());
    let inbound = async {
        while let Some(Ok(message)) = outer_rx.next().await {
            let refusal = match &message {
                Message::Text(text) if text.len() > limits.max_bytes => {
                    Some(too_large(limits.max_bytes))
                }
                Message::Binary(bytes) if bytes.len() > limits.max_bytes => {
                    Some(too_large(limits.max_bytes))
                }
                Message::Text(text) => batch_too_long(text.as_bytes(), limits.max_batch),
                Message::Binary(bytes) => batch_too_long(bytes, limits.max_batch),
                _ => None,
            };
            if let Some(refusal) = refusal {
                if reply_tx
                    .send(Message::text(refusal.to_string()))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            let message = match message {
                Message::Text(text) => {
                    if let Ok(mut batched) = batched.lock() {
                        batched.sent(&text);
                    }
                    match hoist_a2a_context(text.as_bytes()).map(String::from_utf8) {
                        Some(Ok(rewritten)) => Message::text(rewritten),
                        _ => Message::Text(text),
                    }
                }
                Message::Binary(bytes) => Message::Binary(bytes),
                Message::Close(_) => break,
                // Pings are answered by the WebSocket layer itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            if inner_tx.send(message).await.is_err() {
                break;
            }
        }
        let _ = inner_tx.close().await;
    };
    let outbound = async {
        // Reused for every message, so that relaying costs no allocation.
        let mut due = Vec::new();
        'relay: loop {
            let message = tokio::select! {
                message = inner_rx.next() => match message {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => message,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    _ => break,
                },
                Some(reply) = replies.recv() => reply,
            };
            match batched.lock() {
                Ok(mut batched) => batched.outgoing(message, &mut due),
                Err(_) => due.push(message),
            }
            for message in due.drain(..) {
                if outer_tx.send(message).await.is_err() {
                    break 'relay;
                }
            }
        }
        let _ = outer_tx.close().await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}

/// Makes an `llm.stream` sent inside a batch answered once, in the batch's array, and before its
/// chunks. jsonrpsee answers such a subscription on its own at once and then again in the array
/// when every element is done, with the chunks in between; this drops the lone answer and holds
/// the chunks until the array has gone out.
#[derive(Default)]
struct BatchedStreams {
    /// `id`s of `llm.stream` requests sent in batches whose lone answer has not come yet.
    pending: Vec<Value>,
    /// Streams answered alone whose batch's array has not gone out yet.
    held: Vec<Held>,
}

/// A subscription whose chunks wait for its batch's array.
struct Held {
    /// The `llm.stream` request's `id`.
    id: Value,
    subscription: Value,
    chunks: Vec<Message>,
}

impl BatchedStreams {
    /// Notes the `llm.stream` requests of a batch the caller sent.
    fn sent(&mut self, text: &str) {
        let looks_like_one = text.trim_start().starts_with('[')
            && memchr::memmem::find(text.as_bytes(), api::Stream::NAME.as_bytes()).is_some();
        if !looks_like_one {
            return;
        }
        let Ok(Value::Array(batch)) = serde_json::from_str::<Value>(text) else {
            return;
        };
        self.pending.extend(
            batch
                .into_iter()
                .filter(|r| r.get("method").and_then(Value::as_str) == Some(api::Stream::NAME))
                .filter_map(|mut r| r.get_mut("id").map(Value::take))
                .filter(|id| !id.is_null()),
        );
    }

    /// Pushes onto `due` what goes to the caller now in place of `message`: nothing while it is
    /// held or dropped; after a batch's array, the chunks it releases.
    fn outgoing(&mut self, message: Message, due: &mut Vec<Message>) {
        if self.pending.is_empty() && self.held.is_empty() {
            return due.push(message);
        }
        let Message::Text(text) = &message else {
            return due.push(message);
        };
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return due.push(message);
        };
        match value {
            Value::Array(answers) => {
                due.push(message);
                for answer in &answers {
                    let id = answer.get("id");
                    self.pending.retain(|pending| Some(pending) != id);
                    if let Some(at) = self.held.iter().position(|h| Some(&h.id) == id) {
                        due.extend(self.held.swap_remove(at).chunks);
                    }
                }
            }
            Value::Object(mut answer) if !answer.contains_key("method") => {
                let id = answer.get("id").cloned().unwrap_or(Value::Null);
                let Some(at) = self.pending.iter().position(|pending| *pending == id) else {
                    return due.push(message);
                };
                self.pending.swap_remove(at);
                if let Some(subscription) = answer.get_mut("result").map(Value::take) {
                    self.held.push(Held {
                        id,
                        subscription,
                        chunks: Vec::new(),
                    });
                }
            }
            Value::Object(notification) => {
                let subscription = notification
                    .get("params")
                    .and_then(|params| params.get("subscription"));
                match self
                    .held
                    .iter_mut()
                    .find(|h| Some(&h.subscription) == subscription)
                {
                    Some(held) => held.chunks.push(message),
                    None => due.push(message),
                }
            }
            _ => due.push(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `outgoing` lets through for `message`, as text.
    fn texts(batched: &mut BatchedStreams, message: Message) -> Vec<String> {
        let mut due = Vec::new();
        batched.outgoing(message, &mut due);
        due.into_iter()
            .map(|m| m.into_text().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_stream_in_a_batch_is_answered_once_in_the_array_before_its_chunks() {
        let mut batched = BatchedStreams::default();
        batched.sent(
            r#"[{"jsonrpc":"2.0","id":1,"method":"llm.stream","params":{}},
                {"jsonrpc":"2.0","id":2,"method":"llm.metrics"}]"#,
        );
        let lone = r#"{"jsonrpc":"2.0","id":1,"result":77}"#;
        let chunk = r#"{"jsonrpc":"2.0","method":"llm.stream.chunk","params":{"subscription":77,"result":{}}}"#;
        let other = r#"{"jsonrpc":"2.0","method":"llm.stream.chunk","params":{"subscription":5,"result":{}}}"#;
        let array =
            r#"[{"jsonrpc":"2.0","id":1,"result":77},{"jsonrpc":"2.0","id":2,"result":{}}]"#;
        assert!(texts(&mut batched, Message::text(lone)).is_empty());
        assert!(texts(&mut batched, Message::text(chunk)).is_empty());
        assert_eq!(texts(&mut batched, Message::text(other)), [other]);
        assert_eq!(texts(&mut batched, Message::text(array)), [array, chunk]);
        assert_eq!(texts(&mut batched, Message::text(chunk)), [chunk]);
        assert!(batched.pending.is_empty() && batched.held.is_empty());
    }

    #[test]
    fn single_requests_and_batches_without_streams_pass_untouched() {
        let mut batched = BatchedStreams::default();
        batched.sent(r#"{"jsonrpc":"2.0","id":1,"method":"llm.stream","params":{}}"#);
        batched.sent(r#"[{"jsonrpc":"2.0","id":3,"method":"llm.complete","params":{}}]"#);
        batched.sent(r#"[{"jsonrpc":"2.0","method":"llm.stream","params":{}}]"#);
        assert!(batched.pending.is_empty());
        let lone = r#"{"jsonrpc":"2.0","id":1,"result":77}"#;
        assert_eq!(texts(&mut batched, Message::text(lone)), [lone]);
    }
}
