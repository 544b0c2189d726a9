//! The default backend: one SQLite file, created on first run, in WAL mode so that `ops.trace`
//! reads do not wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::{
    CallRecord, GroupBy, LedgerError, Store, UsageRow, attempts_from_json, attempts_to_json,
    metadata_from_json, metadata_to_json, migrator, signed, unsigned,
};
use crate::providers::Usage;

/// Every file of `migrations/sqlite/`, in order. A change of schema is a new file and a new entry
/// here, never an edit: sqlx refuses a database whose applied migrations changed.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "calls",
    include_str!("../../migrations/sqlite/0001_calls.sql"),
)];

const COLUMNS: &str = "trace_id, span_id, source_agent, target_agent, session_id, \
    conversation_id, method, requested_model, provider, model, status, error_message, attempts, \
    latency_ms, ttft_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd, metadata, \
    started_at, finished_at";

pub struct SqliteStore {
    pool: SqlitePool,
    /// The INSERT of a full chunk of `ROWS_PER_INSERT` rows.
    insert_full_chunk: String,
}

impl SqliteStore {
    /// Opens (creating if missing) the database of a `sqlite:` URL; migrations are not applied.
    pub async fn connect(url: &str) -> Result<Self, LedgerError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last commits on power loss, never integrity.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let parent = options.get_filename().parent();
        if let Some(dir) = parent.filter(|dir| !in_memory && !dir.as_os_str().is_empty()) {
            // SQLite creates the file but not its directory; once, at start.
            std::fs::create_dir_all(dir).map_err(LedgerError::CreateDir)?;
        }
        let pool = if in_memory {
            // An in-memory database lives as long as one of its connections: keep one open.
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        };
        Ok(Self {
            pool: pool.connect_with(options).await?,
            insert_full_chunk: insert_sql(ROWS_PER_INSERT),
        })
    }
}

/// Rows per INSERT: few enough that the statement stays small and its prepared form is reused.
const ROWS_PER_INSERT: usize = 32;

/// `INSERT INTO calls (…) VALUES (?, …), …` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; COLUMNS.split(',').count()].join(", "));
    format!(
        "INSERT INTO calls ({COLUMNS}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), LedgerError> {
        migrator(MIGRATIONS).await?.run(&self.pool).await?;
        Ok(())
    }

    async fn insert(&self, records: &[CallRecord]) -> Result<(), LedgerError> {
        if records.is_empty() {
            return Ok(());
        }
        // One statement per chunk rather than per row: each statement is a round trip to the
        // connection's thread. Full chunks reuse one SQL text, prepared once per connection.
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(ROWS_PER_INSERT) {
            let partial;
            let sql = if chunk.len() == ROWS_PER_INSERT {
                &self.insert_full_chunk
            } else {
                partial = insert_sql(chunk.len());
                &partial
            };
            let mut insert = sqlx::query(sql);
            for r in chunk {
                insert = insert
                    .bind(&r.trace_id)
                    .bind(&r.span_id)
                    .bind(&r.source_agent)
                    .bind(&r.target_agent)
                    .bind(&r.session_id)
                    .bind(&r.conversation_id)
                    .bind(&r.method)
                    .bind(&r.requested_model)
                    .bind(&r.provider)
                    .bind(&r.model)
                    .bind(&r.status)
                    .bind(&r.error_message)
                    .bind(attempts_to_json(&r.attempts)?)
                    .bind(signed(r.latency_ms))
                    .bind(r.ttft_ms.map(signed))
                    .bind(signed(r.usage.prompt_tokens))
                    .bind(signed(r.usage.completion_tokens))
                    .bind(signed(r.usage.total_tokens))
                    .bind(r.cost_usd)
                    .bind(metadata_to_json(r.metadata.as_ref())?)
                    .bind(r.started_at)
                    .bind(r.finished_at);
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn trace(&self, trace_id: &str) -> Result<Vec<CallRecord>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE trace_id = ? ORDER BY started_at, id");
        sqlx::query(&sql)
            .bind(trace_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record)
            .collect()
    }

    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        group_by: GroupBy,
    ) -> Result<Vec<UsageRow>, LedgerError> {
        let key = group_by.key_sql();
        // TOTAL, unlike SUM, is always a float, whatever the column's values.
        let sql = format!(
            "SELECT {key} AS group_key, COUNT(*) AS calls, \
                    SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END) AS errors, \
                    SUM(prompt_tokens) AS prompt_tokens, \
                    SUM(completion_tokens) AS completion_tokens, \
                    SUM(total_tokens) AS total_tokens, TOTAL(cost_usd) AS cost_usd \
             FROM calls WHERE started_at >= ? AND started_at < ? \
             GROUP BY 1 ORDER BY 1 NULLS LAST"
        );
        let rows = sqlx::query(&sql)
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UsageRow {
                    key: row.try_get("group_key")?,
                    calls: unsigned(row.try_get("calls")?),
                    errors: unsigned(row.try_get("errors")?),
                    prompt_tokens: unsigned(row.try_get("prompt_tokens")?),
                    completion_tokens: unsigned(row.try_get("completion_tokens")?),
                    total_tokens: unsigned(row.try_get("total_tokens")?),
                    cost_usd: row.try_get("cost_usd")?,
                })
            })
            .collect()
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64, LedgerError> {
        let done = sqlx::query("DELETE FROM calls WHERE started_at < ?")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

fn record(row: &SqliteRow) -> Result<CallRecord, LedgerError> {
    Ok(CallRecord {
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        source_agent: row.try_get("source_agent")?,
        target_agent: row.try_get("target_agent")?,
        session_id: row.try_get("session_id")?,
        conversation_id: row.try_get("conversation_id")?,
        method: row.try_get("method")?,
        requested_model: row.try_get("requested_model")?,
        provider: row.try_get("provider")?,
        model: row.try_get("model")?,
        status: row.try_get("status")?,
        error_message: row.try_get("error_message")?,
        attempts: attempts_from_json(row.try_get("attempts")?)?,
        latency_ms: unsigned(row.try_get("latency_ms")?),
        ttft_ms: row.try_get::<Option<i64>, _>("ttft_ms")?.map(unsigned),
        usage: Usage {
            prompt_tokens: unsigned(row.try_get("prompt_tokens")?),
            completion_tokens: unsigned(row.try_get("completion_tokens")?),
            total_tokens: unsigned(row.try_get("total_tokens")?),
        },
        cost_usd: row.try_get("cost_usd")?,
        metadata: metadata_from_json(row.try_get("metadata")?)?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
