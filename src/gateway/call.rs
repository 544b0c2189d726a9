//! What a call gives the transports and takes from them: the checked request, the finished
//! completion, and the chunks of a stream. Domain types, rendered by each surface its own way.

use std::time::Duration;

use futures::stream::BoxStream;
use serde_json::Value;

use crate::error::Error;
use crate::routing::Route;
use crate::types::{ChatRequest, ChatResponse, FinishReason, ToolCall, ToolCallDelta, Usage};

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
    /// The tool calls of the answer, assembled from the deltas that went before.
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    pub route: Route,
    pub latency: Duration,
    pub ttft: Option<Duration>,
    pub attempts: u32,
}

/// A checked call, as the transports hand it over.
#[derive(Debug)]
pub struct CallRequest {
    pub chat: ChatRequest,
    /// The caller's deadline; the configured default otherwise.
    pub timeout: Option<Duration>,
    /// Free-form, for the ledger; never sent upstream.
    pub metadata: Option<Value>,
}

/// One item of a streamed answer, in order; `Done` or `Failed` is always last.
#[derive(Debug)]
pub enum Chunk {
    Delta(String),
    ToolCall(ToolCallDelta),
    Done(StreamSummary),
    Failed(Error),
}

pub type ChunkStream = BoxStream<'static, Chunk>;
