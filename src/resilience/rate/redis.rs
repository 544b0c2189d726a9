//! The TATs in Redis, shared by the replicas: the two scripts (`check.lua`, `charge.lua`) run
//! the arithmetic of `gcra.rs` on Redis's clock, so that replicas whose clocks disagree still
//! agree on the limits.
//!
//! Redis is an aid, never a dependency: a call that gets no answer within [`REDIS_TIMEOUT`]
//! answers None (to be decided locally), one warning says so for the whole outage, and a
//! connection is tried again at most once a second. One Redis server (with replicas if need
//! be), not a Cluster: the keys of one check must be updated by one script, and may hash to
//! different slots.

use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Script, ScriptInvocation};
use tokio::time::Instant;

use super::gcra::Limit;

/// How long one Redis call may take before the call is decided locally: a rate check sits in
/// front of every request, so a black-holed Redis must cost little.
pub(super) const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// At most one connection attempt per this long, so an outage is not met by a storm of them.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// How long a connection attempt may go on in the background after the call that began it
/// stopped waiting (after `REDIS_TIMEOUT`), so a slow but working link still connects.
const CONNECT_TIMEOUT: Duration = RECONNECT_EVERY;
/// Keeps these keys apart from anything else in a shared Redis.
pub(super) const KEY_PREFIX: &str = "llmrpc:rate:";

/// GCRA over every rule of one check at once, all charged or none; `replicate_commands` lets a
/// script that read TIME write on Redis 3.2 to 4 (later versions always replicate effects).
const CHECK_LUA: &str = include_str!("check.lua");
/// The post-paid charge, refusing nothing.
const CHARGE_LUA: &str = include_str!("charge.lua");

/// What is known of Redis: whether limits are shared now, and whether an outage's start (or
/// end) has been logged, so that each is logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    /// No call yet.
    Unknown,
    /// Redis answered the last call.
    Up,
    /// The last call got no answer; the outage has been logged.
    Down,
}

/// A [`Health`] that calls on any thread read and change at once, without a lock: the one
/// place where it is a number.
struct HealthCell(AtomicU8);

impl HealthCell {
    fn new(health: Health) -> Self {
        Self(AtomicU8::new(Self::encode(health)))
    }

    fn get(&self) -> Health {
        Self::decode(self.0.load(SeqCst))
    }

    /// Sets `health`, returning what it was.
    fn swap(&self, health: Health) -> Health {
        Self::decode(self.0.swap(Self::encode(health), SeqCst))
    }

    fn encode(health: Health) -> u8 {
        match health {
            Health::Unknown => 0,
            Health::Up => 1,
            Health::Down => 2,
        }
    }

    fn decode(n: u8) -> Health {
        match n {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }
}

/// The Redis side. A `MultiplexedConnection` and not a `ConnectionManager`: the manager
/// reconnects on its own schedule and would leave calls waiting on it, while here a call must
/// never wait for a reconnection and retries are paced by [`RECONNECT_EVERY`].
pub(super) struct Remote {
    client: Client,
    check: Script,
    charge: Script,
    conn: Mutex<Conn>,
    health: HealthCell,
}

#[derive(Default)]
struct Conn {
    live: Option<MultiplexedConnection>,
    last_attempt: Option<Instant>,
}

impl Remote {
    /// Does not connect (that happens on first use): Err only for a malformed URL.
    pub fn new(url: &str) -> Result<Self, String> {
        // Not the URL itself, which may hold a password.
        let client = Client::open(url).map_err(|err| format!("malformed Redis URL: {err}"))?;
        Ok(Self {
            client,
            check: Script::new(CHECK_LUA),
            charge: Script::new(CHARGE_LUA),
            conn: Mutex::new(Conn::default()),
            health: HealthCell::new(Health::Unknown),
        })
    }

    /// Whether Redis answered the last call.
    pub fn is_up(&self) -> bool {
        self.health.get() == Health::Up
    }

    /// All of `limits` at once or none, decided by Redis: Ok(()) and every limit charged, or
    /// Err(the wait) and nothing charged; None when Redis gave no answer.
    pub async fn check(self: &Arc<Self>, limits: &[Limit<'_>]) -> Option<Result<(), Duration>> {
        let mut call = self.check.prepare_invoke();
        for limit in limits {
            call.key(format!("{KEY_PREFIX}{}", limit.key))
                .arg(limit.increment);
        }
        let wait = self.run(&call).await?;
        Some(match wait {
            0 => Ok(()),
            wait => Err(Duration::from_micros(wait)),
        })
    }

    /// Charges `limit` without refusing it; false when Redis gave no answer.
    pub async fn charge(self: &Arc<Self>, limit: &Limit<'_>) -> bool {
        let mut call = self.charge.key(format!("{KEY_PREFIX}{}", limit.key));
        call.arg(limit.increment);
        self.run(&call).await.is_some()
    }

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
                if self.health.swap(Health::Up) == Health::Down {
                    tracing::info!("Redis answers again: rate limits are shared by the replicas");
                }
                Some(answer)
            }
            Err(reason) => {
                // A connection that failed a call may be broken or black-holed: make a new one
                // (no sooner than `RECONNECT_EVERY` after the last attempt).
                self.conn().live = None;
                if self.health.swap(Health::Down) != Health::Down {
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
    pub async fn connection(self: &Arc<Self>) -> Result<MultiplexedConnection, String> {
        {
            let mut conn = self.conn();
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
                    remote.conn().live = Some(conn.clone());
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

    /// A poisoned lock still holds a consistent state (every update is one assignment), so go
    /// on.
    fn conn(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the last connection attempt began.
    #[cfg(test)]
    pub fn last_attempt(&self) -> Option<Instant> {
        self.conn().last_attempt
    }

    /// As if Redis had answered, or not, since: the next call then logs as it would.
    #[cfg(test)]
    pub fn pretend(&self, health: Health) {
        self.health.swap(health);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reads_back_as_set() {
        let cell = HealthCell::new(Health::Unknown);
        for health in [Health::Up, Health::Down, Health::Unknown, Health::Down] {
            let before = cell.get();
            assert_eq!(cell.swap(health), before);
            assert_eq!(cell.get(), health);
        }
    }
}
