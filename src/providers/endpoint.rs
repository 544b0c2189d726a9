//! Where a provider is, and the key to it: all the driver needs of the configuration, so that
//! the providers' floor does not reach up into the configuration of the floors above it.

use crate::types::Secret;

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub api_key: Option<Secret>,
    pub base_url: String,
    /// The environment variable that holds the key, named in errors when it is missing.
    pub key_var: &'static str,
}
