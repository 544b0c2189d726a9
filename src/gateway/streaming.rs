//! A streamed answer from its start: read up to each next piece (text or a tool call's delta)
//! within the idle limit and the call's deadline, ending with `Done` or `Failed`.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use super::admission::Slot;

use super::call::{Chunk, StreamSummary};
use super::finish::CallEnd;
use super::upstream::bounded;
use crate::error::{Error, ErrorKind};
use crate::providers::EventStream;
use crate::resilience::Deadline;
use crate::routing::Route;
use crate::types::{FinishReason, ProviderName, StreamEvent, ToolCallAssembler, Usage};

/// The upstream events of one stream, read up to each delta.
pub(super) struct Tail {
    upstream: EventStream,
    provider: ProviderName,
    idle: Duration,
    finish: Option<FinishReason>,
    /// The model the provider says answered.
    model: Option<String>,
    usage: Option<Usage>,
    tool_calls: ToolCallAssembler,
}

impl Tail {
    pub(super) fn new(upstream: EventStream, provider: ProviderName, idle: Duration) -> Self {
        Self {
            upstream,
            provider,
            idle,
            finish: None,
            model: None,
            usage: None,
            tool_calls: ToolCallAssembler::default(),
        }
    }

    /// The next piece for the caller, a text delta or a tool call's; `None` when the provider
    /// finished the answer.
    pub(super) async fn next_piece(&mut self, deadline: &Deadline) -> Result<Option<Chunk>, Error> {
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
                    let provider = self.provider;
                    let message = format!("{provider} ended the stream before the answer finished");
                    return Err(Error::new(ErrorKind::ProviderUnavailable, message));
                }
                Some(Err(err)) => return Err(err),
                Some(Ok(StreamEvent::Delta(text))) => return Ok(Some(Chunk::Delta(text))),
                Some(Ok(StreamEvent::ToolCall(delta))) => {
                    self.tool_calls.push(&delta);
                    return Ok(Some(Chunk::ToolCall(delta)));
                }
                Some(Ok(StreamEvent::Usage(usage))) => self.usage = Some(usage),
                Some(Ok(StreamEvent::Finish(reason))) => self.finish = Some(reason),
                Some(Ok(StreamEvent::Model(model))) => self.model = Some(model),
            }
        }
    }

    /// The `Done` chunk of a stream whose provider finished.
    pub(super) fn finished(self, route: &Route, mut end: CallEnd) -> Chunk {
        let usage = self.usage.unwrap_or_default();
        let finish_reason = self.finish.unwrap_or(FinishReason::Other);
        end.first_token();
        let summary = StreamSummary {
            tool_calls: self.tool_calls.finish(),
            finish_reason,
            usage,
            route: route.clone(),
            latency: end.elapsed(),
            ttft: end.ttft(),
            attempts: end.attempts(),
        };
        let model = self.model.as_deref();
        end.succeeded(&usage, finish_reason, model, &summary.tool_calls);
        Chunk::Done(summary)
    }
}

pub(super) struct StreamState {
    /// Both `None` once the stream has ended.
    pub(super) tail: Option<Tail>,
    pub(super) end: Option<CallEnd>,
    pub(super) route: Route,
    pub(super) deadline: Deadline,
    /// The in-flight slot and the provider's concurrency permit, held until the stream ends.
    pub(super) _held: (Slot, Option<OwnedSemaphorePermit>),
}

impl StreamState {
    pub(super) async fn next_chunk(&mut self) -> Option<Chunk> {
        let mut tail = self.tail.take()?;
        // Held locally while waiting: if the caller goes away, dropping it records a cancellation.
        let end = self.end.take()?;
        match tail.next_piece(&self.deadline).await {
            Ok(Some(piece)) => {
                self.tail = Some(tail);
                self.end = Some(end);
                Some(piece)
            }
            Ok(None) => Some(tail.finished(&self.route, end)),
            Err(err) => Some(Chunk::Failed(
                end.failed(err.with_provider(self.route.provider)),
            )),
        }
    }
}
