//! The one place where errors become JSON-RPC error objects (contract §5).

use http::StatusCode;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use serde_json::{Value, json};

use crate::error::{Detail, Error, ErrorKind};

/// JSON-RPC's "Invalid Request": the envelope itself cannot be served. jsonrpsee answers most
/// such requests; [`invalid_request`] answers those refused before it sees them.
const INVALID_REQUEST: i32 = -32600;
pub const INVALID_PARAMS: i32 = -32602;
const UNAUTHORIZED: i32 = -32009;

pub fn code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::InvalidParams | ErrorKind::ModelNotAllowed => INVALID_PARAMS,
        ErrorKind::ModelNotFound => -32001,
        ErrorKind::RateLimited => -32002,
        ErrorKind::Timeout => -32003,
        ErrorKind::ProviderUnavailable => -32004,
        ErrorKind::ProviderAuth => -32005,
        ErrorKind::ContextLengthExceeded => -32006,
        ErrorKind::ProviderRejected => -32007,
        ErrorKind::Overloaded => -32008,
        ErrorKind::Unauthorized => UNAUTHORIZED,
        ErrorKind::BudgetExceeded => -32010,
        ErrorKind::Internal => -32603,
    }
}

/// `error.data`: always `kind` and `trace_id`, plus what is known of the upstream side.
fn data(err: &Error, trace_id: &str) -> Value {
    let mut data =
        json!({ "kind": err.kind.as_str(), "trace_id": trace_id, "retryable": err.retryable });
    if let Some(provider) = err.provider {
        data["provider"] = json!(provider);
    }
    if let Some(status) = err.status {
        data["status"] = json!(status);
    }
    if let Some(attempts) = err.attempts {
        data["attempts"] = json!(attempts);
    }
    if let Some(wait) = err.retry_after {
        data["retry_after_ms"] = json!(wait.as_millis() as u64);
    }
    match err.detail.as_deref() {
        Some(Detail::Denied(denial)) => data["reason"] = json!(denial.as_str()),
        Some(Detail::Budget {
            team_id,
            credits_usd,
            needed_usd,
        }) => {
            data["team_id"] = json!(team_id);
            data["credits_usd"] = json!(credits_usd);
            data["needed_usd"] = json!(needed_usd);
        }
        None => {}
    }
    data
}

pub fn to_rpc_error(err: &Error, trace_id: &str) -> ErrorObjectOwned {
    ErrorObject::owned(
        code(err.kind),
        err.message.clone(),
        Some(data(err, trace_id)),
    )
}

/// A whole JSON-RPC response refusing a request as invalid, for the answers written without
/// jsonrpsee (an oversized body, `llm.stream` over HTTP without an event stream).
pub fn invalid_request(id: &Value, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": INVALID_REQUEST, "message": message}})
}

/// The HTTP status of a plain-HTTP answer refusing the caller: 403 for a known caller that may
/// not do what it asked, 401 for a missing, unknown or revoked key.
pub fn http_status(err: &Error) -> StatusCode {
    match err.denial() {
        Some(denial) if denial.is_forbidden() => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// The same error as a JSON value, for stream chunks and SSE events.
pub fn to_json(err: &Error, trace_id: &str) -> Value {
    json!({ "code": code(err.kind), "message": err.message, "data": data(err, trace_id) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ProviderName;
    use std::time::Duration;

    #[test]
    fn codes_follow_the_contract_table() {
        for (kind, code_) in [
            (ErrorKind::InvalidParams, -32602),
            (ErrorKind::ModelNotAllowed, -32602),
            (ErrorKind::ModelNotFound, -32001),
            (ErrorKind::RateLimited, -32002),
            (ErrorKind::Timeout, -32003),
            (ErrorKind::ProviderUnavailable, -32004),
            (ErrorKind::ProviderAuth, -32005),
            (ErrorKind::ContextLengthExceeded, -32006),
            (ErrorKind::ProviderRejected, -32007),
            (ErrorKind::Overloaded, -32008),
            (ErrorKind::Unauthorized, -32009),
            (ErrorKind::BudgetExceeded, -32010),
            (ErrorKind::Internal, -32603),
        ] {
            assert_eq!(code(kind), code_, "{kind:?}");
        }
    }

    #[test]
    fn data_carries_what_is_known() {
        let err = Error::new(ErrorKind::RateLimited, "slow down")
            .with_provider(ProviderName::Openai)
            .with_status(429)
            .with_attempts(4)
            .with_retry_after(Some(Duration::from_millis(1500)));
        assert_eq!(
            to_json(&err, "t-1"),
            json!({"code": -32002, "message": "slow down", "data": {
                "kind": "rate_limited", "trace_id": "t-1", "retryable": true,
                "provider": "openai", "status": 429, "attempts": 4, "retry_after_ms": 1500}})
        );
        let bare = to_json(&Error::invalid_params("invalid params: x"), "t-2");
        assert_eq!(
            bare["data"],
            json!({"kind": "invalid_params", "trace_id": "t-2", "retryable": false})
        );
    }
}
