//! The end of a call, in one place: metrics, the finished-call log line and the ledger record.
//! A call dropped before it finished (its caller went away) is recorded as `cancelled`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::labels::MetricModels;
use crate::access::{Access, Charge};
use crate::context::CallContext;
use crate::error::Error;
use crate::ledger::{self, AttemptRecord, CallRecord, Ledger, Prices};
use crate::routing::Route;
use crate::telemetry::metrics::{CallMetrics, Metrics};
use crate::types::{FinishReason, ToolCall, Usage};

/// Where finished calls go; shared by every call.
#[derive(Clone)]
pub struct Recorders {
    pub metrics: Arc<Metrics>,
    /// The model label of the metrics.
    pub models: Arc<MetricModels>,
    pub ledger: Option<Ledger>,
    pub prices: Arc<Prices>,
    /// Where a call's team is charged.
    pub access: Arc<Access>,
}

pub(super) struct CallEnd {
    recorders: Recorders,
    /// Set once the call is routed; refusals before routing are counted without it.
    metrics: Option<CallMetrics>,
    record: CallRecord,
    started: Instant,
    ttft: Option<Duration>,
    /// The caller's team's hold on the call, settled when it ends.
    charge: Option<Charge>,
    done: bool,
}

impl CallEnd {
    pub(super) fn new(
        recorders: &Recorders,
        ctx: &CallContext,
        method: &'static str,
        requested_model: &str,
        metadata: Option<Value>,
    ) -> Self {
        let a2a = &ctx.a2a;
        let caller = ctx.caller.as_deref();
        let record = CallRecord {
            trace_id: ctx.trace_id.clone(),
            span_id: ctx.span_id.clone(),
            source_agent: a2a.source_agent.clone(),
            target_agent: a2a.target_agent.clone(),
            session_id: a2a.session_id.clone(),
            conversation_id: a2a.conversation_id.clone(),
            method: method.to_owned(),
            requested_model: requested_model.to_owned(),
            metadata,
            team_id: caller.map(|c| c.team.id.clone()),
            key_prefix: caller.map(|c| c.prefix.clone()),
            task_id: ctx.task_id.clone(),
            started_at: ledger::now_ms(),
            ..CallRecord::default()
        };
        Self {
            recorders: recorders.clone(),
            metrics: None,
            record,
            started: Instant::now(),
            ttft: None,
            charge: None,
            done: false,
        }
    }

    /// The call is admitted on its team's credits and limits: it is settled when it ends.
    pub(super) fn charge(&mut self, charge: Charge) {
        self.charge = Some(charge);
    }

    /// The call has a provider: from here on it is counted against it.
    pub(super) fn routed(&mut self, route: &Route) {
        let label = self.recorders.models.label(route);
        let team = self.record.team_id.as_deref();
        let metrics = self.recorders.metrics.start(route.provider, label, team);
        self.metrics = Some(metrics);
        self.set_route(route);
    }

    /// A fallback takes over.
    pub(super) fn reroute(&mut self, route: &Route) {
        if let Some(metrics) = self.metrics.as_mut() {
            metrics.reroute(route.provider, self.recorders.models.label(route));
        }
        self.set_route(route);
    }

    fn set_route(&mut self, route: &Route) {
        self.record.provider = Some(route.provider.as_str().to_owned());
        self.record.model = Some(route.model.clone());
    }

    /// One upstream request and how it ended.
    pub(super) fn attempt(
        &mut self,
        route: &Route,
        started_at: i64,
        latency: Duration,
        failure: Option<&Error>,
    ) {
        self.record.attempts.push(AttemptRecord {
            provider: route.provider.as_str().to_owned(),
            model: route.model.clone(),
            status: failure.map_or("ok", |e| e.kind.as_str()).to_owned(),
            // An attempt that succeeded was answered 200.
            http_status: failure.map_or(Some(200), |e| e.status),
            latency_ms: latency.as_millis() as u64,
            started_at,
        });
    }

    pub(super) fn attempts(&self) -> u32 {
        self.record.attempts.len() as u32
    }

    pub(super) fn first_token(&mut self) {
        if self.ttft.is_none() {
            self.ttft = Some(self.started.elapsed());
            if let Some(metrics) = self.metrics.as_mut() {
                metrics.first_token();
            }
        }
    }

    pub(super) fn ttft(&self) -> Option<Duration> {
        self.ttft
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the call as answered. Of the tool calls, only the names reach the span and only the
    /// count the ledger: arguments are content, which is never logged or stored.
    pub(super) fn succeeded(
        mut self,
        usage: &Usage,
        finish: FinishReason,
        response_model: Option<&str>,
        tool_calls: &[ToolCall],
    ) {
        if let Some(metrics) = self.metrics.take() {
            metrics.succeeded(usage, tool_calls.len());
        }
        let span = tracing::Span::current();
        if !tool_calls.is_empty() {
            let names: Vec<&str> = tool_calls
                .iter()
                .map(|c| c.function.name.as_str())
                .collect();
            span.record("gen_ai.tool.names", names.join(","));
        }
        span.record("gen_ai.response.finish_reasons", finish.as_str());
        span.record(
            "gen_ai.response.model",
            response_model.or(self.record.model.as_deref()),
        );
        self.record.tool_calls = u32::try_from(tool_calls.len()).unwrap_or(u32::MAX);
        self.finish("ok", None, *usage);
    }

    /// Ends the call with `err`, which is returned with the attempts made.
    pub(super) fn failed(mut self, err: Error) -> Error {
        let err = err.with_attempts(self.attempts());
        match self.metrics.take() {
            Some(metrics) => metrics.failed(err.kind),
            None => {
                let team = self.record.team_id.as_deref();
                self.recorders.metrics.rejected(err.kind, team);
            }
        }
        tracing::info!(error = %err.message, status = err.status, "call failed");
        let span = tracing::Span::current();
        span.record("error.type", err.kind.as_str());
        span.record("otel.status_code", "ERROR");
        self.finish(err.kind.as_str(), Some(&err), Usage::default());
        err
    }

    fn finish(&mut self, status: &str, err: Option<&Error>, usage: Usage) {
        self.done = true;
        let latency = self.started.elapsed();
        let record = &mut self.record;
        let span = tracing::Span::current();
        span.record("gen_ai.system", record.provider.as_deref());
        span.record("gen_ai.request.model", record.model.as_deref());
        // Signed, so that exporters send numbers rather than strings.
        span.record("gen_ai.usage.input_tokens", usage.prompt_tokens as i64);
        span.record("gen_ai.usage.output_tokens", usage.completion_tokens as i64);
        if let (Some(provider), Some(model)) = (&record.provider, &record.model) {
            record.cost_usd = self.recorders.prices.cost(provider, model, &usage);
        }
        if let Some(charge) = self.charge.take() {
            // A cancelled call never learns what the provider billed for it: it is charged its
            // reservation, the most it could have cost.
            if status == "cancelled" {
                record.cost_usd = charge.reserved_usd().unwrap_or(record.cost_usd);
            }
            self.recorders
                .access
                .settle(charge, record.cost_usd, usage.total_tokens);
        }
        tracing::info!(
            provider = record.provider.as_deref(),
            model = record.model.as_deref(),
            status,
            attempts = record.attempts.len(),
            latency_ms = latency.as_millis() as u64,
            ttft_ms = self.ttft.map(|t| t.as_millis() as u64),
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            "call finished"
        );
        let Some(ledger) = &self.recorders.ledger else {
            return;
        };
        record.status = status.to_owned();
        record.error_message = err.map(|e| e.message.clone());
        record.latency_ms = latency.as_millis() as u64;
        record.ttft_ms = self.ttft.map(|t| t.as_millis() as u64);
        record.usage = usage;
        record.finished_at = ledger::now_ms();
        ledger.record(std::mem::take(record));
    }
}

impl Drop for CallEnd {
    fn drop(&mut self) {
        if !self.done {
            // The metrics guard, dropped with us, counts the cancellation itself.
            self.finish("cancelled", None, Usage::default());
        }
    }
}
