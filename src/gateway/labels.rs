//! The model label of a call's metrics. A caller may name any model, and a label taken from
//! the call would let one caller grow the series without bound (each name a series kept for
//! good) and forge the exposition with quotes and newlines. So a model keeps its name only when
//! the operator's side names it — the providers' model tables, the configured aliases and tiers,
//! the configured prices — and is `other` otherwise: the series are bounded by the
//! configuration, and every label is a name the operator wrote.

use std::collections::{BTreeMap, BTreeSet};

use crate::routing::{ModelRegistry, Route};
use crate::types::ProviderName;

/// The label of every model the operator's side does not name.
const OTHER: &str = "other";

pub struct MetricModels(BTreeMap<ProviderName, BTreeSet<String>>);

impl MetricModels {
    /// The models of `registry` (its catalog and aliases) and the `priced` ones
    /// (`provider/model`, as the configuration keys prices).
    pub fn new<'p>(registry: &ModelRegistry, priced: impl Iterator<Item = &'p str>) -> Self {
        let mut known: BTreeMap<ProviderName, BTreeSet<String>> = BTreeMap::new();
        let aliased = registry.aliases().values().flatten().cloned();
        for route in registry.catalog().map(|(route, _)| route).chain(aliased) {
            known.entry(route.provider).or_default().insert(route.model);
        }
        for id in priced {
            let Some((provider, model)) = id.split_once('/') else {
                continue;
            };
            if let Some(provider) = ProviderName::parse(provider) {
                known.entry(provider).or_default().insert(model.to_owned());
            }
        }
        Self(known)
    }

    /// The label of `route`'s model.
    pub fn label<'r>(&self, route: &'r Route) -> &'r str {
        let known = self
            .0
            .get(&route.provider)
            .is_some_and(|models| models.contains(&route.model));
        match known {
            true => &route.model,
            false => OTHER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_the_operator_does_not_name_is_other() {
        let registry = ModelRegistry::new(
            vec![(
                ProviderName::Openai,
                crate::providers::registered(ProviderName::Openai)
                    .models
                    .models,
            )],
            &BTreeMap::new(),
        )
        .unwrap();
        let models = MetricModels::new(&registry, ["openai/ft:gpt-4.1-mini:acme"].into_iter());
        let route = |model: &str| Route {
            provider: ProviderName::Openai,
            model: model.to_owned(),
        };
        assert_eq!(models.label(&route("gpt-4.1-mini")), "gpt-4.1-mini");
        assert_eq!(
            models.label(&route("ft:gpt-4.1-mini:acme")),
            "ft:gpt-4.1-mini:acme"
        );
        assert_eq!(models.label(&route("gpt-inj\"} 1\nforged{x=\"1")), "other");
        let other_provider = Route {
            provider: ProviderName::Gemini,
            model: "gpt-4.1-mini".to_owned(),
        };
        assert_eq!(models.label(&other_provider), "other");
    }
}
