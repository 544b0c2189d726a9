//! The attempts of one call: retries of each candidate, then fallback to the next, all within
//! the call's deadline.

use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::finish::CallEnd;
use super::upstream::Upstream;
use crate::error::{Error, ErrorKind};
use crate::ledger;
use crate::resilience::Deadline;
use crate::routing::Route;
use crate::telemetry::metrics::Metrics;

pub(super) struct Attempts<'g> {
    candidates: Vec<(Route, &'g Upstream)>,
    index: usize,
    /// Retries of the current candidate.
    retries: u32,
    deadline: Deadline,
    metrics: &'g Metrics,
    /// When the request in flight was sent: unix milliseconds for the ledger, and an instant.
    current: Option<(i64, Instant)>,
    end: CallEnd,
}

impl<'g> Attempts<'g> {
    pub(super) fn new(
        candidates: Vec<(Route, &'g Upstream)>,
        deadline: Deadline,
        metrics: &'g Metrics,
        mut end: CallEnd,
    ) -> Self {
        end.routed(&candidates[0].0);
        Self {
            candidates,
            index: 0,
            retries: 0,
            deadline,
            metrics,
            current: None,
            end,
        }
    }

    /// The next request to make, after the last one failed with `failure`: the same candidate
    /// after a backoff, or the next candidate. `Err` is the error to give up with.
    pub(super) async fn next(
        &mut self,
        failure: Option<Error>,
    ) -> Result<(Route, &'g Upstream, Option<OwnedSemaphorePermit>), Error> {
        if let Some(err) = failure {
            let (route, upstream) = &self.candidates[self.index];
            let err = err.with_provider(route.provider);
            if let Some((started_at, sent)) = self.current.take() {
                self.end
                    .attempt(route, started_at, sent.elapsed(), Some(&err));
            }
            match err.kind {
                // The caller's own deadline passing says nothing of the provider either.
                ErrorKind::Timeout if self.deadline.passed() => {}
                ErrorKind::ProviderUnavailable | ErrorKind::Timeout => upstream.breaker.failed(),
                // Busy is not broken: a rate limit says nothing of the provider's health.
                ErrorKind::RateLimited => {}
                // Refused here (a missing key, say): the provider was never asked.
                _ if err.status.is_none() => {}
                // The provider answered; the fault is the request's.
                _ => upstream.breaker.succeeded(),
            }
            match upstream.retry.next(err, self.retries, &self.deadline) {
                Ok(wait) => {
                    let wait_ms = wait.as_millis() as u64;
                    tracing::info!(
                        provider = route.provider.as_str(),
                        wait_ms,
                        "attempt failed, retrying"
                    );
                    self.metrics.retried(route.provider);
                    self.retries += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(err) if err.retryable && !self.deadline.passed() => self.fall_back(err)?,
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
                self.current = Some((ledger::now_ms(), Instant::now()));
                return Ok((route, upstream, permit));
            }
            let provider = route.provider;
            let open = Error::new(
                ErrorKind::ProviderUnavailable,
                format!("{provider}'s circuit is open after repeated failures"),
            )
            .with_provider(provider);
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
        self.end.reroute(to);
        Ok(())
    }

    /// The number of the request about to be made, from 1.
    pub(super) fn number(&self) -> u32 {
        self.end.attempts() + 1
    }

    /// Ends the call as a failure: counted, logged, recorded, and reported with its attempts.
    pub(super) fn fail(self, err: Error) -> Error {
        let provider = self.candidates[self.index].0.provider;
        self.end.failed(err.with_provider(provider))
    }

    /// The request in flight answered: the call goes on with its end and its route.
    pub(super) fn succeeded(mut self) -> (CallEnd, Route) {
        let (route, upstream) = &self.candidates[self.index];
        upstream.breaker.succeeded();
        let (started_at, sent) = self
            .current
            .take()
            .unwrap_or((ledger::now_ms(), Instant::now()));
        self.end.attempt(route, started_at, sent.elapsed(), None);
        (self.end, route.clone())
    }
}
