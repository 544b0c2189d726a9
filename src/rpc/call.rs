//! What every method does around its work: the caller looked up again, the caller's A2A
//! context read before the params, a failure rendered as a JSON-RPC error (noting a refusal of
//! the caller for the HTTP status), and a stream started. Shared by `methods`, `ops`, `admin`
//! and the SSE transport, so that each reads the caller and the trace the same way.

use std::sync::Arc;

use http::StatusCode;
use jsonrpsee::Extensions;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::errors::{http_status, to_rpc_error};
use crate::access::Caller;
use crate::api::{self, Method};
use crate::context::{CallContext, TraceParent};
use crate::error::{Error, ErrorKind};
use crate::gateway::{ChunkStream, Gateway};
use crate::params::{self, log_invalid};
use crate::telemetry;

/// The HTTP status a method's refusal of its caller asks for (401 or 403), set from inside
/// jsonrpsee, which answers every call 200.
#[derive(Clone, Default)]
pub struct Refusal(Arc<std::sync::OnceLock<StatusCode>>);

impl Refusal {
    pub fn status(&self) -> Option<StatusCode> {
        self.0.get().copied()
    }

    /// Records `err`'s status, if it refuses the caller.
    fn note(&self, err: &Error) {
        if err.kind == ErrorKind::Unauthorized {
            let _ = self.0.set(http_status(err));
        }
    }
}

/// The caller of a call, as the access cache knows it now: on a WebSocket opened with a key
/// since revoked, the next call is refused; so is the next call on one opened anonymously
/// before the first key existed.
pub fn caller(gateway: &Gateway, ext: &Extensions) -> Result<Option<Arc<Caller>>, Error> {
    recheck(gateway, ext.get::<Arc<Caller>>())
}

fn recheck(gateway: &Gateway, caller: Option<&Arc<Caller>>) -> Result<Option<Arc<Caller>>, Error> {
    gateway.access().recheck(caller)
}

/// Refuses a method without params to a caller the access cache no longer admits (a
/// WebSocket whose key was revoked, or opened anonymously before keys were required).
pub fn allowed(gateway: &Gateway, ext: &Extensions) -> Result<(), ErrorObjectOwned> {
    caller(gateway, ext).map(|_| ()).map_err(|e| {
        let ctx = CallContext::new(None, ext.get::<TraceParent>());
        fail(&e, &ctx.trace_id, ext)
    })
}

/// The JSON-RPC error of a failed call; a refusal of the caller also sets the HTTP status.
pub fn fail(err: &Error, trace_id: &str, ext: &Extensions) -> ErrorObjectOwned {
    if let Some(refusal) = ext.get::<Refusal>() {
        refusal.note(err);
    }
    to_rpc_error(err, trace_id)
}

/// Validates and starts a stream; shared by the WebSocket and SSE transports.
pub async fn start_stream(
    gateway: &Gateway,
    params: Option<&str>,
    traceparent: Option<&TraceParent>,
    caller: Option<&Arc<Caller>>,
) -> (CallContext, tracing::Span, Result<ChunkStream, Error>) {
    let (mut ctx, call) = params::parse(params, traceparent);
    let span = telemetry::call_span(api::Stream::NAME, &mut ctx);
    let stream = async {
        ctx.caller = recheck(gateway, caller)?;
        let call = call.inspect_err(log_invalid)?;
        gateway.stream(api::Stream::NAME, call, &ctx).await
    }
    .instrument(span.clone())
    .await;
    (ctx, span, stream)
}

/// The params of a method that takes them by name (`ops.*`, `admin.*`), with the caller's own
/// A2A context taken out and read first, by the same rules as on `llm.*`, so that even a
/// refused call answers under the caller's trace id. Params that are not an object are left
/// for the method's parser to refuse.
pub fn named_params(
    raw: Option<&str>,
    traceparent: Option<&TraceParent>,
) -> (CallContext, Result<(), Error>, Value) {
    let mut value: Value = raw
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_else(|| Value::Object(Map::new()));
    let a2a = value.as_object_mut().and_then(|p| p.remove("a2a_context"));
    let (ctx, valid) = params::context(a2a.as_ref(), traceparent);
    (ctx, valid, value)
}
