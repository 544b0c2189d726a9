//! Retries: exponential backoff with full jitter, or the wait the provider asked for.

use std::time::Duration;

use tokio::time::Instant;

use super::deadline::Deadline;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first): uniform in
    /// `[0, min(cap, base·2^(retry-1))]`, so that many callers retrying at once spread out.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(30));
        exp.min(self.cap).mul_f64(fastrand::f64())
    }

    /// After `retries` retries have failed with `err`: how long to wait before trying again,
    /// or the error to give up with.
    pub fn next(&self, err: Error, retries: u32, deadline: &Deadline) -> Result<Duration, Error> {
        if !err.retryable || retries >= self.max_retries || deadline.passed() {
            return Err(err);
        }
        let wait = err.retry_after.unwrap_or_else(|| self.backoff(retries + 1));
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|at| at >= deadline.at)
        {
            // Waiting would only end in the deadline: answer now, with the wait the provider
            // asked for so that the caller can decide.
            return Err(err);
        }
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const POLICY: RetryPolicy = RetryPolicy {
        max_retries: 3,
        base: Duration::from_millis(100),
        cap: Duration::from_millis(250),
    };

    #[test]
    fn backoff_grows_then_caps_and_is_jittered() {
        for _ in 0..200 {
            assert!(POLICY.backoff(1) <= Duration::from_millis(100));
            assert!(POLICY.backoff(2) <= Duration::from_millis(200));
            assert!(POLICY.backoff(40) <= Duration::from_millis(250));
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| POLICY.backoff(3)).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn only_retryable_errors_are_retried_and_only_so_often() {
        let deadline = Deadline::start(Duration::from_secs(60));
        let transient = Error::new(ErrorKind::ProviderUnavailable, "503");
        assert!(POLICY.next(transient.clone(), 0, &deadline).is_ok());
        assert!(POLICY.next(transient, 3, &deadline).is_err());
        assert!(
            POLICY
                .next(Error::new(ErrorKind::ProviderRejected, "400"), 0, &deadline)
                .is_err()
        );
        let quota = Error::new(ErrorKind::RateLimited, "quota").not_retryable();
        assert!(POLICY.next(quota, 0, &deadline).is_err());
    }

    #[test]
    fn retry_after_is_honoured_unless_it_passes_the_deadline() {
        let deadline = Deadline::start(Duration::from_secs(5));
        let asks = |secs| {
            Error::new(ErrorKind::RateLimited, "429")
                .with_retry_after(Some(Duration::from_secs(secs)))
        };
        assert_eq!(
            POLICY.next(asks(1), 0, &deadline).unwrap(),
            Duration::from_secs(1)
        );
        let refused = POLICY.next(asks(10), 0, &deadline).unwrap_err();
        assert_eq!(refused.retry_after, Some(Duration::from_secs(10)));
    }
}
