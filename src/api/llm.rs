//! The model calls and what the service says about itself: `llm.*` and `rpc.discover`.

use serde::Deserialize;
use serde_json::Value;

use super::method::{Method, Subscription};
use crate::params::CompleteParams;

/// One completion. Its params are checked by `params::parse`, which reads them as
/// `CompleteParams` and then applies the contract's rules.
pub(crate) struct Complete;

impl Method for Complete {
    const NAME: &'static str = "llm.complete";
    type Params = CompleteParams;
    /// Rendered by the JSON-RPC surface (`rpc::render`).
    type Result = Value;
}

/// A completion as a stream of chunks, each a notification of the subscription.
pub(crate) struct Stream;

impl Method for Stream {
    const NAME: &'static str = "llm.stream";
    type Params = CompleteParams;
    /// The subscription's id; the chunks come as `llm.stream.chunk` notifications.
    type Result = Value;
}

impl Subscription for Stream {
    const NOTIFICATION: &'static str = "llm.stream.chunk";
    type Cancel = StreamCancel;
}

/// Ends a stream before its last chunk.
pub(crate) struct StreamCancel;

/// `llm.stream.cancel`'s params, by position. jsonrpsee reads them itself, to end the
/// subscription; the type states them for the catalogue.
#[derive(Deserialize)]
pub(crate) struct Cancel {
    #[allow(dead_code)]
    pub(crate) subscription: Value,
}

impl Method for StreamCancel {
    const NAME: &'static str = "llm.stream.cancel";
    type Params = Cancel;
    type Result = bool;
}

/// The models the caller may call, and how to name them.
pub(crate) struct Models;

impl Method for Models {
    const NAME: &'static str = "llm.models";
    type Params = ();
    /// Shaped by `rpc::views`.
    type Result = Value;
}

/// The service's counters since start.
pub(crate) struct Metrics;

impl Method for Metrics {
    const NAME: &'static str = "llm.metrics";
    type Params = ();
    /// Shaped by `rpc::views`.
    type Result = Value;
}

/// The OpenRPC document of `proto-docs/`.
pub(crate) struct Discover;

impl Method for Discover {
    const NAME: &'static str = "rpc.discover";
    type Params = ();
    type Result = Value;
}
