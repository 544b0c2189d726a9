//! The PostgreSQL backend, for deployments that share one ledger between instances. Attempts and
//! metadata are JSONB, so that ops can query inside them.

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::error::LedgerError;
use super::record::{CallRecord, GroupBy, UsageRow};
use super::rows::{COLUMNS, CallRow, record};
use super::store::{Store, migrator};

/// Every file of `migrations/postgres/`, in order. A change of schema is a new file and a new entry
/// here, never an edit: sqlx refuses a database whose applied migrations changed.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "calls",
        include_str!("../../migrations/postgres/0001_calls.sql"),
    ),
    (
        2,
        "tool calls",
        include_str!("../../migrations/postgres/0002_tool_calls.sql"),
    ),
    (
        3,
        "teams",
        include_str!("../../migrations/postgres/0003_teams.sql"),
    ),
    (
        4,
        "tasks",
        include_str!("../../migrations/postgres/0004_tasks.sql"),
    ),
];

/// The columns as `trace` selects them: JSONB comes back as text, parsed like SQLite's.
const SELECT_COLUMNS: &str = "trace_id, span_id, source_agent, target_agent, session_id, \
    conversation_id, method, requested_model, provider, model, status, error_message, \
    attempts::text AS attempts, latency_ms, ttft_ms, prompt_tokens, completion_tokens, \
    total_tokens, cost_usd, tool_calls, metadata::text AS metadata, started_at, finished_at, \
    team_id, key_prefix, task_id";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to a `postgres://` URL; migrations are not applied.
    pub async fn connect(url: &str) -> Result<Self, LedgerError> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }
}

/// A batch turned into one array per column, so that the whole batch is one statement: one
/// round trip, whatever its size.
#[derive(Default)]
struct Columns<'a> {
    trace_id: Vec<&'a str>,
    span_id: Vec<&'a str>,
    source_agent: Vec<Option<&'a str>>,
    target_agent: Vec<Option<&'a str>>,
    session_id: Vec<Option<&'a str>>,
    conversation_id: Vec<Option<&'a str>>,
    method: Vec<&'a str>,
    requested_model: Vec<&'a str>,
    provider: Vec<Option<&'a str>>,
    model: Vec<Option<&'a str>>,
    status: Vec<&'a str>,
    error_message: Vec<Option<&'a str>>,
    attempts: Vec<String>,
    latency_ms: Vec<i64>,
    ttft_ms: Vec<Option<i64>>,
    prompt_tokens: Vec<i64>,
    completion_tokens: Vec<i64>,
    total_tokens: Vec<i64>,
    cost_usd: Vec<f64>,
    tool_calls: Vec<i64>,
    metadata: Vec<Option<String>>,
    started_at: Vec<i64>,
    finished_at: Vec<i64>,
    team_id: Vec<Option<&'a str>>,
    key_prefix: Vec<Option<&'a str>>,
    task_id: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, row: CallRow<'a>) {
        self.trace_id.push(row.trace_id);
        self.span_id.push(row.span_id);
        self.source_agent.push(row.source_agent);
        self.target_agent.push(row.target_agent);
        self.session_id.push(row.session_id);
        self.conversation_id.push(row.conversation_id);
        self.method.push(row.method);
        self.requested_model.push(row.requested_model);
        self.provider.push(row.provider);
        self.model.push(row.model);
        self.status.push(row.status);
        self.error_message.push(row.error_message);
        self.attempts.push(row.attempts.into_owned());
        self.latency_ms.push(row.latency_ms);
        self.ttft_ms.push(row.ttft_ms);
        self.prompt_tokens.push(row.prompt_tokens);
        self.completion_tokens.push(row.completion_tokens);
        self.total_tokens.push(row.total_tokens);
        self.cost_usd.push(row.cost_usd);
        self.tool_calls.push(row.tool_calls);
        self.metadata.push(row.metadata.map(Cow::into_owned));
        self.started_at.push(row.started_at);
        self.finished_at.push(row.finished_at);
        self.team_id.push(row.team_id);
        self.key_prefix.push(row.key_prefix);
        self.task_id.push(row.task_id);
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), LedgerError> {
        migrator(MIGRATIONS).await?.run(&self.pool).await?;
        Ok(())
    }

    async fn insert(&self, records: &[CallRecord]) -> Result<(), LedgerError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut c = Columns::default();
        for r in records {
            c.push(CallRow::of(r)?);
        }
        let sql = format!(
            "INSERT INTO calls ({COLUMNS}) \
             SELECT trace_id, span_id, source_agent, target_agent, session_id, conversation_id, \
                    method, requested_model, provider, model, status, error_message, \
                    attempts::jsonb, latency_ms, ttft_ms, prompt_tokens, completion_tokens, \
                    total_tokens, cost_usd, tool_calls, metadata::jsonb, started_at, \
                    finished_at, team_id, key_prefix, task_id \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                         $11::text[], $12::text[], $13::text[], $14::int8[], $15::int8[], \
                         $16::int8[], $17::int8[], $18::int8[], $19::float8[], $20::int8[], \
                         $21::text[], $22::int8[], $23::int8[], $24::text[], $25::text[], $26::text[]) \
                  AS r({COLUMNS})"
        );
        // One statement is one transaction already.
        sqlx::query(&sql)
            .bind(c.trace_id)
            .bind(c.span_id)
            .bind(c.source_agent)
            .bind(c.target_agent)
            .bind(c.session_id)
            .bind(c.conversation_id)
            .bind(c.method)
            .bind(c.requested_model)
            .bind(c.provider)
            .bind(c.model)
            .bind(c.status)
            .bind(c.error_message)
            .bind(c.attempts)
            .bind(c.latency_ms)
            .bind(c.ttft_ms)
            .bind(c.prompt_tokens)
            .bind(c.completion_tokens)
            .bind(c.total_tokens)
            .bind(c.cost_usd)
            .bind(c.tool_calls)
            .bind(c.metadata)
            .bind(c.started_at)
            .bind(c.finished_at)
            .bind(c.team_id)
            .bind(c.key_prefix)
            .bind(c.task_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn trace(&self, trace_id: &str) -> Result<Vec<CallRecord>, LedgerError> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM calls WHERE trace_id = $1 ORDER BY started_at, id"
        );
        sqlx::query(&sql)
            .bind(trace_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record)
            .collect()
    }

    async fn task(&self, task_id: &str) -> Result<Option<CallRecord>, LedgerError> {
        let sql = format!("SELECT {SELECT_COLUMNS} FROM calls WHERE task_id = $1 LIMIT 1");
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
        // SUM of BIGINT is NUMERIC in PostgreSQL: cast back.
        let sql = format!(
            "SELECT {key} AS group_key, COUNT(*) AS calls, \
                    COUNT(*) FILTER (WHERE status <> 'ok') AS errors, \
                    SUM(prompt_tokens)::int8 AS prompt_tokens, \
                    SUM(completion_tokens)::int8 AS completion_tokens, \
                    SUM(total_tokens)::int8 AS total_tokens, \
                    SUM(cost_usd)::float8 AS cost_usd, \
                    SUM(tool_calls)::int8 AS tool_calls \
             FROM calls WHERE started_at >= $1 AND started_at < $2 \
                   AND ($3::text IS NULL OR team_id = $3) \
             GROUP BY 1 ORDER BY 1 NULLS LAST"
        );
        Ok(sqlx::query_as(&sql)
            .bind(since_ms)
            .bind(until_ms)
            .bind(team)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn prune(&self, older_than_ms: i64) -> Result<u64, LedgerError> {
        let done = sqlx::query("DELETE FROM calls WHERE started_at < $1")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
