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
    /// The caller's key is missing, unknown or revoked, or does not allow what it asked.
    Unauthorized,
    /// The caller's team cannot afford the call.
    BudgetExceeded,
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
            Self::Unauthorized => "unauthorized",
            Self::BudgetExceeded => "budget_exceeded",
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

/// Why a caller was refused (`error.data.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    MissingKey,
    UnknownKey,
    RevokedKey,
    AdminOnly,
    ModelNotAllowedForTeam,
    /// A team that pays from credits calling a model without a price, which would cost it 0.
    UnpricedModel,
}

impl Denial {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::UnknownKey => "unknown_key",
            Self::RevokedKey => "revoked_key",
            Self::AdminOnly => "admin_only",
            Self::ModelNotAllowedForTeam => "model_not_allowed_for_team",
            Self::UnpricedModel => "unpriced_model",
        }
    }

    /// Whether the caller is known but not allowed (HTTP 403), rather than unknown (401).
    pub fn is_forbidden(self) -> bool {
        matches!(
            self,
            Self::AdminOnly | Self::ModelNotAllowedForTeam | Self::UnpricedModel
        )
    }
}

/// What a refusal of the caller's says beyond its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Denied(Denial),
    /// The reservation a call needed, and what its team had left.
    Budget {
        team_id: String,
        credits_usd: f64,
        needed_usd: f64,
    },
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
    /// Boxed: most errors have none, and errors travel by value.
    pub detail: Option<Box<Detail>>,
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
            detail: None,
        }
    }

    pub fn denied(denial: Denial, message: impl Into<String>) -> Self {
        let mut err = Self::new(ErrorKind::Unauthorized, message);
        err.detail = Some(Box::new(Detail::Denied(denial)));
        err
    }

    pub fn budget_exceeded(team_id: &str, team: &str, credits_usd: f64, needed_usd: f64) -> Self {
        let message = format!(
            "team {team:?} has {credits_usd:.6} USD of credits left; this call may cost up to \
             {needed_usd:.6} USD (its prompt and max_tokens at the model's prices)"
        );
        let mut err = Self::new(ErrorKind::BudgetExceeded, message);
        err.detail = Some(Box::new(Detail::Budget {
            team_id: team_id.to_owned(),
            credits_usd,
            needed_usd,
        }));
        err
    }

    /// Why the caller was refused, for an `Unauthorized` error.
    pub fn denial(&self) -> Option<Denial> {
        match self.detail.as_deref() {
            Some(Detail::Denied(denial)) => Some(*denial),
            _ => None,
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
