//! jsonrpsee's part of the surface: the registered methods and the guard middleware, built once
//! at start, and for each connection the tower service that runs a request through them.

use std::sync::Arc;

use jsonrpsee::server::{
    BatchRequestConfig, HttpRequest, ServerConfig, StopHandle, TowerService, TowerServiceBuilder,
};
use tower::layer::util::Identity;

use super::guard::Guard;
use super::methods;
use crate::context::TraceParent;
use crate::gateway::Gateway;

type RpcCore = jsonrpsee::server::middleware::rpc::RpcService;
type RpcMiddleware =
    tower::layer::util::Stack<tower::layer::LayerFn<fn(RpcCore) -> Guard<RpcCore>>, Identity>;
/// One connection's handle on the methods.
pub type RpcService = TowerService<RpcMiddleware, Identity>;

/// What jsonrpsee enforces itself.
#[derive(Debug, Clone, Copy)]
pub struct ServiceLimits {
    pub max_request_body_bytes: u32,
    pub max_response_body_bytes: u32,
    pub max_connections: u32,
    pub max_streams_per_socket: u32,
}

/// The methods with their middleware, ready to serve any number of connections.
pub struct Service {
    builder: TowerServiceBuilder<RpcMiddleware, Identity>,
    methods: jsonrpsee::Methods,
}

impl Service {
    pub fn new(gateway: Arc<Gateway>, limits: ServiceLimits) -> Result<Self, String> {
        let config = ServerConfig::builder()
            .max_request_body_size(limits.max_request_body_bytes)
            .max_response_body_size(limits.max_response_body_bytes)
            .max_connections(limits.max_connections)
            .max_subscriptions_per_connection(limits.max_streams_per_socket)
            .set_batch_request_config(BatchRequestConfig::Unlimited)
            .build();
        let guard: fn(RpcCore) -> Guard<RpcCore> = Guard;
        let builder = jsonrpsee::server::Server::builder()
            .set_config(config)
            .set_rpc_middleware(
                jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer_fn(guard),
            )
            .to_service_builder();
        let methods = methods::module(gateway)?.into();
        Ok(Self { builder, methods })
    }

    /// The service of one accepted connection; `stop` ends its subscriptions at shutdown.
    pub fn connection(&self, stop: StopHandle) -> RpcService {
        self.builder.clone().build(self.methods.clone(), stop)
    }
}

/// Hands the caller's trace context to the methods, as a request extension.
pub fn into_rpc_request(mut req: HttpRequest) -> HttpRequest {
    if let Some(tp) = TraceParent::from_headers(req.headers()) {
        req.extensions_mut().insert(tp);
    }
    req
}
