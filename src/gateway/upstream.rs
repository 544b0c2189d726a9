//! A provider with the state that guards it (retry policy, breaker, limiter), and the one way
//! the pipeline waits on it: within a limit and the call's deadline, saying which passed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::timeout_at;

use crate::config::ProviderConfig;
use crate::error::{Error, ErrorKind};
use crate::providers::Provider;
use crate::resilience::{Breaker, Deadline, Limiter, RateLimits, RetryPolicy};
use crate::types::ProviderName;

/// A provider with the state that guards it.
pub struct Upstream {
    pub(super) provider: Arc<dyn Provider>,
    pub(super) retry: RetryPolicy,
    pub(super) breaker: Breaker,
    pub(super) limiter: Limiter,
}

impl Upstream {
    pub(super) fn name(&self) -> ProviderName {
        self.provider.name()
    }

    /// `rates` counts the provider's requests per minute: shared by the replicas, or this
    /// one's own.
    pub fn new(
        provider: Arc<dyn Provider>,
        config: &ProviderConfig,
        rates: Arc<RateLimits>,
    ) -> Self {
        let limiter = Limiter::new(
            provider.name(),
            config.requests_per_minute,
            config.max_concurrent,
            rates,
        );
        Self {
            provider,
            retry: config.retry,
            breaker: Breaker::new(config.breaker),
            limiter,
        }
    }
}

/// Awaits `fut` until `limit` from now or the deadline, whichever is first, saying which passed.
pub(super) async fn bounded<T>(
    deadline: &Deadline,
    limit: Duration,
    provider: ProviderName,
    what: &str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout_at(deadline.within(limit), fut).await {
        Ok(result) => result,
        Err(_) if deadline.passed() => Err(deadline.expired(provider)),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "{provider} sent nothing for {} ms while waiting for {what}",
                limit.as_millis()
            ),
        )
        .with_provider(provider)),
    }
}
