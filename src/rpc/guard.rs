//! jsonrpsee answers a few of its own limits with codes that mean something else in our
//! contract: `-32006` (too many subscriptions on one socket) is our `context_length_exceeded`,
//! `-32009` (server busy) our `unauthorized`. Every method's answer passes through here, and such
//! an answer gets our code and `data` instead. Ours always carry `data.kind`; jsonrpsee's never do.
//! And a subscription over plain HTTP, which jsonrpsee answers with a bare `-32603`, gets a
//! `-32600` that says where a stream can go.

use std::future::Future;

use jsonrpsee::MethodResponse;
use jsonrpsee::server::middleware::rpc::{Batch, Notification, Request, RpcServiceT};
use jsonrpsee::types::{ErrorObject, Id};

use super::errors::to_rpc_error;
use crate::api::{self, Method, Subscription};
use crate::error::{Error, ErrorKind};

type Cancel = <api::Stream as Subscription>::Cancel;

const INTERNAL: i32 = -32603;
const INVALID_REQUEST: i32 = -32600;
const STREAM_OVER_HTTP: &str = "llm.stream and llm.stream.cancel need a WebSocket, or (llm.stream \
alone, with a string or number id) Accept: text/event-stream over HTTP";

/// jsonrpsee's codes that collide with the contract's.
const TOO_MANY_SUBSCRIPTIONS: i32 = -32006;
const OVERSIZED_REQUEST: i32 = -32007;
const OVERSIZED_RESPONSE: i32 = -32008;
const SERVER_BUSY: i32 = -32009;
const BATCH_TOO_LARGE: i32 = -32010;
const BATCH_RESPONSE_TOO_LARGE: i32 = -32011;

#[derive(Clone)]
pub struct Guard<S>(pub S);

impl<S> RpcServiceT for Guard<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse> + Send + Sync + Clone + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.0.clone();
        async move {
            let id = req.id().into_owned();
            // A subscription over plain HTTP, which jsonrpsee answers with a bare -32603.
            let method = req.method_name();
            let stream = method == api::Stream::NAME || method == Cancel::NAME;
            let response = service.call(req).await;
            match response.as_error_code() {
                Some(INTERNAL) if stream => MethodResponse::error(
                    id,
                    ErrorObject::owned(INVALID_REQUEST, STREAM_OVER_HTTP, None::<()>),
                ),
                Some(code) if !response.as_json().get().contains("\"kind\"") => {
                    ours(code, id).unwrap_or(response)
                }
                _ => response,
            }
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        self.0.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.0.notification(n)
    }
}

/// Our answer for one of jsonrpsee's colliding codes; `None` for any other.
fn ours(code: i32, id: Id<'static>) -> Option<MethodResponse> {
    let err = match code {
        TOO_MANY_SUBSCRIPTIONS => Error::new(
            ErrorKind::Overloaded,
            "this connection has as many streams open as it may: cancel one, or open another connection",
        ),
        SERVER_BUSY => Error::new(
            ErrorKind::Overloaded,
            "the service is too busy to take this call; retry later",
        ),
        // Requests over the limit are refused before jsonrpsee sees them: these are answers.
        OVERSIZED_REQUEST | OVERSIZED_RESPONSE | BATCH_TOO_LARGE | BATCH_RESPONSE_TOO_LARGE => {
            Error::new(
                ErrorKind::Internal,
                "the answer is larger than the service sends for one request \
                 (LLMRPC_MAX_RESPONSE_BYTES)",
            )
        }
        _ => return None,
    };
    // These answers come before any call context: a fresh trace id lets the log line be found.
    let trace_id = crate::context::CallContext::new(None, None).trace_id;
    Some(MethodResponse::error(id, to_rpc_error(&err, &trace_id)))
}
