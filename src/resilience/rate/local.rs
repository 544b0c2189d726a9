//! The replica's own store of TATs: the rate limits when no Redis is configured, and the
//! fallback while it does not answer. Kept per replica, so N replicas admit N times a limit.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::gcra::Limit;

/// Local keys whose TAT has passed are dropped (they mean the same as absent) once the map
/// reaches this size, and then again at twice the size that remained.
const PRUNE_FROM: usize = 1024;

pub(super) struct Local {
    tats: Mutex<Tats>,
    /// The clock's origin: tokio's, so that tests with a paused clock control it.
    epoch: Instant,
}

/// The TATs, in µs since [`Local::epoch`].
#[derive(Debug, Default)]
struct Tats {
    by_key: HashMap<String, u64>,
    prune_at: usize,
}

impl Local {
    pub fn new() -> Self {
        Self {
            tats: Mutex::new(Tats::default()),
            epoch: Instant::now(),
        }
    }

    /// All of `limits` at once or none: Ok(()) and every limit charged, or Err(the longest
    /// wait) and nothing charged.
    pub fn check(&self, limits: &[Limit<'_>]) -> Result<(), Duration> {
        let now = self.now();
        let mut tats = self.tats();
        // The TATs this check would set; a key that appears twice is charged twice.
        let mut charged: Vec<(&str, u64)> = Vec::with_capacity(limits.len());
        let mut wait = 0;
        for limit in limits {
            let tat = charged
                .iter()
                .rev()
                .find(|(key, _)| *key == limit.key)
                .map_or_else(|| tats.tat(limit.key, now), |&(_, tat)| tat);
            match limit.decide(tat, now) {
                Ok(tat) => charged.push((limit.key, tat)),
                Err(more) => wait = wait.max(more),
            }
        }
        if wait > 0 {
            return Err(Duration::from_micros(wait));
        }
        for (key, tat) in charged {
            tats.set(key, tat, now);
        }
        Ok(())
    }

    /// Charges `limit` without refusing it: the key may go into debt.
    pub fn charge(&self, limit: &Limit<'_>) {
        let now = self.now();
        let mut tats = self.tats();
        let tat = tats.tat(limit.key, now).saturating_add(limit.increment);
        tats.set(limit.key, tat, now);
    }

    /// Microseconds since `epoch`.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A poisoned lock still holds consistent TATs (every update is one assignment), so go on.
    fn tats(&self) -> MutexGuard<'_, Tats> {
        self.tats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tats {
    fn tat(&self, key: &str, now: u64) -> u64 {
        self.by_key.get(key).copied().unwrap_or(now)
    }

    fn set(&mut self, key: &str, tat: u64, now: u64) {
        if tat <= now {
            return;
        }
        match self.by_key.get_mut(key) {
            Some(old) => *old = tat,
            None => {
                if self.by_key.len() >= self.prune_at.max(PRUNE_FROM) {
                    self.by_key.retain(|_, tat| *tat > now);
                    self.prune_at = self.by_key.len() * 2;
                }
                self.by_key.insert(key.to_owned(), tat);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_pruned() {
        let local = Local::new();
        for i in 0..PRUNE_FROM {
            let key = format!("k{i}");
            assert_eq!(local.check(&[Limit::new(&key, 1, 1).unwrap()]), Ok(()));
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(local.check(&[Limit::new("fresh", 1, 1).unwrap()]), Ok(()));
        assert_eq!(local.tats().by_key.len(), 1);
    }
}
