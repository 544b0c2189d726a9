//! The server: the port, its connections and their shutdown, the route table and the caller's
//! key ([`routes`]). Above the surfaces — `rpc` (JSON-RPC), `openai`, `a2a` — which it mounts
//! side by side, each translating only its own wire format; none of them imports another, nor
//! this room.

mod body;
mod health;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use jsonrpsee::server::{serve_with_graceful_shutdown, stop_channel};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::a2a::Agent;
use crate::gateway::Gateway;
use crate::rpc::{self, JsonRpc};
use routes::Routes;

/// Limits of the transport layer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_body_bytes: u32,
    pub max_connections: u32,
    /// Requests in one batch at most, over HTTP and WebSocket alike.
    pub max_batch: usize,
    /// Streams open at once on one WebSocket; beyond it, `-32008 overloaded`.
    pub max_streams_per_socket: u32,
    /// The largest answer of one request, or of one whole batch.
    pub max_response_body_bytes: u32,
    /// How long in-flight calls may take to finish once shutdown starts.
    pub drain_timeout: Duration,
    /// How long a request's body may take to arrive, whole: a caller trickling one holds a
    /// connection for no longer.
    pub body_timeout: Duration,
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight calls finish.
/// `public_url` is the base URL the A2A agent card advertises (the request's `Host` otherwise).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    limits: Limits,
    public_url: Option<String>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let rpc_limits = rpc::Limits {
        max_request_body_bytes: limits.max_request_body_bytes,
        max_response_body_bytes: limits.max_response_body_bytes,
        max_connections: limits.max_connections,
        max_batch: limits.max_batch,
        max_streams_per_socket: limits.max_streams_per_socket,
    };
    let routes = Arc::new(Routes {
        rpc: JsonRpc::new(Arc::clone(&gateway), rpc_limits)?,
        agent: Agent::new(Arc::clone(&gateway), public_url),
        gateway,
        body: body::Limits {
            max_bytes: limits.max_request_body_bytes as usize,
            timeout: limits.body_timeout,
        },
    });
    let (stop_handle, server_handle) = stop_channel();

    // Every accepted socket holds a permit until it closes: beyond `max_connections`, new ones
    // wait in the listen backlog instead of taking descriptors the others need.
    let connections = Arc::new(Semaphore::new(limits.max_connections as usize));
    tokio::pin!(shutdown);
    loop {
        let accepted = async {
            let permit = Arc::clone(&connections).acquire_owned().await;
            (permit, listener.accept().await)
        };
        let (permit, socket) = tokio::select! {
            (permit, accepted) = accepted => match (permit, accepted) {
                (Ok(permit), Ok((socket, _))) => (permit, socket),
                (_, Err(e)) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                (Err(_), Ok(_)) => break,
            },
            () = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        let connection = routes.rpc.connection(stop_handle.clone());
        let routes = Arc::clone(&routes);
        // The connection's service holds the permit: it goes when the connection does.
        let permit = Arc::new(permit);
        let service = tower::service_fn(move |req: http::Request<Incoming>| {
            let _held = &permit;
            let (routes, connection) = (Arc::clone(&routes), connection.clone());
            async move { routes.route(req, &connection).await }
        });
        tokio::spawn(serve_with_graceful_shutdown(
            socket,
            service,
            stop_handle.clone().shutdown(),
        ));
    }
    // New connections are refused from here on, not left waiting.
    drop(listener);
    drop(stop_handle);
    tracing::info!("shutting down: draining in-flight calls");
    let _ = server_handle.stop();
    if tokio::time::timeout(limits.drain_timeout, server_handle.stopped())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout passed with calls still in flight");
    }
    Ok(())
}
