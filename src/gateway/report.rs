//! What the gateway reports about itself: the models it lists, the state of its providers, its
//! metrics as a scrape should see them. Domain types only; the RPC layer renders them.

use std::collections::BTreeMap;

use super::upstream::Upstream;
use crate::ledger::Ledger;
use crate::resilience::BreakerState;
use crate::routing::{ModelRegistry, Route};
use crate::telemetry::metrics::Metrics;
use crate::types::ProviderName;

/// Every catalogued model, with the governance in force.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCatalog {
    pub models: Vec<ModelListing>,
    /// The allow-list; `None` when every model is allowed.
    pub allowed_models: Option<Vec<String>>,
    pub default_model: Option<String>,
}

/// One catalogued model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelListing {
    pub route: Route,
    /// The aliases and tiers that list it, by name.
    pub aliases: Vec<String>,
    /// Whether its provider has a key.
    pub configured: bool,
    /// Whether the allow-list lets callers name it.
    pub allowed: bool,
    pub context_window: Option<u32>,
}

/// Whether a provider can answer: it has a key, and the state of its breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderStatus {
    pub provider: ProviderName,
    pub configured: bool,
    pub circuit: BreakerState,
}

/// Every catalogued model, as `llm.models` lists them; `is_allowed` applies the allow-list.
pub fn catalog(
    registry: &ModelRegistry,
    upstreams: &BTreeMap<ProviderName, Upstream>,
    allowed_models: Option<Vec<String>>,
    is_allowed: impl Fn(&Route) -> bool,
    default_model: Option<String>,
) -> ModelCatalog {
    let models = registry
        .catalog()
        .map(|(route, info)| ModelListing {
            aliases: registry
                .aliases()
                .iter()
                .filter(|(_, targets)| targets.contains(&route))
                .map(|(name, _)| name.clone())
                .collect(),
            configured: upstreams
                .get(&route.provider)
                .is_some_and(|u| u.provider.is_configured()),
            allowed: is_allowed(&route),
            context_window: info.context_window,
            route,
        })
        .collect();
    ModelCatalog {
        models,
        allowed_models,
        default_model,
    }
}

/// Which providers can answer, for `/ready`, in provider order.
pub fn provider_status(upstreams: &BTreeMap<ProviderName, Upstream>) -> Vec<ProviderStatus> {
    upstreams
        .iter()
        .map(|(name, upstream)| ProviderStatus {
            provider: *name,
            configured: upstream.provider.is_configured(),
            circuit: upstream.breaker.state(),
        })
        .collect()
}

/// The metrics with what is only read at scrape time brought up to date: the breakers'
/// states and the ledger's losses.
pub fn scrape<'m>(
    metrics: &'m Metrics,
    upstreams: &BTreeMap<ProviderName, Upstream>,
    ledger: Option<&Ledger>,
) -> &'m Metrics {
    for (name, upstream) in upstreams {
        metrics.circuit(*name, upstream.breaker.state());
    }
    if let Some(ledger) = ledger {
        metrics.ledger_losses(ledger.dropped(), ledger.failed());
    }
    metrics
}
