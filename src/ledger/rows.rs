//! The one mapping between the ledger's records and the rows of `calls`, for both stores: a
//! call's columns in the types both databases hold them in (counts as `BIGINT`, attempts and
//! metadata as JSON text), and sqlx's `FromRow` for them over any backend's row, so that SQLite
//! and PostgreSQL read a record, and the totals of `ops.usage`, alike.
//!
//! `FromRow` is written out rather than derived: the derive needs sqlx's macros, which would
//! build a second copy of sqlx and its bundled SQLite for the compiler.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::error::LedgerError;
use super::record::{AttemptRecord, CallRecord, UsageRow};
use crate::types::Usage;

/// The columns of a call's row, as [`CallRow`] reads them.
pub(super) const COLUMNS: &str = "trace_id, span_id, source_agent, target_agent, session_id, \
    conversation_id, method, requested_model, provider, model, status, error_message, attempts, \
    latency_ms, ttft_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd, tool_calls, \
    metadata, started_at, finished_at, team_id, key_prefix, task_id";

/// A call as one row of `calls`: borrowed from its record to be written, or from the
/// database's row when read.
#[derive(Debug)]
pub(super) struct CallRow<'a> {
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub source_agent: Option<&'a str>,
    pub target_agent: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub method: &'a str,
    pub requested_model: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub status: &'a str,
    pub error_message: Option<&'a str>,
    /// The attempts as JSON: made for a write, borrowed from the row for a read.
    pub attempts: Cow<'a, str>,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    pub tool_calls: i64,
    /// The caller's `metadata` as JSON.
    pub metadata: Option<Cow<'a, str>>,
    pub started_at: i64,
    pub finished_at: i64,
    pub team_id: Option<&'a str>,
    pub key_prefix: Option<&'a str>,
    pub task_id: Option<&'a str>,
}

impl<'a> CallRow<'a> {
    /// The row `record` is written as. Its strings are borrowed, not copied, so that a batch
    /// the database could not take now stays whole for the next try.
    pub fn of(r: &'a CallRecord) -> Result<Self, LedgerError> {
        Ok(Self {
            trace_id: &r.trace_id,
            span_id: &r.span_id,
            source_agent: r.source_agent.as_deref(),
            target_agent: r.target_agent.as_deref(),
            session_id: r.session_id.as_deref(),
            conversation_id: r.conversation_id.as_deref(),
            method: &r.method,
            requested_model: &r.requested_model,
            provider: r.provider.as_deref(),
            model: r.model.as_deref(),
            status: &r.status,
            error_message: r.error_message.as_deref(),
            attempts: Cow::Owned(attempts_to_json(&r.attempts)?),
            latency_ms: signed(r.latency_ms),
            ttft_ms: r.ttft_ms.map(signed),
            prompt_tokens: signed(r.usage.prompt_tokens),
            completion_tokens: signed(r.usage.completion_tokens),
            total_tokens: signed(r.usage.total_tokens),
            cost_usd: r.cost_usd,
            tool_calls: i64::from(r.tool_calls),
            metadata: r
                .metadata
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?
                .map(Cow::Owned),
            started_at: r.started_at,
            finished_at: r.finished_at,
            team_id: r.team_id.as_deref(),
            key_prefix: r.key_prefix.as_deref(),
            task_id: r.task_id.as_deref(),
        })
    }

    /// The record this row holds.
    pub fn into_record(self) -> Result<CallRecord, LedgerError> {
        let metadata: Option<Value> = self
            .metadata
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?;
        Ok(CallRecord {
            trace_id: self.trace_id.to_owned(),
            span_id: self.span_id.to_owned(),
            source_agent: self.source_agent.map(str::to_owned),
            target_agent: self.target_agent.map(str::to_owned),
            session_id: self.session_id.map(str::to_owned),
            conversation_id: self.conversation_id.map(str::to_owned),
            method: self.method.to_owned(),
            requested_model: self.requested_model.to_owned(),
            provider: self.provider.map(str::to_owned),
            model: self.model.map(str::to_owned),
            status: self.status.to_owned(),
            error_message: self.error_message.map(str::to_owned),
            attempts: attempts_from_json(&self.attempts)?,
            latency_ms: unsigned(self.latency_ms),
            ttft_ms: self.ttft_ms.map(unsigned),
            usage: Usage {
                prompt_tokens: unsigned(self.prompt_tokens),
                completion_tokens: unsigned(self.completion_tokens),
                total_tokens: unsigned(self.total_tokens),
            },
            cost_usd: self.cost_usd,
            // Written from a `u32`, so always in range.
            tool_calls: u32::try_from(self.tool_calls).unwrap_or(0),
            metadata,
            started_at: self.started_at,
            finished_at: self.finished_at,
            team_id: self.team_id.map(str::to_owned),
            key_prefix: self.key_prefix.map(str::to_owned),
            task_id: self.task_id.map(str::to_owned),
        })
    }
}

impl<'r, R: Row> FromRow<'r, R> for CallRow<'r>
where
    &'static str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
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
            attempts: Cow::Borrowed(row.try_get("attempts")?),
            latency_ms: row.try_get("latency_ms")?,
            ttft_ms: row.try_get("ttft_ms")?,
            prompt_tokens: row.try_get("prompt_tokens")?,
            completion_tokens: row.try_get("completion_tokens")?,
            total_tokens: row.try_get("total_tokens")?,
            cost_usd: row.try_get("cost_usd")?,
            tool_calls: row.try_get("tool_calls")?,
            metadata: row
                .try_get::<Option<&str>, _>("metadata")?
                .map(Cow::Borrowed),
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            team_id: row.try_get("team_id")?,
            key_prefix: row.try_get("key_prefix")?,
            task_id: row.try_get("task_id")?,
        })
    }
}

/// A row of `calls`, selected as [`COLUMNS`] names them, read back as its record.
pub(super) fn record<'r, R: Row>(row: &'r R) -> Result<CallRecord, LedgerError>
where
    CallRow<'r>: FromRow<'r, R>,
{
    CallRow::from_row(row)?.into_record()
}

/// The totals of one group, as both stores' `ops.usage` queries name their columns.
impl<'r, R: Row> FromRow<'r, R> for UsageRow
where
    &'static str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            key: row.try_get("group_key")?,
            calls: unsigned(row.try_get("calls")?),
            errors: unsigned(row.try_get("errors")?),
            prompt_tokens: unsigned(row.try_get("prompt_tokens")?),
            completion_tokens: unsigned(row.try_get("completion_tokens")?),
            total_tokens: unsigned(row.try_get("total_tokens")?),
            cost_usd: row.try_get("cost_usd")?,
            tool_calls: unsigned(row.try_get("tool_calls")?),
        })
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

/// Counts are `u64` in Rust and `BIGINT` in SQL; the values never come near the limits.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attempts() -> Vec<AttemptRecord> {
        vec![
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
        ]
    }

    #[test]
    fn attempts_round_trip_through_storage() {
        let attempts = attempts();
        let text = attempts_to_json(&attempts).unwrap();
        assert_eq!(attempts_from_json(&text).unwrap(), attempts);
    }

    #[test]
    fn a_record_round_trips_through_its_row() {
        let record = CallRecord {
            trace_id: "t1".into(),
            span_id: "s1".into(),
            source_agent: Some("planner".into()),
            method: "llm.stream".into(),
            requested_model: "fast".into(),
            provider: Some("anthropic".into()),
            status: "timeout".into(),
            error_message: Some("slow".into()),
            attempts: attempts(),
            latency_ms: 3012,
            ttft_ms: Some(40),
            usage: Usage {
                prompt_tokens: 9,
                completion_tokens: 3,
                total_tokens: 12,
            },
            cost_usd: 0.25,
            tool_calls: 2,
            metadata: Some(json!({"job": [7, "x"]})),
            team_id: Some("team-a".into()),
            key_prefix: Some("llmrpc-ab12".into()),
            task_id: Some("task-1".into()),
            started_at: 1_795_255_200_000,
            finished_at: 1_795_255_203_012,
            ..CallRecord::default()
        };
        let row = CallRow::of(&record).unwrap();
        assert_eq!(row.tool_calls, 2);
        assert_eq!(row.metadata.as_deref(), Some(r#"{"job":[7,"x"]}"#));
        assert_eq!(row.into_record().unwrap(), record);
    }
}
