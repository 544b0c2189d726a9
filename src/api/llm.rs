//! The model calls and what the service says about itself: `llm.*` and `rpc.discover`.

use serde::Deserialize;
use serde_json::Value;

use super::method::{Subscription, methods};
use crate::params::CompleteParams;

methods! {
    /// One completion. Its params are checked by `params::parse`, which reads them as
    /// `CompleteParams` and then applies the contract's rules; its result is rendered by the
    /// JSON-RPC surface (`rpc::render`).
    Complete = "llm.complete": CompleteParams => Value;
    /// A completion as a stream of chunks: its result is the subscription's id, and the chunks
    /// come as `llm.stream.chunk` notifications.
    Stream = "llm.stream": CompleteParams => Value;
    /// Ends a stream before its last chunk.
    StreamCancel = "llm.stream.cancel": Cancel => bool;
    /// The models the caller may call, and how to name them (shaped by `rpc::views`).
    Models = "llm.models": () => Value;
    /// The service's counters since start (shaped by `rpc::views`).
    Metrics = "llm.metrics": () => Value;
    /// The OpenRPC document of `proto-docs/`.
    Discover = "rpc.discover": () => Value;
}

impl Subscription for Stream {
    const NOTIFICATION: &'static str = "llm.stream.chunk";
    type Cancel = StreamCancel;
}

/// `llm.stream.cancel`'s params, by position. jsonrpsee reads them itself, to end the
/// subscription; the type states them for the catalogue.
#[derive(Deserialize)]
pub(crate) struct Cancel {
    #[allow(dead_code)]
    pub(crate) subscription: Value,
}
