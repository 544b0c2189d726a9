//! The operators' methods, read from the call ledger: `ops.trace` (every call of one trace id)
//! and `ops.usage` (calls, errors, tokens and cost, grouped).

use std::future::Future;

use jsonrpsee::Extensions;
use jsonrpsee::core::RpcResult;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::Instrument;

use super::call::{caller, fail, named_params};
use crate::api::{self, Method};
use crate::context::{CallContext, TraceParent};
use crate::error::{Error, ErrorKind};
use crate::gateway::Gateway;
use crate::ledger::accounts::Role;
use crate::ledger::{self, GroupBy, LedgerError};
use crate::params::log_invalid;
use crate::telemetry;

/// The default window of `ops.usage`: the last day.
const DAY_MS: i64 = 86_400_000;

/// Parses an ops method's params by name, after the caller's A2A context.
fn parse<T: DeserializeOwned>(
    raw: Option<&str>,
    traceparent: Option<&TraceParent>,
    expected: &str,
) -> (CallContext, Result<T, Error>) {
    let (ctx, valid, value) = named_params(raw, traceparent);
    let parsed = valid.and_then(|()| {
        T::deserialize(value)
            .map_err(|e| Error::invalid_params(format!("invalid params: {e}; expected {expected}")))
    });
    (ctx, parsed)
}

/// Serves one ops call: `work` on its parsed params and the team it may see (`None`: every
/// team, for admins and anonymous callers), inside a span of the caller's trace, with errors
/// answered under its trace id.
async fn serve<T, F, Fut>(
    gateway: &Gateway,
    method: &'static str,
    raw: Option<&str>,
    ext: &Extensions,
    expected: &str,
    work: F,
) -> RpcResult<Value>
where
    T: DeserializeOwned,
    F: FnOnce(T, Option<String>) -> Fut,
    Fut: Future<Output = Result<Value, Error>>,
{
    let (mut ctx, parsed) = parse(raw, ext.get::<TraceParent>(), expected);
    let span = telemetry::ops_span(method, &mut ctx);
    async {
        let answer = match (parsed, caller(gateway, ext)) {
            (_, Err(err)) | (Err(err), _) => Err(err),
            (Ok(params), Ok(caller)) => {
                let team = caller
                    .filter(|c| c.role != Role::Admin)
                    .map(|c| c.team.id.clone());
                work(params, team).await
            }
        };
        answer.inspect_err(|err| match err.kind {
            ErrorKind::InvalidParams => log_invalid(err),
            _ => tracing::warn!(status = err.kind.as_str(), "{}", err.message),
        })
    }
    .instrument(span)
    .await
    .map_err(|e| fail(&e, &ctx.trace_id, ext))
}

fn unavailable(e: LedgerError) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("the call ledger cannot be read: {e}"),
    )
}

pub async fn trace(gateway: &Gateway, params: Option<&str>, ext: &Extensions) -> RpcResult<Value> {
    let expected = r#"{"trace_id": "…"}"#;
    serve(
        gateway,
        api::Trace::NAME,
        params,
        ext,
        expected,
        |params: <api::Trace as Method>::Params, team| async move {
            let Some(ledger) = gateway.ledger() else {
                return Ok(json!([]));
            };
            // Calls that just finished may still be queued for writing.
            ledger.flush().await.map_err(unavailable)?;
            let calls = ledger
                .trace(&params.trace_id, team.as_deref())
                .await
                .map_err(unavailable)?;
            serde_json::to_value(calls).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
        },
    )
    .await
}

pub async fn usage(gateway: &Gateway, params: Option<&str>, ext: &Extensions) -> RpcResult<Value> {
    let expected = r#"{"since": RFC 3339, "until": RFC 3339, "group_by": "provider" | "model" | "source_agent" | "team"}"#;
    serve(
        gateway,
        api::Usage::NAME,
        params,
        ext,
        expected,
        |params: <api::Usage as Method>::Params, team| async move {
            let time = |field: &str, value: Option<String>, default: i64| match value {
                None => Ok(default),
                Some(text) => ledger::parse_rfc3339(&text).ok_or_else(|| {
                    Error::invalid_params(format!(
                        "invalid params: {field} must be an RFC 3339 time"
                    ))
                }),
            };
            let until = time("until", params.until, ledger::now_ms())?;
            let since = time("since", params.since, until - DAY_MS)?;
            let group_by = params.group_by.unwrap_or(GroupBy::Provider);
            let groups = match gateway.ledger() {
                Some(ledger) => {
                    ledger.flush().await.map_err(unavailable)?;
                    ledger
                        .usage(since, until, group_by, team.as_deref())
                        .await
                        .map_err(unavailable)?
                }
                None => Vec::new(),
            };
            Ok(json!({
                "since": ledger::format_rfc3339(since),
                "until": ledger::format_rfc3339(until),
                "group_by": group_by,
                "groups": groups,
            }))
        },
    )
    .await
}
