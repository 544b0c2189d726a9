use std::sync::Mutex;

use tokio::time::Instant;

use super::redis::{Health, KEY_PREFIX, REDIS_TIMEOUT};
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
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn count(&self, level: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
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
    let attempted = limits.remote.as_ref().unwrap().last_attempt();
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
    for _ in 0..3 {
        assert_eq!(remote.check(&[]).await, None);
    }
    assert_eq!(log.count("WARN"), 1);
    // As if it had answered since: a new outage, a new warning.
    remote.pretend(Health::Up);
    assert_eq!(remote.check(&[]).await, None);
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
        remote.pretend(Health::Down);
        assert!(!limits.is_shared());
        admit(&limits, &[rule(&team, 3, 1)], 3).await;
        assert_eq!((log.count("INFO"), log.count("WARN")), (1, 0));
        keys.delete().await;
    }
}
