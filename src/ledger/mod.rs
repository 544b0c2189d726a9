//! The call ledger: one record per call, for `ops.trace` and `ops.usage`. Calls hand their record
//! to [`Ledger::record`], which never waits: a writer task batches records into the [`Store`],
//! and when it falls behind records are dropped and counted rather than slowing calls down; when
//! the database goes away they are held for it, within the same bound (see `writer.rs`).
//! SQLite by default, PostgreSQL when the URL says so; both behind one [`Store`] trait.

pub mod accounts;
pub mod postgres;
pub mod pricing;
pub mod sqlite;
mod writer;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use tokio::sync::{Notify, mpsc, oneshot};

pub use pricing::{Price, Prices};
use writer::Writer;

use crate::types::Usage;

/// Where the ledger lives when `LLMRPC_DATABASE_URL` is not set: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://llmrpc.db";

/// One request sent upstream for a call: retries and fallbacks make several.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub provider: String,
    pub model: String,
    /// `ok`, or the attempt's error kind (`rate_limited`, `timeout`, …).
    pub status: String,
    /// The upstream HTTP status, when the provider answered.
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    /// Unix milliseconds; RFC 3339 in JSON.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: i64,
}

/// One call as `ops.trace` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallRecord {
    pub trace_id: String,
    /// The service's span for this call.
    pub span_id: String,
    pub source_agent: Option<String>,
    pub target_agent: Option<String>,
    pub session_id: Option<String>,
    pub conversation_id: Option<String>,
    /// The JSON-RPC method: `llm.complete` or `llm.stream`.
    pub method: String,
    /// The model as the caller named it: an alias, a bare name or `provider/model`.
    pub requested_model: String,
    /// What answered, or was tried last; `None` when the call failed before routing.
    pub provider: Option<String>,
    pub model: Option<String>,
    /// `ok`, or the call's error kind (`rate_limited`, `cancelled`, …).
    pub status: String,
    pub error_message: Option<String>,
    pub attempts: Vec<AttemptRecord>,
    pub latency_ms: u64,
    /// Time to the first delta, for streams that produced one.
    pub ttft_ms: Option<u64>,
    pub usage: Usage,
    pub cost_usd: f64,
    /// How many tool calls the model asked for in its answer: 0 without any, and for failed and
    /// cancelled calls. Only the count: arguments and results are content, never stored.
    pub tool_calls: u32,
    /// The caller's `metadata` param, as given.
    pub metadata: Option<Value>,
    /// The team the call was charged to; `None` for anonymous calls.
    pub team_id: Option<String>,
    /// The public prefix of the caller's key (never the key).
    pub key_prefix: Option<String>,
    /// The A2A task the call ran as, for calls of the A2A surface.
    pub task_id: Option<String>,
    /// Unix milliseconds; RFC 3339 in JSON.
    #[serde(serialize_with = "rfc3339")]
    pub started_at: i64,
    #[serde(serialize_with = "rfc3339")]
    pub finished_at: i64,
}

/// What `ops.usage` totals calls by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Provider,
    /// By `provider/model`: the same model name may be served by two providers.
    Model,
    SourceAgent,
    Team,
}

impl GroupBy {
    /// The SQL expression of the group's key; the same in both backends.
    fn key_sql(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Model => "provider || '/' || model",
            Self::SourceAgent => "source_agent",
            Self::Team => "team_id",
        }
    }
}

/// The totals of one group of calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// The provider, `provider/model` or source agent; `None` for calls without one.
    pub key: Option<String>,
    pub calls: u64,
    /// Calls whose status is not `ok`.
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cost_usd: f64,
    /// Sum of the calls' `tool_calls`: which agents or models drive tool loops.
    pub tool_calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Carries only the scheme: the rest of a URL may hold a password.
    #[error("unsupported ledger database URL scheme {0:?}: use sqlite:… or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the ledger's directory: {0}")]
    CreateDir(std::io::Error),
    #[error("ledger database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ledger migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("ledger record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the ledger writer has stopped")]
    Closed,
    /// An outage is under way: the writer holds the records until the database is back.
    #[error("the ledger database is unavailable ({held} records held for it): {reason}")]
    Unavailable { held: usize, reason: String },
    #[error("ledger data: {0}")]
    Corrupt(String),
}

/// Where records are kept. Timestamps are unix milliseconds.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies the migrations this backend ships; idempotent.
    async fn migrate(&self) -> Result<(), LedgerError>;

    /// Writes `records` in one transaction.
    async fn insert(&self, records: &[CallRecord]) -> Result<(), LedgerError>;

    /// Every call of `trace_id`, oldest first.
    async fn trace(&self, trace_id: &str) -> Result<Vec<CallRecord>, LedgerError>;

    /// The call that ran as the A2A task `task_id`.
    async fn task(&self, task_id: &str) -> Result<Option<CallRecord>, LedgerError>;

    /// Totals of the calls started in `[since_ms, until_ms)` (of one team's, with `team`),
    /// ordered by key, calls without one last.
    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        group_by: GroupBy,
        team: Option<&str>,
    ) -> Result<Vec<UsageRow>, LedgerError>;

    /// Deletes the calls started before `older_than_ms`; returns how many.
    async fn prune(&self, older_than_ms: i64) -> Result<u64, LedgerError>;
}

/// Connects to the database `url` names and applies its migrations: `sqlite:…` (the file and
/// its directory are created if missing) or `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, LedgerError> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(sqlite::SqliteStore::connect(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(postgres::PostgresStore::connect(url).await?)
    } else {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        return Err(LedgerError::UnsupportedUrl(scheme.to_owned()));
    };
    store.migrate().await?;
    Ok(store)
}

enum Message {
    /// Boxed: a record is large, a flush is a pointer.
    Record(Box<CallRecord>),
    /// Written once everything sent before it is; answers with that write's outcome.
    Flush(oneshot::Sender<Result<(), LedgerError>>),
}

/// The write side of the ledger, cheap to clone: every clone feeds the same writer task, which
/// writes what is left and stops when the last clone is dropped.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<dyn Store>,
    sender: mpsc::Sender<Message>,
    /// Wakes the writer for a flush before its next batch is due.
    flush_requested: Arc<Notify>,
    dropped: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Ledger {
    /// Spawns the writer on the current Tokio runtime. `capacity` is how many records may wait
    /// for it; with `retention`, older rows are pruned at start and periodically.
    pub fn start(store: Arc<dyn Store>, capacity: usize, retention: Option<Duration>) -> Self {
        let capacity = capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let flush_requested = Arc::new(Notify::new());
        let writer = Writer {
            store: Arc::clone(&store),
            receiver,
            flush_requested: Arc::clone(&flush_requested),
            held: Vec::new(),
            capacity,
            dropped: Arc::clone(&dropped),
            failed: Arc::clone(&failed),
            retention,
            outage: None,
        };
        tokio::spawn(writer.run());
        Self {
            store,
            sender,
            flush_requested,
            dropped,
            failed,
        }
    }

    /// Hands a finished call to the writer without waiting; when the writer is behind the
    /// record is dropped and counted instead, so that the ledger never slows a call down.
    /// Returns whether it was accepted.
    pub fn record(&self, record: CallRecord) -> bool {
        match self.sender.try_send(Message::Record(Box::new(record))) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records dropped because the writer was behind (or gone), or held all it may during an
    /// outage of the database.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records accepted but lost because the database refused their batch.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until every record accepted before this call is written (for shutdown and tests).
    /// The flush waits for room in the queue rather than being dropped like a record.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let (done, written) = oneshot::channel();
        self.sender
            .send(Message::Flush(done))
            .await
            .map_err(|_| LedgerError::Closed)?;
        self.flush_requested.notify_one();
        written.await.map_err(|_| LedgerError::Closed)?
    }

    /// Every call of `trace_id`, oldest first (of one team's, with `team`: another team's
    /// trace reads as an unknown one); read from the store, so unflushed records are not there
    /// yet.
    pub async fn trace(
        &self,
        trace_id: &str,
        team: Option<&str>,
    ) -> Result<Vec<CallRecord>, LedgerError> {
        let mut calls = self.store.trace(trace_id).await?;
        if let Some(team) = team {
            calls.retain(|c| c.team_id.as_deref() == Some(team));
        }
        Ok(calls)
    }

    pub async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        group_by: GroupBy,
        team: Option<&str>,
    ) -> Result<Vec<UsageRow>, LedgerError> {
        self.store.usage(since_ms, until_ms, group_by, team).await
    }

    /// The call that ran as the A2A task `task_id`; read from the store, so a call that just
    /// ended may not be there yet.
    pub async fn task(&self, task_id: &str) -> Result<Option<CallRecord>, LedgerError> {
        self.store.task(task_id).await
    }
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds (`2026-11-21T10:00:00.123Z`); `None`
/// outside the years 0–9999.
pub fn format_rfc3339(ms: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    if at.year() < 0 {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    ))
}

/// An RFC 3339 timestamp (any offset) as unix milliseconds, for `ops.usage`'s `since`/`until`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

pub(crate) fn rfc3339<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    match format_rfc3339(*ms) {
        Some(text) => serializer.serialize_str(&text),
        None => Err(serde::ser::Error::custom(format!(
            "timestamp {ms} ms is out of range"
        ))),
    }
}

/// An attempt as stored: JSON with the time as a number, which both backends read back exactly.
#[derive(Serialize, Deserialize)]
struct StoredAttempt<'a> {
    provider: Cow<'a, str>,
    model: Cow<'a, str>,
    status: Cow<'a, str>,
    http_status: Option<u16>,
    latency_ms: u64,
    started_at: i64,
}

fn attempts_to_json(attempts: &[AttemptRecord]) -> Result<String, LedgerError> {
    let stored: Vec<StoredAttempt<'_>> = attempts
        .iter()
        .map(|a| StoredAttempt {
            provider: Cow::Borrowed(&a.provider),
            model: Cow::Borrowed(&a.model),
            status: Cow::Borrowed(&a.status),
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            started_at: a.started_at,
        })
        .collect();
    Ok(serde_json::to_string(&stored)?)
}

fn attempts_from_json(text: &str) -> Result<Vec<AttemptRecord>, LedgerError> {
    let stored: Vec<StoredAttempt<'static>> = serde_json::from_str(text)?;
    Ok(stored
        .into_iter()
        .map(|a| AttemptRecord {
            provider: a.provider.into_owned(),
            model: a.model.into_owned(),
            status: a.status.into_owned(),
            http_status: a.http_status,
            latency_ms: a.latency_ms,
            started_at: a.started_at,
        })
        .collect())
}

fn metadata_to_json(metadata: Option<&Value>) -> Result<Option<String>, LedgerError> {
    Ok(metadata.map(serde_json::to_string).transpose()?)
}

fn metadata_from_json(text: Option<String>) -> Result<Option<Value>, LedgerError> {
    Ok(text.as_deref().map(serde_json::from_str).transpose()?)
}

/// Counts are `u64` in Rust and `BIGINT` in SQL; the values never come near the limits.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `tool_calls` as read back: written from a `u32`, so always in range.
fn tool_calls(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Migrations compiled into the binary, so that a deployment is the binary alone.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The migrator of one backend's embedded migrations.
async fn migrator(
    migrations: &'static [(i64, &'static str, &'static str)],
) -> Result<Migrator, LedgerError> {
    Ok(Migrator::new(Embedded(migrations)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_render_as_rfc3339_and_parse_back() {
        assert_eq!(
            format_rfc3339(1_795_255_200_123).as_deref(),
            Some("2026-11-21T10:00:00.123Z")
        );
        assert_eq!(
            format_rfc3339(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(format_rfc3339(i64::MAX), None);
        assert_eq!(
            parse_rfc3339("2026-11-21T10:00:00.123Z"),
            Some(1_795_255_200_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T11:00:00+01:00"),
            Some(1_795_255_200_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn a_record_serializes_in_the_ops_trace_shape() {
        let record = CallRecord {
            trace_id: "t1".into(),
            span_id: "00f067aa0ba902b7".into(),
            source_agent: Some("planner".into()),
            method: "llm.complete".into(),
            requested_model: "fast".into(),
            provider: Some("openai".into()),
            model: Some("gpt-4.1-mini".into()),
            status: "ok".into(),
            attempts: vec![AttemptRecord {
                provider: "openai".into(),
                model: "gpt-4.1-mini".into(),
                status: "ok".into(),
                http_status: Some(200),
                latency_ms: 40,
                started_at: 1_795_255_200_000,
            }],
            latency_ms: 41,
            usage: Usage {
                prompt_tokens: 9,
                completion_tokens: 3,
                total_tokens: 12,
            },
            cost_usd: 0.5,
            tool_calls: 2,
            metadata: Some(json!({"job": 7})),
            started_at: 1_795_255_200_000,
            finished_at: 1_795_255_200_041,
            ..CallRecord::default()
        };
        let value = serde_json::to_value(&record).unwrap();
        assert_eq!(value["started_at"], "2026-11-21T10:00:00.000Z");
        assert_eq!(value["finished_at"], "2026-11-21T10:00:00.041Z");
        assert_eq!(
            value["attempts"][0]["started_at"],
            "2026-11-21T10:00:00.000Z"
        );
        assert_eq!(value["attempts"][0]["http_status"], 200);
        assert_eq!(value["usage"]["total_tokens"], 12);
        assert_eq!(value["ttft_ms"], Value::Null);
        assert_eq!(value["tool_calls"], 2);
        assert_eq!(value["metadata"]["job"], 7);
        assert_eq!(value["source_agent"], "planner");
    }

    #[test]
    fn attempts_round_trip_through_storage() {
        let attempts = vec![
            AttemptRecord {
                provider: "anthropic".into(),
                model: "claude-haiku-4-5".into(),
                status: "rate_limited".into(),
                http_status: Some(429),
                latency_ms: 12,
                started_at: 5,
            },
            AttemptRecord {
                provider: "anthropic".into(),
                model: "claude-haiku-4-5".into(),
                status: "timeout".into(),
                http_status: None,
                latency_ms: 3000,
                started_at: 400,
            },
        ];
        let text = attempts_to_json(&attempts).unwrap();
        assert_eq!(attempts_from_json(&text).unwrap(), attempts);
    }

    #[test]
    fn group_by_reads_the_ops_usage_names() {
        for (name, group) in [
            ("provider", GroupBy::Provider),
            ("model", GroupBy::Model),
            ("source_agent", GroupBy::SourceAgent),
            ("team", GroupBy::Team),
        ] {
            assert_eq!(
                serde_json::from_value::<GroupBy>(json!(name)).unwrap(),
                group
            );
        }
        assert!(serde_json::from_value::<GroupBy>(json!("agent")).is_err());
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_without_echoing_the_url() {
        let err = open("mysql://root:hunter2@db/x").await.err().unwrap();
        assert!(matches!(err, LedgerError::UnsupportedUrl(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
