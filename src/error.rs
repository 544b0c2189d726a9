//! The one error type of a call. Every layer produces it; `rpc::errors` alone turns it into a
//! JSON-RPC error object, so the contract's codes live in exactly one place.

use std::time::Duration;

use crate::types::ProviderName;

/// What went wrong, in the contract's vocabulary (`error.data.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidParams,
    ModelNotAllowed,
    ModelNotFound,
    RateLimited,
    Timeout,
    ProviderUnavailable,
    ProviderAuth,
    ContextLengthExceeded,
    ProviderRejected,
    Overloaded,
    /// Something of the service's own failed (the ledger's database, say).
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParams => "invalid_params",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::ModelNotFound => "model_not_found",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ProviderAuth => "provider_auth",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ProviderRejected => "provider_rejected",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal",
        }
    }

    /// Whether the same request may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Timeout | Self::ProviderUnavailable | Self::Overloaded
        )
    }
}

/// A failed call, with whatever is known about the upstream side.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub provider: Option<ProviderName>,
    /// The upstream HTTP status, when the provider answered.
    pub status: Option<u16>,
    pub attempts: Option<u32>,
    pub retry_after: Option<Duration>,
    /// Whether sending the same request again may succeed; starts as the kind's default.
    pub retryable: bool,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            provider: None,
            status: None,
            attempts: None,
            retry_after: None,
            retryable: kind.is_retryable(),
        }
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParams, message)
    }

    pub fn with_provider(mut self, provider: ProviderName) -> Self {
        self.provider = Some(provider);
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }

    pub fn not_retryable(mut self) -> Self {
        self.retryable = false;
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}
