//! Rate limits that the replicas of the service share through Redis: per-team requests and
//! tokens per minute, per-provider requests per minute. A limit kept by each replica alone lets
//! N replicas admit N times the limit; kept in Redis, they admit it once.
//!
//! The algorithm is GCRA (`gcra.rs`, the arithmetic); its TATs are kept in Redis (`redis.rs`,
//! running `check.lua` and `charge.lua`) when one is configured and answers, else by this
//! replica (`local.rs`). Redis is an aid, never a dependency: when it does not answer within
//! 100 ms a call is decided by this replica's own state, one warning says so, and a connection
//! is tried again at most once a second. So an outage loosens the limits (to once per replica)
//! but neither fails nor slows calls.

mod gcra;
mod local;
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use self::gcra::Limit;
use self::local::Local;
use self::redis::Remote;

/// One limit to check: `cost` units under `per_minute` units per minute, tracked under `key`.
/// A `per_minute` of 0 means no limit, as for the providers' `requests_per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule<'a> {
    pub key: &'a str,
    pub per_minute: u32,
    pub cost: u32,
}

/// Rate limits by key, kept in Redis when one is configured and answers, else by this replica.
pub struct RateLimits {
    local: Local,
    remote: Option<Arc<Remote>>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("redis", &self.remote.is_some())
            .field("shared", &self.is_shared())
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Local only (each replica keeps its own).
    pub fn local() -> Self {
        Self {
            local: Local::new(),
            remote: None,
        }
    }

    /// Shared through Redis at `url` (e.g. redis://127.0.0.1:6379). Neither fails nor blocks
    /// when Redis is down: it connects on first use, and retries at most once per second.
    /// Err only for a malformed URL.
    pub fn shared(url: &str) -> Result<Self, String> {
        Ok(Self {
            remote: Some(Arc::new(Remote::new(url)?)),
            ..Self::local()
        })
    }

    /// Admits all rules at once or none: Ok(()) and every rule charged, or Err(wait), how long
    /// until all would be admitted, and nothing charged. All or none, so that a request refused
    /// by its team's limit does not use up its provider's. A rule with cost 0 only checks that
    /// some capacity is left, for limits paid after the call (tokens, see [`Self::charge`]).
    /// A rule whose cost exceeds its `per_minute` can never be admitted: Err(Duration::MAX),
    /// so compare a wait with the time left rather than add it to an `Instant`.
    pub async fn check(&self, rules: &[Rule<'_>]) -> Result<(), Duration> {
        let limits: Vec<Limit<'_>> = rules.iter().filter_map(Rule::limit).collect();
        if limits.is_empty() {
            return Ok(());
        }
        if limits.iter().any(Limit::exceeds_burst) {
            return Err(Duration::MAX);
        }
        if let Some(remote) = &self.remote {
            if let Some(decided) = remote.check(&limits).await {
                return decided;
            }
        }
        self.local.check(&limits)
    }

    /// Post-paid: charges `cost` without refusing (tokens counted after a call ends), so the
    /// key may go into debt, which then blocks [`Self::check`] until it decays.
    pub async fn charge(&self, key: &str, per_minute: u32, cost: u32) {
        let Some(limit) = Limit::new(key, per_minute, cost) else {
            return;
        };
        if limit.increment == 0 {
            return;
        }
        if let Some(remote) = &self.remote {
            if remote.charge(&limit).await {
                return;
            }
        }
        self.local.charge(&limit);
    }

    /// Whether limits are currently shared (Redis answered last time).
    pub fn is_shared(&self) -> bool {
        self.remote.as_ref().is_some_and(|remote| remote.is_up())
    }
}

impl<'a> Rule<'a> {
    /// In the units of the algorithm; None when it does not limit.
    fn limit(&self) -> Option<Limit<'a>> {
        Limit::new(self.key, self.per_minute, self.cost)
    }
}

#[cfg(test)]
mod tests;
