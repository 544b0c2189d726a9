//! Rate limits that the replicas of the service share through Redis: per-team requests and
//! tokens per minute, per-provider requests per minute. A limit kept by each replica alone lets
//! N replicas admit N times the limit; kept in Redis, they admit it once.
//!
//! The algorithm is GCRA, the one `governor` uses (and with its meaning of `per_minute`: a
//! full minute's worth may come as a burst). Each key holds one number, its theoretical arrival
//! time (TAT); one unit costs the emission interval `T = 1 min / per_minute`, and `cost` units
//! are admitted while `max(TAT, now) + cost·T - now <= 1 min`. Times are whole microseconds
//! (`cost·T` rounded up), so Redis's Lua, whose numbers are doubles, computes exactly what the
//! local code does.
//!
//! Redis is an aid, never a dependency: when it does not answer within 100 ms a call is decided
//! by this replica's own state, one warning says so, and a connection is tried again at most
//! once a second. So an outage loosens the limits (to once per replica) but neither fails nor
//! slows calls. One Redis server (with replicas if need be), not a Cluster: the keys of one
//! check must be updated by one script, and may hash to different slots.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script, ScriptInvocation};
use tokio::time::Instant;

/// The burst tolerance and the period of `per_minute`.
const MINUTE_US: u64 = 60_000_000;
/// How long one Redis call may take before the call is decided locally: a rate check sits in
/// front of every request, so a black-holed Redis must cost little.
const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// At most one connection attempt per this long, so an outage is not met by a storm of them.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// How long a connection attempt may go on in the background after the call that began it
/// stopped waiting (after `REDIS_TIMEOUT`), so a slow but working link still connects.
const CONNECT_TIMEOUT: Duration = RECONNECT_EVERY;
/// Keeps these keys apart from anything else in a shared Redis.
const KEY_PREFIX: &str = "llmrpc:rate:";
/// Local keys whose TAT has passed are dropped (they mean the same as absent) once the map
/// reaches this size, and then again at twice the size that remained.
const PRUNE_FROM: usize = 1024;

/// GCRA over every rule of one check at once: all are charged or none. KEYS[i] is a rule's key
/// and ARGV[i] its cost·T in µs (0 for a cost of 0). Returns 0 when all were admitted (and
/// charged), else the wait in µs until they would be. Redis's TIME is the clock,
/// so replicas whose clocks disagree still agree on the limits; `replicate_commands` lets a
/// script that read TIME write on Redis 3.2 to 4 (later versions always replicate effects).
const CHECK_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local minute = 60000000
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tats, wait = {}, 0
for i, key in ipairs(KEYS) do
  local increment = tonumber(ARGV[i])
  local start = math.max(tats[key] or tonumber(redis.call('GET', key)) or 0, now)
  if increment == 0 then
    if start - now >= minute then wait = math.max(wait, start - now - minute + 1) end
  else
    local tat = start + increment
    if tat - now > minute then
      wait = math.max(wait, tat - now - minute)
    else
      tats[key] = tat
    end
  end
end
if wait > 0 then return wait end
for key, tat in pairs(tats) do
  redis.call('SET', key, string.format('%.0f', tat),
    'PX', string.format('%.0f', math.max(1, math.ceil((tat - now) / 1000))))
end
return 0
";

/// The post-paid charge: TAT = max(TAT, now) + ARGV[1] (cost·T in µs), refusing nothing.
const CHARGE_LUA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or 0, now) + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', tat),
  'PX', string.format('%.0f', math.max(1, math.ceil((tat - now) / 1000))))
return 0
";

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
    local: Mutex<Local>,
    /// The local clock's origin: tokio's, so that tests with a paused clock control it.
    epoch: Instant,
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
            local: Mutex::new(Local::default()),
            epoch: Instant::now(),
            remote: None,
        }
    }

    /// Shared through Redis at `url` (e.g. redis://127.0.0.1:6379). Neither fails nor blocks
    /// when Redis is down: it connects on first use, and retries at most once per second.
    /// Err only for a malformed URL.
    pub fn shared(url: &str) -> Result<Self, String> {
        // Not the URL itself, which may hold a password.
        let client = Client::open(url).map_err(|err| format!("malformed Redis URL: {err}"))?;
        Ok(Self {
            remote: Some(Arc::new(Remote {
                client,
                check: Script::new(CHECK_LUA),
                charge: Script::new(CHARGE_LUA),
                conn: Mutex::new(Conn::default()),
                health: AtomicU8::new(UNKNOWN),
            })),
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
        let limits: Vec<Limit<'_>> = rules.iter().filter_map(Limit::new).collect();
        if limits.is_empty() {
            return Ok(());
        }
        if limits.iter().any(|limit| limit.increment > MINUTE_US) {
            return Err(Duration::MAX);
        }
        if let Some(remote) = &self.remote {
            let mut call = remote.check.prepare_invoke();
            for limit in &limits {
                call.key(format!("{KEY_PREFIX}{}", limit.key))
                    .arg(limit.increment);
            }
            if let Some(wait) = remote.run(&call).await {
                return match wait {
                    0 => Ok(()),
                    wait => Err(Duration::from_micros(wait)),
                };
            }
        }
        self.check_locally(&limits)
    }

    /// Post-paid: charges `cost` without refusing (tokens counted after a call ends), so the
    /// key may go into debt, which then blocks [`Self::check`] until it decays.
    pub async fn charge(&self, key: &str, per_minute: u32, cost: u32) {
        let Some(limit) = Limit::new(&Rule {
            key,
            per_minute,
            cost,
        }) else {
            return;
        };
        if limit.increment == 0 {
            return;
        }
        if let Some(remote) = &self.remote {
            let mut call = remote.charge.key(format!("{KEY_PREFIX}{key}"));
            call.arg(limit.increment);
            if remote.run(&call).await.is_some() {
                return;
            }
        }
        let now = self.now();
        let mut local = lock(&self.local);
        let tat = local.tat(key, now).saturating_add(limit.increment);
        local.set(key, tat, now);
    }

    /// Whether limits are currently shared (Redis answered last time).
    pub fn is_shared(&self) -> bool {
        self.remote
            .as_ref()
            .is_some_and(|remote| remote.health.load(SeqCst) == UP)
    }

    /// Microseconds since `epoch`.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn check_locally(&self, limits: &[Limit<'_>]) -> Result<(), Duration> {
        let now = self.now();
        let mut local = lock(&self.local);
        // The TATs this check would set; a key that appears twice is charged twice.
        let mut charged: Vec<(&str, u64)> = Vec::with_capacity(limits.len());
        let mut wait = 0;
        for limit in limits {
            let tat = charged
                .iter()
                .rev()
                .find(|(key, _)| *key == limit.key)
                .map_or_else(|| local.tat(limit.key, now), |&(_, tat)| tat);
            match limit.decide(tat, now) {
                Ok(tat) => charged.push((limit.key, tat)),
                Err(more) => wait = wait.max(more),
            }
        }
        if wait > 0 {
            return Err(Duration::from_micros(wait));
        }
        for (key, tat) in charged {
            local.set(key, tat, now);
        }
        Ok(())
    }
}

/// A rule in the units of the algorithm.
#[derive(Debug, Clone, Copy)]
struct Limit<'a> {
    key: &'a str,
    /// cost·T in µs, rounded up: so a cost of `per_minute` is exactly the minute (the whole
    /// burst fits), and a positive cost never rounds to nothing, however high the limit.
    increment: u64,
}

impl<'a> Limit<'a> {
    /// None when the rule does not limit (`per_minute` 0).
    fn new(rule: &Rule<'a>) -> Option<Self> {
        // At most u32::MAX · 6e7 < 2^58: no overflow.
        (rule.per_minute > 0).then(|| Self {
            key: rule.key,
            increment: (u64::from(rule.cost) * MINUTE_US).div_ceil(u64::from(rule.per_minute)),
        })
    }

    /// GCRA: Ok(the TAT once charged) or Err(µs until it would be admitted), from `tat`.
    fn decide(&self, tat: u64, now: u64) -> Result<u64, u64> {
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

/// This replica's TATs, in µs since `RateLimits::epoch`.
#[derive(Debug, Default)]
struct Local {
    tats: HashMap<String, u64>,
    prune_at: usize,
}

impl Local {
    fn tat(&self, key: &str, now: u64) -> u64 {
        self.tats.get(key).copied().unwrap_or(now)
    }

    fn set(&mut self, key: &str, tat: u64, now: u64) {
        if tat <= now {
            return;
        }
        match self.tats.get_mut(key) {
            Some(old) => *old = tat,
            None => {
                if self.tats.len() >= self.prune_at.max(PRUNE_FROM) {
                    self.tats.retain(|_, tat| *tat > now);
                    self.prune_at = self.tats.len() * 2;
                }
                self.tats.insert(key.to_owned(), tat);
            }
        }
    }
}

/// Redis answered the last call.
const UP: u8 = 1;
/// The last call got no answer; the outage has been logged.
const DOWN: u8 = 2;
/// No call yet.
const UNKNOWN: u8 = 0;

/// The Redis side. A `MultiplexedConnection` and not a `ConnectionManager`: the manager
/// reconnects on its own schedule and would leave calls waiting on it, while here a call must
/// never wait for a reconnection and retries are paced by [`RECONNECT_EVERY`].
struct Remote {
    client: Client,
    check: Script,
    charge: Script,
    conn: Mutex<Conn>,
    health: AtomicU8,
}

#[derive(Default)]
struct Conn {
    live: Option<MultiplexedConnection>,
    last_attempt: Option<Instant>,
}

impl Remote {
    /// Runs a script within [`REDIS_TIMEOUT`]: its answer (0 or a wait in µs), or None when
    /// Redis did not give one and the call is to be decided locally.
    async fn run(self: &Arc<Self>, call: &ScriptInvocation<'_>) -> Option<u64> {
        let attempt = async {
            let mut conn = self.connection().await?;
            call.invoke_async::<u64>(&mut conn)
                .await
                .map_err(|err| format!("{err}"))
        };
        let outcome = match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} ms", REDIS_TIMEOUT.as_millis())),
        };
        match outcome {
            Ok(answer) => {
                if self.health.swap(UP, SeqCst) == DOWN {
                    tracing::info!("Redis answers again: rate limits are shared by the replicas");
                }
                Some(answer)
            }
            Err(reason) => {
                // A connection that failed a call may be broken or black-holed: make a new one
                // (no sooner than `RECONNECT_EVERY` after the last attempt).
                lock(&self.conn).live = None;
                if self.health.swap(DOWN, SeqCst) != DOWN {
                    tracing::warn!(
                        error = %reason,
                        "Redis unreachable: rate limits are per replica until it answers again"
                    );
                }
                None
            }
        }
    }

    /// The live connection; else a new one if no attempt began within `RECONNECT_EVERY`. The
    /// attempt runs as a task of its own, so that it may finish after its caller gave up.
    async fn connection(self: &Arc<Self>) -> Result<MultiplexedConnection, String> {
        {
            let mut conn = lock(&self.conn);
            if let Some(live) = &conn.live {
                return Ok(live.clone());
            }
            let now = Instant::now();
            if conn
                .last_attempt
                .is_some_and(|at| now < at + RECONNECT_EVERY)
            {
                return Err("not connected; reconnecting at most once a second".to_owned());
            }
            conn.last_attempt = Some(now);
        }
        let remote = Arc::clone(self);
        let attempt = tokio::spawn(async move {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(REDIS_TIMEOUT));
            let made = tokio::time::timeout(
                CONNECT_TIMEOUT,
                remote
                    .client
                    .get_multiplexed_async_connection_with_config(&config),
            )
            .await;
            match made {
                Ok(Ok(conn)) => {
                    lock(&remote.conn).live = Some(conn.clone());
                    Ok(conn)
                }
                Ok(Err(err)) => Err(format!("{err}")),
                Err(_) => Err(format!(
                    "no connection within {} ms",
                    CONNECT_TIMEOUT.as_millis()
                )),
            }
        });
        attempt
            .await
            .map_err(|err| format!("connection attempt: {err}"))?
    }
}

/// A poisoned lock still holds consistent state (every update is one assignment), so go on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const MICRO: Duration = Duration::from_micros(1);

    fn rule(key: &str, per_minute: u32, cost: u32) -> Rule<'_> {
        Rule {
            key,
            per_minute,
            cost,
        }
    }

    /// Checks `rules` `n` times, all of which must be admitted.
    async fn admit(limits: &RateLimits, rules: &[Rule<'_>], n: usize) {
        for i in 0..n {
            assert_eq!(limits.check(rules).await, Ok(()), "check {i} of {n}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn admits_per_minute_then_refuses_until_one_more_has_decayed() {
        let limits = RateLimits::local();
        let rpm = [rule("team-a", 3, 1)];
        admit(&limits, &rpm, 3).await;
        assert_eq!(limits.check(&rpm).await, Err(20 * SECOND));
        assert_eq!(
            limits.check(&rpm).await,
            Err(20 * SECOND),
            "a refusal charges nothing"
        );

        tokio::time::advance(20 * SECOND - MICRO).await;
        assert_eq!(limits.check(&rpm).await, Err(MICRO));
        tokio::time::advance(MICRO).await;
        admit(&limits, &rpm, 1).await;
        assert_eq!(limits.check(&rpm).await, Err(20 * SECOND));

        // A minute after the last, the whole burst is back, and no more than it.
        tokio::time::advance(60 * SECOND).await;
        admit(&limits, &rpm, 3).await;
        assert!(limits.check(&rpm).await.is_err());
        assert!(!limits.is_shared());
    }

    #[tokio::test(start_paused = true)]
    async fn cost_zero_checks_for_capacity_and_a_charge_can_go_into_debt() {
        let limits = RateLimits::local();
        let tpm = [rule("team-a:tokens", 1000, 0)];
        admit(&limits, &tpm, 5).await;
        // It charged nothing: the whole minute is still there.
        admit(&limits, &[rule("team-a:tokens", 1000, 1000)], 1).await;
        assert_eq!(limits.check(&tpm).await, Err(MICRO), "no capacity left");

        tokio::time::advance(SECOND).await;
        admit(&limits, &tpm, 1).await;
        // 1000 + 1500 tokens at 60 ms each, 1 s of which has passed: 89 s beyond the minute
        // of tolerance (and 1 µs, since a cost of 0 wants some capacity, not none).
        limits.charge("team-a:tokens", 1000, 1500).await;
        assert_eq!(limits.check(&tpm).await, Err(89 * SECOND + MICRO));

        tokio::time::advance(89 * SECOND).await;
        assert_eq!(limits.check(&tpm).await, Err(MICRO));
        tokio::time::advance(MICRO).await;
        admit(&limits, &tpm, 1).await;
        assert!(
            limits
                .check(&[rule("team-a:tokens", 1000, 1)])
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rules_are_admitted_together_or_not_at_all() {
        let limits = RateLimits::local();
        admit(&limits, &[rule("provider", 2, 2)], 1).await;
        let both = [rule("team", 3, 1), rule("provider", 2, 1)];
        // The provider refuses, so the team is not charged.
        assert_eq!(limits.check(&both).await, Err(30 * SECOND));
        admit(&limits, &[rule("team", 3, 1)], 3).await;
        // The wait is for the slowest: the team's 20 s, not the provider's 30 s.
        let both = [rule("team", 3, 1), rule("provider", 2, 1)];
        assert_eq!(limits.check(&both).await, Err(30 * SECOND));
        tokio::time::advance(30 * SECOND).await;
        admit(&limits, &both, 1).await;
        assert_eq!(limits.check(&both).await, Err(30 * SECOND));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_twice_in_one_check_is_charged_twice() {
        let limits = RateLimits::local();
        let twice = [rule("k", 3, 1), rule("k", 3, 1)];
        admit(&limits, &twice, 1).await;
        assert_eq!(limits.check(&twice).await, Err(20 * SECOND));
        admit(&limits, &[rule("k", 3, 1)], 1).await;
    }

    #[tokio::test(start_paused = true)]
    async fn zero_per_minute_is_no_limit_and_a_cost_above_the_limit_never_passes() {
        let limits = RateLimits::local();
        admit(&limits, &[rule("free", 0, 1_000_000)], 10).await;
        assert_eq!(
            limits
                .check(&[rule("team", 3, 1), rule("tokens", 100, 101)])
                .await,
            Err(Duration::MAX)
        );
        // Nothing was charged for it.
        admit(&limits, &[rule("team", 3, 1)], 3).await;
        limits.charge("free", 0, 5).await;
        admit(&limits, &[rule("free", 0, 1)], 1).await;
    }

    #[test]
    fn rounding_keeps_the_whole_burst_and_high_limits() {
        for per_minute in [7, 11, 13, 999_983, u32::MAX] {
            let burst = Limit::new(&rule("k", per_minute, per_minute)).unwrap();
            assert_eq!(burst.decide(0, 0), Ok(MINUTE_US), "{per_minute}");
            if let Some(more) = per_minute.checked_add(1) {
                let over = Limit::new(&rule("k", per_minute, more)).unwrap();
                assert!(over.increment > MINUTE_US, "{per_minute}");
            }
        }
        // 150 M tokens a minute (a high provider tier): a token still costs something.
        let one = Limit::new(&rule("k", 150_000_000, 1)).unwrap();
        assert_eq!(one.increment, 1);
        let many = Limit::new(&rule("k", 150_000_000, 3000)).unwrap();
        assert_eq!(many.increment, 1200);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_pruned() {
        let limits = RateLimits::local();
        for i in 0..PRUNE_FROM {
            admit(&limits, &[rule(&format!("k{i}"), 1, 1)], 1).await;
        }
        tokio::time::advance(61 * SECOND).await;
        admit(&limits, &[rule("fresh", 1, 1)], 1).await;
        assert_eq!(lock(&limits.local).tats.len(), 1);
    }

    #[test]
    fn the_futures_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        let limits = RateLimits::local();
        send(&limits.check(&[]));
        send(&limits.charge("k", 1, 1));
    }

    #[test]
    fn only_a_malformed_url_is_refused() {
        assert!(RateLimits::shared("not a url").is_err());
        let limits = RateLimits::shared("redis://127.0.0.1:1").unwrap();
        assert!(!limits.is_shared(), "it does not connect until used");
    }

    /// Log lines, for the outage's one warning.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn count(&self, level: &str) -> usize {
            String::from_utf8_lossy(&lock(&self.0))
                .lines()
                .filter(|line| line.contains(level))
                .count()
        }
    }

    fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    /// Nothing listens on port 1: the limits hold locally, at once, with one warning.
    #[tokio::test]
    async fn without_redis_the_limits_hold_locally_and_promptly() {
        let (log, _guard) = capture();
        let limits = RateLimits::shared("redis://127.0.0.1:1").unwrap();
        let began = std::time::Instant::now();
        let began_at = Instant::now();
        let rpm = [rule("team", 3, 1)];
        admit(&limits, &rpm, 3).await;
        let wait = limits.check(&rpm).await.unwrap_err();
        assert!(wait > 19 * SECOND && wait <= 20 * SECOND, "{wait:?}");
        limits.charge("tokens", 10, 20).await;
        assert!(limits.check(&[rule("tokens", 10, 0)]).await.is_err());
        assert!(began.elapsed() < SECOND, "{:?}", began.elapsed());
        assert!(!limits.is_shared());
        assert_eq!(log.count("WARN"), 1, "one warning for the outage");
        let attempted = limits
            .remote
            .as_ref()
            .unwrap()
            .conn
            .lock()
            .unwrap()
            .last_attempt;
        assert!(attempted.is_some_and(|at| at >= began_at));
    }

    /// Redis that accepts the connection and never answers: each call gives up after
    /// `REDIS_TIMEOUT`, and only one per second tries.
    #[tokio::test]
    async fn a_black_holed_redis_costs_a_call_at_most_the_timeout() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", silent.local_addr().unwrap());
        let limits = RateLimits::shared(&url).unwrap();
        let rpm = [rule("team", 3, 1)];
        let began = std::time::Instant::now();
        admit(&limits, &rpm, 1).await;
        let first = began.elapsed();
        assert!(
            first >= REDIS_TIMEOUT && first < 5 * REDIS_TIMEOUT,
            "{first:?}"
        );
        let began = std::time::Instant::now();
        admit(&limits, &rpm, 2).await;
        assert!(limits.check(&rpm).await.is_err());
        assert!(
            began.elapsed() < REDIS_TIMEOUT,
            "no new attempt within a second: {:?}",
            began.elapsed()
        );
        assert!(!limits.is_shared());
    }

    #[tokio::test]
    async fn an_outage_is_warned_of_once() {
        let (log, _guard) = capture();
        let limits = RateLimits::shared("redis://127.0.0.1:1").unwrap();
        let remote = limits.remote.as_ref().unwrap();
        let nothing = remote.check.prepare_invoke();
        for _ in 0..3 {
            assert_eq!(remote.run(&nothing).await, None);
        }
        assert_eq!(log.count("WARN"), 1);
        // As if it had answered since: a new outage, a new warning.
        remote.health.store(UP, SeqCst);
        assert_eq!(remote.run(&nothing).await, None);
        assert_eq!((log.count("WARN"), log.count("INFO")), (2, 0));
    }

    /// The same behaviour through Redis, whose clock cannot be paused: waits are measured by
    /// Redis's TIME between calls, so they come out a little under the local ones.
    mod redis {
        use super::*;

        fn url() -> String {
            std::env::var("LLMRPC_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
        }

        /// Keys of this run only, deleted at the end (and expiring anyway if a test fails).
        struct Keys(String);

        impl Keys {
            fn new() -> Self {
                Self(format!(
                    "test-{}-{:016x}",
                    std::process::id(),
                    fastrand::u64(..)
                ))
            }

            fn key(&self, name: &str) -> String {
                format!("{}:{name}", self.0)
            }

            async fn delete(self) {
                let client = ::redis::Client::open(url()).unwrap();
                let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                let pattern = format!("{KEY_PREFIX}{}:*", self.0);
                let keys: Vec<String> = ::redis::cmd("KEYS")
                    .arg(&pattern)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                if !keys.is_empty() {
                    let _: i64 = ::redis::cmd("DEL")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
            }
        }

        /// Connected before the first check, so that it does not depend on connecting within
        /// `REDIS_TIMEOUT`.
        async fn shared() -> RateLimits {
            let limits = RateLimits::shared(&url()).unwrap();
            limits.remote.as_ref().unwrap().connection().await.unwrap();
            limits
        }

        async fn admit(limits: &RateLimits, rules: &[Rule<'_>], n: usize) {
            super::admit(limits, rules, n).await;
            assert!(limits.is_shared(), "decided by Redis");
        }

        #[tokio::test]
        #[ignore = "needs Redis at LLMRPC_TEST_REDIS_URL (default redis://127.0.0.1:6379); make test runs it when Redis answers or CI=true"]
        async fn admits_per_minute_then_refuses() {
            let keys = Keys::new();
            let team = keys.key("team");
            let limits = shared().await;
            let rpm = [rule(&team, 3, 1)];
            admit(&limits, &rpm, 3).await;
            let wait = limits.check(&rpm).await.unwrap_err();
            assert!(wait > 19 * SECOND && wait <= 20 * SECOND, "{wait:?}");
            assert!(limits.is_shared());

            let client = ::redis::Client::open(url()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let ttl: i64 = ::redis::cmd("PTTL")
                .arg(format!("{KEY_PREFIX}{team}"))
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(ttl > 59_000 && ttl <= 60_000, "idle keys expire: {ttl} ms");
            keys.delete().await;
        }

        #[tokio::test]
        #[ignore = "needs Redis at LLMRPC_TEST_REDIS_URL (default redis://127.0.0.1:6379); make test runs it when Redis answers or CI=true"]
        async fn the_wait_it_gives_is_enough() {
            let keys = Keys::new();
            let key = keys.key("fast");
            let limits = shared().await;
            // 1 s per unit: after the whole minute's burst the next is at most 1 s away (and
            // more than a loaded machine's pause between two calls).
            admit(&limits, &[rule(&key, 60, 60)], 1).await;
            let wait = limits.check(&[rule(&key, 60, 1)]).await.unwrap_err();
            assert!(wait <= Duration::from_secs(1), "{wait:?}");
            tokio::time::sleep(wait).await;
            admit(&limits, &[rule(&key, 60, 1)], 1).await;
            keys.delete().await;
        }

        #[tokio::test]
        #[ignore = "needs Redis at LLMRPC_TEST_REDIS_URL (default redis://127.0.0.1:6379); make test runs it when Redis answers or CI=true"]
        async fn cost_zero_checks_for_capacity_and_a_charge_can_go_into_debt() {
            let keys = Keys::new();
            let tokens = keys.key("tokens");
            let limits = shared().await;
            let tpm = [rule(&tokens, 1000, 0)];
            admit(&limits, &tpm, 3).await;
            admit(&limits, &[rule(&tokens, 1000, 500)], 1).await;
            admit(&limits, &tpm, 1).await;
            limits.charge(&tokens, 1000, 1000).await;
            assert!(limits.is_shared());
            // 1500 tokens at 60 ms each: 30 s beyond the minute of tolerance.
            let wait = limits.check(&tpm).await.unwrap_err();
            assert!(
                wait > 29 * SECOND && wait <= 30 * SECOND + MICRO,
                "{wait:?}"
            );
            keys.delete().await;
        }

        #[tokio::test]
        #[ignore = "needs Redis at LLMRPC_TEST_REDIS_URL (default redis://127.0.0.1:6379); make test runs it when Redis answers or CI=true"]
        async fn rules_are_admitted_together_or_not_at_all() {
            let keys = Keys::new();
            let (team, provider) = (keys.key("team"), keys.key("provider"));
            let limits = shared().await;
            admit(&limits, &[rule(&provider, 2, 2)], 1).await;
            let both = [rule(&team, 3, 1), rule(&provider, 2, 1)];
            let wait = limits.check(&both).await.unwrap_err();
            assert!(wait > 29 * SECOND && wait <= 30 * SECOND, "{wait:?}");
            // The team was not charged for the refusal.
            admit(&limits, &[rule(&team, 3, 1)], 3).await;
            assert!(limits.check(&[rule(&team, 3, 1)]).await.is_err());

            let same = keys.key("same");
            let twice = [rule(&same, 3, 1), rule(&same, 3, 1)];
            admit(&limits, &twice, 1).await;
            assert!(limits.check(&twice).await.is_err(), "charged twice");
            admit(&limits, &[rule(&same, 3, 1)], 1).await;
            keys.delete().await;
        }

        #[tokio::test]
        #[ignore = "needs Redis at LLMRPC_TEST_REDIS_URL (default redis://127.0.0.1:6379); make test runs it when Redis answers or CI=true"]
        async fn replicas_share_one_limit() {
            let keys = Keys::new();
            let team = keys.key("team");
            let (one, other) = (shared().await, shared().await);
            let rpm = [rule(&team, 3, 1)];
            admit(&one, &rpm, 2).await;
            admit(&other, &rpm, 1).await;
            assert!(one.check(&rpm).await.is_err());
            assert!(other.check(&rpm).await.is_err());
            assert!(one.is_shared() && other.is_shared());
            keys.delete().await;
        }

        #[tokio::test]
        #[ignore = "needs Redis at LLMRPC_TEST_REDIS_URL (default redis://127.0.0.1:6379); make test runs it when Redis answers or CI=true"]
        async fn the_end_of_an_outage_is_logged_once() {
            let (log, _guard) = capture();
            let keys = Keys::new();
            let team = keys.key("team");
            let limits = shared().await;
            let remote = limits.remote.as_ref().unwrap();
            // As if Redis had been unreachable.
            remote.health.store(DOWN, SeqCst);
            assert!(!limits.is_shared());
            admit(&limits, &[rule(&team, 3, 1)], 3).await;
            assert_eq!((log.count("INFO"), log.count("WARN")), (1, 0));
            keys.delete().await;
        }
    }
}
