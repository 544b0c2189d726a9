//! Client-side limits per provider: requests per minute (shared by the replicas when the rate
//! limits are, see `rate/`) and requests in flight (per replica). A call over a limit waits
//! its turn within its deadline rather than bursting into the provider's 429s.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::deadline::Deadline;
use super::rate::{RateLimits, Rule};
use crate::error::{Error, ErrorKind};
use crate::types::ProviderName;

pub struct Limiter {
    /// Requests per minute, and the key they are counted under.
    rate: Option<(u32, String)>,
    rates: Arc<RateLimits>,
    concurrency: Option<Arc<Semaphore>>,
}

impl Limiter {
    pub fn new(
        provider: ProviderName,
        requests_per_minute: Option<u32>,
        max_concurrent: Option<u32>,
        rates: Arc<RateLimits>,
    ) -> Self {
        Self {
            rate: requests_per_minute
                .filter(|rpm| *rpm > 0)
                .map(|rpm| (rpm, format!("provider:{provider}"))),
            rates,
            concurrency: max_concurrent.map(|n| Arc::new(Semaphore::new(n.max(1) as usize))),
        }
    }

    /// Waits for a turn; the permit, if any, is held for the length of the request.
    pub async fn acquire(
        &self,
        provider: ProviderName,
        deadline: &Deadline,
    ) -> Result<Option<OwnedSemaphorePermit>, Error> {
        let queued = || {
            Error::new(
                ErrorKind::Timeout,
                format!("the call's deadline passed while queued for {provider}'s rate limit"),
            )
            .with_provider(provider)
        };
        if let Some((per_minute, key)) = &self.rate {
            let rule = Rule {
                key,
                per_minute: *per_minute,
                cost: 1,
            };
            while let Err(wait) = self.rates.check(std::slice::from_ref(&rule)).await {
                let left = deadline
                    .at
                    .saturating_duration_since(tokio::time::Instant::now());
                if wait >= left {
                    return Err(queued());
                }
                tokio::time::sleep(wait).await;
            }
        }
        match &self.concurrency {
            None => Ok(None),
            Some(slots) => {
                match tokio::time::timeout_at(deadline.at, Arc::clone(slots).acquire_owned()).await
                {
                    Ok(Ok(permit)) => Ok(Some(permit)),
                    _ => Err(queued()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn concurrency_queues_within_the_deadline_then_gives_up() {
        let limiter = Limiter::new(
            ProviderName::Openai,
            None,
            Some(1),
            Arc::new(RateLimits::local()),
        );
        let deadline = Deadline::start(Duration::from_millis(50));
        let held = limiter
            .acquire(ProviderName::Openai, &deadline)
            .await
            .unwrap();
        assert!(held.is_some());
        let err = limiter
            .acquire(ProviderName::Openai, &deadline)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout);
        drop(held);
        assert!(
            limiter
                .acquire(
                    ProviderName::Openai,
                    &Deadline::start(Duration::from_secs(1))
                )
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_spent_rate_is_refused_when_the_next_slot_is_past_the_deadline() {
        let limiter = Limiter::new(
            ProviderName::Gemini,
            Some(1),
            None,
            Arc::new(RateLimits::local()),
        );
        let deadline = Deadline::start(Duration::from_secs(5));
        assert!(
            limiter
                .acquire(ProviderName::Gemini, &deadline)
                .await
                .is_ok()
        );
        // The next slot is a minute away.
        assert!(
            limiter
                .acquire(ProviderName::Gemini, &deadline)
                .await
                .is_err()
        );
    }
}
