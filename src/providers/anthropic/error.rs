//! Anthropic's error bodies, in an answer or as a stream's `error` event: `error.type` decides
//! the kind, and the status only when it names no type we know.

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::providers::fault::{Fault, invalid_body};
use crate::types::ProviderName;

/// A 2xx body that is not Anthropic's format.
pub(super) fn invalid(what: &str) -> Error {
    invalid_body(ProviderName::Anthropic, what)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Deserialize)]
struct WireErrorBody {
    error: WireError,
}

/// The kind Anthropic's `error.type` names, when it names one we know.
fn error_kind(wire: &WireError) -> Option<ErrorKind> {
    let message = wire.message.to_ascii_lowercase();
    Some(match wire.kind.as_str() {
        "overloaded_error" | "api_error" | "timeout_error" => ErrorKind::ProviderUnavailable,
        "rate_limit_error" => ErrorKind::RateLimited,
        "invalid_request_error"
            if message.contains("prompt is too long")
                || message.contains("exceed context limit") =>
        {
            ErrorKind::ContextLengthExceeded
        }
        "not_found_error" => ErrorKind::ModelNotFound,
        "authentication_error" | "permission_error" => ErrorKind::ProviderAuth,
        "invalid_request_error" | "billing_error" | "request_too_large" => {
            ErrorKind::ProviderRejected
        }
        _ => return None,
    })
}

/// The message, or else the type; empty when the body says neither.
fn detail(wire: &WireError) -> String {
    if wire.message.is_empty() {
        wire.kind.clone()
    } else {
        wire.message.clone()
    }
}

/// Classifies by `error.type`; the status decides only when the body names no known type
/// (a proxy's HTML page, an empty body, a type added later).
pub(super) fn parse_error(body: &[u8]) -> Fault {
    let wire = serde_json::from_slice::<WireErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_default();
    Fault {
        kind: error_kind(&wire),
        detail: detail(&wire),
        ..Fault::default()
    }
}

/// A stream's `error` event: whatever its payload, the answer failed.
pub(super) fn stream_error(data: &str) -> Error {
    let wire = serde_json::from_str::<WireErrorBody>(data)
        .map(|b| b.error)
        .unwrap_or_default();
    let kind = error_kind(&wire).unwrap_or(ErrorKind::ProviderUnavailable);
    let detail = Some(detail(&wire)).filter(|d| !d.is_empty());
    let message = format!(
        "anthropic: {}",
        detail.as_deref().unwrap_or("stream failed")
    );
    Error::new(kind, message).with_provider(ProviderName::Anthropic)
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorKind;
    use crate::providers::anthropic::Anthropic;
    use crate::providers::testing::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    #[test]
    fn the_recorded_rate_limit_keeps_anthropics_words() {
        let err = error_from_response::<Anthropic>(
            429,
            &fixture_headers::<Anthropic>("error_429_rate_limit.headers.txt"),
            &fixture::<Anthropic>("error_429_rate_limit.json"),
        );
        assert_eq!(
            err.message,
            "anthropic: This request would exceed the rate limit for your organization of 50,000 input tokens per minute."
        );
    }

    #[test]
    fn error_types_decide_and_statuses_fill_in() {
        let empty = HeaderMap::new();
        let body = |error_type: &str, message: &str| {
            json!({"type": "error", "error": {"type": error_type, "message": message}})
                .to_string()
                .into_bytes()
        };
        for (status, body, kind, retryable) in [
            (
                400,
                body(
                    "invalid_request_error",
                    "prompt is too long: 208310 tokens > 200000 maximum",
                ),
                ErrorKind::ContextLengthExceeded,
                false,
            ),
            (
                400,
                body(
                    "invalid_request_error",
                    "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000",
                ),
                ErrorKind::ContextLengthExceeded,
                false,
            ),
            (
                402,
                body("billing_error", "Your credit balance is too low"),
                ErrorKind::ProviderRejected,
                false,
            ),
            (
                504,
                body("timeout_error", "Request timed out"),
                ErrorKind::ProviderUnavailable,
                true,
            ),
            (
                418,
                body("brand_new_error", "?"),
                ErrorKind::ProviderRejected,
                false,
            ),
        ] {
            let err = error_from_response::<Anthropic>(status, &empty, &body);
            assert_eq!(
                (err.kind, err.retryable, err.status),
                (kind, retryable, Some(status)),
                "{status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}
