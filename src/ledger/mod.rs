//! The call ledger: one record per call, for `ops.trace` and `ops.usage`. Calls hand their record
//! to [`Ledger::record`], which never waits: a writer task batches records into the [`Store`],
//! and when it falls behind records are dropped and counted rather than slowing calls down; when
//! the database goes away they are held for it, within the same bound (see `writer.rs`).
//! SQLite by default, PostgreSQL when the URL says so; both behind one [`Store`] trait, and both
//! reading and writing a record through the one mapping of `rows.rs`.

pub mod accounts;
mod error;
pub mod postgres;
pub mod pricing;
mod record;
mod rows;
pub mod sqlite;
mod store;
mod timestamps;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

pub use error::LedgerError;
pub use pricing::{Price, Prices};
pub use record::{AttemptRecord, CallRecord, GroupBy, UsageRow};
pub use store::Store;
pub use timestamps::{format_rfc3339, now_ms, parse_rfc3339};
use writer::{Message, Writer};

/// Where the ledger lives when `LLMRPC_DATABASE_URL` is not set: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://llmrpc.db";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_are_refused_without_echoing_the_url() {
        let err = open("mysql://root:hunter2@db/x").await.err().unwrap();
        assert!(matches!(err, LedgerError::UnsupportedUrl(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
