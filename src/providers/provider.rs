//! What the gateway calls: [`Provider`], a provider behind its driver (or a fake one in the
//! gateway's tests), and the stream of events a streamed answer is.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::error::Error;
use crate::types::{
    ChatRequest, ChatResponse, ModelInfo, ProviderName, StreamEvent, UpstreamTrace,
};

pub type EventStream = BoxStream<'static, Result<StreamEvent, Error>>;

/// What the gateway calls: a provider behind its driver, or a fake one in tests.
#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> ProviderName;

    /// Whether it has an API key; an unconfigured provider answers every call with `provider_auth`.
    fn is_configured(&self) -> bool;

    /// The models this provider is known to serve.
    fn catalog(&self) -> &'static [ModelInfo];

    /// The most output tokens it may bill for `req` sent to `model`, one of the call's
    /// candidates (the adapter's rule; the caller's cap for a fake).
    fn output_cap(&self, _model: &str, req: &ChatRequest) -> Option<u32> {
        req.max_tokens
    }

    async fn complete(
        &self,
        req: &ChatRequest,
        trace: &UpstreamTrace,
    ) -> Result<ChatResponse, Error>;

    /// Starts a streamed answer. Fails before returning when the provider refuses the request.
    async fn stream(&self, req: &ChatRequest, trace: &UpstreamTrace) -> Result<EventStream, Error>;
}
