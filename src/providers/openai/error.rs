//! OpenAI's error bodies, in an answer or inside a stream. The HTTP status decides the kind
//! but for a prompt too long; a spent quota is a 429 that no amount of waiting fixes.

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::providers::fault::{Fault, invalid_body};
use crate::types::ProviderName;

/// A 2xx body that is not OpenAI's format.
pub(super) fn invalid(what: &str) -> Error {
    invalid_body(ProviderName::Openai, what)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WireError {
    message: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct WireErrorBody {
    error: WireError,
}

/// The kind is the status's except for a prompt too long; a spent quota is a 429 that no amount
/// of waiting fixes.
pub(super) fn parse_error(status: u16, body: &[u8]) -> Fault {
    let wire = serde_json::from_slice::<WireErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_default();
    let code = wire
        .code
        .as_deref()
        .or(wire.kind.as_deref())
        .unwrap_or_default();
    let too_long =
        code == "context_length_exceeded" || wire.message.contains("maximum context length");
    Fault {
        kind: (status == 400 && too_long).then_some(ErrorKind::ContextLengthExceeded),
        retryable: (code == "insufficient_quota").then_some(false),
        detail: wire.message,
        retry_after: None,
    }
}

/// An error chunk in the middle of a stream: only a rate limit is told apart.
pub(super) fn stream_error(err: WireError) -> Error {
    let kind = if err.code.as_deref() == Some("rate_limit_exceeded") {
        ErrorKind::RateLimited
    } else {
        ErrorKind::ProviderUnavailable
    };
    Error::new(kind, format!("openai: {}", err.message)).with_provider(ProviderName::Openai)
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorKind;
    use crate::providers::openai::OpenAi;
    use crate::providers::testing::*;

    #[test]
    fn a_prompt_too_long_is_told_apart_from_other_rejections() {
        let empty = reqwest::header::HeaderMap::new();
        let ctx = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert_eq!(
            error_from_response::<OpenAi>(400, &empty, ctx).kind,
            ErrorKind::ContextLengthExceeded
        );
        let quota = fixture::<OpenAi>("error_429_insufficient_quota.json");
        let err = error_from_response::<OpenAi>(429, &empty, &quota);
        assert_eq!((err.kind, err.retryable), (ErrorKind::RateLimited, false));
        assert!(
            err.message
                .starts_with("openai: You exceeded your current quota"),
            "{}",
            err.message
        );
    }
}
