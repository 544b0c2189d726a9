//! The operators' methods, read from the call ledger: `ops.trace` (every call of one trace id)
//! and `ops.usage` (calls, errors, tokens and cost, grouped).

use jsonrpsee::Extensions;
use jsonrpsee::core::RpcResult;
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::to_rpc_error;
use crate::context::{A2aContext, CallContext, TraceParent};
use crate::error::{Error, ErrorKind};
use crate::gateway::Gateway;
use crate::ledger::{self, GroupBy, LedgerError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceParams {
    trace_id: String,
    /// The operator's own context: its trace id names this call in errors.
    a2a_context: Option<A2aContext>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    since: Option<String>,
    until: Option<String>,
    group_by: Option<GroupBy>,
    a2a_context: Option<A2aContext>,
}

/// The default window of `ops.usage`: the last day.
const DAY_MS: i64 = 86_400_000;

fn parse<T: for<'de> Deserialize<'de>>(raw: Option<&str>, expected: &str) -> Result<T, Error> {
    serde_json::from_str(raw.unwrap_or("{}"))
        .map_err(|e| Error::invalid_params(format!("invalid params: {e}; expected {expected}")))
}

fn unavailable(e: LedgerError) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("the call ledger cannot be read: {e}"),
    )
}

pub async fn trace(gateway: &Gateway, params: Option<&str>, ext: &Extensions) -> RpcResult<Value> {
    let parsed: Result<TraceParams, Error> = parse(params, r#"{"trace_id": "…"}"#);
    let a2a = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.a2a_context.clone())
        .filter(|c| c.validate().is_ok());
    let ctx = CallContext::new(a2a, ext.get::<TraceParent>());
    let found = async {
        let params = parsed?;
        let Some(ledger) = gateway.ledger() else {
            return Ok(json!([]));
        };
        // Calls that just finished may still be queued for writing.
        ledger.flush().await.map_err(unavailable)?;
        let calls = ledger.trace(&params.trace_id).await.map_err(unavailable)?;
        serde_json::to_value(calls).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
    };
    found.await.map_err(|e| to_rpc_error(&e, &ctx.trace_id))
}

pub async fn usage(gateway: &Gateway, params: Option<&str>, ext: &Extensions) -> RpcResult<Value> {
    let expected = r#"{"since": RFC 3339, "until": RFC 3339, "group_by": "provider" | "model" | "source_agent"}"#;
    let parsed: Result<UsageParams, Error> = parse(params, expected);
    let a2a = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.a2a_context.clone())
        .filter(|c| c.validate().is_ok());
    let ctx = CallContext::new(a2a, ext.get::<TraceParent>());
    let totals = async {
        let params = parsed?;
        let time = |field: &str, value: Option<String>, default: i64| match value {
            None => Ok(default),
            Some(text) => ledger::parse_rfc3339(&text).ok_or_else(|| {
                Error::invalid_params(format!("invalid params: {field} must be an RFC 3339 time"))
            }),
        };
        let until = time("until", params.until, ledger::now_ms())?;
        let since = time("since", params.since, until - DAY_MS)?;
        let group_by = params.group_by.unwrap_or(GroupBy::Provider);
        let groups = match gateway.ledger() {
            Some(ledger) => {
                ledger.flush().await.map_err(unavailable)?;
                ledger
                    .usage(since, until, group_by)
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
    };
    totals
        .await
        .map_err(|e: Error| to_rpc_error(&e, &ctx.trace_id))
}
