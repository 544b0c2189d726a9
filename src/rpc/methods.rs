//! The JSON-RPC methods of contracts §3, §6 and §7, registered on one jsonrpsee module by the
//! names of the catalogue (`crate::api`): the `llm.*` calls here, the `ops.*` and `admin.*`
//! methods from their own files.

use std::sync::Arc;

use futures::StreamExt;
use jsonrpsee::core::RpcResult;
use jsonrpsee::{Extensions, PendingSubscriptionSink, RpcModule};
use serde_json::Value;
use tracing::Instrument;

use super::call::{allowed, caller, fail, start_stream};
use super::errors::to_rpc_error;
use super::render::{ChunkWriter, complete_result};
use super::{admin, ops, views};
use crate::access::Caller;
use crate::api::{self, Method, Subscription};
use crate::context::TraceParent;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::ledger::accounts::Role;
use crate::params::{self, log_invalid};
use crate::telemetry;

/// The OpenRPC document: one file, served by `rpc.discover` and published in `proto-docs/`.
pub const OPENRPC: &str = include_str!("../../proto-docs/openrpc.json");

pub fn module(gateway: Arc<Gateway>) -> Result<RpcModule<Arc<Gateway>>, String> {
    let mut module = RpcModule::new(gateway);
    let openrpc: Value =
        serde_json::from_str(OPENRPC).map_err(|e| format!("proto-docs/openrpc.json: {e}"))?;
    let registered = (|| {
        module.register_async_method(api::Complete::NAME, |params, gateway, ext| async move {
            complete(&gateway, params.as_str(), &ext).await
        })?;
        module.register_subscription(
            api::Stream::NAME,
            api::Stream::NOTIFICATION,
            <api::Stream as Subscription>::Cancel::NAME,
            |params, pending, gateway, ext| async move {
                subscribe(&gateway, params.as_str(), pending, &ext).await
            },
        )?;
        module.register_method(api::Models::NAME, |_, gateway, ext| {
            allowed(gateway, ext).map(|()| views::models(&gateway.models()))
        })?;
        module.register_method(api::Metrics::NAME, |_, gateway, ext| metrics(gateway, ext))?;
        module.register_async_method(api::Trace::NAME, |params, gateway, ext| async move {
            ops::trace(&gateway, params.as_str(), &ext).await
        })?;
        module.register_async_method(api::Usage::NAME, |params, gateway, ext| async move {
            ops::usage(&gateway, params.as_str(), &ext).await
        })?;
        admin::register(&mut module)?;
        module.register_method(api::Discover::NAME, move |_, gateway, ext| {
            allowed(gateway, ext).map(|()| openrpc.clone())
        })?;
        Ok::<_, jsonrpsee::core::RegisterMethodError>(())
    })();
    registered.map_err(|e| format!("registering JSON-RPC methods: {e}"))?;
    Ok(module)
}

/// `llm.metrics`: the service's counts for an admin or an anonymous caller, and a caller key's
/// team's own otherwise: another team's calls are not its to see.
fn metrics(gateway: &Gateway, ext: &Extensions) -> RpcResult<Value> {
    allowed(gateway, ext)?;
    let metrics = gateway.metrics();
    let team = ext
        .get::<Arc<Caller>>()
        .filter(|caller| caller.role != Role::Admin);
    let snapshot = match team {
        Some(caller) => metrics.team_snapshot(&caller.team.id),
        None => metrics.snapshot(),
    };
    Ok(views::metrics(&snapshot))
}

async fn complete(gateway: &Gateway, params: Option<&str>, ext: &Extensions) -> RpcResult<Value> {
    let (mut ctx, call) = params::parse(params, ext.get::<TraceParent>());
    let span = telemetry::call_span(api::Complete::NAME, &mut ctx);
    async {
        ctx.caller = caller(gateway, ext)?;
        let call = call.inspect_err(log_invalid)?;
        let completion = gateway.complete(api::Complete::NAME, call, &ctx).await?;
        Ok(complete_result(&completion, &ctx))
    }
    .instrument(span)
    .await
    .map_err(|e: Error| fail(&e, &ctx.trace_id, ext))
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

#[cfg(test)]
mod tests;
