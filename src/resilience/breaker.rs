//! A circuit breaker per provider: after `threshold` failures in a row that say the provider is
//! unwell (unavailable, or no answer in time; a rate limit says nothing) it opens and
//! calls fail fast; after `cooldown` one probe is let through, whose outcome closes or reopens it.
//! Lock-free, since every call consults it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    pub threshold: u32,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    epoch: Instant,
    failures: AtomicU32,
    /// Microseconds since `epoch` when it opened; 0 while closed.
    opened_at: AtomicU64,
    /// When the half-open probe went out; 0 when none is out. A probe whose caller went away
    /// never reports, so one older than the cooldown counts as lost and another may go.
    probe_at: AtomicU64,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            probe_at: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        // Never 0, which means closed.
        (self.epoch.elapsed().as_micros() as u64).max(1)
    }

    pub fn state(&self) -> BreakerState {
        match self.opened_at.load(SeqCst) {
            0 => BreakerState::Closed,
            at if self.now() < at + self.policy.cooldown.as_micros() as u64 => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may go out now. In half-open state only one probe at a time may.
    pub fn allow(&self) -> bool {
        match self.state() {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                let now = self.now();
                let probe = self.probe_at.load(SeqCst);
                let lost = probe != 0 && now >= probe + self.policy.cooldown.as_micros() as u64;
                (probe == 0 || lost)
                    && self
                        .probe_at
                        .compare_exchange(probe, now, SeqCst, SeqCst)
                        .is_ok()
            }
        }
    }

    /// The provider answered (even with an error that is the caller's fault).
    pub fn succeeded(&self) {
        self.failures.store(0, SeqCst);
        self.opened_at.store(0, SeqCst);
        self.probe_at.store(0, SeqCst);
    }

    /// The provider failed in a way that says it is unwell.
    pub fn failed(&self) {
        let failures = self.failures.fetch_add(1, SeqCst) + 1;
        let was_probing = self.probe_at.swap(0, SeqCst) != 0;
        if was_probing || failures >= self.policy.threshold {
            self.opened_at.store(self.now(), SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_probes_once_and_closes_on_success() {
        let mut breaker = Breaker::new(BreakerPolicy {
            threshold: 2,
            cooldown: Duration::from_secs(3600),
        });
        breaker.failed();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.failed();
        assert_eq!(breaker.state(), BreakerState::Open);
        // As if the cooldown had passed.
        breaker.opened_at.store(1, SeqCst);
        breaker.epoch = breaker
            .epoch
            .checked_sub(Duration::from_secs(3601))
            .unwrap();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.allow(), "one probe");
        assert!(!breaker.allow(), "only one probe at a time");
        breaker.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.allow());
    }

    #[test]
    fn stays_open_during_the_cooldown_and_a_failed_probe_reopens() {
        let breaker = Breaker::new(BreakerPolicy {
            threshold: 1,
            cooldown: Duration::from_secs(3600),
        });
        breaker.failed();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.allow());

        let breaker = Breaker::new(BreakerPolicy {
            threshold: 1,
            cooldown: Duration::ZERO,
        });
        breaker.failed();
        assert!(breaker.allow());
        breaker.failed();
        assert_ne!(breaker.state(), BreakerState::Closed);
    }
}
