//! Call metrics: the Prometheus families of contract §2 and the `llm.metrics` snapshot, both
//! updated by the same calls so that they always agree.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::ErrorKind;
use crate::resilience::BreakerState;
use crate::types::{ProviderName, Usage};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: &'static str,
    model: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    provider: &'static str,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: &'static str,
    model: String,
    token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    provider: &'static str,
    model: String,
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
}

#[derive(Default)]
struct ProviderTotals {
    requests: AtomicU64,
    tokens: AtomicU64,
    errors: AtomicU64,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<ModelLabels, Histogram, fn() -> Histogram>,
    ttft: Family<ModelLabels, Histogram, fn() -> Histogram>,
    tokens: Family<TokenLabels, Counter>,
    tool_calls: Family<ModelLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    active: Family<ProviderLabels, Gauge>,
    retries: Family<ProviderLabels, Counter>,
    circuit: Family<ProviderLabels, Gauge>,
    ledger_dropped: Counter,
    ledger_failed: Counter,
    /// The service's counts, which `llm.metrics` shows an admin or an anonymous caller.
    service: Counters,
    /// Each team's, which it shows a caller key of the team: another team's calls are not
    /// its to see. As many as the teams that called.
    teams: Mutex<HashMap<String, Arc<Counters>>>,
}

/// The counts of the `llm.metrics` snapshot, for the service or one team.
#[derive(Default)]
struct Counters {
    total_requests: AtomicU64,
    total_tokens: AtomicU64,
    governance_violations: AtomicU64,
    in_flight: AtomicI64,
    by_provider: [ProviderTotals; 3],
}

impl Counters {
    fn totals(&self, provider: ProviderName) -> &ProviderTotals {
        let index = ProviderName::ALL
            .iter()
            .position(|p| *p == provider)
            .unwrap_or(0);
        &self.by_provider[index]
    }

    fn snapshot(&self) -> Snapshot {
        let by_provider = ProviderName::ALL
            .into_iter()
            .zip(&self.by_provider)
            .map(|(name, t)| {
                let counts = ProviderCounts {
                    requests: t.requests.load(Relaxed),
                    tokens: t.tokens.load(Relaxed),
                    errors: t.errors.load(Relaxed),
                };
                (name, counts)
            })
            .collect();
        Snapshot {
            total_requests: self.total_requests.load(Relaxed),
            total_tokens: self.total_tokens.load(Relaxed),
            by_provider,
            governance_violations: self.governance_violations.load(Relaxed),
            in_flight: u64::try_from(self.in_flight.load(Relaxed)).unwrap_or(0),
        }
    }
}

/// The label used for calls that failed before a provider was chosen.
const NO_PROVIDER: &str = "none";

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let ttft = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let tokens = Family::<TokenLabels, Counter>::default();
        let tool_calls = Family::<ModelLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let retries = Family::<ProviderLabels, Counter>::default();
        let active = Family::<ProviderLabels, Gauge>::default();
        let circuit = Family::<ProviderLabels, Gauge>::default();
        let ledger_dropped = Counter::default();
        let ledger_failed = Counter::default();
        registry.register(
            "llm_requests",
            "Calls answered, by outcome",
            requests.clone(),
        );
        registry.register(
            "llm_request_duration_seconds",
            "Whole-call latency",
            duration.clone(),
        );
        registry.register(
            "llm_time_to_first_token_seconds",
            "Time to the first streamed delta",
            ttft.clone(),
        );
        registry.register("llm_tokens", "Tokens used, by type", tokens.clone());
        registry.register(
            "llm_tool_calls",
            "Tool calls the models asked for",
            tool_calls.clone(),
        );
        registry.register("llm_errors", "Failed calls, by error kind", errors.clone());
        registry.register(
            "llm_retries",
            "Upstream attempts beyond the first",
            retries.clone(),
        );
        registry.register("llm_active_requests", "Calls in flight", active.clone());
        registry.register(
            "llm_circuit_state",
            "Circuit breaker: 0 closed, 1 open, 2 half-open",
            circuit.clone(),
        );
        registry.register(
            "llm_ledger_dropped",
            "Call records dropped because the ledger's queue was full",
            ledger_dropped.clone(),
        );
        registry.register(
            "llm_ledger_failed",
            "Call records lost because the database refused their batch",
            ledger_failed.clone(),
        );
        for provider in ProviderName::ALL {
            // Present from the start so that dashboards see every provider at zero.
            active
                .get_or_create(&ProviderLabels {
                    provider: provider.as_str(),
                })
                .set(0);
            retries
                .get_or_create(&ProviderLabels {
                    provider: provider.as_str(),
                })
                .inc_by(0);
        }
        Self {
            registry,
            requests,
            duration,
            ttft,
            tokens,
            tool_calls,
            errors,
            active,
            retries,
            circuit,
            ledger_dropped,
            ledger_failed,
            service: Counters::default(),
            teams: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts a call (of `team`'s) refused before any provider was chosen.
    pub fn rejected(&self, kind: ErrorKind, team: Option<&str>) {
        let team = self.team(team);
        for counters in std::iter::once(&self.service).chain(team.as_deref()) {
            counters.total_requests.fetch_add(1, Relaxed);
            if kind == ErrorKind::ModelNotAllowed {
                counters.governance_violations.fetch_add(1, Relaxed);
            }
        }
        let model = NO_PROVIDER.to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                provider: NO_PROVIDER,
                model: model.clone(),
                status: kind.as_str(),
            })
            .inc();
        self.errors
            .get_or_create(&ErrorLabels {
                provider: NO_PROVIDER,
                model,
                error_type: kind.as_str(),
            })
            .inc();
    }

    /// Counts a retry (an attempt beyond a candidate's first).
    pub fn retried(&self, provider: ProviderName) {
        let labels = ProviderLabels {
            provider: provider.as_str(),
        };
        self.retries.get_or_create(&labels).inc();
    }

    pub fn circuit(&self, provider: ProviderName, state: BreakerState) {
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.circuit
            .get_or_create(&ProviderLabels {
                provider: provider.as_str(),
            })
            .set(value);
    }

    /// Brings the ledger's counters (records dropped, records lost to refused batches) up to
    /// the ledger's own counts.
    pub fn ledger_losses(&self, dropped: u64, failed: u64) {
        self.ledger_dropped
            .inc_by(dropped.saturating_sub(self.ledger_dropped.get()));
        self.ledger_failed
            .inc_by(failed.saturating_sub(self.ledger_failed.get()));
    }

    /// Starts accounting for a call routed to `provider`; the guard records its end.
    pub fn start(
        self: &Arc<Self>,
        provider: ProviderName,
        model: &str,
        team: Option<&str>,
    ) -> CallMetrics {
        let team = self.team(team);
        for counters in std::iter::once(&self.service).chain(team.as_deref()) {
            counters.in_flight.fetch_add(1, Relaxed);
        }
        self.active
            .get_or_create(&ProviderLabels {
                provider: provider.as_str(),
            })
            .inc();
        CallMetrics {
            metrics: Arc::clone(self),
            team,
            provider,
            model: model.to_owned(),
            started: Instant::now(),
            ttft: None,
            finished: false,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The counters `llm.metrics` reports.
    /// The service's counts.
    pub fn snapshot(&self) -> Snapshot {
        self.service.snapshot()
    }

    /// One team's counts: its own calls only (none yet: zeros).
    pub fn team_snapshot(&self, team_id: &str) -> Snapshot {
        match self.teams().get(team_id) {
            Some(counters) => counters.snapshot(),
            None => Counters::default().snapshot(),
        }
    }

    fn teams(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Counters>>> {
        self.teams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters a call of `team` updates beside the service's.
    fn team(&self, team: Option<&str>) -> Option<Arc<Counters>> {
        let team = team?;
        let mut teams = self.teams();
        if let Some(counters) = teams.get(team) {
            return Some(Arc::clone(counters));
        }
        let counters = Arc::new(Counters::default());
        teams.insert(team.to_owned(), Arc::clone(&counters));
        Some(counters)
    }
}

/// The `llm.metrics` counters, read one by one (not as one atomic whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub total_requests: u64,
    pub total_tokens: u64,
    /// Every provider, in [`ProviderName::ALL`] order.
    pub by_provider: Vec<(ProviderName, ProviderCounts)>,
    /// Calls refused because the allow-list does not name their model.
    pub governance_violations: u64,
    pub in_flight: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderCounts {
    pub requests: u64,
    pub tokens: u64,
    pub errors: u64,
}

/// One routed call in flight. Dropping it unfinished records the call as `cancelled`.
pub struct CallMetrics {
    metrics: Arc<Metrics>,
    /// The caller's team's counters, when it has one.
    team: Option<Arc<Counters>>,
    provider: ProviderName,
    model: String,
    started: Instant,
    ttft: Option<Duration>,
    finished: bool,
}

impl CallMetrics {
    /// The service's counters, and the team's when it has one.
    fn counters(&self) -> impl Iterator<Item = &Counters> {
        std::iter::once(&self.metrics.service).chain(self.team.as_deref())
    }

    /// Moves the call to a fallback provider.
    pub fn reroute(&mut self, provider: ProviderName, model: &str) {
        let m = &self.metrics;
        m.active
            .get_or_create(&ProviderLabels {
                provider: self.provider.as_str(),
            })
            .dec();
        m.active
            .get_or_create(&ProviderLabels {
                provider: provider.as_str(),
            })
            .inc();
        self.provider = provider;
        self.model = model.to_owned();
    }

    /// Marks the first streamed delta, once.
    pub fn first_token(&mut self) {
        self.ttft.get_or_insert_with(|| self.started.elapsed());
    }

    /// Ends the call as answered, with its usage and the number of tools it asked for.
    pub fn succeeded(mut self, usage: &Usage, tool_calls: usize) {
        let m = &self.metrics;
        let provider = self.provider.as_str();
        if tool_calls > 0 {
            let labels = ModelLabels {
                provider,
                model: self.model.clone(),
            };
            m.tool_calls
                .get_or_create(&labels)
                .inc_by(tool_calls as u64);
        }
        for (token_type, count) in [
            ("input", usage.prompt_tokens),
            ("output", usage.completion_tokens),
        ] {
            let labels = TokenLabels {
                provider,
                model: self.model.clone(),
                token_type,
            };
            m.tokens.get_or_create(&labels).inc_by(count);
        }
        for counters in self.counters() {
            counters.total_tokens.fetch_add(usage.total_tokens, Relaxed);
            let totals = counters.totals(self.provider);
            totals.tokens.fetch_add(usage.total_tokens, Relaxed);
        }
        self.end("ok");
    }

    pub fn failed(mut self, kind: ErrorKind) {
        let labels = ErrorLabels {
            provider: self.provider.as_str(),
            model: self.model.clone(),
            error_type: kind.as_str(),
        };
        self.metrics.errors.get_or_create(&labels).inc();
        for counters in self.counters() {
            counters.totals(self.provider).errors.fetch_add(1, Relaxed);
        }
        self.end(kind.as_str());
    }

    fn end(&mut self, status: &'static str) {
        self.finished = true;
        let m = &self.metrics;
        let provider = self.provider.as_str();
        let model = self.model.clone();
        for counters in self.counters() {
            counters.total_requests.fetch_add(1, Relaxed);
            counters
                .totals(self.provider)
                .requests
                .fetch_add(1, Relaxed);
            counters.in_flight.fetch_sub(1, Relaxed);
        }
        m.active.get_or_create(&ProviderLabels { provider }).dec();
        m.requests
            .get_or_create(&RequestLabels {
                provider,
                model: model.clone(),
                status,
            })
            .inc();
        let labels = ModelLabels { provider, model };
        m.duration
            .get_or_create(&labels)
            .observe(self.started.elapsed().as_secs_f64());
        if let Some(ttft) = self.ttft {
            m.ttft.get_or_create(&labels).observe(ttft.as_secs_f64());
        }
    }
}

impl Drop for CallMetrics {
    fn drop(&mut self) {
        if !self.finished {
            self.end("cancelled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_and_snapshot_agree() {
        let metrics = Arc::new(Metrics::default());
        let usage = Usage {
            prompt_tokens: 9,
            completion_tokens: 3,
            total_tokens: 12,
        };
        metrics
            .start(ProviderName::Openai, "gpt-4o", Some("team-a"))
            .succeeded(&usage, 2);
        let mut streaming = metrics.start(ProviderName::Openai, "gpt-4o", None);
        streaming.first_token();
        streaming.failed(ErrorKind::Timeout);
        metrics.rejected(ErrorKind::ModelNotAllowed, Some("team-b"));
        drop(metrics.start(ProviderName::Gemini, "gemini-2.5-pro", None));

        let text = metrics.encode();
        for line in [
            r#"llm_requests_total{provider="openai",model="gpt-4o",status="ok"} 1"#,
            r#"llm_requests_total{provider="openai",model="gpt-4o",status="timeout"} 1"#,
            r#"llm_requests_total{provider="gemini",model="gemini-2.5-pro",status="cancelled"} 1"#,
            r#"llm_tokens_total{provider="openai",model="gpt-4o",token_type="input"} 9"#,
            r#"llm_tool_calls_total{provider="openai",model="gpt-4o"} 2"#,
            r#"llm_errors_total{provider="none",model="none",error_type="model_not_allowed"} 1"#,
            r#"llm_request_duration_seconds_count{provider="openai",model="gpt-4o"} 2"#,
            r#"llm_time_to_first_token_seconds_count{provider="openai",model="gpt-4o"} 1"#,
            r#"llm_active_requests{provider="openai"} 0"#,
            r#"llm_retries_total{provider="anthropic"} 0"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        let snap = metrics.snapshot();
        assert_eq!(
            (
                snap.total_requests,
                snap.total_tokens,
                snap.governance_violations,
                snap.in_flight
            ),
            (4, 12, 1, 0)
        );
        // Each team sees its own calls only.
        let a = metrics.team_snapshot("team-a");
        assert_eq!(
            (a.total_requests, a.total_tokens, a.governance_violations),
            (1, 12, 0)
        );
        let b = metrics.team_snapshot("team-b");
        assert_eq!(
            (b.total_requests, b.total_tokens, b.governance_violations),
            (1, 0, 1)
        );
        assert_eq!(metrics.team_snapshot("nobody").total_requests, 0);
        assert_eq!(
            snap.by_provider[0],
            (
                ProviderName::Openai,
                ProviderCounts {
                    requests: 2,
                    tokens: 12,
                    errors: 1
                }
            )
        );
    }
}
