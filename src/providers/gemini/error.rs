//! Gemini's error bodies (`google.rpc.Status` in JSON), in an error answer, or inside a 200
//! answer or a stream when it fails after it started.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::providers::fault::{Fault, bounded_wait, fault_error, invalid_body};
use crate::types::ProviderName;

/// A 2xx body that is not Gemini's format.
pub(super) fn invalid(what: &str) -> Error {
    invalid_body(ProviderName::Gemini, what)
}

/// `google.rpc.Status` in JSON.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WireStatus {
    code: Option<u64>,
    message: String,
    status: String,
    details: Vec<WireDetail>,
}

/// The fields read from `ErrorInfo` (`reason`) and `RetryInfo` (`retryDelay`).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireDetail {
    reason: Option<String>,
    retry_delay: Option<String>,
}

#[derive(Deserialize)]
struct WireEnvelope {
    error: WireStatus,
}

/// Error bodies come as an object, or (seen on some endpoints) a one-element array of them.
/// The array is tried first: serde would also read an array into a struct, field by position.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireErrorBody {
    Many(Vec<WireEnvelope>),
    One(WireEnvelope),
}

impl WireStatus {
    /// The kind the body names: an invalid key, or the canonical status.
    fn kind(&self) -> Option<ErrorKind> {
        if self
            .details
            .iter()
            .any(|d| d.reason.as_deref() == Some("API_KEY_INVALID"))
        {
            return Some(ErrorKind::ProviderAuth);
        }
        Some(match self.status.as_str() {
            "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
            "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" => ErrorKind::ProviderUnavailable,
            "NOT_FOUND" => ErrorKind::ModelNotFound,
            "PERMISSION_DENIED" | "UNAUTHENTICATED" => ErrorKind::ProviderAuth,
            "INVALID_ARGUMENT" if is_too_long(&self.message) => ErrorKind::ContextLengthExceeded,
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => ErrorKind::ProviderRejected,
            _ => return None,
        })
    }

    /// `RetryInfo.retryDelay`, a proto3 JSON duration such as `"19s"` or `"12.5s"`.
    fn retry_delay(&self) -> Option<Duration> {
        self.details.iter().find_map(|d| {
            let secs = d.retry_delay.as_deref()?.trim().strip_suffix('s')?;
            Duration::try_from_secs_f64(secs.parse().ok()?)
                .ok()
                .map(bounded_wait)
        })
    }

    fn fault(self) -> Fault {
        Fault {
            kind: self.kind(),
            retry_after: self.retry_delay(),
            detail: if self.message.is_empty() {
                self.status
            } else {
                self.message
            },
            retryable: None,
        }
    }
}

/// Gemini says "The input token count (…) exceeds the maximum number of tokens allowed (…)".
fn is_too_long(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "token count",
        "exceeds the maximum number of tokens",
        "too long",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// An error inside a 200 answer: its `code` stands in for the HTTP status.
pub(super) fn stream_error(status: WireStatus) -> Error {
    let code = status
        .code
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    fault_error(ProviderName::Gemini, code, status.fault())
}

pub(super) fn parse_error(body: &[u8]) -> Fault {
    let wire = match serde_json::from_slice::<WireErrorBody>(body) {
        Ok(WireErrorBody::One(envelope)) => envelope.error,
        Ok(WireErrorBody::Many(envelopes)) => envelopes
            .into_iter()
            .next()
            .map(|e| e.error)
            .unwrap_or_default(),
        Err(_) => WireStatus::default(),
    };
    wire.fault()
}

pub(super) fn rejected(message: &str) -> Error {
    Error::new(ErrorKind::ProviderRejected, format!("gemini: {message}"))
        .with_provider(ProviderName::Gemini)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::Gemini;
    use crate::providers::testing::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn recorded_errors_keep_geminis_words() {
        let empty = HeaderMap::new();
        for (status, file) in [
            (400, "error_400_api_key_invalid.json"),
            (403, "error_403_permission_denied.json"),
            (404, "error_404_not_found.json"),
            (429, "error_429_resource_exhausted.json"),
            (500, "error_500_internal.json"),
            (503, "error_503_unavailable.json"),
            (504, "error_504_deadline_exceeded.json"),
        ] {
            let err = error_from_response::<Gemini>(status, &empty, &fixture::<Gemini>(file));
            let message = fixture_json::<Gemini>(file)["error"]["message"].clone();
            assert_eq!(
                err.message,
                format!("gemini: {}", message.as_str().unwrap()),
                "{file}"
            );
        }
    }

    #[test]
    fn other_error_bodies_are_classified_by_status_and_message() {
        let empty = HeaderMap::new();
        let too_long = br#"[{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}]"#;
        let err = error_from_response::<Gemini>(400, &empty, too_long);
        assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);
        assert!(err.message.starts_with("gemini: The input token count"));
        let cases: [(u16, &[u8], ErrorKind); 4] = [
            (
                400,
                br#"{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}"#,
                ErrorKind::ProviderRejected,
            ),
            (
                400,
                br#"{"error":{"code":400,"message":"User location is not supported","status":"FAILED_PRECONDITION"}}"#,
                ErrorKind::ProviderRejected,
            ),
            (
                401,
                br#"{"error":{"code":401,"message":"no","status":"UNAUTHENTICATED"}}"#,
                ErrorKind::ProviderAuth,
            ),
            // An empty array of errors says nothing: the status decides.
            (404, b"[]", ErrorKind::ModelNotFound),
        ];
        for (status, body, kind) in cases {
            let err = error_from_response::<Gemini>(status, &empty, body);
            assert_eq!((err.kind, err.status), (kind, Some(status)), "{status}");
        }
        // A retry delay too large for a Duration is ignored rather than trusted.
        let huge =
            br#"{"error":{"status":"RESOURCE_EXHAUSTED","details":[{"retryDelay":"1e300s"}]}}"#;
        assert_eq!(
            error_from_response::<Gemini>(429, &empty, huge).retry_after,
            None
        );
    }
}
