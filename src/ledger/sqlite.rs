//! The default backend: one SQLite file, created on first run, in WAL mode so that `ops.trace`
//! reads do not wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Arguments, Connection};

use super::error::LedgerError;
use super::record::{CallRecord, GroupBy, UsageRow};
use super::rows::{COLUMNS, CallRow, record};
use super::store::{Store, migrator};

/// Every file of `migrations/sqlite/`, in order. A change of schema is a new file and a new entry
/// here, never an edit: sqlx refuses a database whose applied migrations changed.
static MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "calls",
        include_str!("../../migrations/sqlite/0001_calls.sql"),
    ),
    (
        2,
        "trace key",
        include_str!("../../migrations/sqlite/0002_trace_key.sql"),
    ),
    (
        3,
        "trace key index",
        include_str!("../../migrations/sqlite/0003_trace_key_index.sql"),
    ),
    (
        4,
        "trace index by id range",
        include_str!("../../migrations/sqlite/0004_trace_index_by_id_range.sql"),
    ),
    (
        5,
        "tool calls",
        include_str!("../../migrations/sqlite/0005_tool_calls.sql"),
    ),
    (
        6,
        "teams",
        include_str!("../../migrations/sqlite/0006_teams.sql"),
    ),
    (
        7,
        "tasks",
        include_str!("../../migrations/sqlite/0007_tasks.sql"),
    ),
];

/// How many of `MIGRATIONS` run before rows written without a trace key are given theirs; the
/// rest (the key's index) run after.
const BEFORE_KEYING: usize = 2;

/// The columns of an inserted row, in the order `insert` binds them: those of `COLUMNS`,
/// reordered, and `trace_key`, which `ops.trace` looks rows up by.
const INSERT_COLUMNS: &str = "attempts, metadata, trace_id, span_id, source_agent, \
    target_agent, session_id, conversation_id, method, requested_model, provider, model, status, \
    error_message, latency_ms, ttft_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd, \
    tool_calls, started_at, finished_at, team_id, key_prefix, task_id, trace_key";

fn insert_column_count() -> usize {
    INSERT_COLUMNS.split(',').count()
}

/// Whether any row lacks its `trace_key`.
const ANY_UNKEYED: &str = "SELECT EXISTS (SELECT 1 FROM calls WHERE trace_key IS NULL)";

/// Rows given their `trace_key` per transaction when rows from before migration 2 are keyed.
const KEYING_CHUNK: usize = 16_384;

pub struct SqliteStore {
    pool: SqlitePool,
    /// The INSERT of a full chunk of `ROWS_PER_INSERT` rows.
    insert_full_chunk: String,
    /// An in-memory database lives in its one connection, which must never be closed.
    in_memory: bool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database of a `sqlite:` URL; migrations are not applied.
    pub async fn connect(url: &str) -> Result<Self, LedgerError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL loses at most the last commits on power loss, never integrity.
            .synchronous(SqliteSynchronous::Normal)
            // For a new file only (an existing one keeps its own): per row written, 16 KiB
            // pages cost a little less CPU than the default 4 KiB (bench/sqlite_floor.py).
            .page_size(16_384)
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
            in_memory,
        })
    }

    /// One batch in one transaction on `conn`. Full chunks reuse one SQL text, prepared once per
    /// connection; the last, shorter one is prepared for itself and not kept, lest every length
    /// seen fill the statement cache.
    async fn insert_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
        records: &[CallRecord],
    ) -> Result<(), LedgerError> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        let mut rows = records.iter();
        loop {
            let chunk = rows.len().min(ROWS_PER_INSERT);
            if chunk == 0 {
                break;
            }
            let partial;
            let full = chunk == ROWS_PER_INSERT;
            let sql = if full {
                &self.insert_full_chunk
            } else {
                partial = insert_sql(chunk);
                &partial
            };
            let mut arguments = SqliteArguments::default();
            arguments.reserve(chunk * insert_column_count(), 0);
            let mut insert = sqlx::query_with(sql, arguments).persistent(full);
            // Bound by reference: the strings are not copied, and a batch the database could
            // not take now stays whole for the next try.
            for r in rows.by_ref().take(chunk) {
                let row = CallRow::of(r)?;
                insert = insert
                    .bind(row.attempts)
                    .bind(row.metadata)
                    .bind(row.trace_id)
                    .bind(row.span_id)
                    .bind(row.source_agent)
                    .bind(row.target_agent)
                    .bind(row.session_id)
                    .bind(row.conversation_id)
                    .bind(row.method)
                    .bind(row.requested_model)
                    .bind(row.provider)
                    .bind(row.model)
                    .bind(row.status)
                    .bind(row.error_message)
                    .bind(row.latency_ms)
                    .bind(row.ttft_ms)
                    .bind(row.prompt_tokens)
                    .bind(row.completion_tokens)
                    .bind(row.total_tokens)
                    .bind(row.cost_usd)
                    .bind(row.tool_calls)
                    .bind(row.started_at)
                    .bind(row.finished_at)
                    .bind(row.team_id)
                    .bind(row.key_prefix)
                    .bind(row.task_id)
                    .bind(trace_key(row.trace_id));
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives rows written before migration 2 their `trace_key`, a chunk per transaction. The
    /// keys go through a temporary table, many per statement, and into `calls` with one UPDATE
    /// per chunk: a statement per row would be a round trip to the connection's thread each.
    /// After the first start with migration 2 there are no such rows: one lookup in an index
    /// of them (migration 4) says so, and nothing else runs.
    async fn key_unkeyed_rows(&self) -> Result<(), LedgerError> {
        let unkeyed: bool = sqlx::query_scalar(ANY_UNKEYED)
            .fetch_one(&self.pool)
            .await?;
        if !unkeyed {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS trace_keys (id INTEGER PRIMARY KEY, key INTEGER)",
        )
        .execute(&mut *conn)
        .await?;
        let mut after = i64::MIN;
        loop {
            let mut tx = Connection::begin(&mut *conn).await?;
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, trace_id FROM calls WHERE id > ? AND trace_key IS NULL \
                 ORDER BY id LIMIT ?",
            )
            .bind(after)
            .bind(KEYING_CHUNK as i64)
            .fetch_all(&mut *tx)
            .await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let sql = format!(
                    "INSERT INTO trace_keys (id, key) VALUES {}",
                    vec!["(?, ?)"; chunk.len()].join(", ")
                );
                let mut insert = sqlx::query(&sql).persistent(false);
                for (id, trace_id) in chunk {
                    insert = insert.bind(id).bind(trace_key(trace_id));
                }
                insert.execute(&mut *tx).await?;
            }
            // Written so that SQLite walks the chunk's ids: `UPDATE … FROM` scanned all of
            // `calls` once per chunk.
            sqlx::query(
                "UPDATE calls SET trace_key = \
                 (SELECT key FROM trace_keys WHERE trace_keys.id = calls.id) \
                 WHERE id IN (SELECT id FROM trace_keys)",
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM trace_keys")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            match rows.last() {
                Some((id, _)) if rows.len() == KEYING_CHUNK => after = *id,
                _ => break,
            }
        }
        sqlx::query("DROP TABLE trace_keys")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// The 64-bit FNV-1a hash of a trace id, as SQLite's signed integer. Stored in every row, so it
/// must never change.
fn trace_key(trace_id: &str) -> i64 {
    crate::fnv::fnv1a(trace_id.as_bytes()).cast_signed()
}

/// The calls of one trace, oldest first: one search of the trace index per range of ids that
/// holds rows (migration 4, whose `id >> 12` this must match for the index to be used), each
/// next range found from the rowid, so that a gap in the ids costs nothing. The CROSS JOIN
/// keeps SQLite to that order: with a plain JOIN it may scan all of `calls` instead. The key
/// narrows each search to a few rows; the id itself settles hash collisions.
fn trace_sql() -> String {
    format!(
        "WITH RECURSIVE id_range(n) AS ( \
             SELECT min(id) >> 12 FROM calls \
             UNION ALL \
             SELECT (SELECT min(id) FROM calls WHERE id >= (n + 1) << 12) >> 12 FROM id_range \
             WHERE n < (SELECT max(id) >> 12 FROM calls)) \
         SELECT {COLUMNS} FROM id_range CROSS JOIN calls \
             ON calls.id >> 12 = id_range.n AND trace_key = ? AND trace_id = ? \
         ORDER BY started_at, id"
    )
}

/// Rows per INSERT. Each statement is a round trip to the connection's thread, which at 32 rows
/// cost a quarter of the ledger's CPU; past 256 rows (6,144 parameters of SQLite's 32,766) the
/// gain stops.
const ROWS_PER_INSERT: usize = 256;

/// `INSERT OR FAIL INTO calls (…) VALUES (?, …), …` for `rows` rows. OR FAIL rather than the
/// default ABORT: inside a transaction, an ABORT statement that writes many rows keeps a
/// statement journal (a temporary file of the pages it changes, to undo only itself), which
/// more than doubled the bytes the ledger wrote per row. A statement that fails fails the whole
/// batch either way: `insert` returns at once and its transaction, dropped, rolls back.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; insert_column_count()].join(", "));
    format!(
        "INSERT OR FAIL INTO calls ({INSERT_COLUMNS}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), LedgerError> {
        // A database that already has the later migrations is not an error at this stage.
        let mut before_keying = migrator(&MIGRATIONS[..BEFORE_KEYING]).await?;
        before_keying.set_ignore_missing(true);
        before_keying.run(&self.pool).await?;
        self.key_unkeyed_rows().await?;
        migrator(MIGRATIONS).await?.run(&self.pool).await?;
        Ok(())
    }

    async fn insert(&self, records: &[CallRecord]) -> Result<(), LedgerError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        let written = self.insert_on(&mut conn, records).await;
        if written.is_err() && !self.in_memory {
            // A write that fails on a full disk leaves the connection's transaction state
            // wrong, and every later write on it answered Ok without being committed
            // (bench/faults.sh found it): the connection is closed instead of going back.
            conn.close_on_drop();
        }
        written
    }

    async fn trace(&self, trace_id: &str) -> Result<Vec<CallRecord>, LedgerError> {
        sqlx::query(&trace_sql())
            .bind(trace_key(trace_id))
            .bind(trace_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record)
            .collect()
    }

    async fn task(&self, task_id: &str) -> Result<Option<CallRecord>, LedgerError> {
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE task_id = ? LIMIT 1");
        let row = sqlx::query(&sql)
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn usage(
        &self,
        since_ms: i64,
        until_ms: i64,
        group_by: GroupBy,
        team: Option<&str>,
    ) -> Result<Vec<UsageRow>, LedgerError> {
        let key = group_by.key_sql();
        // TOTAL, unlike SUM, is always a float, whatever the column's values.
        let sql = format!(
            "SELECT {key} AS group_key, COUNT(*) AS calls, \
                    SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END) AS errors, \
                    SUM(prompt_tokens) AS prompt_tokens, \
                    SUM(completion_tokens) AS completion_tokens, \
                    SUM(total_tokens) AS total_tokens, TOTAL(cost_usd) AS cost_usd, \
                    SUM(tool_calls) AS tool_calls \
             FROM calls WHERE started_at >= ? AND started_at < ? \
                   AND (? IS NULL OR team_id = ?) \
             GROUP BY 1 ORDER BY 1 NULLS LAST"
        );
        Ok(sqlx::query_as(&sql)
            .bind(since_ms)
            .bind(until_ms)
            .bind(team)
            .bind(team)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64, LedgerError> {
        let done = sqlx::query("DELETE FROM calls WHERE started_at < ?")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    async fn memory_store() -> SqliteStore {
        SqliteStore::connect("sqlite::memory:").await.unwrap()
    }

    fn call(trace_id: &str, started_at: i64) -> CallRecord {
        CallRecord {
            trace_id: trace_id.into(),
            span_id: format!("{started_at:016x}"),
            method: "llm.complete".into(),
            requested_model: "gpt-4o-mini".into(),
            status: "ok".into(),
            started_at,
            finished_at: started_at + 1,
            ..CallRecord::default()
        }
    }

    #[test]
    fn every_column_read_back_is_written() {
        let mut read: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        let mut written: Vec<&str> = INSERT_COLUMNS.split(',').map(str::trim).collect();
        read.push("trace_key");
        read.sort_unstable();
        written.sort_unstable();
        assert_eq!(read, written);
    }

    #[test]
    fn the_trace_key_is_fnv_1a() {
        // The specification's test vectors: a changed hash would hide every stored trace.
        assert_eq!(trace_key(""), 0xcbf2_9ce4_8422_2325_u64.cast_signed());
        assert_eq!(trace_key("a"), 0xaf63_dc4c_8601_ec8c_u64.cast_signed());
        assert_eq!(trace_key("foobar"), 0x8594_4171_f739_67e8_u64.cast_signed());
    }

    #[tokio::test]
    async fn rows_from_before_the_trace_key_are_keyed_at_start() {
        let store = memory_store().await;
        migrator(&MIGRATIONS[..1])
            .await
            .unwrap()
            .run(&store.pool)
            .await
            .unwrap();
        // More rows than one keying chunk, in 7 traces: `old-0` … `old-6`.
        let rows = KEYING_CHUNK as i64 + 100;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
             INSERT INTO calls (trace_id, span_id, method, requested_model, status, latency_ms, \
             started_at, finished_at) \
             SELECT 'old-' || (i % 7), 's', 'llm.complete', 'm', 'ok', 1, i, i + 1 FROM n",
        )
        .bind(rows)
        .execute(&store.pool)
        .await
        .unwrap();

        store.migrate().await.unwrap();

        let old_3 = store.trace("old-3").await.unwrap();
        let expected: Vec<i64> = (1..=rows).filter(|i| i % 7 == 3).collect();
        assert_eq!(
            old_3.iter().map(|r| r.started_at).collect::<Vec<_>>(),
            expected
        );
        let unkeyed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE trace_key IS NULL")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(unkeyed, 0);
    }

    /// A file the release before `tool_calls` wrote (migrations 1–4) is upgraded at start
    /// without rewriting its rows: they read 0, and new rows keep their count.
    #[tokio::test]
    async fn a_file_from_before_tool_calls_reads_zero_for_its_calls() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let before = SqliteStore::connect(&url).await.unwrap();
        migrator(&MIGRATIONS[..4])
            .await
            .unwrap()
            .run(&before.pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO calls (trace_id, span_id, method, requested_model, status, latency_ms, \
             started_at, finished_at, trace_key) \
             VALUES ('old', 's', 'llm.complete', 'm', 'ok', 1, 1, 2, ?)",
        )
        .bind(trace_key("old"))
        .execute(&before.pool)
        .await
        .unwrap();
        before.pool.close().await;

        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let old = store.trace("old").await.unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(old[0].tool_calls, 0);
        let asked = CallRecord {
            tool_calls: 3,
            ..call("new", 3)
        };
        store.insert(std::slice::from_ref(&asked)).await.unwrap();
        assert_eq!(store.trace("new").await.unwrap(), [asked]);
    }

    #[tokio::test]
    async fn traces_whose_keys_collide_stay_apart() {
        let store = memory_store().await;
        store.migrate().await.unwrap();
        store.insert(&[call("mine", 1)]).await.unwrap();
        // Another trace id under the same key, as a hash collision would store it.
        sqlx::query(
            "INSERT INTO calls (trace_id, span_id, method, requested_model, status, latency_ms, \
             started_at, finished_at, trace_key) VALUES ('theirs', 's', 'llm.complete', 'm', \
             'ok', 1, 2, 3, ?)",
        )
        .bind(trace_key("mine"))
        .execute(&store.pool)
        .await
        .unwrap();

        assert_eq!(store.trace("mine").await.unwrap(), [call("mine", 1)]);
    }

    #[tokio::test]
    async fn a_trace_is_found_in_every_id_range_through_the_index() {
        let store = memory_store().await;
        store.migrate().await.unwrap();
        // Three ranges of ids and a bit; the trace's calls are in the first, second and last.
        let last = 3 * 4096 + 10;
        let mine = [1, 5000, last];
        let records: Vec<_> = (1..=last)
            .map(|i| call(if mine.contains(&i) { "mine" } else { "other" }, i))
            .collect();
        store.insert(&records).await.unwrap();
        let started =
            |calls: Vec<CallRecord>| calls.iter().map(|r| r.started_at).collect::<Vec<_>>();
        assert_eq!(started(store.trace("mine").await.unwrap()), mine);

        // Pruning empties the oldest range; what is left is still found.
        store.prune(4097).await.unwrap();
        assert_eq!(started(store.trace("mine").await.unwrap()), [5000, last]);

        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", trace_sql()))
            .bind(0_i64)
            .bind("")
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|step| step.get("detail"))
            .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX calls_trace (<expr>=? AND trace_key=?)")),
            "ops.trace does not use the trace index: {plan:?}"
        );
    }

    #[tokio::test]
    async fn a_batch_the_database_refuses_leaves_none_of_its_rows() {
        let store = memory_store().await;
        store.migrate().await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON calls WHEN new.trace_id = 'refused' \
             BEGIN SELECT RAISE(FAIL, 'refused'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        // The refused row is in the second INSERT, after a whole first one: OR FAIL leaves the
        // rows before it in the transaction, which must not be committed.
        let mut batch: Vec<_> = (0..300).map(|i| call("accepted", i)).collect();
        batch[280] = call("refused", 280);

        assert!(store.insert(&batch).await.is_err());
        assert_eq!(store.trace("accepted").await.unwrap().len(), 0);
    }

    #[tokio::test]
    async fn a_gap_in_the_ids_costs_a_lookup_nothing() {
        let store = memory_store().await;
        store.migrate().await.unwrap();
        store.insert(&[call("mine", 1)]).await.unwrap();
        // A row 2^40 ids later: walking every range in between would take hours.
        sqlx::query(
            "INSERT INTO calls (id, trace_id, span_id, method, requested_model, status, \
             latency_ms, started_at, finished_at, trace_key) \
             VALUES (1 << 40, 'mine', 's', 'llm.complete', 'm', 'ok', 1, 2, 3, ?)",
        )
        .bind(trace_key("mine"))
        .execute(&store.pool)
        .await
        .unwrap();

        let found = tokio::time::timeout(Duration::from_secs(10), store.trace("mine"))
            .await
            .expect("ops.trace walked the gap")
            .unwrap();
        assert_eq!(found.len(), 2);
    }

    #[tokio::test]
    async fn looking_for_unkeyed_rows_at_start_reads_an_index_of_them() {
        let store = memory_store().await;
        store.migrate().await.unwrap();
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {ANY_UNKEYED}"))
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|step| step.get("detail"))
            .collect();
        assert!(
            plan.iter().any(|step| step.contains("calls_unkeyed")),
            "the start-up check does not use calls_unkeyed: {plan:?}"
        );
    }
}
