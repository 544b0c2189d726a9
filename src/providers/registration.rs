//! What the service takes of one provider, from its adapter alone: its model table, where it
//! is by default and which variables configure it, how to build it behind the driver, and (for
//! the fuzz targets) its parsers. `providers::registered` holds the one line per provider.

use std::sync::Arc;

use super::adapter::Adapter;
use super::driver::Driver;
use super::endpoint::Endpoint;
use super::provider::Provider;
use crate::types::ModelTable;

#[derive(Clone, Copy)]
pub(crate) struct Registration {
    pub models: &'static ModelTable,
    /// The environment variables that may hold the key, in order; errors name the first.
    pub key_vars: &'static [&'static str],
    /// The environment variable that overrides the base URL.
    pub base_url_var: &'static str,
    pub base_url: &'static str,
    pub build: fn(reqwest::Client, Endpoint) -> Result<Arc<dyn Provider>, String>,
    #[cfg(any(test, feature = "fuzzing"))]
    pub exercise: fn(&[u8]),
}

impl Registration {
    pub(crate) fn of<A: Adapter>() -> Self {
        Self {
            models: A::MODELS,
            key_vars: A::KEY_VARS,
            base_url_var: A::BASE_URL_VAR,
            base_url: A::BASE_URL,
            build: |client, endpoint| Ok(Arc::new(Driver::<A>::new(client, endpoint)?)),
            #[cfg(any(test, feature = "fuzzing"))]
            exercise: super::exercise::parsers::<A>,
        }
    }
}
