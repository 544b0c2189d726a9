//! The call ledger through its library API, the same scenarios on SQLite (a temporary file) and
//! on PostgreSQL (a database of its own per test, dropped afterwards). The PostgreSQL runs are
//! `#[ignore]`d, so that a machine without a server reports them as ignored rather than passed:
//! `make test` runs them (`--ignored postgres::`) when the server of `LLMRPC_TEST_POSTGRES_URL`
//! answers, and always when `CI=true`. Asked to run, they fail when no server answers.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use llmrpc::Usage;
use llmrpc::ledger::{
    self, AttemptRecord, CallRecord, GroupBy, Ledger, LedgerError, Prices, Store, UsageRow,
};
use serde_json::json;

use common::pg::PgDb;

/// 2026-11-21T10:00:00Z.
const T0: i64 = 1_795_255_200_000;
const HOUR: i64 = 3_600_000;

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
    }
}

fn attempt(
    provider: &str,
    model: &str,
    status: &str,
    http_status: Option<u16>,
    latency_ms: u64,
    started_at: i64,
) -> AttemptRecord {
    AttemptRecord {
        provider: provider.into(),
        model: model.into(),
        status: status.into(),
        http_status,
        latency_ms,
        started_at,
    }
}

/// A call answered at the first attempt with two tool calls, in trace `trace-a`.
fn success() -> CallRecord {
    let usage = usage(100, 20);
    CallRecord {
        trace_id: "trace-a".into(),
        span_id: "a1a1a1a1a1a1a1a1".into(),
        source_agent: Some("planner".into()),
        target_agent: Some("llm".into()),
        session_id: Some("s-1".into()),
        conversation_id: Some("c-1".into()),
        method: "llm.complete".into(),
        requested_model: "openai/gpt-4.1-mini".into(),
        provider: Some("openai".into()),
        model: Some("gpt-4.1-mini".into()),
        status: "ok".into(),
        error_message: None,
        attempts: vec![attempt("openai", "gpt-4.1-mini", "ok", Some(200), 400, T0)],
        latency_ms: 401,
        ttft_ms: None,
        usage,
        cost_usd: Prices::default().cost("openai", "gpt-4.1-mini", &usage),
        tool_calls: 2,
        metadata: Some(json!({"job": "nightly", "n": 3, "tags": ["a", "b"]})),
        started_at: T0,
        finished_at: T0 + 401,
        team_id: Some("team_a".into()),
        key_prefix: Some("llmrpc-1a2b3c4d".into()),
        task_id: Some("task-a".into()),
    }
}

/// A call the provider refused, in trace `trace-b`.
fn failure() -> CallRecord {
    CallRecord {
        trace_id: "trace-b".into(),
        span_id: "b2b2b2b2b2b2b2b2".into(),
        source_agent: Some("critic".into()),
        method: "llm.complete".into(),
        requested_model: "claude-haiku-4-5".into(),
        provider: Some("anthropic".into()),
        model: Some("claude-haiku-4-5".into()),
        status: "provider_rejected".into(),
        error_message: Some("anthropic rejected the request: bad image".into()),
        attempts: vec![attempt(
            "anthropic",
            "claude-haiku-4-5",
            "provider_rejected",
            Some(400),
            90,
            T0 + 1000,
        )],
        latency_ms: 91,
        started_at: T0 + 1000,
        finished_at: T0 + 1091,
        ..CallRecord::default()
    }
}

/// A stream rate-limited once, then answered with a tool call, in trace `trace-a` after
/// [`success`].
fn retried() -> CallRecord {
    let usage = usage(50, 10);
    CallRecord {
        trace_id: "trace-a".into(),
        span_id: "c3c3c3c3c3c3c3c3".into(),
        source_agent: Some("planner".into()),
        method: "llm.stream".into(),
        requested_model: "fast".into(),
        provider: Some("openai".into()),
        model: Some("gpt-4.1-mini".into()),
        status: "ok".into(),
        attempts: vec![
            attempt(
                "openai",
                "gpt-4.1-mini",
                "rate_limited",
                Some(429),
                30,
                T0 + 2000,
            ),
            attempt("openai", "gpt-4.1-mini", "ok", Some(200), 500, T0 + 2280),
        ],
        latency_ms: 780,
        ttft_ms: Some(120),
        usage,
        cost_usd: Prices::default().cost("openai", "gpt-4.1-mini", &usage),
        tool_calls: 1,
        started_at: T0 + 2000,
        finished_at: T0 + 2780,
        ..CallRecord::default()
    }
}

/// A call refused before routing: no provider, no model, no attempt, no source agent.
fn unrouted() -> CallRecord {
    CallRecord {
        trace_id: "trace-d".into(),
        span_id: "d4d4d4d4d4d4d4d4".into(),
        method: "llm.complete".into(),
        requested_model: "nonsense".into(),
        status: "model_not_found".into(),
        error_message: Some("unknown model \"nonsense\"".into()),
        started_at: T0 + 3000,
        finished_at: T0 + 3000,
        ..CallRecord::default()
    }
}

/// A call long before the others, in trace `trace-c`.
fn old() -> CallRecord {
    let usage = usage(7, 7);
    CallRecord {
        trace_id: "trace-c".into(),
        span_id: "e5e5e5e5e5e5e5e5".into(),
        source_agent: Some("planner".into()),
        method: "llm.complete".into(),
        requested_model: "gemini-2.5-flash".into(),
        provider: Some("gemini".into()),
        model: Some("gemini-2.5-flash".into()),
        status: "ok".into(),
        attempts: vec![attempt(
            "gemini",
            "gemini-2.5-flash",
            "ok",
            Some(200),
            10,
            T0 - 24 * HOUR,
        )],
        latency_ms: 10,
        usage,
        cost_usd: Prices::default().cost("gemini", "gemini-2.5-flash", &usage),
        started_at: T0 - 24 * HOUR,
        finished_at: T0 - 24 * HOUR + 10,
        ..CallRecord::default()
    }
}

/// Every fixture, written out of order so that `trace` has to sort.
async fn insert_fixtures(store: &dyn Store) {
    store.insert(&[retried(), failure()]).await.unwrap();
    store.insert(&[success(), old(), unrouted()]).await.unwrap();
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn trace_returns_that_traces_calls_oldest_first(store: Arc<dyn Store>) {
    insert_fixtures(&*store).await;

    let a = store.trace("trace-a").await.unwrap();
    assert_eq!(a, vec![success(), retried()]);
    assert_eq!(a[1].attempts.len(), 2);
    assert_eq!(a[1].attempts[0].http_status, Some(429));
    assert_eq!(store.trace("trace-b").await.unwrap(), vec![failure()]);
    assert_eq!(store.trace("trace-d").await.unwrap(), vec![unrouted()]);
    assert!(store.trace("no-such-trace").await.unwrap().is_empty());
    assert!(store.trace("").await.unwrap().is_empty());
    // An A2A task's call, by its task id.
    assert_eq!(store.task("task-a").await.unwrap(), Some(success()));
    assert_eq!(store.task("no-such-task").await.unwrap(), None);

    // The ops.trace shape: timestamps as RFC 3339.
    let shown = serde_json::to_value(&a).unwrap();
    assert_eq!(shown[0]["started_at"], "2026-11-21T10:00:00.000Z");
    assert_eq!(
        shown[1]["attempts"][1]["started_at"],
        "2026-11-21T10:00:02.280Z"
    );
    assert_eq!(shown[0]["metadata"]["tags"][1], "b");
    assert_eq!(
        (&shown[0]["tool_calls"], &shown[1]["tool_calls"]),
        (&json!(2), &json!(1))
    );

    // Migrations are applied once, whatever the number of starts.
    store.migrate().await.unwrap();
    assert_eq!(store.trace("trace-a").await.unwrap().len(), 2);
}

async fn usage_sums_calls_within_the_window(store: Arc<dyn Store>) {
    insert_fixtures(&*store).await;
    // Started exactly at `until`: outside.
    let late = CallRecord {
        trace_id: "trace-e".into(),
        started_at: T0 + HOUR,
        finished_at: T0 + HOUR + 1,
        ..success()
    };
    store.insert(&[late]).await.unwrap();
    let openai_cost = success().cost_usd + retried().cost_usd;
    assert!(openai_cost > 0.0);
    let row =
        |key: Option<&str>, calls, errors, prompt, completion, cost_usd, tool_calls| UsageRow {
            key: key.map(str::to_owned),
            calls,
            errors,
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            cost_usd,
            tool_calls,
        };
    let check = |got: Vec<UsageRow>, want: Vec<UsageRow>| {
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (got, want) in got.iter().zip(&want) {
            assert!(close(got.cost_usd, want.cost_usd), "{got:?} vs {want:?}");
            let got = UsageRow {
                cost_usd: want.cost_usd,
                ..got.clone()
            };
            assert_eq!(&got, want);
        }
    };

    let by_provider = store.usage(T0, T0 + HOUR, GroupBy::Provider, None).await;
    check(
        by_provider.unwrap(),
        vec![
            row(Some("anthropic"), 1, 1, 0, 0, 0.0, 0),
            row(Some("openai"), 2, 0, 150, 30, openai_cost, 3),
            row(None, 1, 1, 0, 0, 0.0, 0),
        ],
    );
    let by_model = store.usage(T0, T0 + HOUR, GroupBy::Model, None).await;
    check(
        by_model.unwrap(),
        vec![
            row(Some("anthropic/claude-haiku-4-5"), 1, 1, 0, 0, 0.0, 0),
            row(Some("openai/gpt-4.1-mini"), 2, 0, 150, 30, openai_cost, 3),
            row(None, 1, 1, 0, 0, 0.0, 0),
        ],
    );
    let by_agent = store.usage(T0, T0 + HOUR, GroupBy::SourceAgent, None).await;
    check(
        by_agent.unwrap(),
        vec![
            row(Some("critic"), 1, 1, 0, 0, 0.0, 0),
            row(Some("planner"), 2, 0, 150, 30, openai_cost, 3),
            row(None, 1, 1, 0, 0, 0.0, 0),
        ],
    );

    // One team's calls alone, by team: what a caller key's ops.usage covers.
    let one_team = store
        .usage(T0, T0 + HOUR, GroupBy::Team, Some("team_a"))
        .await;
    check(
        one_team.unwrap(),
        vec![row(Some("team_a"), 1, 0, 100, 20, success().cost_usd, 2)],
    );

    // A wider window takes in the old call too.
    let wide = store
        .usage(T0 - 48 * HOUR, T0 + HOUR, GroupBy::SourceAgent, None)
        .await
        .unwrap();
    let planner = wide
        .iter()
        .find(|r| r.key.as_deref() == Some("planner"))
        .unwrap();
    assert_eq!((planner.calls, planner.total_tokens), (3, 194));
    // An empty window has no rows.
    let empty = store
        .usage(T0 + 2 * HOUR, T0 + 3 * HOUR, GroupBy::Provider, None)
        .await;
    assert!(empty.unwrap().is_empty());
}

async fn prune_removes_calls_started_before_the_cutoff(store: Arc<dyn Store>) {
    insert_fixtures(&*store).await;
    assert_eq!(store.prune(T0).await.unwrap(), 1);
    assert!(store.trace("trace-c").await.unwrap().is_empty());
    assert_eq!(store.trace("trace-a").await.unwrap().len(), 2);
    assert_eq!(store.prune(T0).await.unwrap(), 0);
    assert_eq!(store.prune(T0 + 1001).await.unwrap(), 2);
    assert_eq!(store.trace("trace-a").await.unwrap(), vec![retried()]);
}

/// With room for one record and a writer that cannot run meanwhile, nearly every record is
/// dropped, counted, and never waited for; what was accepted is written by `flush`.
async fn a_full_channel_drops_and_counts_but_never_blocks(store: Arc<dyn Store>) {
    let ledger = Ledger::start(Arc::clone(&store), 1, None);
    let sent = 10_000;
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..sent {
        let record = CallRecord {
            trace_id: "flood".into(),
            started_at: T0 + i,
            ..success()
        };
        accepted += u64::from(ledger.record(record));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "record waited: {took:?}");
    assert!(ledger.dropped() > 0);
    assert_eq!(accepted + ledger.dropped(), sent as u64);

    ledger.flush().await.unwrap();
    let stored = store.trace("flood").await.unwrap();
    assert_eq!(stored.len() as u64, accepted);
    assert_eq!(ledger.failed(), 0);
}

/// Records reach the store in batches larger than one transaction's worth, on `flush`, and
/// without it once the batch interval passes.
async fn records_are_written_in_batches(store: Arc<dyn Store>) {
    let ledger = Ledger::start(Arc::clone(&store), 1024, None);
    for i in 0..600 {
        let record = CallRecord {
            trace_id: "batch".into(),
            started_at: T0 + i,
            ..retried()
        };
        assert!(ledger.record(record));
    }
    ledger.flush().await.unwrap();
    let stored = ledger.trace("batch", None).await.unwrap();
    assert_eq!(stored.len(), 600);
    assert!(stored.windows(2).all(|w| w[0].started_at < w[1].started_at));
    assert_eq!(ledger.dropped(), 0);

    // No flush: the writer's timer writes it.
    assert!(ledger.record(failure()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.trace("trace-b").await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the record was never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Usage through the ledger reads the same store.
    let rows = ledger
        .usage(T0, T0 + HOUR, GroupBy::Provider, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
}

/// With a retention, the writer prunes at start.
async fn retention_prunes_old_calls(store: Arc<dyn Store>) {
    let now = ledger::now_ms();
    let recent = CallRecord {
        trace_id: "recent".into(),
        started_at: now,
        finished_at: now,
        ..success()
    };
    let expired = CallRecord {
        trace_id: "expired".into(),
        started_at: now - 2 * HOUR,
        finished_at: now - 2 * HOUR,
        ..success()
    };
    store.insert(&[recent, expired]).await.unwrap();
    let _ledger = Ledger::start(Arc::clone(&store), 16, Some(Duration::from_secs(3600)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.trace("expired").await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the expired call was never pruned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.trace("recent").await.unwrap().len(), 1);
}

/// A SQLite ledger in a temporary directory.
struct SqliteDb {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl SqliteDb {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let store = ledger::open(&url).await.unwrap();
        Self { store, _dir: dir }
    }
}

/// A PostgreSQL database of its own, dropped with this, and the store on it.
struct PgStore {
    store: Arc<dyn Store>,
    _db: PgDb,
}

impl PgStore {
    async fn new() -> Self {
        let db = PgDb::new().await;
        let store = ledger::open(&db.url).await.unwrap();
        Self { store, _db: db }
    }
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = super::SqliteDb::new().await;
                    super::$scenario(std::sync::Arc::clone(&db.store)).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL at LLMRPC_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres); make test runs it when that answers or CI=true"]
                async fn $scenario() {
                    let db = super::PgStore::new().await;
                    super::$scenario(std::sync::Arc::clone(&db.store)).await;
                }
            )*
        }
    };
}

on_both_backends!(
    trace_returns_that_traces_calls_oldest_first,
    usage_sums_calls_within_the_window,
    prune_removes_calls_started_before_the_cutoff,
    a_full_channel_drops_and_counts_but_never_blocks,
    records_are_written_in_batches,
    retention_prunes_old_calls,
);

#[tokio::test]
async fn sqlite_creates_its_file_and_directory_in_wal_mode_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("fresh.db");
    let url = format!("sqlite://{}", path.display());
    assert!(!path.exists());
    let store = ledger::open(&url).await.unwrap();
    assert!(path.exists());
    store.insert(&[success()]).await.unwrap();
    assert!(path.with_extension("db-wal").exists(), "not in WAL mode");
    drop(store);

    // A second start finds the data and applies no migration twice.
    let store = ledger::open(&url).await.unwrap();
    assert_eq!(store.trace("trace-a").await.unwrap(), vec![success()]);
}

#[tokio::test]
async fn sqlite_in_memory_keeps_its_data_across_calls() {
    let store = ledger::open("sqlite::memory:").await.unwrap();
    store.insert(&[failure()]).await.unwrap();
    assert_eq!(store.trace("trace-b").await.unwrap(), vec![failure()]);
}

/// A database that is up, down (its writes fail as an unreachable one's do) or refusing what it
/// is sent (as it would a row it cannot take), and keeps what it took.
#[derive(Default)]
struct Switchable {
    down: std::sync::atomic::AtomicBool,
    refusing: std::sync::atomic::AtomicBool,
    tries: std::sync::atomic::AtomicUsize,
    rows: std::sync::Mutex<Vec<CallRecord>>,
}

impl Switchable {
    fn down() -> Arc<Self> {
        let store = Self::default();
        store.down.store(true, Ordering::SeqCst);
        Arc::new(store)
    }

    fn refusing() -> Arc<Self> {
        let store = Self::default();
        store.refusing.store(true, Ordering::SeqCst);
        Arc::new(store)
    }

    fn rows(&self) -> usize {
        self.rows.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl Store for Switchable {
    async fn migrate(&self) -> Result<(), LedgerError> {
        Ok(())
    }

    async fn insert(&self, records: &[CallRecord]) -> Result<(), LedgerError> {
        self.tries.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            let lost = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            return Err(LedgerError::Database(sqlx::Error::Io(lost)));
        }
        if self.refusing.load(Ordering::SeqCst) {
            return Err(LedgerError::Database(sqlx::Error::ColumnNotFound(
                "x".into(),
            )));
        }
        self.rows.lock().unwrap().extend_from_slice(records);
        Ok(())
    }

    async fn trace(&self, _: &str) -> Result<Vec<CallRecord>, LedgerError> {
        Ok(Vec::new())
    }

    async fn task(&self, _: &str) -> Result<Option<CallRecord>, LedgerError> {
        Ok(None)
    }

    async fn usage(
        &self,
        _: i64,
        _: i64,
        _: GroupBy,
        _: Option<&str>,
    ) -> Result<Vec<UsageRow>, LedgerError> {
        Ok(Vec::new())
    }

    async fn prune(&self, _: i64) -> Result<u64, LedgerError> {
        Ok(0)
    }
}

/// Records of a batch the database refused for what it holds are counted as failed (not as
/// dropped: they were accepted), every one of them, and recording goes on.
#[tokio::test]
async fn records_of_a_refused_batch_are_counted_as_failed() {
    let ledger = Ledger::start(Switchable::refusing(), 16, None);
    for _ in 0..3 {
        assert!(ledger.record(success()));
    }
    // Whichever write took them, all three were tried before the flush answers.
    let _ = ledger.flush().await;
    assert_eq!((ledger.failed(), ledger.dropped()), (3, 0));
    assert!(ledger.record(success()));
    let _ = ledger.flush().await;
    assert_eq!(ledger.failed(), 4);
}

/// A flush (what `ops.trace` and `ops.usage` do before reading) has the writer write at once
/// rather than at its next batch: on a paused clock, no time passes.
#[tokio::test(start_paused = true)]
async fn a_flush_does_not_wait_for_the_next_batch() {
    let store = Arc::new(Switchable::default());
    let ledger = Ledger::start(store.clone(), 16, None);
    // The writer's first batch is due at once; the next one is a whole interval away.
    ledger.flush().await.unwrap();
    assert!(ledger.record(success()));
    let start = tokio::time::Instant::now();
    ledger.flush().await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the flush waited for the timer"
    );
    assert_eq!(store.rows(), 1, "the record was written by the flush");
}

/// The database going away loses nothing it can be given back: the writer holds the records,
/// answers flushes at once with the outage (so `ops.trace` does not hang on it), tries again
/// with a pause, and writes everything once the database is back.
#[tokio::test(start_paused = true)]
async fn records_wait_out_an_outage_and_are_written_when_the_database_is_back() {
    let store = Switchable::down();
    let ledger = Ledger::start(store.clone(), 100, None);
    for _ in 0..30 {
        assert!(ledger.record(success()));
    }
    let start = tokio::time::Instant::now();
    let err = ledger.flush().await.unwrap_err();
    assert!(matches!(err, LedgerError::Database(_)), "{err}");
    let err = ledger.flush().await.unwrap_err();
    assert!(
        matches!(err, LedgerError::Unavailable { held: 30, .. }),
        "{err}"
    );
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "a flush waited for the outage"
    );
    assert_eq!(
        store.tries.load(Ordering::SeqCst),
        1,
        "tried again before the pause"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let tries = store.tries.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&tries),
        "{tries} tries in 3 s: the pause does not grow"
    );
    for _ in 0..20 {
        assert!(ledger.record(success()));
    }
    store.down.store(false, Ordering::SeqCst);
    // The longest pause is 5 s: by then the writer has tried again and written all it held.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(store.rows(), 50);
    assert_eq!((ledger.failed(), ledger.dropped()), (0, 0));
    ledger.flush().await.unwrap();
}

/// An outage longer than the queue is deep: the writer holds as many records as the queue's
/// capacity, and every record beyond is dropped and counted; none is lost uncounted.
#[tokio::test(start_paused = true)]
async fn an_outage_beyond_the_capacity_drops_and_counts_the_rest() {
    let store = Switchable::down();
    let ledger = Ledger::start(store.clone(), 10, None);
    for _ in 0..100 {
        ledger.record(success());
        // The writer's turn: it takes what queued at its next batch.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(6)).await;
    ledger.flush().await.unwrap();
    let written = store.rows() as u64;
    assert_eq!(written, 10, "the first 10 held through the outage");
    assert_eq!(ledger.dropped(), 90);
    assert_eq!(ledger.failed(), 0);
}
