//! The providers. Each is an [`Adapter`](adapter::Adapter): pure functions between the common
//! request and answer types and one provider's wire format, in a folder of its own. The
//! [`Driver`](driver::Driver) does everything around them, once, for every provider: sending, the
//! SSE stream, errors, key redaction and the trace headers. `fault.rs` holds the rules by which
//! what a provider said went wrong becomes the contract's error; `provider.rs` the [`Provider`]
//! trait the gateway calls. Nothing here knows JSON-RPC.
//!
//! This file only declares, re-exports and registers: adding a provider is one folder
//! implementing `Adapter` (its model table, key variables and default base URL among its
//! consts), its name in [`ProviderName`](crate::types::ProviderName), its line in
//! [`registered`], and its table of recorded fixtures for the conformance suite
//! (`conformance.rs`). Configuration, routing's tiers and the list prices read the
//! registration.

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
mod registration;
#[cfg(test)]
mod testing;

pub use driver::http_client;
pub use endpoint::Endpoint;
pub use provider::{EventStream, Provider};

pub(crate) use registration::Registration;

use crate::types::ProviderName;

/// Every provider, by name: the one line each has here, besides its folder and its name in
/// [`ProviderName`].
pub(crate) fn registered(name: ProviderName) -> Registration {
    match name {
        ProviderName::Openai => Registration::of::<openai::OpenAi>(),
        ProviderName::Anthropic => Registration::of::<anthropic::Anthropic>(),
        ProviderName::Gemini => Registration::of::<gemini::Gemini>(),
    }
}

/// The provider of `name` behind its driver. Fails when the configured base URL is not an
/// http(s) URL.
pub fn build(
    name: ProviderName,
    client: reqwest::Client,
    endpoint: Endpoint,
) -> Result<std::sync::Arc<dyn Provider>, String> {
    (registered(name).build)(client, endpoint)
}

/// Runs one of `name`'s parsers over arbitrary bytes, as the fuzz targets do: the first byte
/// picks the answer, stream or error parser, the rest is what the provider sent.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn exercise(name: ProviderName, data: &[u8]) {
    (registered(name).exercise)(data)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_row_is_named_once_and_families_have_no_model_facts() {
        for name in ProviderName::ALL {
            let table = registered(name).models;
            let ids: BTreeSet<_> = table
                .models
                .iter()
                .chain(table.families)
                .map(|m| m.id)
                .collect();
            assert_eq!(
                ids.len(),
                table.models.len() + table.families.len(),
                "{name}"
            );
            for family in table.families {
                assert_eq!(
                    (family.context_window, family.price, family.tiers.len()),
                    (None, None, 0),
                    "{name}/{}",
                    family.id
                );
            }
        }
    }
}
