//! The route table of the port: which surface answers which path, and the caller's key checked
//! before any of them is reached (all but `/health`, `/ready`, `/metrics` and the agent card).
//! A refusal is answered in the shape of the surface the request was for.

use std::sync::Arc;

use http::{Method, StatusCode, header};
use hyper::body::Incoming;
use jsonrpsee::server::{HttpBody, HttpResponse};

use super::body::{self, Refused};
use super::health;
use crate::a2a::{self, Agent};
use crate::access::Caller;
use crate::context::TraceParent;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::reply::{self, BoxError};
use crate::rpc::{self, JsonRpc};

/// Everything the routes need, shared by every connection.
pub struct Routes {
    pub gateway: Arc<Gateway>,
    pub rpc: JsonRpc,
    pub agent: Agent,
    pub body: body::Limits,
}

impl Routes {
    pub async fn route(
        &self,
        req: http::Request<Incoming>,
        connection: &rpc::Connection,
    ) -> Result<HttpResponse, BoxError> {
        let response = match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => health::health(),
            (&Method::GET, "/ready") => health::ready(&self.gateway.provider_status()),
            (&Method::GET, "/metrics") => http::Response::builder()
                .header(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(HttpBody::from(self.gateway.scrape().encode()))?,
            (&Method::GET, a2a::CARD_PATH) => self.agent.card(req.headers()),
            _ => {
                let authorization = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                match self.gateway.access().authenticate(authorization).await {
                    Ok(caller) => self.route_caller(req, connection, caller).await?,
                    Err(err) => self.refuse(req, &err).await,
                }
            }
        };
        Ok(response)
    }

    /// Routes a request whose caller is known (or anonymous, where that is allowed).
    async fn route_caller(
        &self,
        req: http::Request<Incoming>,
        connection: &rpc::Connection,
        caller: Option<Arc<Caller>>,
    ) -> Result<HttpResponse, BoxError> {
        let response = match (req.method(), req.uri().path()) {
            (&Method::POST, "/v1/chat/completions") => {
                let tp = TraceParent::from_headers(req.headers());
                match body::read(req.into_body(), self.body).await? {
                    Ok(body) => {
                        let gateway = Arc::clone(&self.gateway);
                        crate::openai::chat_completions(gateway, &body, tp, caller).await
                    }
                    Err(Refused::TooLarge) => crate::openai::too_large(self.body.max_bytes, tp),
                    Err(Refused::TooSlow) => crate::openai::too_slow(self.body.timeout, tp),
                }
            }
            (&Method::POST, a2a::PATH) => {
                let (parts, body) = req.into_parts();
                match body::read(body, self.body).await? {
                    Ok(body) => self.agent.serve(&parts.headers, &body, caller).await,
                    Err(refused) => self.rpc_refusal(refused),
                }
            }
            (&Method::GET, "/v1/models") => {
                crate::openai::models(&self.gateway, TraceParent::from_headers(req.headers()))
            }
            (&Method::GET, path) if path.starts_with("/v1/models/") => {
                // Clients that encode the id's slash send `%2F`.
                let id = path["/v1/models/".len()..].replace("%2F", "/");
                let tp = TraceParent::from_headers(req.headers());
                crate::openai::model(&self.gateway, &id, tp)
            }
            (_, "/") if jsonrpsee::server::ws::is_upgrade_request(&req) => {
                self.rpc.upgrade(connection, req, caller)
            }
            (&Method::POST, "/") => {
                let (parts, body) = req.into_parts();
                match body::read(body, self.body).await? {
                    Ok(body) => self.rpc.post(connection, parts, body, caller).await?,
                    Err(refused) => self.rpc_refusal(refused),
                }
            }
            (_, "/") => reply::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST / for JSON-RPC, or a WebSocket upgrade",
            ),
            _ => reply::text(StatusCode::NOT_FOUND, "not found: JSON-RPC is served at /"),
        };
        Ok(response)
    }

    /// The JSON-RPC answer (on `/` and `/a2a`) to a body that could not be taken whole.
    fn rpc_refusal(&self, refused: Refused) -> HttpResponse {
        match refused {
            Refused::TooLarge => rpc::too_large(self.body.max_bytes),
            Refused::TooSlow => rpc::too_slow(self.body.timeout),
        }
    }

    /// Answers a request without a valid key, in its surface's shape: OpenAI's error on
    /// `/v1/…`, A2A's on `/a2a`, JSON-RPC's elsewhere (401, or 403 for a known caller).
    async fn refuse(&self, req: http::Request<Incoming>, err: &Error) -> HttpResponse {
        let path = req.uri().path();
        if path.starts_with("/v1/") {
            let tp = TraceParent::from_headers(req.headers());
            return crate::openai::unauthorized(err, tp);
        }
        let a2a_surface = path == a2a::PATH;
        let (parts, body) = req.into_parts();
        // The key was checked from the headers: the body is read only as far as it is already
        // there, so that a keyless caller cannot hold the connection by trickling it.
        let body = match parts.method {
            Method::POST => body::of_refused(body).await,
            _ => None,
        };
        match a2a_surface {
            true => a2a::refused(err, &parts.headers, body.as_deref()),
            false => rpc::refused(&parts.headers, body.as_deref(), err),
        }
    }
}
