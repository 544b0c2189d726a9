//! The contract's errors in OpenAI's shape, `{"error":{"message","type","param","code"}}`, with
//! the statuses OpenAI's SDKs turn into their own exception types. The one place this surface
//! maps an error kind.

use http::StatusCode;
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind};

/// What an error answers: its HTTP status and body, and the wait to put in `Retry-After`.
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after_s: Option<u64>,
    /// Whether sending the same request again may help: OpenAI's SDKs read it from
    /// `x-should-retry` before their own rule (which would retry every 5xx).
    pub retryable: bool,
}

/// The status, OpenAI's error `type` and `code` of each kind.
fn class(kind: ErrorKind) -> (StatusCode, &'static str, &'static str) {
    match kind {
        ErrorKind::InvalidParams => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_params",
        ),
        ErrorKind::ModelNotAllowed => (
            StatusCode::FORBIDDEN,
            "permission_error",
            "model_not_allowed",
        ),
        ErrorKind::ModelNotFound => (
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
        ),
        ErrorKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout_error", "timeout"),
        // The provider failed, or refused the service's own key: the caller's request and key
        // are not at fault, so neither is a 4xx.
        ErrorKind::ProviderUnavailable => {
            (StatusCode::BAD_GATEWAY, "api_error", "provider_unavailable")
        }
        ErrorKind::ProviderAuth => (StatusCode::BAD_GATEWAY, "api_error", "provider_auth"),
        ErrorKind::ContextLengthExceeded => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        ErrorKind::ProviderRejected => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "provider_rejected",
        ),
        ErrorKind::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded_error",
            "overloaded",
        ),
        // OpenAI's own answer to a key it does not know; a known key that may not do what it
        // asked is answered as a permission error below.
        ErrorKind::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
        ),
        // What OpenAI answers when an account's credits are spent; SDKs do not retry it.
        ErrorKind::BudgetExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            "insufficient_quota",
        ),
        ErrorKind::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
        ),
    }
}

pub(super) fn answer(err: &Error) -> Answer {
    let (status, kind, code) = match err.denial() {
        Some(denial) if denial.is_forbidden() => {
            (StatusCode::FORBIDDEN, "permission_error", denial.as_str())
        }
        _ => class(err.kind),
    };
    let retry_after_s = err
        .retry_after
        .map(|wait| wait.as_millis().div_ceil(1000) as u64)
        .or((err.kind == ErrorKind::Overloaded).then_some(1));
    Answer {
        status,
        body: body(&err.message, kind, param_of(err), code),
        retry_after_s,
        retryable: err.retryable,
    }
}

/// A refusal of the request by this surface itself (before the params check).
pub(super) fn invalid_request(message: &str, param: Option<&str>) -> Answer {
    Answer {
        status: StatusCode::BAD_REQUEST,
        body: body(message, "invalid_request_error", param, "invalid_request"),
        retry_after_s: None,
        retryable: false,
    }
}

/// A model id `/v1/models/{id}` does not list.
pub(super) fn model_not_found(id: &str) -> Answer {
    let message = format!("model {id:?} is not one this service lists");
    Answer {
        status: StatusCode::NOT_FOUND,
        body: body(
            &message,
            "invalid_request_error",
            Some("model"),
            "model_not_found",
        ),
        retry_after_s: None,
        retryable: false,
    }
}

fn body(message: &str, kind: &str, param: Option<&str>, code: &str) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
}

/// The parameter an invalid-params message names (`invalid params: <param>…: the rule`).
fn param_of(err: &Error) -> Option<&str> {
    if err.kind != ErrorKind::InvalidParams {
        let about_model = matches!(
            err.kind,
            ErrorKind::ModelNotAllowed | ErrorKind::ModelNotFound
        ) || matches!(
            err.denial(),
            Some(
                crate::error::Denial::ModelNotAllowedForTeam | crate::error::Denial::UnpricedModel
            )
        );
        return about_model.then_some("model");
    }
    let rest = err.message.strip_prefix("invalid params: ")?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_kind_has_the_status_the_sdks_expect() {
        for (kind, status) in [
            (ErrorKind::InvalidParams, 400),
            (ErrorKind::ModelNotAllowed, 403),
            (ErrorKind::ModelNotFound, 404),
            (ErrorKind::RateLimited, 429),
            (ErrorKind::Timeout, 504),
            (ErrorKind::ProviderUnavailable, 502),
            (ErrorKind::ProviderAuth, 502),
            (ErrorKind::ContextLengthExceeded, 400),
            (ErrorKind::ProviderRejected, 400),
            (ErrorKind::Overloaded, 503),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::BudgetExceeded, 429),
            (ErrorKind::Internal, 500),
        ] {
            assert_eq!(
                answer(&Error::new(kind, "x")).status.as_u16(),
                status,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn the_body_names_the_param_and_retry_after_is_rounded_up() {
        let err = Error::invalid_params("invalid params: temperature must be a number from 0 to 2");
        let a = answer(&err);
        assert_eq!(
            a.body,
            json!({"error": {"message": "invalid params: temperature must be a number from 0 to 2",
                "type": "invalid_request_error", "param": "temperature", "code": "invalid_params"}})
        );
        let limited = Error::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Some(Duration::from_millis(1500)));
        assert_eq!(answer(&limited).retry_after_s, Some(2));
        assert_eq!(
            answer(&Error::new(ErrorKind::Overloaded, "busy")).retry_after_s,
            Some(1)
        );
        assert_eq!(
            answer(&Error::new(ErrorKind::ModelNotFound, "no")).body["error"]["param"],
            "model"
        );
    }
}
