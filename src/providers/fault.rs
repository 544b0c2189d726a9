//! What went wrong upstream, in the contract's words. An adapter reads a provider's error body
//! into a [`Fault`]; [`fault_error`] turns it into the call's [`Error`], with the HTTP status (or
//! a code that stands in for it) deciding the kind when the provider named none. The driver and
//! the adapters (whose streams and 200 answers can carry errors too) share these rules, so they
//! sit apart from both.

use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::types::ProviderName;

/// What a provider's error body says, as far as it says anything.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Fault {
    /// The kind the body names; `None` leaves it to the HTTP status.
    pub kind: Option<ErrorKind>,
    /// The provider's words; empty when it gave none.
    pub detail: String,
    /// A wait the body asks for; a `Retry-After` header wins over it.
    pub retry_after: Option<Duration>,
    /// Whether sending again may help, when the body says otherwise than the kind would.
    pub retryable: Option<bool>,
}

/// The kind an HTTP status means when the body names none.
fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::ProviderAuth,
        404 => ErrorKind::ModelNotFound,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::ProviderRejected,
        _ => ErrorKind::ProviderUnavailable,
    }
}

/// What a provider said went wrong, with `status` (HTTP's, or a code that stands in for it)
/// deciding the kind when the provider named none.
pub(crate) fn fault_error(provider: ProviderName, status: u16, fault: Fault) -> Error {
    let kind = fault.kind.unwrap_or_else(|| kind_for_status(status));
    let detail = if fault.detail.is_empty() {
        format!("HTTP {status}")
    } else {
        fault.detail
    };
    let mut err = Error::new(kind, format!("{provider}: {detail}"))
        .with_provider(provider)
        .with_retry_after(fault.retry_after);
    if let Some(retryable) = fault.retryable {
        err.retryable = retryable;
    }
    err
}

/// A 2xx answer whose body is not the provider's format: as if the provider were unwell.
pub(crate) fn invalid_body(provider: ProviderName, what: &str) -> Error {
    Error::new(
        ErrorKind::ProviderUnavailable,
        format!("{provider} sent an invalid {what}"),
    )
    .with_provider(provider)
}

/// Caps a wait an upstream asked for: no call lives a day, and an absurd value must not
/// overflow the clock arithmetic that uses it.
pub(crate) fn bounded_wait(wait: Duration) -> Duration {
    wait.min(Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_decides_the_kind_only_when_the_provider_named_none() {
        for (status, kind) in [
            (401, ErrorKind::ProviderAuth),
            (403, ErrorKind::ProviderAuth),
            (404, ErrorKind::ModelNotFound),
            (429, ErrorKind::RateLimited),
            (400, ErrorKind::ProviderRejected),
            (413, ErrorKind::ProviderRejected),
            (418, ErrorKind::ProviderRejected),
            (500, ErrorKind::ProviderUnavailable),
            (502, ErrorKind::ProviderUnavailable),
            (529, ErrorKind::ProviderUnavailable),
        ] {
            let err = fault_error(ProviderName::Openai, status, Fault::default());
            assert_eq!(err.kind, kind, "{status}");
            assert_eq!(err.message, format!("openai: HTTP {status}"));
            assert_eq!(err.provider, Some(ProviderName::Openai));
        }
        let named = Fault {
            kind: Some(ErrorKind::ContextLengthExceeded),
            detail: "too long".into(),
            ..Fault::default()
        };
        let err = fault_error(ProviderName::Gemini, 400, named);
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::ContextLengthExceeded, "gemini: too long")
        );
    }

    #[test]
    fn the_body_may_ask_for_a_wait_and_overrule_retryability() {
        let fault = Fault {
            kind: Some(ErrorKind::RateLimited),
            retry_after: Some(Duration::from_secs(19)),
            retryable: Some(false),
            ..Fault::default()
        };
        let err = fault_error(ProviderName::Anthropic, 429, fault);
        assert_eq!(
            (err.kind, err.retryable, err.retry_after),
            (ErrorKind::RateLimited, false, Some(Duration::from_secs(19)))
        );
        assert_eq!(
            bounded_wait(Duration::from_secs(1 << 40)),
            Duration::from_secs(86_400)
        );
    }
}
