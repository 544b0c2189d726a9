//! The administration methods (contract §7): `admin.teams.*`, `admin.keys.*` and
//! `admin.credits.add`, for admin keys (and for anonymous callers where the service serves them,
//! on loopback before the first key exists). Params are by name; each method only decodes them,
//! runs its operation of `access::admin` and encodes the result.

use std::future::Future;
use std::sync::Arc;

use jsonrpsee::core::{RegisterMethodError, RpcResult};
use jsonrpsee::{Extensions, RpcModule};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use super::call::{caller, fail, named_params};
use crate::access::admin;
use crate::api::{self, Method};
use crate::context::TraceParent;
use crate::error::{Error, ErrorKind};
use crate::gateway::Gateway;
use crate::ledger::accounts::Accounts;
use crate::telemetry;

type Module = RpcModule<Arc<Gateway>>;

pub fn register(module: &mut Module) -> Result<(), RegisterMethodError> {
    on::<api::TeamsCreate, _, _>(
        module,
        |a, p| async move { admin::create_team(&a, p).await },
    )?;
    on::<api::TeamsList, _, _>(module, |a, p| async move { admin::list_teams(&a, p).await })?;
    on::<api::TeamsGet, _, _>(module, |a, p| async move { admin::get_team(&a, p).await })?;
    on::<api::TeamsUpdate, _, _>(
        module,
        |a, p| async move { admin::update_team(&a, p).await },
    )?;
    on::<api::TeamsDelete, _, _>(
        module,
        |a, p| async move { admin::delete_team(&a, p).await },
    )?;
    on::<api::KeysCreate, _, _>(module, |a, p| async move { admin::create_key(&a, p).await })?;
    on::<api::KeysList, _, _>(module, |a, p| async move { admin::list_keys(&a, p).await })?;
    on::<api::KeysRevoke, _, _>(module, |a, p| async move { admin::revoke_key(&a, p).await })?;
    on::<api::CreditsAdd, _, _>(
        module,
        |a, p| async move { admin::add_credits(&a, p).await },
    )
}

/// Registers method `M`, served by `operation` on the accounts.
fn on<M, F, Fut>(module: &mut Module, operation: F) -> Result<(), RegisterMethodError>
where
    M: Method,
    M::Params: Send,
    M::Result: Serialize,
    F: Fn(Arc<Accounts>, M::Params) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<M::Result, Error>> + Send,
{
    module.register_async_method(M::NAME, move |raw, gateway, ext| {
        let operation = operation.clone();
        async move {
            serve(
                &gateway,
                M::NAME,
                raw.as_str(),
                &ext,
                |accounts, value| async move {
                    let params = parse::<M::Params>(value)?;
                    let result = operation(accounts, params).await?;
                    serde_json::to_value(result)
                        .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
                },
            )
            .await
        }
    })?;
    Ok(())
}

fn parse<T: DeserializeOwned>(params: Value) -> Result<T, Error> {
    T::deserialize(params).map_err(|e| Error::invalid_params(format!("invalid params: {e}")))
}

/// Serves one admin call: the caller must be an admin (or anonymous where that is served), and
/// the method runs in a span of the caller's trace.
async fn serve<F, Fut>(
    gateway: &Gateway,
    method: &'static str,
    raw: Option<&str>,
    ext: &Extensions,
    work: F,
) -> RpcResult<Value>
where
    F: FnOnce(Arc<Accounts>, Value) -> Fut,
    Fut: Future<Output = Result<Value, Error>>,
{
    let (mut ctx, valid, value) = named_params(raw, ext.get::<TraceParent>());
    let span = telemetry::ops_span(method, &mut ctx);
    async {
        valid?;
        let access = gateway.access();
        // An anonymous caller gets here only where anonymous calls are served.
        if let Some(caller) = caller(gateway, ext)? {
            caller.require_admin()?;
        }
        let accounts = access.accounts().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                "administration needs the ledger's database, and LLMRPC_DATABASE_URL is off",
            )
        })?;
        let result = work(accounts, value).await?;
        if let Err(e) = access.poll().await {
            tracing::warn!("cannot reload caller keys after {method}: {e}");
        }
        Ok(result)
    }
    .instrument(span)
    .await
    .inspect_err(|err: &Error| tracing::info!(status = err.kind.as_str(), "{}", err.message))
    .map_err(|e| fail(&e, &ctx.trace_id, ext))
}
