//! The cases of `llmrpc verify` as one typed catalogue: each case's stable name (the one CI keeps
//! its history by), its group, what it checks, and what it runs. `--cases` parses names through
//! it, so a misspelled name is refused with the valid ones listed, and every `match` here is
//! exhaustive: a new case cannot be forgotten anywhere.

use clap::builder::PossibleValue;

use super::checks::{self, Settings};
use super::client::Client;

/// One case, in the order the suite runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Complete,
    StreamWs,
    StreamSse,
    TraceRoundtrip,
    UsageAndCost,
    RetryTransient,
    RateLimitRetryAfter,
    StreamDrop,
    UnknownModel,
    InvalidParams,
    Deadline,
    Concurrent,
    HealthReadyMetrics,
    OpenaiCompat,
    A2a,
}

/// What a case verifies, which decides where it runs and on which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// One provider through the service: runs once per provider, on its model.
    Provider,
    /// A fault `llmrpc mock-upstream` injects, per provider: only with `--mock`.
    Fault,
    /// The service itself, whatever provider answers: runs once.
    Service,
    /// Another surface of the service (OpenAI-compatible, A2A): runs once, and is skipped
    /// when the service does not offer it.
    Surface,
}

impl Case {
    /// Every case, in the order the suite runs them.
    pub(crate) const ALL: [Case; 15] = [
        Case::Complete,
        Case::StreamWs,
        Case::StreamSse,
        Case::TraceRoundtrip,
        Case::UsageAndCost,
        Case::RetryTransient,
        Case::RateLimitRetryAfter,
        Case::StreamDrop,
        Case::UnknownModel,
        Case::InvalidParams,
        Case::Deadline,
        Case::Concurrent,
        Case::HealthReadyMetrics,
        Case::OpenaiCompat,
        Case::A2a,
    ];

    /// The case's name, its group and what it checks: the one table of them.
    fn spec(self) -> (&'static str, Group, &'static str) {
        match self {
            Case::Complete => (
                "complete",
                Group::Provider,
                "llm.complete answers with the trace id and content",
            ),
            Case::StreamWs => (
                "stream_ws",
                Group::Provider,
                "llm.stream over a WebSocket: chunks in order, the last done with usage",
            ),
            Case::StreamSse => (
                "stream_sse",
                Group::Provider,
                "llm.stream as Server-Sent Events: the same checks",
            ),
            Case::TraceRoundtrip => (
                "trace_roundtrip",
                Group::Provider,
                "ops.trace finds the call by its trace id, with its attempts",
            ),
            Case::UsageAndCost => (
                "usage_and_cost",
                Group::Provider,
                "the answer's usage adds up, and the ledger has the same tokens and a cost",
            ),
            Case::RetryTransient => (
                "retry_transient",
                Group::Fault,
                "the mock's 503 is retried, then -32004",
            ),
            Case::RateLimitRetryAfter => (
                "rate_limit_retry_after",
                Group::Fault,
                "the mock's 429 answers -32002 with retry_after_ms, at once",
            ),
            Case::StreamDrop => (
                "stream_drop",
                Group::Fault,
                "a stream the mock cuts off ends with -32004 after its first deltas",
            ),
            Case::UnknownModel => (
                "unknown_model",
                Group::Service,
                "an unknown model answers -32001 with the trace id",
            ),
            Case::InvalidParams => (
                "invalid_params",
                Group::Service,
                "empty messages answer -32602 with the trace id",
            ),
            Case::Deadline => (
                "deadline",
                Group::Service,
                "a 1 ms deadline answers -32003 within 2 s",
            ),
            Case::Concurrent => (
                "concurrent",
                Group::Service,
                "--concurrency calls at once answer, at --min-success",
            ),
            Case::HealthReadyMetrics => (
                "health_ready_metrics",
                Group::Service,
                "/health, /ready and /metrics answer",
            ),
            Case::OpenaiCompat => (
                "openai_compat",
                Group::Surface,
                "POST /v1/chat/completions answers",
            ),
            Case::A2a => (
                "a2a",
                Group::Surface,
                "the agent card's interface completes a SendMessage task",
            ),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        self.spec().0
    }

    pub(crate) fn group(self) -> Group {
        self.spec().1
    }

    /// Whether the case needs a provider that answers. The provider and fault cases call their
    /// own; of the others, those that ask for an answer run on a provider whose own cases
    /// passed, so that a provider down is not reported as the service failing. The rest call
    /// no provider: an unknown model and empty messages are refused before routing, and the
    /// plain-HTTP endpoints answer whatever the providers' state.
    pub(crate) fn needs_an_answer(self) -> bool {
        match self {
            Case::UnknownModel | Case::InvalidParams | Case::HealthReadyMetrics => false,
            Case::Complete
            | Case::StreamWs
            | Case::StreamSse
            | Case::TraceRoundtrip
            | Case::UsageAndCost
            | Case::RetryTransient
            | Case::RateLimitRetryAfter
            | Case::StreamDrop
            | Case::Deadline
            | Case::Concurrent
            | Case::OpenaiCompat
            | Case::A2a => true,
        }
    }

    /// Runs the case once on `model`: its detail when it passes, its reason when it fails;
    /// `Ok(None)` for a surface the service does not offer.
    pub(crate) async fn run(
        self,
        client: &Client,
        settings: &Settings,
        model: &str,
    ) -> Result<Option<String>, String> {
        let outcome = match self {
            Case::Complete => checks::complete(client, settings, model).await,
            Case::StreamWs => checks::stream_ws(client, settings, model).await,
            Case::StreamSse => checks::stream_sse(client, settings, model).await,
            Case::TraceRoundtrip => checks::trace_roundtrip(client, settings, model, false).await,
            Case::UsageAndCost => checks::trace_roundtrip(client, settings, model, true).await,
            Case::RetryTransient => checks::retry_transient(client, settings, model).await,
            Case::RateLimitRetryAfter => {
                checks::rate_limit_retry_after(client, settings, model).await
            }
            Case::StreamDrop => checks::stream_drop(client, settings, model).await,
            Case::UnknownModel => checks::unknown_model(client, settings).await,
            Case::InvalidParams => checks::invalid_params(client, settings, model).await,
            Case::Deadline => checks::deadline(client, settings, model).await,
            Case::Concurrent => checks::concurrent(client, settings, model).await,
            Case::HealthReadyMetrics => checks::health_ready_metrics(client).await,
            Case::OpenaiCompat => return checks::openai_compat(client, settings, model).await,
            Case::A2a => return checks::a2a(client, model).await,
        };
        outcome.map(Some)
    }
}

/// `--cases` takes the names of [`Case::spec`]; `--help` lists them with what each checks.
impl clap::ValueEnum for Case {
    fn value_variants<'a>() -> &'a [Self] {
        &Case::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let (name, _, checks) = self.spec();
        Some(PossibleValue::new(name).help(checks))
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_case_parses_back_from_its_name_and_a_misspelling_does_not() {
        for case in Case::ALL {
            assert_eq!(Case::from_str(case.name(), false), Ok(case));
        }
        assert!(Case::from_str("stream_dorp", false).is_err());
    }

    #[test]
    fn the_groups_come_in_the_order_the_suite_runs_them() {
        let groups: Vec<Group> = Case::ALL.iter().map(|c| c.group()).collect();
        let mut sorted = groups.clone();
        sorted.dedup();
        assert_eq!(
            sorted,
            [
                Group::Provider,
                Group::Fault,
                Group::Service,
                Group::Surface
            ]
        );
    }
}
