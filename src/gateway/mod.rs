//! The call pipeline every transport shares: admission, governance, routing, retries and
//! fallbacks under the call's deadline, the provider call, metrics and the finished-call log line.
//! It speaks domain types, not JSON-RPC.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use crate::access::{Access, Caller, budget};
use crate::context::CallContext;
use crate::error::{Denial, Error, ErrorKind};
use crate::ledger::{Ledger, Prices};
use crate::resilience::Deadline;
use crate::routing::{ModelRegistry, Route};
use crate::telemetry;
use crate::telemetry::metrics::Metrics;
use crate::types::{ChatRequest, ProviderName, UpstreamTrace};
use tracing::Instrument;

mod admission;
mod attempts;
mod call;
mod finish;
mod labels;
mod report;
mod streaming;
mod upstream;

use admission::{InFlight, Slot};
use attempts::Attempts;
pub use call::{CallRequest, Chunk, ChunkStream, Completion};
use finish::CallEnd;
pub use finish::Recorders;
use labels::MetricModels;
pub use report::{ModelCatalog, ModelListing, ProviderStatus};
use streaming::{StreamState, Tail};
pub use upstream::Upstream;
use upstream::bounded;

/// The gateway's own limits.
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_model: Option<String>,
    pub default_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_in_flight: usize,
    /// Calls one team may have in flight at once, of `max_in_flight`.
    pub max_in_flight_per_team: usize,
    /// The output cap of a call that names no `max_tokens` and is paid from credits: its
    /// reservation must bound what it can cost.
    pub budget_max_tokens: u32,
}

pub struct Gateway {
    registry: ModelRegistry,
    upstreams: BTreeMap<ProviderName, Upstream>,
    allowed: ArcSwap<Option<Vec<String>>>,
    settings: Settings,
    in_flight: InFlight,
    recorders: Recorders,
}

impl Gateway {
    /// `allowed_models` is the allow-list at start (a reload replaces it); `ledger` is where
    /// finished calls are recorded, when there is one; `access` knows callers and their teams.
    pub fn new(
        registry: ModelRegistry,
        upstreams: Vec<Upstream>,
        settings: Settings,
        allowed_models: Option<Vec<String>>,
        ledger: Option<Ledger>,
        prices: Prices,
        access: Arc<Access>,
    ) -> Self {
        let recorders = Recorders {
            metrics: Arc::new(Metrics::default()),
            models: Arc::new(MetricModels::new(&registry, prices.models())),
            ledger,
            prices: Arc::new(prices),
            access,
        };
        Self {
            registry,
            upstreams: upstreams
                .into_iter()
                .map(|u| (u.provider.name(), u))
                .collect(),
            allowed: ArcSwap::from_pointee(allowed_models),
            in_flight: InFlight::new(settings.max_in_flight, settings.max_in_flight_per_team),
            settings,
            recorders,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.recorders.metrics
    }

    pub fn ledger(&self) -> Option<&Ledger> {
        self.recorders.ledger.as_ref()
    }

    pub fn access(&self) -> &Arc<Access> {
        &self.recorders.access
    }

    /// Replaces the allow-list (config reload); calls already routed are unaffected.
    pub fn set_allowed_models(&self, allowed: Option<Vec<String>>) {
        self.allowed.store(Arc::new(allowed));
    }

    /// A whole answer. `method` names the call in the ledger and logs (`llm.complete`, …).
    pub async fn complete(
        &self,
        method: &'static str,
        call: CallRequest,
        ctx: &CallContext,
    ) -> Result<Completion, Error> {
        let Begun {
            mut req,
            deadline,
            slot: _slot,
            mut attempts,
        } = self.begin(call, ctx, method).await?;
        let limit = self.settings.first_byte_timeout;
        let answered = run_attempts(&mut attempts, &mut req, ctx, &deadline, |call| {
            let answer = call.upstream.provider.complete(call.req, call.trace);
            bounded(
                call.deadline,
                limit,
                call.upstream.name(),
                "an answer",
                answer,
            )
            .boxed()
        });
        let (response, _permit) = match answered.await {
            Ok(answered) => answered,
            Err(err) => return Err(attempts.fail(err)),
        };
        let (end, route) = attempts.succeeded();
        let (latency, total) = (end.elapsed(), end.attempts());
        end.succeeded(
            &response.usage,
            response.finish_reason,
            response.model.as_deref(),
            &response.tool_calls,
        );
        Ok(Completion {
            response,
            route,
            latency,
            attempts: total,
        })
    }

    /// Starts a streamed answer. Until its first piece the stream may be retried or fall back;
    /// a failure before then is returned as `Err`, for transports to answer as the error of the
    /// request itself.
    pub async fn stream(
        &self,
        method: &'static str,
        call: CallRequest,
        ctx: &CallContext,
    ) -> Result<ChunkStream, Error> {
        let Begun {
            mut req,
            deadline,
            slot,
            mut attempts,
        } = self.begin(call, ctx, method).await?;
        let (limit, idle) = (self.settings.first_byte_timeout, self.settings.idle_timeout);
        let started = run_attempts(&mut attempts, &mut req, ctx, &deadline, |call| {
            async move {
                let (provider, deadline) = (call.upstream.name(), call.deadline);
                let start = call.upstream.provider.stream(call.req, call.trace);
                let what = "the stream to start";
                let events = bounded(deadline, limit, provider, what, start).await?;
                let mut tail = Tail::new(events, provider, idle);
                let first = tail.next_piece(deadline).await?;
                Ok((tail, first))
            }
            .boxed()
        });
        let ((tail, first), permit) = match started.await {
            Ok(started) => started,
            Err(err) => return Err(attempts.fail(err)),
        };
        let (mut end, route) = attempts.succeeded();
        let (first, tail, end) = match first {
            Some(piece) => {
                end.first_token();
                (piece, Some(tail), Some(end))
            }
            None => (tail.finished(&route, end), None, None),
        };
        let state = StreamState {
            tail,
            end,
            route,
            deadline,
            _held: (slot, permit),
        };
        let rest = stream::unfold(state, |mut state| async move {
            state.next_chunk().await.map(|c| (c, state))
        });
        Ok(stream::iter([first]).chain(rest).boxed())
    }

    /// Admission, governance, routing and the caller's team: everything decided before the
    /// first attempt.
    async fn begin(
        &self,
        call: CallRequest,
        ctx: &CallContext,
        method: &'static str,
    ) -> Result<Begun<'_>, Error> {
        let CallRequest {
            chat: mut req,
            timeout,
            metadata,
        } = call;
        let deadline = Deadline::start(timeout.unwrap_or(self.settings.default_timeout));
        let end = CallEnd::new(&self.recorders, ctx, method, &req.model, metadata);
        let refuse = |end: CallEnd, err: Error| {
            tracing::info!(
                status = err.kind.as_str(),
                model = req.model,
                "call refused: {}",
                err.message
            );
            end.failed(err)
        };
        let team = ctx
            .caller
            .as_deref()
            .map(|c| (c.team.id.as_str(), c.team.name.as_str()));
        let slot = match self.in_flight.take(team) {
            Ok(slot) => slot,
            Err(err) => return Err(refuse(end, err)),
        };
        let mut candidates = match self.candidates(&req.model, ctx.caller.as_deref()) {
            Ok(candidates) => candidates,
            Err(err) => return Err(refuse(end, err)),
        };
        let mut end = end;
        if let Some(caller) = &ctx.caller {
            candidates = match self.priced_for(caller, &req.model, candidates) {
                Ok(candidates) => candidates,
                Err(err) => return Err(refuse(end, err)),
            };
            if let Err(err) = unpriced_tier(caller, &req) {
                return Err(refuse(end, err));
            }
            if caller.team.credits_usd.is_some() && req.max_tokens.is_none() {
                req.max_tokens = Some(self.settings.budget_max_tokens);
            }
            let worst_case = || {
                let default = self.settings.budget_max_tokens;
                let priced: Vec<_> = candidates
                    .iter()
                    .filter_map(|(r, upstream)| {
                        let price = self.recorders.prices.get(r.provider.as_str(), &r.model)?;
                        let output = upstream.provider.output_cap(&r.model, &req);
                        let output = output.unwrap_or(default);
                        Some((price, output))
                    })
                    .collect();
                budget::worst_case(budget::prompt_tokens(&req), &priced)
            };
            match self.recorders.access.admit(caller, worst_case).await {
                Ok(charge) => end.charge(charge),
                Err(err) => return Err(refuse(end, err)),
            }
        }
        let attempts = Attempts::new(candidates, deadline, &self.recorders.metrics, end);
        Ok(Begun {
            req,
            deadline,
            slot,
            attempts,
        })
    }

    /// The candidates a caller's team may be charged for: with credits, only models with a price,
    /// since an unpriced call would cost the team nothing and spend the operator's provider keys
    /// around its budget. Refused before anything goes upstream when none is priced.
    fn priced_for<'g>(
        &self,
        caller: &Caller,
        name: &str,
        candidates: Vec<(Route, &'g Upstream)>,
    ) -> Result<Vec<(Route, &'g Upstream)>, Error> {
        if caller.team.credits_usd.is_none() {
            return Ok(candidates);
        }
        let prices = &self.recorders.prices;
        let (priced, unpriced): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|(r, _)| prices.get(r.provider.as_str(), &r.model).is_some());
        match unpriced.first() {
            Some((route, _)) if priced.is_empty() => {
                let message = format!(
                    "model {name:?} ({}) has no price, and team {:?} pays from its credits: give \
                     it one in the configuration file ([prices.\"{}\"] input and output, USD per \
                     million tokens) or call a priced model",
                    route.id(),
                    caller.team.name,
                    route.id(),
                );
                Err(Error::denied(Denial::UnpricedModel, message))
            }
            _ => Ok(priced),
        }
    }

    /// The models that may answer, in order: those whose provider has a key, or else the first
    /// one, which then answers which key is missing. The service's allow-list applies first, then
    /// the caller's team's.
    fn candidates(
        &self,
        name: &str,
        caller: Option<&Caller>,
    ) -> Result<Vec<(Route, &Upstream)>, Error> {
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
        let team = caller
            .map(|c| &c.team)
            .filter(|t| !t.allowed_models.is_empty());
        if let (Some(team), Ok(found)) = (team, &mut routes) {
            found.retain(|r| self.permits(&team.allowed_models, r));
            if found.is_empty() {
                let message = format!(
                    "model {name:?} is not allowed for team {:?}; its models: {}",
                    team.name,
                    team.allowed_models.join(", ")
                );
                return Err(Error::denied(Denial::ModelNotAllowedForTeam, message));
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

    /// The models callers can name, as `llm.models` lists them.
    pub fn models(&self) -> ModelCatalog {
        let allowed = self.allowed.load();
        let list = allowed.as_ref().as_ref();
        report::catalog(
            &self.registry,
            &self.upstreams,
            list.cloned(),
            |route| list.is_none_or(|list| self.permits(list, route)),
            self.settings.default_model.clone(),
        )
    }

    /// Which providers can answer, for `/ready`, in provider order.
    pub fn provider_status(&self) -> Vec<ProviderStatus> {
        report::provider_status(&self.upstreams)
    }

    /// The metrics as a scrape should see them.
    pub fn scrape(&self) -> &Metrics {
        let recorders = &self.recorders;
        report::scrape(
            &recorders.metrics,
            &self.upstreams,
            recorders.ledger.as_ref(),
        )
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
}

/// A team that pays from credits is charged list prices, so it may not ask for a service tier
/// that bills otherwise (OpenAI's `priority`, `flex`, passed through from the OpenAI surface).
fn unpriced_tier(caller: &Caller, req: &ChatRequest) -> Result<(), Error> {
    let tier = req.passthrough.get("service_tier");
    match tier.and_then(|t| t.as_str()) {
        _ if caller.team.credits_usd.is_none() || tier.is_none() => Ok(()),
        Some("auto" | "default") => Ok(()),
        _ => Err(Error::invalid_params(format!(
            "invalid params: service_tier {} is billed at other than list prices, and team {:?} \
             pays from its credits at list prices: leave it out, or send auto or default",
            tier.map(ToString::to_string).unwrap_or_default(),
            caller.team.name
        ))),
    }
}

/// A call admitted and routed, about to make its first attempt.
struct Begun<'g> {
    req: ChatRequest,
    deadline: Deadline,
    /// Its place among the calls in flight, held until it ends.
    slot: Slot,
    attempts: Attempts<'g>,
}

/// What one attempt sends, and to whom.
struct Attempt<'a> {
    upstream: &'a Upstream,
    req: &'a ChatRequest,
    trace: &'a UpstreamTrace,
    deadline: &'a Deadline,
}

/// The one attempt loop of every call: each attempt that `attempts` allows runs `attempt`, in its
/// own span and with its own trace headers, until one answers. `Err` is the last failure, once
/// retries and fallbacks are spent; the provider's concurrency permit comes back with the
/// answer, for a stream to hold.
async fn run_attempts<T>(
    attempts: &mut Attempts<'_>,
    req: &mut ChatRequest,
    ctx: &CallContext,
    deadline: &Deadline,
    mut attempt: impl for<'a> FnMut(Attempt<'a>) -> BoxFuture<'a, Result<T, Error>>,
) -> Result<(T, Option<OwnedSemaphorePermit>), Error> {
    let mut failure = None;
    loop {
        let (route, upstream, permit) = attempts.next(failure.take()).await?;
        req.model.clone_from(&route.model);
        let span =
            telemetry::attempt_span(route.provider.as_str(), &route.model, attempts.number());
        let trace = upstream_trace(ctx, &span);
        let sent = attempt(Attempt {
            upstream,
            req,
            trace: &trace,
            deadline,
        });
        match sent.instrument(span.clone()).await {
            Ok(answer) => return Ok((answer, permit)),
            Err(err) => failure = Some(attempt_failed(&span, err)),
        }
    }
}

/// The trace headers of an upstream request: under the attempt's span when spans are exported,
/// under the call's otherwise.
fn upstream_trace(ctx: &CallContext, attempt: &tracing::Span) -> UpstreamTrace {
    let traceparent =
        telemetry::traceparent(attempt).unwrap_or_else(|| ctx.upstream_traceparent(&ctx.span_id));
    UpstreamTrace {
        traceparent,
        request_id: ctx.trace_id.clone(),
    }
}

fn attempt_failed(span: &tracing::Span, err: Error) -> Error {
    span.record("error.type", err.kind.as_str());
    span.record("otel.status_code", "ERROR");
    if let Some(status) = err.status {
        span.record("http.response.status_code", i64::from(status));
    }
    err
}

#[cfg(test)]
mod tests;
