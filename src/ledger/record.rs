//! What the ledger records of a call and its attempts, and the totals `ops.usage` reads back:
//! the shapes `ops.trace` and `ops.usage` show.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::timestamps::rfc3339;
use crate::types::Usage;

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
    pub(super) fn key_sql(self) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
