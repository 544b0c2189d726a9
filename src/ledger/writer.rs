//! The ledger's writer task: it takes the records calls queued, batches them into the [`Store`],
//! and rides out the database going away. A batch the database cannot take now (unreachable,
//! restarting, full, read-only, locked) is held and tried again with a growing pause, while
//! new records are held beside it up to the queue's capacity and counted as dropped beyond it;
//! when the database is back, everything held is written. A batch the database refuses for what
//! it holds would be refused again: it is logged, counted as failed and given up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::error::LedgerError;
use super::record::CallRecord;
use super::store::Store;
use super::timestamps::now_ms;

/// Records written in one transaction at most.
const MAX_BATCH: usize = 8192;
/// How long a record may wait for its batch to fill. Rows of one batch that land on the same
/// index page are written together, so at high rates longer batches cost less per row. A
/// flush (which reads do first) wakes the writer instead of waiting for the batch.
const BATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Pruning runs at start, then this often at most (or every `retention`, when shorter).
const MAX_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// The pause after a first failed write in an outage; each further failure doubles it, up to
/// [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(500);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// What calls send the writer.
pub(super) enum Message {
    /// Boxed: a record is large, a flush is a pointer.
    Record(Box<CallRecord>),
    /// Written once everything sent before it is; answers with that write's outcome.
    Flush(oneshot::Sender<Result<(), LedgerError>>),
}

pub(super) struct Writer {
    pub store: Arc<dyn Store>,
    pub receiver: mpsc::Receiver<Message>,
    pub flush_requested: Arc<Notify>,
    /// Records taken from the queue and not written yet; at most `capacity`.
    pub held: Vec<CallRecord>,
    pub capacity: usize,
    pub dropped: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    pub retention: Option<Duration>,
    pub outage: Option<Outage>,
}

/// The database could not take the last write.
pub(super) struct Outage {
    began: Instant,
    retry_at: Instant,
    pause: Duration,
    reason: String,
}

impl Writer {
    pub async fn run(mut self) {
        let mut flush = tokio::time::interval(BATCH_INTERVAL);
        flush.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut prune = self.retention.map(|retention| {
            let every = retention.clamp(Duration::from_secs(1), MAX_PRUNE_INTERVAL);
            let mut prune = tokio::time::interval(every);
            prune.set_missed_tick_behavior(MissedTickBehavior::Delay);
            prune
        });
        loop {
            tokio::select! {
                _ = flush.tick() => {}
                () = self.flush_requested.notified() => {}
                _ = tick(&mut prune) => {
                    self.prune().await;
                    continue;
                }
            }
            // What queued since the last tick is taken in one go: waiting on the queue instead
            // would wake this task once per call, which costs the calls more than the writes.
            loop {
                match self.receiver.try_recv() {
                    Ok(Message::Record(record)) => self.hold(*record).await,
                    Ok(Message::Flush(done)) => {
                        let _ = done.send(self.write().await);
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        let _ = self.write().await;
                        return;
                    }
                }
            }
            let _ = self.write().await;
        }
    }

    /// Takes a record from the queue: written with a full batch, dropped and counted when an
    /// outage has already filled what the writer may hold.
    async fn hold(&mut self, record: CallRecord) {
        if self.held.len() >= self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.held.push(record);
        if self.held.len() >= MAX_BATCH.min(self.capacity) && self.outage.is_none() {
            let _ = self.write().await;
        }
    }

    /// Writes what is held, a transaction per [`MAX_BATCH`] records. During an outage nothing is
    /// tried before its pause has run out; the answer is then the outage's error at once.
    async fn write(&mut self) -> Result<(), LedgerError> {
        if let Some(outage) = &self.outage {
            if Instant::now() < outage.retry_at {
                return Err(self.unavailable(outage));
            }
        }
        while !self.held.is_empty() {
            let records = self.held.len().min(MAX_BATCH);
            match self.store.insert(&self.held[..records]).await {
                Ok(()) => {
                    self.held.drain(..records);
                }
                Err(err) if err.is_outage() => {
                    self.note_outage(&err);
                    return Err(err);
                }
                Err(err) => {
                    self.held.drain(..records);
                    self.failed.fetch_add(records as u64, Ordering::Relaxed);
                    tracing::warn!(records, "ledger write refused, records lost: {err}");
                    return Err(err);
                }
            }
        }
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                seconds = outage.began.elapsed().as_secs(),
                "ledger database back: the records held for it are written"
            );
        }
        Ok(())
    }

    fn note_outage(&mut self, err: &LedgerError) {
        let now = Instant::now();
        let outage = self.outage.get_or_insert_with(|| {
            tracing::warn!(
                held = self.held.len(),
                "ledger database unavailable, records held until it is back: {err}"
            );
            Outage {
                began: now,
                retry_at: now,
                pause: Duration::ZERO,
                reason: String::new(),
            }
        });
        outage.pause = (outage.pause * 2).clamp(FIRST_RETRY_PAUSE, MAX_RETRY_PAUSE);
        outage.retry_at = now + outage.pause;
        outage.reason = err.to_string();
    }

    fn unavailable(&self, outage: &Outage) -> LedgerError {
        LedgerError::Unavailable {
            held: self.held.len(),
            reason: outage.reason.clone(),
        }
    }

    async fn prune(&self) {
        let Some(retention) = self.retention else {
            return;
        };
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match self
            .store
            .prune(now_ms().saturating_sub(retention_ms))
            .await
        {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "ledger pruned calls past retention"),
            Err(err) => tracing::warn!("ledger pruning failed: {err}"),
        }
    }
}

/// The next tick of an optional interval; never, without one.
async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl LedgerError {
    /// Whether the database could not take a write now but may later: the connection, the
    /// server or the disk, rather than what was written.
    fn is_outage(&self) -> bool {
        let LedgerError::Database(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    postgres_outage(pg.code())
                } else {
                    db.code()
                        .and_then(|code| code.parse::<i32>().ok())
                        .is_some_and(sqlite_outage)
                }
            }
            _ => false,
        }
    }
}

/// PostgreSQL's SQLSTATEs for a lost connection (class 08), a server shutting down or starting
/// (57P01–57P03), missing resources such as disk or connections (class 53), a read-only server
/// (25006) and a transaction to retry (40001, 40P01).
fn postgres_outage(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "25006" | "40001" | "40P01"
        )
}

/// SQLite's primary result codes (the low byte of an extended one) for a busy or locked file,
/// a read-only or unopenable one, an I/O error and a full disk.
fn sqlite_outage(code: i32) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const READONLY: i32 = 8;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    const CANTOPEN: i32 = 14;
    matches!(
        code & 0xff,
        BUSY | LOCKED | READONLY | IOERR | FULL | CANTOPEN
    )
}
