//! The providers. Each is an [`Adapter`]: pure functions between the common request and answer
//! types and one provider's wire format. The [`Driver`] does everything around them, once, for
//! every provider: sending, the SSE stream, errors, key redaction and the trace headers.
//! Nothing here knows JSON-RPC.
//!
//! Adding a provider is one file implementing [`Adapter`], its name in
//! [`ProviderName`](crate::types::ProviderName), and its line in [`build`].

mod anthropic;
mod driver;
mod gemini;
mod openai;
#[cfg(test)]
mod testing;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use driver::http_client;
pub(crate) use driver::{Adapter, Driver, Fault, Outgoing};

use crate::config::ProviderConfig;
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

    async fn complete(
        &self,
        req: &ChatRequest,
        trace: &UpstreamTrace,
    ) -> Result<ChatResponse, Error>;

    /// Starts a streamed answer. Fails before returning when the provider refuses the request.
    async fn stream(&self, req: &ChatRequest, trace: &UpstreamTrace) -> Result<EventStream, Error>;
}

/// The provider of `name` behind its driver. Fails when the configured base URL is not an
/// http(s) URL.
pub fn build(
    name: ProviderName,
    client: reqwest::Client,
    config: ProviderConfig,
) -> Result<std::sync::Arc<dyn Provider>, String> {
    Ok(match name {
        ProviderName::Openai => std::sync::Arc::new(Driver::<openai::OpenAi>::new(client, config)?),
        ProviderName::Anthropic => {
            std::sync::Arc::new(Driver::<anthropic::Anthropic>::new(client, config)?)
        }
        ProviderName::Gemini => std::sync::Arc::new(Driver::<gemini::Gemini>::new(client, config)?),
    })
}

/// Runs one of `name`'s parsers over arbitrary bytes, as the fuzz targets do: the first byte
/// picks the answer, stream or error parser, the rest is what the provider sent.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn exercise(name: ProviderName, data: &[u8]) {
    match name {
        ProviderName::Openai => exercise_adapter::<openai::OpenAi>(data),
        ProviderName::Anthropic => exercise_adapter::<anthropic::Anthropic>(data),
        ProviderName::Gemini => exercise_adapter::<gemini::Gemini>(data),
    }
}

#[cfg(any(test, feature = "fuzzing"))]
fn exercise_adapter<A: Adapter>(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => drop(A::parse_response(body)),
        1 => {
            let mut decoder = crate::sse::SseDecoder::new();
            let mut events = decoder.push(body);
            events.extend(decoder.finish());
            let mut state = A::StreamState::default();
            for event in &events {
                if !matches!(A::parse_stream_event(event, &mut state), Ok(Some(_))) {
                    break;
                }
            }
        }
        _ => drop(A::parse_error(400 + u16::from(selector % 200), body)),
    }
}
