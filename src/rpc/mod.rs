//! The JSON-RPC service on one port: HTTP `POST /` (and SSE for `llm.stream`), WebSocket `/`,
//! and the plain-HTTP `/health`, `/ready` and `/metrics`.

pub mod admin;
mod envelope;
pub mod errors;
mod guard;
pub mod methods;
mod ops;
mod sse;
mod views;
mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use jsonrpsee::Methods;
use jsonrpsee::server::{
    BatchRequestConfig, HttpBody, HttpRequest, HttpResponse, ServerConfig, StopHandle,
    TowerService, serve_with_graceful_shutdown, stop_channel, ws::is_upgrade_request,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::Service;
use tower::layer::util::Identity;

use crate::a2a::Agent;
use crate::access::Caller;
use crate::context::TraceParent;
use crate::error::Error;
use crate::gateway::Gateway;

type RpcMiddleware = tower::layer::util::Stack<
    tower::layer::LayerFn<fn(RpcCore) -> guard::Guard<RpcCore>>,
    Identity,
>;
type RpcCore = jsonrpsee::server::middleware::rpc::RpcService;
type RpcService = TowerService<RpcMiddleware, Identity>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_body_bytes)
        .max_response_body_size(limits.max_response_body_bytes)
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_streams_per_socket)
        .set_batch_request_config(BatchRequestConfig::Unlimited)
        .build();
    let guard: fn(RpcCore) -> guard::Guard<RpcCore> = guard::Guard;
    let builder = jsonrpsee::server::Server::builder()
        .set_config(config)
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer_fn(guard),
        )
        .to_service_builder();
    let methods: Methods = methods::module(Arc::clone(&gateway))?.into();
    let (stop_handle, server_handle) = stop_channel();
    let app = Arc::new(App {
        agent: Agent::new(Arc::clone(&gateway), public_url),
        gateway,
        max_body: limits.max_request_body_bytes as usize,
        max_batch: limits.max_batch,
    });

    tokio::pin!(shutdown);
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        let rpc = builder.clone().build(methods.clone(), stop_handle.clone());
        let (app, stop) = (Arc::clone(&app), stop_handle.clone());
        let service = tower::service_fn(move |req: http::Request<Incoming>| {
            let (app, rpc, stop) = (Arc::clone(&app), rpc.clone(), stop.clone());
            async move { app.route(req, rpc, stop).await }
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

struct App {
    gateway: Arc<Gateway>,
    agent: Agent,
    max_body: usize,
    max_batch: usize,
}

impl App {
    async fn route(
        &self,
        req: http::Request<Incoming>,
        rpc: RpcService,
        stop: StopHandle,
    ) -> Result<HttpResponse, BoxError> {
        let response = match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => json_response(StatusCode::OK, &json!({"status": "ok"})),
            (&Method::GET, "/ready") => json_response(
                StatusCode::OK,
                &views::ready(&self.gateway.provider_status()),
            ),
            (&Method::GET, "/metrics") => http::Response::builder()
                .header(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(HttpBody::from(self.gateway.scrape().encode()))?,
            (&Method::GET, "/.well-known/agent-card.json") => {
                crate::a2a::card(&self.agent, req.headers())
            }
            _ => {
                let authorization = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                match self.gateway.access().authenticate(authorization).await {
                    Ok(caller) => self.route_caller(req, rpc, stop, caller).await?,
                    Err(err) => self.refuse(req, &err).await?,
                }
            }
        };
        Ok(response)
    }

    /// Routes a request whose caller is known (or anonymous, where that is allowed).
    async fn route_caller(
        &self,
        req: http::Request<Incoming>,
        rpc: RpcService,
        stop: StopHandle,
        caller: Option<Arc<Caller>>,
    ) -> Result<HttpResponse, BoxError> {
        let response = match (req.method(), req.uri().path()) {
            (&Method::POST, "/v1/chat/completions") => {
                let tp = traceparent(req.headers());
                match read_body(req.into_body(), self.max_body).await? {
                    Some(body) => {
                        let gateway = Arc::clone(&self.gateway);
                        crate::openai::chat_completions(gateway, &body, tp, caller).await
                    }
                    None => crate::openai::too_large(self.max_body, tp),
                }
            }
            (&Method::POST, crate::a2a::PATH) => {
                let (parts, body) = req.into_parts();
                match read_body(body, self.max_body).await? {
                    Some(body) => self.agent.serve(&parts.headers, &body, caller).await,
                    None => json_response(StatusCode::PAYLOAD_TOO_LARGE, &too_large(self.max_body)),
                }
            }
            (&Method::GET, "/v1/models") => {
                crate::openai::models(&self.gateway, traceparent(req.headers()))
            }
            (&Method::GET, path) if path.starts_with("/v1/models/") => {
                // Clients that encode the id's slash send `%2F`.
                let id = path["/v1/models/".len()..].replace("%2F", "/");
                crate::openai::model(&self.gateway, &id, traceparent(req.headers()))
            }
            (_, "/") if is_upgrade_request(&req) => {
                let limits = ws::MessageLimits {
                    max_bytes: self.max_body,
                    max_batch: self.max_batch,
                };
                ws::upgrade(req, rpc, stop, limits, caller)
            }
            (&Method::POST, "/") => self.json_rpc(req, rpc, caller).await?,
            (_, "/") => plain_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST / for JSON-RPC, or a WebSocket upgrade",
            ),
            _ => plain_response(StatusCode::NOT_FOUND, "not found: JSON-RPC is served at /"),
        };
        Ok(response)
    }

    /// Answers a request without a valid key, in its surface's shape: 401 with a JSON-RPC
    /// error (with the request's id and trace id) on `/`, A2A's on `/a2a`, OpenAI's error on
    /// `/v1/…`.
    async fn refuse(
        &self,
        req: http::Request<Incoming>,
        err: &Error,
    ) -> Result<HttpResponse, BoxError> {
        let tp = traceparent(req.headers());
        if req.uri().path().starts_with("/v1/") {
            return Ok(crate::openai::unauthorized(err, tp));
        }
        let a2a_surface = req.uri().path() == crate::a2a::PATH;
        let body = match req.method() {
            &Method::POST => read_body(req.into_body(), self.max_body).await?,
            _ => None,
        };
        let request: Value = body
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if a2a_surface {
            let id = request.get("id").unwrap_or(&Value::Null);
            return Ok(crate::a2a::refused(err, tp.as_ref(), id));
        }
        let a2a = request
            .get("a2a_context")
            .or_else(|| request.get("params").and_then(|p| p.get("a2a_context")));
        let (ctx, _) = crate::params::context(a2a, tp.as_ref());
        tracing::info!(trace_id = ctx.trace_id, "caller refused: {}", err.message);
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let answer =
            json!({"jsonrpc": "2.0", "id": id, "error": errors::to_json(err, &ctx.trace_id)});
        Ok(json_response(errors::http_status(err), &answer))
    }

    async fn json_rpc(
        &self,
        req: http::Request<Incoming>,
        mut rpc: RpcService,
        caller: Option<Arc<Caller>>,
    ) -> Result<HttpResponse, BoxError> {
        let (parts, body) = req.into_parts();
        // An error here means the caller went away or sent a broken body: nobody is left to answer.
        let Some(body) = read_body(body, self.max_body).await? else {
            let answer = too_large(self.max_body);
            return Ok(json_response(StatusCode::PAYLOAD_TOO_LARGE, &answer));
        };
        let batch = is_batch(&body);
        let refused = batch
            .then(|| batch_too_long(&body, self.max_batch).or_else(|| stream_in_http_batch(&body)))
            .flatten();
        if let Some(answer) = refused {
            return Ok(json_response(StatusCode::OK, &answer));
        }
        let body = envelope::hoist_a2a_context(&body)
            .map(Bytes::from)
            .unwrap_or(body);
        if let Some(call) = sse::stream_call(&body) {
            if accepts_event_stream(&parts.headers) {
                let tp = traceparent(&parts.headers);
                return Ok(sse::respond(Arc::clone(&self.gateway), call, tp, caller).await);
            }
            // jsonrpsee would answer a subscription over plain HTTP with an internal error.
            let message = "llm.stream over HTTP needs the header Accept: text/event-stream (or subscribe over a WebSocket)";
            let answer = errors::invalid_request(call.id(), message);
            return Ok(json_response(StatusCode::OK, &answer));
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
}

/// The HTTP status a method's refusal of its caller asks for (401 or 403), set from inside
/// jsonrpsee, which answers every call 200.
#[derive(Clone, Default)]
pub struct Refusal(Arc<std::sync::OnceLock<StatusCode>>);

impl Refusal {
    fn status(&self) -> Option<StatusCode> {
        self.0.get().copied()
    }

    /// Records `err`'s status, if it refuses the caller.
    pub fn note(&self, err: &Error) {
        if err.kind == crate::error::ErrorKind::Unauthorized {
            let _ = self.0.set(errors::http_status(err));
        }
    }
}

/// Reads a request body of at most `limit` bytes; `None` when it is larger. The excess is read
/// and dropped (up to a bound) so that a caller still sending gets the 413 rather than a reset
/// connection.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Option<Bytes>, BoxError> {
    const DRAIN: usize = 64 * 1024 * 1024;
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit + DRAIN {
            break;
        }
    }
    Ok((seen <= limit).then(|| kept.freeze()))
}

/// Hands the caller's trace context to the methods, as a request extension.
fn into_rpc_request(mut req: HttpRequest) -> HttpRequest {
    if let Some(tp) = traceparent(req.headers()) {
        req.extensions_mut().insert(tp);
    }
    req
}

fn traceparent(headers: &http::HeaderMap) -> Option<TraceParent> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
}

fn accepts_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")))
}

/// The answer to a batch of more than `max` requests, over HTTP and WebSocket alike: one error
/// for the whole batch, none of its calls made. A batch is counted without parsing its
/// requests; anything that is not a JSON array is left for JSON-RPC to answer.
fn batch_too_long(body: &[u8], max: usize) -> Option<serde_json::Value> {
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
fn is_batch(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// The answer to an HTTP batch holding an `llm.stream` call, which only a single request (as
/// Server-Sent Events) or a WebSocket can answer: one error for the whole batch.
fn stream_in_http_batch(body: &[u8]) -> Option<serde_json::Value> {
    memchr::memmem::find(body, b"llm.stream")?;
    #[derive(serde::Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
    }
    let requests: Vec<Method<'_>> = serde_json::from_slice(body).ok()?;
    requests
        .iter()
        .any(|r| r.method == Some("llm.stream"))
        .then(|| {
            let message = "llm.stream cannot be part of an HTTP batch: send it alone with Accept: \
                       text/event-stream, or over a WebSocket, where batches may hold it";
            errors::invalid_request(&Value::Null, message)
        })
}

/// The answer to a request larger than the limit, over HTTP and WebSocket alike.
fn too_large(limit: usize) -> serde_json::Value {
    let message = format!("request is larger than the limit of {limit} bytes");
    errors::invalid_request(&serde_json::Value::Null, &message)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn plain_response(status: StatusCode, text: &'static str) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(text));
    *response.status_mut() = status;
    response
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
        .and_then(TraceParent::parse);
    let batch = is_batch(body);
    if batch {
        drop(batch_too_long(body, 64));
        drop(stream_in_http_batch(body));
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
