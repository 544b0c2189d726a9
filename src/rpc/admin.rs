//! The administration methods (contract §7): `admin.teams.*`, `admin.keys.*` and
//! `admin.credits.add`, for admin keys (and for anonymous callers where the service serves them,
//! on loopback before the first key exists). Params are by name.

use std::future::Future;
use std::sync::Arc;

use jsonrpsee::core::RpcResult;
use jsonrpsee::{Extensions, RpcModule};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::methods::{caller, fail};
use crate::access::{admin, keys};
use crate::context::{CallContext, TraceParent};
use crate::error::{Error, ErrorKind};
use crate::gateway::Gateway;
use crate::ledger::accounts::{Accounts, AccountsError, NewTeam, Role, TeamChanges};
use crate::params;
use crate::telemetry;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTeam {
    name: String,
    #[serde(default)]
    allowed_models: Vec<String>,
    credits_usd: Option<f64>,
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    team_id: String,
    role: Role,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListKeys {
    team_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCredits {
    team_id: String,
    amount_usd: f64,
}

type Module = RpcModule<Arc<Gateway>>;

pub fn register(module: &mut Module) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_async_method("admin.teams.create", |raw, gateway, ext| async move {
        serve(
            &gateway,
            raw.as_str(),
            &ext,
            |p: CreateTeam, accounts| async move {
                let team = NewTeam {
                    name: p.name,
                    allowed_models: p.allowed_models,
                    credits_usd: p.credits_usd,
                    requests_per_minute: p.requests_per_minute,
                    tokens_per_minute: p.tokens_per_minute,
                };
                admin::check_new_team(&team)?;
                to_value(accounts.create_team(&team).await)
            },
        )
        .await
    })?;
    module.register_async_method("admin.teams.list", |raw, gateway, ext| async move {
        serve(
            &gateway,
            raw.as_str(),
            &ext,
            |_: NoParams, accounts| async move { to_value(accounts.teams().await) },
        )
        .await
    })?;
    module.register_async_method("admin.teams.get", |raw, gateway, ext| async move {
        serve(&gateway, raw.as_str(), &ext, |p: Id, accounts| async move {
            let team = accounts.team(&p.id).await.map_err(admin::error)?;
            to_value(team.ok_or(AccountsError::NoTeam(p.id)))
        })
        .await
    })?;
    module.register_async_method("admin.teams.update", |raw, gateway, ext| async move {
        serve(
            &gateway,
            raw.as_str(),
            &ext,
            |p: Map<String, Value>, accounts| async move {
                let (id, changes) = team_changes(p)?;
                admin::check_changes(&changes)?;
                to_value(accounts.update_team(&id, &changes).await)
            },
        )
        .await
    })?;
    module.register_async_method("admin.teams.delete", |raw, gateway, ext| async move {
        serve(&gateway, raw.as_str(), &ext, |p: Id, accounts| async move {
            to_value(accounts.delete_team(&p.id).await)
        })
        .await
    })?;
    module.register_async_method("admin.keys.create", |raw, gateway, ext| async move {
        serve(
            &gateway,
            raw.as_str(),
            &ext,
            |p: CreateKey, accounts| async move {
                to_value(keys::create(&accounts, &p.team_id, p.role, p.name).await)
            },
        )
        .await
    })?;
    module.register_async_method("admin.keys.list", |raw, gateway, ext| async move {
        serve(&gateway, raw.as_str(), &ext, |p: ListKeys, accounts| async move {
            to_value(accounts.keys(p.team_id.as_deref()).await)
        })
        .await
    })?;
    module.register_async_method("admin.keys.revoke", |raw, gateway, ext| async move {
        serve(&gateway, raw.as_str(), &ext, |p: Id, accounts| async move {
            to_value(accounts.revoke_key(&p.id).await)
        })
        .await
    })?;
    module.register_async_method("admin.credits.add", |raw, gateway, ext| async move {
        serve(
            &gateway,
            raw.as_str(),
            &ext,
            |p: AddCredits, accounts| async move {
                admin::check_amount(p.amount_usd)?;
                to_value(accounts.add_credits(&p.team_id, p.amount_usd).await)
            },
        )
        .await
    })?;
    Ok(())
}

/// Serves one admin call: the caller must be an admin (or anonymous where that is served), the
/// params parse by name, and `work` runs on the accounts in a span of the caller's trace.
async fn serve<T, F, Fut>(
    gateway: &Gateway,
    raw: Option<&str>,
    ext: &Extensions,
    work: F,
) -> RpcResult<Value>
where
    T: DeserializeOwned,
    F: FnOnce(T, Arc<Accounts>) -> Fut,
    Fut: Future<Output = Result<Value, Error>>,
{
    let mut value: Value = raw
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_else(|| Value::Object(Map::new()));
    let a2a = value.as_object_mut().and_then(|p| p.remove("a2a_context"));
    let (mut ctx, valid): (CallContext, _) =
        params::context(a2a.as_ref(), ext.get::<TraceParent>());
    let span = telemetry::ops_span("admin", &mut ctx);
    async {
        valid?;
        let access = gateway.access();
        match caller(gateway, ext)? {
            Some(caller) => caller.require_admin()?,
            None if access.required() => {
                return Err(Error::denied(
                    crate::error::Denial::MissingKey,
                    "admin methods need an admin key",
                ));
            }
            None => {}
        }
        let accounts = access.accounts().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                "administration needs the ledger's database, and LLMRPC_DATABASE_URL is off",
            )
        })?;
        let params = T::deserialize(value)
            .map_err(|e| Error::invalid_params(format!("invalid params: {e}")))?;
        work(params, accounts).await
    }
    .instrument(span)
    .await
    .inspect_err(|err| tracing::info!(status = err.kind.as_str(), "{}", err.message))
    .map_err(|e| fail(&e, &ctx.trace_id, ext))
}

fn to_value<T: serde::Serialize>(result: Result<T, AccountsError>) -> Result<Value, Error> {
    let found = result.map_err(admin::error)?;
    serde_json::to_value(found).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
}

/// `admin.teams.update`'s params: `id`, and the settings to change, where `null` clears one
/// (unlimited credits, no rate limit).
fn team_changes(mut p: Map<String, Value>) -> Result<(String, TeamChanges), Error> {
    fn field<T: DeserializeOwned>(
        p: &mut Map<String, Value>,
        name: &str,
    ) -> Result<Option<Option<T>>, Error> {
        match p.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => serde_json::from_value(value)
                .map(|v| Some(Some(v)))
                .map_err(|e| Error::invalid_params(format!("invalid params: {name}: {e}"))),
        }
    }
    let id: String = field(&mut p, "id")?.flatten().ok_or_else(|| {
        Error::invalid_params("invalid params: id (the team's id or name) is required")
    })?;
    let changes = TeamChanges {
        name: field(&mut p, "name")?.flatten(),
        allowed_models: field::<Vec<String>>(&mut p, "allowed_models")?
            .map(Option::unwrap_or_default),
        credits_usd: field(&mut p, "credits_usd")?,
        requests_per_minute: field(&mut p, "requests_per_minute")?,
        tokens_per_minute: field(&mut p, "tokens_per_minute")?,
    };
    if let Some(unknown) = p.keys().next() {
        return Err(Error::invalid_params(format!(
            "invalid params: unknown field {unknown:?} of admin.teams.update"
        )));
    }
    Ok((id, changes))
}
