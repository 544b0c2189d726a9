//! The arithmetic of GCRA, the algorithm `governor` uses (and with its meaning of `per_minute`:
//! a full minute's worth may come as a burst). Each key holds one number, its theoretical
//! arrival time (TAT); one unit costs the emission interval `T = 1 min / per_minute`, and `cost`
//! units are admitted while `max(TAT, now) + cost·T - now <= 1 min`. Times are whole
//! microseconds (`cost·T` rounded up), so Redis's Lua (`check.lua`), whose numbers are doubles,
//! computes exactly what this code does. Pure: the clock and the TATs are the stores'.

/// The burst tolerance and the period of `per_minute`, in µs.
pub(super) const MINUTE_US: u64 = 60_000_000;

/// A rule in the units of the algorithm.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit<'a> {
    pub key: &'a str,
    /// cost·T in µs, rounded up: so a cost of `per_minute` is exactly the minute (the whole
    /// burst fits), and a positive cost never rounds to nothing, however high the limit.
    pub increment: u64,
}

impl<'a> Limit<'a> {
    /// `cost` units under `per_minute` units per minute; None when that does not limit
    /// (`per_minute` 0).
    pub fn new(key: &'a str, per_minute: u32, cost: u32) -> Option<Self> {
        // At most u32::MAX · 6e7 < 2^58: no overflow.
        (per_minute > 0).then(|| Self {
            key,
            increment: (u64::from(cost) * MINUTE_US).div_ceil(u64::from(per_minute)),
        })
    }

    /// A cost above the whole minute's burst, which no wait would ever admit.
    pub fn exceeds_burst(&self) -> bool {
        self.increment > MINUTE_US
    }

    /// GCRA: Ok(the TAT once charged) or Err(µs until it would be admitted), from `tat`. A cost
    /// of 0 charges nothing and only asks for some capacity left.
    pub fn decide(&self, tat: u64, now: u64) -> Result<u64, u64> {
        let ahead = tat.saturating_sub(now);
        if self.increment == 0 {
            return if ahead < MINUTE_US {
                Ok(tat)
            } else {
                Err(ahead - MINUTE_US + 1)
            };
        }
        let ahead = ahead.saturating_add(self.increment);
        if ahead <= MINUTE_US {
            Ok(now + ahead)
        } else {
            Err(ahead - MINUTE_US)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_whole_burst_and_high_limits() {
        for per_minute in [7, 11, 13, 999_983, u32::MAX] {
            let burst = Limit::new("k", per_minute, per_minute).unwrap();
            assert_eq!(burst.decide(0, 0), Ok(MINUTE_US), "{per_minute}");
            if let Some(more) = per_minute.checked_add(1) {
                let over = Limit::new("k", per_minute, more).unwrap();
                assert!(over.exceeds_burst(), "{per_minute}");
            }
        }
        // 150 M tokens a minute (a high provider tier): a token still costs something.
        let one = Limit::new("k", 150_000_000, 1).unwrap();
        assert_eq!(one.increment, 1);
        let many = Limit::new("k", 150_000_000, 3000).unwrap();
        assert_eq!(many.increment, 1200);
    }

    #[test]
    fn no_limit_without_a_rate() {
        assert!(Limit::new("k", 0, 1_000_000).is_none());
    }

    #[test]
    fn a_unit_is_admitted_until_the_tat_is_a_minute_ahead() {
        // 3 a minute: 20 s a unit.
        let unit = Limit::new("k", 3, 1).unwrap();
        let now = 1_000;
        assert_eq!(unit.decide(now, now), Ok(now + 20_000_000));
        assert_eq!(unit.decide(now + 40_000_000, now), Ok(now + MINUTE_US));
        assert_eq!(unit.decide(now + 40_000_001, now), Err(1));
        // A TAT in the past counts from now.
        assert_eq!(unit.decide(0, now), Ok(now + 20_000_000));
    }

    #[test]
    fn a_cost_of_zero_charges_nothing_and_wants_some_capacity() {
        let peek = Limit::new("k", 3, 0).unwrap();
        assert_eq!(peek.increment, 0);
        assert_eq!(peek.decide(MINUTE_US - 1, 0), Ok(MINUTE_US - 1));
        assert_eq!(peek.decide(MINUTE_US, 0), Err(1));
        assert_eq!(peek.decide(MINUTE_US + 5, 0), Err(6));
    }
}
