//! The JSON-RPC surface (contracts §3, §6, §7): `POST /` (and Server-Sent Events for
//! `llm.stream`) and the WebSocket at `/`. It only translates JSON-RPC to the pipeline and back;
//! the server above it (`crate::server`) owns the port, the routes and the caller's key, and
//! hands it the requests of `/` with their bodies read.

mod admin;
mod batch;
mod call;
mod envelope;
mod errors;
mod guard;
mod methods;
mod ops;
mod post;
mod render;
mod service;
mod sse;
mod views;
mod ws;

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use hyper::body::Incoming;
use jsonrpsee::server::{HttpResponse, StopHandle};

pub use post::refused;

use crate::access::Caller;
use crate::gateway::Gateway;
use service::{RpcService, Service, ServiceLimits};

use crate::reply::BoxError;

/// Limits of JSON-RPC messages and connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_body_bytes: u32,
    pub max_response_body_bytes: u32,
    pub max_connections: u32,
    /// Requests in one batch at most, over HTTP and WebSocket alike.
    pub max_batch: usize,
    /// Streams open at once on one WebSocket; beyond it, `-32008 overloaded`.
    pub max_streams_per_socket: u32,
}

/// The surface, built once at start.
pub struct JsonRpc {
    gateway: Arc<Gateway>,
    service: Service,
    max_body: usize,
    max_batch: usize,
}

/// The surface's side of one accepted connection.
#[derive(Clone)]
pub struct Connection {
    rpc: RpcService,
    stop: StopHandle,
}

impl JsonRpc {
    pub fn new(gateway: Arc<Gateway>, limits: Limits) -> Result<Self, String> {
        let service_limits = ServiceLimits {
            max_request_body_bytes: limits.max_request_body_bytes,
            max_response_body_bytes: limits.max_response_body_bytes,
            max_connections: limits.max_connections,
            max_streams_per_socket: limits.max_streams_per_socket,
        };
        Ok(Self {
            service: Service::new(Arc::clone(&gateway), service_limits)?,
            gateway,
            max_body: limits.max_request_body_bytes as usize,
            max_batch: limits.max_batch,
        })
    }

    /// A connection's handle; `stop` ends its calls and subscriptions at shutdown.
    pub fn connection(&self, stop: StopHandle) -> Connection {
        Connection {
            rpc: self.service.connection(stop.clone()),
            stop,
        }
    }

    /// `POST /` with its body read.
    pub async fn post(
        &self,
        connection: &Connection,
        parts: http::request::Parts,
        body: Bytes,
        caller: Option<Arc<Caller>>,
    ) -> Result<HttpResponse, BoxError> {
        let rpc = connection.rpc.clone();
        post::answer(&self.gateway, self.max_batch, parts, body, rpc, caller).await
    }

    /// A WebSocket upgrade at `/`: every call of the socket is `caller`'s.
    pub fn upgrade(
        &self,
        connection: &Connection,
        req: http::Request<Incoming>,
        caller: Option<Arc<Caller>>,
    ) -> HttpResponse {
        let limits = ws::MessageLimits {
            max_bytes: self.max_body,
            max_batch: self.max_batch,
        };
        let Connection { rpc, stop } = connection.clone();
        ws::upgrade(req, rpc, stop, limits, caller)
    }
}

/// The answer to a request body over `limit`, on `/` (and on the A2A binding, which is
/// JSON-RPC too).
pub fn too_large(limit: usize) -> HttpResponse {
    crate::reply::json(StatusCode::PAYLOAD_TOO_LARGE, &batch::too_large(limit))
}

/// The answer to a request body that did not arrive whole within `timeout`, on `/` and on the
/// A2A binding.
pub fn too_slow(timeout: std::time::Duration) -> HttpResponse {
    let message = format!(
        "the request body did not arrive within {} ms",
        timeout.as_millis()
    );
    let answer = errors::invalid_request(&serde_json::Value::Null, &message);
    crate::reply::json(StatusCode::REQUEST_TIMEOUT, &answer)
}

/// Reads a message as the port and the methods do, up to the call, for the fuzz targets: the
/// bytes before the first newline are a `traceparent` header, the rest the body.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn exercise(data: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        params: Option<&'a serde_json::value::RawValue>,
    }
    let (header, body) = match memchr::memchr(b'\n', data) {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (&[][..], data),
    };
    let traceparent = std::str::from_utf8(header)
        .ok()
        .and_then(crate::context::TraceParent::parse);
    let batch = batch::is_batch(body);
    if batch {
        drop(batch::batch_too_long(body, 64));
        drop(batch::stream_in_http_batch(body));
    }
    let body = envelope::hoist_a2a_context(body).unwrap_or_else(|| body.to_vec());
    drop(sse::stream_call(&body));
    let requests: Vec<Request<'_>> = if batch {
        serde_json::from_slice(&body).unwrap_or_default()
    } else {
        serde_json::from_slice(&body).into_iter().collect()
    };
    for request in requests {
        let raw = request.params.map(serde_json::value::RawValue::get);
        drop(crate::params::parse(raw, traceparent.as_ref()));
    }
}
