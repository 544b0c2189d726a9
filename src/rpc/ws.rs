//! JSON-RPC over WebSocket. jsonrpsee runs the connection (calls, batches, subscriptions), but
//! drops an `a2a_context` beside `params` before anything of ours sees it. So the caller's socket
//! ends here, each text message gets its context moved into `params`, and the messages are
//! relayed to a jsonrpsee connection over an in-process pipe.

use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonrpsee::server::{HttpBody, HttpResponse, StopHandle, serve_with_graceful_shutdown};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role, WebSocketConfig};

use super::envelope::hoist_a2a_context;
use super::{RpcService, into_rpc_request, plain_response, too_large};

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

pub fn upgrade(
    mut req: http::Request<Incoming>,
    rpc: RpcService,
    stop: StopHandle,
    max_message: usize,
) -> HttpResponse {
    let headers = req.headers();
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v == "13");
    let Some(key) = headers.get("sec-websocket-key").filter(|_| version_ok) else {
        return plain_response(
            http::StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (version 13)",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let Ok(mut inner_request) = "ws://llmrpc.internal/".into_client_request() else {
        return plain_response(http::StatusCode::INTERNAL_SERVER_ERROR, "internal error");
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
        let service = tower::service_fn(move |req: http::Request<Incoming>| {
            let mut rpc = rpc.clone();
            tower::Service::call(&mut rpc, into_rpc_request(req.map(HttpBody::new)))
        });
        tokio::spawn(serve_with_graceful_shutdown(
            theirs,
            service,
            stop.shutdown(),
        ));
        match tokio_tungstenite::client_async_with_config(inner_request, ours, Some(config())).await
        {
            Ok((inner, _)) => relay(outer, inner, max_message).await,
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
            plain_response(http::StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        })
}

/// Relays until either side closes, then closes the other: a caller that goes away ends its
/// subscriptions, which drops their upstream requests. A message over `max_message` bytes is
/// answered here with the same error as an oversized HTTP body.
async fn relay<A, B>(outer: WebSocketStream<A>, inner: WebSocketStream<B>, max_message: usize)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut outer_tx, mut outer_rx) = outer.split();
    let (mut inner_tx, mut inner_rx) = inner.split();
    let (reply_tx, mut replies) = mpsc::channel::<Message>(8);
    let inbound = async {
        while let Some(Ok(message)) = outer_rx.next().await {
            let message = match message {
                Message::Text(text) if text.len() > max_message => {
                    let error = too_large(max_message).to_string();
                    if reply_tx.send(Message::text(error)).await.is_err() {
                        break;
                    }
                    continue;
                }
                Message::Text(text) => {
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
        loop {
            let message = tokio::select! {
                message = inner_rx.next() => match message {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => message,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    _ => break,
                },
                Some(reply) = replies.recv() => reply,
            };
            if outer_tx.send(message).await.is_err() {
                break;
            }
        }
        let _ = outer_tx.close().await;
    };
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
    }
}
