//! The JSON of what the service reports about itself: `llm.models` and `llm.metrics`.
//! The gateway and telemetry answer in domain types; the shapes callers rely on are the RPC
//! layer's to keep, here, beside the methods that answer with them.

use serde_json::{Map, Value, json};

use crate::gateway::{ModelCatalog, ModelListing};
use crate::telemetry::metrics::Snapshot;

/// The `llm.models` result.
pub fn models(catalog: &ModelCatalog) -> Value {
    let models: Vec<Value> = catalog.models.iter().map(model).collect();
    json!({
        "count": models.len(),
        "models": models,
        "allowed_models": catalog.allowed_models.clone().unwrap_or_default(),
        "default_model": catalog.default_model,
    })
}

fn model(listing: &ModelListing) -> Value {
    json!({
        "id": listing.route.id(),
        "provider": listing.route.provider,
        "aliases": listing.aliases,
        "configured": listing.configured,
        "allowed": listing.allowed,
        // Every provider streams every model it serves.
        "supports_streaming": true,
        "context_window": listing.context_window,
    })
}

/// The `llm.metrics` result.
pub fn metrics(snapshot: &Snapshot) -> Value {
    let by_provider: Map<String, Value> = snapshot
        .by_provider
        .iter()
        .map(|(provider, counts)| {
            let counts = json!({
                "requests": counts.requests,
                "tokens": counts.tokens,
                "errors": counts.errors,
            });
            (provider.as_str().to_owned(), counts)
        })
        .collect();
    json!({
        "total_requests": snapshot.total_requests,
        "total_tokens": snapshot.total_tokens,
        "by_provider": by_provider,
        "governance_violations": snapshot.governance_violations,
        "in_flight": snapshot.in_flight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Route;
    use crate::telemetry::metrics::ProviderCounts;
    use crate::types::ProviderName;

    #[test]
    fn models_keep_their_wire_shape() {
        let catalog = ModelCatalog {
            models: vec![ModelListing {
                route: Route {
                    provider: ProviderName::Openai,
                    model: "gpt-5".to_owned(),
                },
                aliases: vec!["balanced".to_owned(), "premium".to_owned()],
                configured: true,
                allowed: false,
                context_window: Some(400_000),
            }],
            allowed_models: None,
            default_model: Some("fast".to_owned()),
        };
        assert_eq!(
            models(&catalog).to_string(),
            r#"{"allowed_models":[],"count":1,"default_model":"fast","models":[{"aliases":["balanced","premium"],"allowed":false,"configured":true,"context_window":400000,"id":"openai/gpt-5","provider":"openai","supports_streaming":true}]}"#
        );
    }

    #[test]
    fn metrics_keep_their_wire_shape() {
        let snapshot = Snapshot {
            total_requests: 4,
            total_tokens: 12,
            by_provider: vec![
                (
                    ProviderName::Openai,
                    ProviderCounts {
                        requests: 3,
                        tokens: 12,
                        errors: 1,
                    },
                ),
                (ProviderName::Gemini, ProviderCounts::default()),
            ],
            governance_violations: 1,
            in_flight: 0,
        };
        assert_eq!(
            metrics(&snapshot).to_string(),
            r#"{"by_provider":{"gemini":{"errors":0,"requests":0,"tokens":0},"openai":{"errors":1,"requests":3,"tokens":12}},"governance_violations":1,"in_flight":0,"total_requests":4,"total_tokens":12}"#
        );
    }
}
