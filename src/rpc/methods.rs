//! The JSON-RPC methods of contract §3, registered on one jsonrpsee module, and the rendering of
//! results and stream chunks.

use std::sync::Arc;

use futures::StreamExt;
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{Extensions, PendingSubscriptionSink, RpcModule};
use serde_json::{Value, json};
use tracing::Instrument;

use super::Refusal;
use super::errors::{to_json, to_rpc_error};
use crate::access::Caller;
use crate::context::{CallContext, TraceParent};
use crate::error::Error;
use crate::gateway::{Chunk, ChunkStream, Completion, Gateway};
use crate::params::{self, log_invalid};
use crate::telemetry;

/// The OpenRPC document: one file, served by `rpc.discover` and published in `proto-docs/`.
pub const OPENRPC: &str = include_str!("../../proto-docs/openrpc.json");

pub fn module(gateway: Arc<Gateway>) -> Result<RpcModule<Arc<Gateway>>, String> {
    let mut module = RpcModule::new(gateway);
    let openrpc: Value =
        serde_json::from_str(OPENRPC).map_err(|e| format!("proto-docs/openrpc.json: {e}"))?;
    let registered = (|| {
        module.register_async_method("llm.complete", |params, gateway, ext| async move {
            complete(&gateway, params.as_str(), &ext).await
        })?;
        module.register_subscription(
            "llm.stream",
            "llm.stream.chunk",
            "llm.stream.cancel",
            |params, pending, gateway, ext| async move {
                subscribe(&gateway, params.as_str(), pending, &ext).await
            },
        )?;
        module.register_method("llm.models", |_, gateway, ext| {
            allowed(gateway, ext).map(|()| super::views::models(&gateway.models()))
        })?;
        module.register_method("llm.metrics", |_, gateway, ext| {
            allowed(gateway, ext).map(|()| super::views::metrics(&gateway.metrics().snapshot()))
        })?;
        module.register_async_method("ops.trace", |params, gateway, ext| async move {
            super::ops::trace(&gateway, params.as_str(), &ext).await
        })?;
        module.register_async_method("ops.usage", |params, gateway, ext| async move {
            super::ops::usage(&gateway, params.as_str(), &ext).await
        })?;
        super::admin::register(&mut module)?;
        module.register_method("rpc.discover", move |_, gateway, ext| {
            allowed(gateway, ext).map(|()| openrpc.clone())
        })?;
        Ok::<_, jsonrpsee::core::RegisterMethodError>(())
    })();
    registered.map_err(|e| format!("registering JSON-RPC methods: {e}"))?;
    Ok(module)
}

async fn complete(gateway: &Gateway, params: Option<&str>, ext: &Extensions) -> RpcResult<Value> {
    let (mut ctx, call) = params::parse(params, ext.get::<TraceParent>());
    let span = telemetry::call_span("llm.complete", &mut ctx);
    async {
        ctx.caller = caller(gateway, ext)?;
        let call = call.inspect_err(log_invalid)?;
        let completion = gateway.complete("llm.complete", call, &ctx).await?;
        Ok(complete_result(&completion, &ctx))
    }
    .instrument(span)
    .await
    .map_err(|e: Error| fail(&e, &ctx.trace_id, ext))
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
fn allowed(gateway: &Gateway, ext: &Extensions) -> Result<(), ErrorObjectOwned> {
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
    let span = telemetry::call_span("llm.stream", &mut ctx);
    let stream = async {
        ctx.caller = recheck(gateway, caller)?;
        let call = call.inspect_err(log_invalid)?;
        gateway.stream("llm.stream", call, &ctx).await
    }
    .instrument(span.clone())
    .await;
    (ctx, span, stream)
}

async fn subscribe(
    gateway: &Gateway,
    params: Option<&str>,
    pending: PendingSubscriptionSink,
    ext: &Extensions,
) {
    let (ctx, span, stream) = start_stream(
        gateway,
        params,
        ext.get::<TraceParent>(),
        ext.get::<Arc<Caller>>(),
    )
    .await;
    let mut chunks = match stream {
        Ok(chunks) => chunks,
        Err(err) => return pending.reject(to_rpc_error(&err, &ctx.trace_id)).await,
    };
    async move {
        let Ok(sink) = pending.accept().await else {
            return;
        };
        let mut writer = ChunkWriter::new(ctx);
        loop {
            // Waiting on the upstream and on the subscriber together: an unsubscribe or a closed
            // socket drops the upstream request at once.
            let chunk = tokio::select! {
                chunk = chunks.next() => chunk,
                () = sink.closed() => break,
            };
            let Some(chunk) = chunk else { break };
            let Ok(message) = serde_json::value::to_raw_value(&writer.render(chunk)) else {
                break;
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
    }
    .instrument(span)
    .await
}

pub fn complete_result(c: &Completion, ctx: &CallContext) -> Value {
    let mut result = json!({
        "content": c.response.content,
        "usage": c.response.usage,
        "latency_ms": c.latency.as_millis() as u64,
        "provider": c.route.provider,
        "model": c.route.model,
        "trace_id": ctx.trace_id,
        "id": c.response.id.clone().unwrap_or_else(|| format!("llmrpc-{}", ctx.span_id)),
        "finish_reason": c.response.finish_reason.as_str(),
        "attempts": c.attempts,
        "a2a_context": ctx.a2a,
    });
    if !c.response.tool_calls.is_empty() {
        result["tool_calls"] = json!(c.response.tool_calls);
    }
    result
}

/// Numbers and renders the chunks of one stream.
pub struct ChunkWriter {
    ctx: CallContext,
    index: u64,
}

impl ChunkWriter {
    pub fn new(ctx: CallContext) -> Self {
        Self { ctx, index: 0 }
    }

    pub fn render(&mut self, chunk: Chunk) -> Value {
        let mut out = json!({ "index": self.index, "trace_id": self.ctx.trace_id });
        self.index += 1;
        match chunk {
            Chunk::Delta(text) => {
                out["delta"] = json!(text);
                out["done"] = json!(false);
            }
            Chunk::ToolCall(delta) => {
                out["delta"] = json!("");
                out["done"] = json!(false);
                out["tool_calls"] = json!([delta]);
            }
            Chunk::Done(s) => {
                out["delta"] = json!("");
                out["done"] = json!(true);
                if !s.tool_calls.is_empty() {
                    out["tool_calls"] = json!(s.tool_calls);
                }
                out["finish_reason"] = json!(s.finish_reason.as_str());
                out["usage"] = json!(s.usage);
                out["model"] = json!(s.route.model);
                out["provider"] = json!(s.route.provider);
                out["latency_ms"] = json!(s.latency.as_millis() as u64);
                out["ttft_ms"] = json!(s.ttft.map(|t| t.as_millis() as u64));
                out["attempts"] = json!(s.attempts);
                out["a2a_context"] = json!(self.ctx.a2a);
            }
            Chunk::Failed(err) => {
                out["delta"] = json!("");
                out["done"] = json!(true);
                out["error"] = to_json(&err, &self.ctx.trace_id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::ModelRegistry;

    #[test]
    fn openrpc_describes_exactly_the_registered_methods() {
        let registry = ModelRegistry::new(vec![], &Default::default()).unwrap();
        let settings = crate::gateway::Settings {
            default_model: None,
            default_timeout: std::time::Duration::from_secs(1),
            first_byte_timeout: std::time::Duration::from_secs(1),
            idle_timeout: std::time::Duration::from_secs(1),
            max_in_flight: 1,
            budget_max_tokens: 1,
        };
        let gateway = Gateway::new(
            registry,
            vec![],
            settings,
            None,
            None,
            crate::ledger::Prices::default(),
            Arc::new(crate::access::Access::anonymous(Arc::new(
                crate::resilience::RateLimits::local(),
            ))),
        );
        let module = module(Arc::new(gateway)).unwrap();
        let mut registered: Vec<&str> = module.method_names().collect();
        registered.sort_unstable();
        let doc: Value = serde_json::from_str(OPENRPC).unwrap();
        let mut described: Vec<&str> = doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        described.sort_unstable();
        assert_eq!(registered, described);
    }
}
