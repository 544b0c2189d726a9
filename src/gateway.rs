//! The call pipeline every transport shares: admission, governance, routing, retries and
//! fallbacks under the call's deadline, the provider call, metrics and the finished-call log line.
//! It speaks domain types, not JSON-RPC.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout_at;

use crate::config::ProviderConfig;
use crate::context::CallContext;
use crate::error::{Error, ErrorKind};
use crate::providers::{
    ChatRequest, ChatResponse, EventStream, FinishReason, Provider, ProviderName, StreamEvent,
    UpstreamTrace, Usage,
};
use crate::resilience::{Breaker, Deadline, Limiter, RetryPolicy};
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

/// The gateway's own limits.
#[derive(Debug, Clone)]
pub struct Settings {
    pub allowed_models: Option<Vec<String>>,
    pub default_model: Option<String>,
    pub default_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_in_flight: usize,
}

/// A provider with the state that guards it.
pub struct Upstream {
    provider: Arc<dyn Provider>,
    retry: RetryPolicy,
    breaker: Breaker,
    limiter: Limiter,
}

impl Upstream {
    pub fn new(provider: Arc<dyn Provider>, config: &ProviderConfig) -> Self {
        Self {
            provider,
            retry: config.retry,
            breaker: Breaker::new(config.breaker),
            limiter: Limiter::new(config.requests_per_minute, config.max_concurrent),
        }
    }
}

pub struct Gateway {
    registry: ModelRegistry,
    upstreams: BTreeMap<ProviderName, Upstream>,
    allowed: ArcSwap<Option<Vec<String>>>,
    settings: Settings,
    in_flight: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Gateway {
    pub fn new(registry: ModelRegistry, upstreams: Vec<Upstream>, settings: Settings) -> Self {
        let metrics = Arc::new(Metrics::default());
        Self {
            registry,
            upstreams: upstreams
                .into_iter()
                .map(|u| (u.provider.name(), u))
                .collect(),
            allowed: ArcSwap::from_pointee(settings.allowed_models.clone()),
            in_flight: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings,
            metrics,
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
        req: ChatRequest,
        timeout: Option<Duration>,
        ctx: &CallContext,
    ) -> Result<Completion, Error> {
        let deadline = Deadline::start(timeout.unwrap_or(self.settings.default_timeout));
        let (_slot, mut attempts) = self.begin(&req.model, deadline)?;
        let mut req = req;
        let trace = upstream_trace(ctx);
        let mut failure = None;
        let (route, response) = loop {
            let (route, upstream, _permit) = match attempts.next(failure.take()).await {
                Ok(next) => next,
                Err(err) => return Err(attempts.fail(err)),
            };
            req.model.clone_from(&route.model);
            let answer = bounded(
                &deadline,
                self.settings.first_byte_timeout,
                route.provider,
                "an answer",
                upstream.provider.complete(&req, &trace),
            );
            match answer.await {
                Ok(response) => break (route, response),
                Err(err) => failure = Some(err),
            }
        };
        let (call, total) = attempts.succeeded();
        let latency = call.elapsed();
        log_finished(&route, "ok", total, latency, None, &response.usage);
        call.succeeded(&response.usage);
        Ok(Completion {
            response,
            route,
            latency,
            attempts: total,
        })
    }

    /// Starts a streamed answer. Until its first delta the stream may be retried or fall back;
    /// a failure before then is returned as `Err`, for transports to answer as the error of the
    /// request itself.
    pub async fn stream(
        &self,
        req: ChatRequest,
        timeout: Option<Duration>,
        ctx: &CallContext,
    ) -> Result<ChunkStream, Error> {
        let deadline = Deadline::start(timeout.unwrap_or(self.settings.default_timeout));
        let (slot, mut attempts) = self.begin(&req.model, deadline)?;
        let mut req = req;
        let trace = upstream_trace(ctx);
        let mut failure = None;
        let (route, tail, first, permit) = loop {
            let (route, upstream, permit) = match attempts.next(failure.take()).await {
                Ok(next) => next,
                Err(err) => return Err(attempts.fail(err)),
            };
            req.model.clone_from(&route.model);
            let opened = bounded(
                &deadline,
                self.settings.first_byte_timeout,
                route.provider,
                "the stream to start",
                upstream.provider.stream(&req, &trace),
            )
            .await;
            let mut tail = match opened {
                Ok(upstream) => Tail::new(upstream, route.provider, self.settings.idle_timeout),
                Err(err) => {
                    failure = Some(err);
                    continue;
                }
            };
            match tail.next_delta(&deadline).await {
                Ok(first) => break (route, tail, first, permit),
                Err(err) => failure = Some(err),
            }
        };
        let (mut call, total) = attempts.succeeded();
        let (first, tail, call) = match first {
            Some(text) => {
                call.first_token();
                (Chunk::Delta(text), Some(tail), Some(call))
            }
            None => (finished(&tail, &route, total, call), None, None),
        };
        let state = StreamState {
            tail,
            call,
            route,
            deadline,
            attempts: total,
            _held: (slot, permit),
        };
        let rest = stream::unfold(state, |mut state| async move {
            state.next_chunk().await.map(|c| (c, state))
        });
        Ok(stream::iter([first]).chain(rest).boxed())
    }

    /// Admission, governance and routing: everything decided before the first attempt.
    fn begin(
        &self,
        name: &str,
        deadline: Deadline,
    ) -> Result<(OwnedSemaphorePermit, Attempts<'_>), Error> {
        let refuse = |err: Error| {
            self.metrics.rejected(err.kind);
            tracing::info!(
                status = err.kind.as_str(),
                model = name,
                "call refused: {}",
                err.message
            );
            err
        };
        let slot = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                let limit = self.settings.max_in_flight;
                refuse(Error::new(
                    ErrorKind::Overloaded,
                    format!("the service is at its limit of {limit} calls in flight; retry later"),
                ))
            })?;
        let candidates = self.candidates(name).map_err(refuse)?;
        let first = &candidates[0].0;
        let call = self.metrics.start(first.provider, &first.model);
        let attempts = Attempts {
            candidates,
            index: 0,
            retries: 0,
            total: 0,
            deadline,
            metrics: &self.metrics,
            call,
        };
        Ok((slot, attempts))
    }

    /// The models that may answer, in order: those whose provider has a key, or else the first
    /// one, which then answers which key is missing.
    fn candidates(&self, name: &str) -> Result<Vec<(Route, &Upstream)>, Error> {
        let allowed = self.allowed.load();
        let mut routes = self.registry.resolve(name);
        if let Some(list) = allowed.as_ref() {
            routes = routes.map(|r| r.into_iter().filter(|r| self.permits(list, r)).collect());
            if routes.as_ref().is_ok_and(Vec::is_empty) || routes.is_err() {
                return Err(Error::new(
                    ErrorKind::ModelNotAllowed,
                    format!(
                        "model {name:?} is not allowed; allowed models: {}",
                        list.join(", ")
                    ),
                ));
            }
        }
        let routed: Vec<(Route, &Upstream)> = routes?
            .into_iter()
            .filter_map(|r| self.upstreams.get(&r.provider).map(|u| (r, u)))
            .collect();
        let configured: Vec<_> = routed
            .iter()
            .filter(|(_, u)| u.provider.is_configured())
            .cloned()
            .collect();
        match (configured.is_empty(), routed.into_iter().next()) {
            (false, _) => Ok(configured),
            (true, Some(first)) => Ok(vec![first]),
            (true, None) => Err(Error::new(
                ErrorKind::ProviderUnavailable,
                format!("no provider serves {name:?}"),
            )
            .not_retryable()),
        }
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
                let configured = self
                    .upstreams
                    .get(&route.provider)
                    .is_some_and(|u| u.provider.is_configured());
                json!({
                    "id": route.id(),
                    "provider": route.provider,
                    "aliases": aliases,
                    "configured": configured,
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
            "default_model": self.settings.default_model,
        })
    }

    /// Which providers can answer, for `/ready`: configured, and the state of their breaker.
    pub fn provider_status(&self) -> Value {
        let status: serde_json::Map<String, Value> = self
            .upstreams
            .iter()
            .map(|(name, upstream)| {
                let entry = json!({
                    "configured": upstream.provider.is_configured(),
                    "circuit": upstream.breaker.state().as_str(),
                });
                (name.as_str().to_owned(), entry)
            })
            .collect();
        Value::Object(status)
    }

    /// The Prometheus exposition, with the breakers' current states.
    pub fn prometheus_text(&self) -> String {
        for (name, upstream) in &self.upstreams {
            self.metrics.circuit(*name, upstream.breaker.state());
        }
        self.metrics.encode()
    }
}

/// The attempts of one call: retries of each candidate, then fallback to the next, all within
/// the call's deadline.
struct Attempts<'g> {
    candidates: Vec<(Route, &'g Upstream)>,
    index: usize,
    /// Retries of the current candidate.
    retries: u32,
    /// Requests sent upstream, across candidates.
    total: u32,
    deadline: Deadline,
    metrics: &'g Arc<Metrics>,
    /// Until the call ends; dropping it unfinished records a cancellation.
    call: CallMetrics,
}

impl<'g> Attempts<'g> {
    /// The next request to make, after the last one failed with `failure`: the same candidate
    /// after a backoff, or the next candidate. `Err` is the error to give up with.
    async fn next(
        &mut self,
        failure: Option<Error>,
    ) -> Result<(Route, &'g Upstream, Option<OwnedSemaphorePermit>), Error> {
        if let Some(err) = failure {
            let (route, upstream) = &self.candidates[self.index];
            let err = err.with_provider(route.provider);
            match err.kind {
                ErrorKind::ProviderUnavailable | ErrorKind::Timeout => upstream.breaker.failed(),
                // Busy is not broken: a rate limit says nothing of the provider's health.
                ErrorKind::RateLimited => {}
                // The provider answered; the fault is the request's.
                _ => upstream.breaker.succeeded(),
            }
            match upstream.retry.next(err, self.retries, &self.deadline) {
                Ok(wait) => {
                    tracing::info!(
                        provider = route.provider.as_str(),
                        wait_ms = wait.as_millis() as u64,
                        "attempt failed, retrying"
                    );
                    self.metrics.retried(route.provider);
                    self.retries += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(err) if err.retryable && !self.deadline.passed() => {
                    self.fall_back(err)?;
                }
                Err(err) => return Err(err),
            }
        }
        loop {
            let (route, upstream) = self.candidates[self.index].clone();
            let permit = upstream
                .limiter
                .acquire(route.provider, &self.deadline)
                .await?;
            if upstream.breaker.allow() {
                self.total += 1;
                return Ok((route, upstream, permit));
            }
            let open = Error::new(
                ErrorKind::ProviderUnavailable,
                format!(
                    "{}'s circuit is open after repeated failures",
                    route.provider
                ),
            )
            .with_provider(route.provider);
            self.fall_back(open)?;
        }
    }

    /// Moves on to the next candidate, or gives up with `err` when there is none.
    fn fall_back(&mut self, err: Error) -> Result<(), Error> {
        if self.index + 1 >= self.candidates.len() {
            return Err(err);
        }
        let from = self.candidates[self.index].0.id();
        self.index += 1;
        self.retries = 0;
        let to = &self.candidates[self.index].0;
        tracing::info!(from, to = to.id(), "falling back: {}", err.message);
        self.call.reroute(to.provider, &to.model);
        Ok(())
    }

    /// Ends the call as a failure: counted, logged, and reported with its attempts.
    fn fail(self, err: Error) -> Error {
        let route = &self.candidates[self.index].0;
        let err = err.with_provider(route.provider).with_attempts(self.total);
        fail(err, route, self.call)
    }

    fn succeeded(self) -> (CallMetrics, u32) {
        self.candidates[self.index].1.breaker.succeeded();
        (self.call, self.total)
    }
}

/// Awaits `fut` until `limit` from now or the deadline, whichever is first, saying which passed.
async fn bounded<T>(
    deadline: &Deadline,
    limit: Duration,
    provider: ProviderName,
    what: &str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout_at(deadline.within(limit), fut).await {
        Ok(result) => result,
        Err(_) if deadline.passed() => Err(deadline.expired(provider)),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "{provider} sent nothing for {} ms while waiting for {what}",
                limit.as_millis()
            ),
        )
        .with_provider(provider)),
    }
}

fn upstream_trace(ctx: &CallContext) -> UpstreamTrace {
    UpstreamTrace {
        traceparent: ctx.upstream_traceparent(&ctx.span_id),
        request_id: ctx.trace_id.clone(),
    }
}

fn fail(err: Error, route: &Route, call: CallMetrics) -> Error {
    let attempts = err.attempts.unwrap_or(1);
    log_finished(
        route,
        err.kind.as_str(),
        attempts,
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

/// The upstream events of one stream, read up to each delta.
struct Tail {
    upstream: EventStream,
    provider: ProviderName,
    idle: Duration,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Tail {
    fn new(upstream: EventStream, provider: ProviderName, idle: Duration) -> Self {
        Self {
            upstream,
            provider,
            idle,
            finish: None,
            usage: None,
        }
    }

    /// The next delta; `None` when the provider finished the answer.
    async fn next_delta(&mut self, deadline: &Deadline) -> Result<Option<String>, Error> {
        loop {
            let next = bounded(
                deadline,
                self.idle,
                self.provider,
                "the next event",
                async { Ok(self.upstream.next().await) },
            );
            match next.await? {
                None if self.finish.is_some() => return Ok(None),
                None => {
                    return Err(Error::new(
                        ErrorKind::ProviderUnavailable,
                        format!(
                            "{} ended the stream before the answer finished",
                            self.provider
                        ),
                    ));
                }
                Some(Err(err)) => return Err(err),
                Some(Ok(StreamEvent::Delta(text))) => return Ok(Some(text)),
                Some(Ok(StreamEvent::Usage(usage))) => self.usage = Some(usage),
                Some(Ok(StreamEvent::Finish(reason))) => self.finish = Some(reason),
                Some(Ok(StreamEvent::Model(_))) => {}
            }
        }
    }
}

/// The `Done` chunk of a stream whose provider finished.
fn finished(tail: &Tail, route: &Route, attempts: u32, mut call: CallMetrics) -> Chunk {
    let finish_reason = tail.finish.unwrap_or(FinishReason::Other);
    let usage = tail.usage.unwrap_or_default();
    let ttft = Some(call.first_token());
    let latency = call.elapsed();
    log_finished(route, "ok", attempts, latency, ttft, &usage);
    call.succeeded(&usage);
    Chunk::Done(StreamSummary {
        finish_reason,
        usage,
        route: route.clone(),
        latency,
        ttft,
        attempts,
    })
}

struct StreamState {
    /// `None` once the stream has ended.
    tail: Option<Tail>,
    call: Option<CallMetrics>,
    route: Route,
    deadline: Deadline,
    attempts: u32,
    /// The in-flight slot and the provider's concurrency permit, held until the stream ends.
    _held: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
}

impl StreamState {
    async fn next_chunk(&mut self) -> Option<Chunk> {
        let mut tail = self.tail.take()?;
        // Held locally while waiting: if the caller goes away, dropping it records a cancellation.
        let call = self.call.take()?;
        match tail.next_delta(&self.deadline).await {
            Ok(Some(text)) => {
                self.tail = Some(tail);
                self.call = Some(call);
                Some(Chunk::Delta(text))
            }
            Ok(None) => Some(finished(&tail, &self.route, self.attempts, call)),
            Err(err) => {
                let err = err
                    .with_provider(self.route.provider)
                    .with_attempts(self.attempts);
                Some(Chunk::Failed(fail(err, &self.route, call)))
            }
        }
    }
}
