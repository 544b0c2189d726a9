//! What a call cost: a price per model, in USD per million tokens, for input (prompt) and output
//! (completion) tokens. The list prices are those of the providers' model tables (see
//! `ModelInfo::price`); config can override any entry or add models, keyed `provider/model`.

use std::collections::BTreeMap;

use crate::providers;
pub use crate::types::Price;
use crate::types::{ProviderName, Usage};

/// The list prices: every provider's models that have one in its table, keyed
/// `provider/model`.
fn list_prices() -> impl Iterator<Item = (String, Price)> {
    ProviderName::ALL.into_iter().flat_map(|name| {
        let models = providers::registered(name).models.models;
        models
            .iter()
            .filter_map(move |m| Some((format!("{name}/{}", m.id), m.price?)))
    })
}

/// The price table in force: the list prices, then config's overrides on top.
#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    table: BTreeMap<String, Price>,
}

impl Default for Prices {
    fn default() -> Self {
        Self::new(BTreeMap::new())
    }
}

impl Prices {
    /// The list prices with `overrides` (keyed `provider/model`) replacing or adding entries.
    pub fn new(overrides: BTreeMap<String, Price>) -> Self {
        let mut table: BTreeMap<String, Price> = list_prices().collect();
        table.extend(overrides);
        Self { table }
    }

    /// The price of a model; a dated snapshot (`gpt-4.1-2025-04-14`, `claude-sonnet-4-5-20250929`,
    /// `gemini-2.0-flash-001`) costs what its base model costs unless it has its own entry.
    pub fn get(&self, provider: &str, model: &str) -> Option<Price> {
        let lookup = |model: &str| self.table.get(&format!("{provider}/{model}")).copied();
        lookup(model).or_else(|| snapshot_base(model).and_then(lookup))
    }

    /// The models with a price, as `provider/model`.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.table.keys().map(String::as_str)
    }

    /// What `usage` cost on this model; 0 for a model without a price.
    pub fn cost(&self, provider: &str, model: &str, usage: &Usage) -> f64 {
        self.get(provider, model).map_or(0.0, |p| p.cost(usage))
    }
}

/// The model a snapshot name pins, when the name ends in a snapshot suffix: `-YYYY-MM-DD`,
/// `-YYYYMMDD` or `-NNN`.
fn snapshot_base(model: &str) -> Option<&str> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let (rest, last) = model.rsplit_once('-')?;
    if digits(last, 8) || digits(last, 3) {
        return Some(rest);
    }
    let (rest, month) = rest.rsplit_once('-')?;
    let (rest, year) = rest.rsplit_once('-')?;
    (digits(year, 4) && digits(month, 2) && digits(last, 2)).then_some(rest)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ProviderConfig;
    use crate::providers;
    use crate::resilience::{BreakerPolicy, RetryPolicy};
    use crate::types::ModelInfo;

    fn usage(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cost_is_per_million_tokens_of_each_kind() {
        let prices = Prices::default();
        // 1M prompt at $2 + 500k completion at $8.
        let cost = prices.cost("openai", "gpt-4.1", &usage(1_000_000, 500_000));
        assert!(close(cost, 6.0), "{cost}");
        let cost = prices.cost("anthropic", "claude-sonnet-4-5", &usage(1000, 200));
        assert!(close(cost, 0.003 + 0.003), "{cost}");
        assert!(close(
            prices.cost("gemini", "gemini-2.5-flash", &usage(0, 0)),
            0.0
        ));
    }

    #[test]
    fn unknown_models_cost_nothing() {
        let prices = Prices::default();
        assert_eq!(prices.get("openai", "gpt-9"), None);
        assert!(close(prices.cost("openai", "gpt-9", &usage(10, 10)), 0.0));
        // The price belongs to the provider's model, not to the name alone.
        assert_eq!(prices.get("anthropic", "gpt-4.1"), None);
    }

    #[test]
    fn overrides_replace_and_add_entries() {
        let overrides = BTreeMap::from([
            ("openai/gpt-4.1".to_owned(), Price::new(1.0, 2.0)),
            ("openai/my-finetune".to_owned(), Price::new(3.0, 4.0)),
        ]);
        let prices = Prices::new(overrides);
        assert_eq!(prices.get("openai", "gpt-4.1"), Some(Price::new(1.0, 2.0)));
        assert_eq!(
            prices.get("openai", "my-finetune"),
            Some(Price::new(3.0, 4.0))
        );
        // Entries not overridden keep their list price.
        assert_eq!(prices.get("openai", "gpt-4o"), Some(Price::new(2.5, 10.0)));
    }

    #[test]
    fn snapshots_cost_what_their_base_model_costs() {
        let prices = Prices::default();
        for (provider, snapshot, base) in [
            ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
            (
                "anthropic",
                "claude-sonnet-4-5-20250929",
                "claude-sonnet-4-5",
            ),
            ("gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"),
        ] {
            assert_eq!(
                prices.get(provider, snapshot),
                prices.get(provider, base),
                "{snapshot}"
            );
            assert!(prices.get(provider, snapshot).is_some(), "{snapshot}");
        }
        // A different model that merely shares a prefix is not a snapshot.
        assert_eq!(prices.get("openai", "gpt-5-pro"), None);
        assert_eq!(prices.get("anthropic", "claude-opus-4"), None);
    }

    #[test]
    fn overrides_deserialize_from_toml() {
        let overrides: BTreeMap<String, Price> =
            toml::from_str("\"openai/gpt-4.1\" = { input = 1.5, output = 6 }").unwrap();
        assert_eq!(overrides["openai/gpt-4.1"], Price::new(1.5, 6.0));
        assert!(toml::from_str::<BTreeMap<String, Price>>("x = { input = 1 }").is_err());
    }

    #[test]
    fn every_catalog_model_has_a_price() {
        let client = crate::providers::http_client(Duration::from_secs(1)).unwrap();
        let config = |var: &'static str| ProviderConfig {
            api_key: None,
            base_url: "http://127.0.0.1".into(),
            key_var: var,
            retry: RetryPolicy {
                max_retries: 0,
                base: Duration::ZERO,
                cap: Duration::ZERO,
            },
            breaker: BreakerPolicy {
                threshold: 1,
                cooldown: Duration::ZERO,
            },
            requests_per_minute: None,
            max_concurrent: None,
        };
        let providers = ProviderName::ALL.map(|name| {
            providers::build(name, client.clone(), config(name.as_str()).endpoint()).unwrap()
        });
        let prices = Prices::default();
        for provider in providers {
            for ModelInfo { id, .. } in provider.catalog() {
                let price = prices.get(provider.name().as_str(), id);
                assert!(price.is_some(), "{}/{id} has no price", provider.name());
            }
        }
        assert_eq!(
            list_prices().count(),
            prices.table.len(),
            "duplicate entries"
        );
    }
}
