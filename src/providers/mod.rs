//! The providers. Each is an [`Adapter`](adapter::Adapter): pure functions between the common
//! request and answer types and one provider's wire format, in a folder of its own. The
//! [`Driver`](driver::Driver) does everything around them, once, for every provider: sending, the
//! SSE stream, errors, key redaction and the trace headers. `fault.rs` holds the rules by which
//! what a provider said went wrong becomes the contract's error; `provider.rs` the [`Provider`]
//! trait the gateway calls. Nothing here knows JSON-RPC.
//!
//! This file only declares, re-exports and registers: adding a provider is one folder
//! implementing `Adapter`, its name in [`ProviderName`](crate::types::ProviderName), its line
//! in [`build`] and [`exercise`], and its table of recorded fixtures for the conformance suite
//! (`conformance.rs`).

mod adapter;
mod anthropic;
#[cfg(test)]
mod conformance;
mod driver;
mod endpoint;
#[cfg(any(test, feature = "fuzzing"))]
mod exercise;
mod fault;
mod gemini;
mod openai;
mod provider;
#[cfg(test)]
mod testing;

pub use driver::http_client;
pub use endpoint::Endpoint;
pub use provider::{EventStream, Provider};

use crate::types::ProviderName;
use driver::Driver;

/// The provider of `name` behind its driver. Fails when the configured base URL is not an
/// http(s) URL.
pub fn build(
    name: ProviderName,
    client: reqwest::Client,
    endpoint: Endpoint,
) -> Result<std::sync::Arc<dyn Provider>, String> {
    Ok(match name {
        ProviderName::Openai => {
            std::sync::Arc::new(Driver::<openai::OpenAi>::new(client, endpoint)?)
        }
        ProviderName::Anthropic => {
            std::sync::Arc::new(Driver::<anthropic::Anthropic>::new(client, endpoint)?)
        }
        ProviderName::Gemini => {
            std::sync::Arc::new(Driver::<gemini::Gemini>::new(client, endpoint)?)
        }
    })
}

/// Runs one of `name`'s parsers over arbitrary bytes, as the fuzz targets do: the first byte
/// picks the answer, stream or error parser, the rest is what the provider sent.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn exercise(name: ProviderName, data: &[u8]) {
    match name {
        ProviderName::Openai => exercise::parsers::<openai::OpenAi>(data),
        ProviderName::Anthropic => exercise::parsers::<anthropic::Anthropic>(data),
        ProviderName::Gemini => exercise::parsers::<gemini::Gemini>(data),
    }
}
