//! The call pipeline every transport shares: governance, routing, the deadline, the provider
//! call, metrics and the finished-call log line. It speaks domain types, not JSON-RPC.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};

use crate::context::CallContext;
use crate::error::{Error, ErrorKind};
use crate::providers::{
    ChatRequest, ChatResponse, EventStream, FinishReason, Provider, ProviderName, StreamEvent,
    UpstreamTrace, Usage,
};
use crate::routing::{ModelRegistry, Route};
use crate::telemetry::metrics::{CallMetrics, Metrics};

/// A finished non-streaming call.
#[derive(Debug)]
pub struct Completion {
    pub response: ChatResponse,
    pub route: Route,
    pub latency: Duration,
    pub attempts: u32,
}

/// What the last chunk of a successful stream reports.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub finish_reason: FinishReason,
    pub usage: Usage,
    pub route: Route,
    pub latency: Duration,
    pub ttft: Option<Duration>,
    pub attempts: u32,
}

/// One item of a streamed answer, in order; `Done` or `Failed` is always last.
#[derive(Debug)]
pub enum Chunk {
    Delta(String),
    Done(StreamSummary),
    Failed(Error),
}

pub type ChunkStream = BoxStream<'static, Chunk>;

pub struct Gateway {
    registry: ModelRegistry,
    providers: BTreeMap<ProviderName, Arc<dyn Provider>>,
    allowed: ArcSwap<Option<Vec<String>>>,
    default_model: Option<String>,
    default_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Gateway {
    pub fn new(
        registry: ModelRegistry,
        providers: Vec<Arc<dyn Provider>>,
        allowed_models: Option<Vec<String>>,
        default_model: Option<String>,
        default_timeout: Duration,
    ) -> Self {
        Self {
            registry,
            providers: providers.into_iter().map(|p| (p.name(), p)).collect(),
            allowed: ArcSwap::from_pointee(allowed_models),
            default_model,
            default_timeout,
            metrics: Arc::new(Metrics::default()),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Replaces the allow-list (config reload); calls already routed are unaffected.
    pub fn set_allowed_models(&self, allowed: Option<Vec<String>>) {
        self.allowed.store(Arc::new(allowed));
    }

    pub async fn complete(
        &self,
        mut req: ChatRequest,
        timeout: Option<Duration>,
        ctx: &CallContext,
    ) -> Result<Completion, Error> {
        let deadline = Deadline::start(timeout.unwrap_or(self.default_timeout));
        let (route, provider, call) = self.route(&req.model)?;
        req.model.clone_from(&route.model);
        let result =
            match timeout_at(deadline.at, provider.complete(&req, &upstream_trace(ctx))).await {
                Ok(result) => result,
                Err(_) => Err(deadline.expired(route.provider)),
            };
        match result {
            Ok(response) => {
                let latency = call.elapsed();
                log_finished(&route, "ok", 1, latency, None, &response.usage);
                call.succeeded(&response.usage);
                Ok(Completion {
                    response,
                    route,
                    latency,
                    attempts: 1,
                })
            }
            Err(err) => Err(fail(
                err.with_provider(route.provider).with_attempts(1),
                &route,
                call,
            )),
        }
    }

    /// Starts a streamed answer. A failure before the first chunk is returned as `Err`, so that
    /// transports can answer it as the error of the request itself.
    pub async fn stream(
        &self,
        mut req: ChatRequest,
        timeout: Option<Duration>,
        ctx: &CallContext,
    ) -> Result<ChunkStream, Error> {
        let deadline = Deadline::start(timeout.unwrap_or(self.default_timeout));
        let (route, provider, call) = self.route(&req.model)?;
        req.model.clone_from(&route.model);
        let upstream =
            match timeout_at(deadline.at, provider.stream(&req, &upstream_trace(ctx))).await {
                Ok(Ok(upstream)) => upstream,
                Ok(Err(err)) => {
                    return Err(fail(
                        err.with_provider(route.provider).with_attempts(1),
                        &route,
                        call,
                    ));
                }
                Err(_) => {
                    return Err(fail(
                        deadline.expired(route.provider).with_attempts(1),
                        &route,
                        call,
                    ));
                }
            };
        let mut state = StreamState {
            upstream,
            call: Some(call),
            route,
            deadline,
            finish: None,
            usage: None,
        };
        match state.next_chunk().await {
            Some(Chunk::Failed(err)) => Err(err),
            first => {
                let rest = stream::unfold(state, |mut state| async move {
                    state.next_chunk().await.map(|c| (c, state))
                });
                Ok(stream::iter(first).chain(rest).boxed())
            }
        }
    }

    /// Governance, resolution and the choice of provider; refusals are counted here.
    fn route(&self, name: &str) -> Result<(Route, Arc<dyn Provider>, CallMetrics), Error> {
        let chosen = self.choose(name);
        match chosen {
            Ok((route, provider)) => {
                let call = self.metrics.start(route.provider, &route.model);
                Ok((route, provider, call))
            }
            Err(err) => {
                self.metrics.rejected(err.kind);
                tracing::info!(
                    status = err.kind.as_str(),
                    model = name,
                    "call refused: {}",
                    err.message
                );
                Err(err)
            }
        }
    }

    fn choose(&self, name: &str) -> Result<(Route, Arc<dyn Provider>), Error> {
        let allowed = self.allowed.load();
        let mut candidates = self.registry.resolve(name);
        if let Some(list) = allowed.as_ref() {
            let permitted = |r: &Route| self.permits(list, r);
            candidates = candidates.map(|c| c.into_iter().filter(permitted).collect());
            if candidates.as_ref().is_ok_and(Vec::is_empty) || candidates.is_err() {
                return Err(Error::new(
                    ErrorKind::ModelNotAllowed,
                    format!(
                        "model {name:?} is not allowed; allowed models: {}",
                        list.join(", ")
                    ),
                ));
            }
        }
        let candidates = candidates?;
        let usable = |configured_only: bool| {
            candidates.iter().find_map(|route| {
                let provider = self.providers.get(&route.provider)?;
                (provider.is_configured() || !configured_only)
                    .then(|| (route.clone(), Arc::clone(provider)))
            })
        };
        // With no key for any candidate, the first one answers and says which key is missing.
        usable(true).or_else(|| usable(false)).ok_or_else(|| {
            let provider = candidates[0].provider;
            Error::new(
                ErrorKind::ProviderUnavailable,
                format!("{provider} is not supported yet"),
            )
            .with_provider(provider)
        })
    }

    /// Whether an allow-list entry names the route: as `provider/model`, as the bare model, or
    /// as an alias (or tier) that lists it.
    fn permits(&self, list: &[String], route: &Route) -> bool {
        let aliases = self.registry.aliases();
        list.iter().any(|entry| {
            *entry == route.id()
                || *entry == route.model
                || aliases
                    .get(entry)
                    .is_some_and(|targets| targets.contains(route))
        })
    }

    /// The `llm.models` listing.
    pub fn models(&self) -> Value {
        let allowed = self.allowed.load();
        let is_allowed = |route: &Route| {
            allowed
                .as_ref()
                .as_ref()
                .is_none_or(|list| self.permits(list, route))
        };
        let models: Vec<Value> = self
            .registry
            .catalog()
            .map(|(route, info)| {
                let aliases: Vec<&str> = self
                    .registry
                    .aliases()
                    .iter()
                    .filter(|(_, targets)| targets.contains(&route))
                    .map(|(name, _)| name.as_str())
                    .collect();
                json!({
                    "id": route.id(),
                    "provider": route.provider,
                    "aliases": aliases,
                    "configured": self.providers.get(&route.provider).is_some_and(|p| p.is_configured()),
                    "allowed": is_allowed(&route),
                    "supports_streaming": true,
                    "context_window": info.context_window,
                })
            })
            .collect();
        json!({
            "count": models.len(),
            "models": models,
            "allowed_models": allowed.as_ref().clone().unwrap_or_default(),
            "default_model": self.default_model,
        })
    }

    /// Which providers can answer, for `/ready`.
    pub fn provider_status(&self) -> Value {
        let status: serde_json::Map<String, Value> = ProviderName::ALL
            .iter()
            .map(|name| {
                let provider = self.providers.get(name);
                let entry = json!({
                    "configured": provider.is_some_and(|p| p.is_configured()),
                    "supported": provider.is_some(),
                });
                (name.as_str().to_owned(), entry)
            })
            .collect();
        Value::Object(status)
    }
}

/// The call's overall deadline, retries and streaming included.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    fn start(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    fn expired(&self, provider: ProviderName) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "the call's deadline of {} ms passed",
                self.budget.as_millis()
            ),
        )
        .with_provider(provider)
    }
}

fn upstream_trace(ctx: &CallContext) -> UpstreamTrace {
    UpstreamTrace {
        traceparent: ctx.upstream_traceparent(&ctx.span_id),
        request_id: ctx.trace_id.clone(),
    }
}

fn fail(err: Error, route: &Route, call: CallMetrics) -> Error {
    log_finished(
        route,
        err.kind.as_str(),
        err.attempts.unwrap_or(1),
        call.elapsed(),
        None,
        &Usage::default(),
    );
    tracing::info!(error = %err.message, status = err.status, "call failed");
    call.failed(err.kind);
    err
}

fn log_finished(
    route: &Route,
    status: &str,
    attempts: u32,
    latency: Duration,
    ttft: Option<Duration>,
    usage: &Usage,
) {
    tracing::info!(
        provider = route.provider.as_str(),
        model = route.model,
        status,
        attempts,
        latency_ms = latency.as_millis() as u64,
        ttft_ms = ttft.map(|t| t.as_millis() as u64),
        prompt_tokens = usage.prompt_tokens,
        completion_tokens = usage.completion_tokens,
        "call finished"
    );
}

struct StreamState {
    upstream: EventStream,
    /// Taken when the stream ends, so that nothing is yielded after the last chunk.
    call: Option<CallMetrics>,
    route: Route,
    deadline: Deadline,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl StreamState {
    async fn next_chunk(&mut self) -> Option<Chunk> {
        // Held locally while waiting: if the caller goes away, dropping it records a cancellation.
        let mut call = self.call.take()?;
        loop {
            let event = match timeout_at(self.deadline.at, self.upstream.next()).await {
                Err(_) => {
                    return Some(self.failed(call, self.deadline.expired(self.route.provider)));
                }
                Ok(None) => return Some(self.ended(call)),
                Ok(Some(Err(err))) => return Some(self.failed(call, err)),
                Ok(Some(Ok(event))) => event,
            };
            match event {
                StreamEvent::Delta(text) => {
                    call.first_token();
                    self.call = Some(call);
                    return Some(Chunk::Delta(text));
                }
                StreamEvent::Usage(usage) => self.usage = Some(usage),
                StreamEvent::Finish(reason) => self.finish = Some(reason),
                StreamEvent::Model(_) => {}
            }
        }
    }

    fn ended(&self, mut call: CallMetrics) -> Chunk {
        let Some(finish_reason) = self.finish else {
            let provider = self.route.provider;
            let err = Error::new(
                ErrorKind::ProviderUnavailable,
                format!("{provider} ended the stream before the answer finished"),
            );
            return self.failed(call, err);
        };
        let usage = self.usage.unwrap_or_default();
        let ttft = Some(call.first_token());
        let latency = call.elapsed();
        log_finished(&self.route, "ok", 1, latency, ttft, &usage);
        call.succeeded(&usage);
        Chunk::Done(StreamSummary {
            finish_reason,
            usage,
            route: self.route.clone(),
            latency,
            ttft,
            attempts: 1,
        })
    }

    fn failed(&self, call: CallMetrics, err: Error) -> Chunk {
        Chunk::Failed(fail(
            err.with_provider(self.route.provider).with_attempts(1),
            &self.route,
            call,
        ))
    }
}
