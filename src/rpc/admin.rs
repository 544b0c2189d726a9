//! The administration methods (contract §7): `admin.teams.*`, `admin.keys.*` and
//! `admin.credits.add`, for admin keys (and for anonymous callers where the service serves them,
//! on loopback before the first key exists). Params are by name.

use std::sync::Arc;

use jsonrpsee::core::RpcResult;
use jsonrpsee::{Extensions, RpcModule};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::call::{caller, fail, named_params};
use crate::access::{admin, keys};
use crate::context::TraceParent;
use crate::error::{Error, ErrorKind};
use crate::gateway::Gateway;
use crate::ledger::accounts::{Accounts, AccountsError, NewTeam, Role, TeamChanges};
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

/// The administration methods, exactly as the contract names them.
pub const METHODS: [&str; 9] = [
    "admin.teams.create",
    "admin.teams.list",
    "admin.teams.get",
    "admin.teams.update",
    "admin.teams.delete",
    "admin.keys.create",
    "admin.keys.list",
    "admin.keys.revoke",
    "admin.credits.add",
];

pub fn register(module: &mut Module) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    for method in METHODS {
        module.register_async_method(method, move |raw, gateway, ext| async move {
            serve(&gateway, method, raw.as_str(), &ext).await
        })?;
    }
    Ok(())
}

/// Runs one administration method on `accounts` with its params by name: the JSON-RPC methods
/// and `llmrpc admin` working on the database directly both come here.
pub async fn dispatch(accounts: &Accounts, method: &str, params: Value) -> Result<Value, Error> {
    match method {
        "admin.teams.create" => {
            let p: CreateTeam = parse(params)?;
            let team = NewTeam {
                name: p.name,
                allowed_models: p.allowed_models,
                credits_usd: p.credits_usd,
                requests_per_minute: p.requests_per_minute,
                tokens_per_minute: p.tokens_per_minute,
            };
            admin::check_new_team(&team)?;
            to_value(accounts.create_team(&team).await)
        }
        "admin.teams.list" => {
            let NoParams {} = parse(params)?;
            to_value(accounts.teams().await)
        }
        "admin.teams.get" => {
            let p: Id = parse(params)?;
            let team = accounts.team(&p.id).await.map_err(admin::error)?;
            to_value(team.ok_or(AccountsError::NoTeam(p.id)))
        }
        "admin.teams.update" => {
            let (id, changes) = team_changes(parse(params)?)?;
            admin::check_changes(&changes)?;
            to_value(accounts.update_team(&id, &changes).await)
        }
        "admin.teams.delete" => {
            let p: Id = parse(params)?;
            to_value(accounts.delete_team(&p.id).await)
        }
        "admin.keys.create" => {
            let p: CreateKey = parse(params)?;
            to_value(keys::create(accounts, &p.team_id, p.role, p.name).await)
        }
        "admin.keys.list" => {
            let p: ListKeys = parse(params)?;
            to_value(accounts.keys(p.team_id.as_deref()).await)
        }
        "admin.keys.revoke" => {
            let p: Id = parse(params)?;
            to_value(accounts.revoke_key(&p.id).await)
        }
        "admin.credits.add" => {
            let p: AddCredits = parse(params)?;
            admin::check_amount(p.amount_usd)?;
            to_value(accounts.add_credits(&p.team_id, p.amount_usd).await)
        }
        other => Err(Error::invalid_params(format!(
            "no administration method {other:?}"
        ))),
    }
}

fn parse<T: DeserializeOwned>(params: Value) -> Result<T, Error> {
    T::deserialize(params).map_err(|e| Error::invalid_params(format!("invalid params: {e}")))
}

/// Serves one admin call: the caller must be an admin (or anonymous where that is served), and
/// the method runs in a span of the caller's trace.
async fn serve(
    gateway: &Gateway,
    method: &'static str,
    raw: Option<&str>,
    ext: &Extensions,
) -> RpcResult<Value> {
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
        let result = dispatch(&accounts, method, value).await?;
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
