//! The model registry: turns what a caller names (`provider/model`, an alias or tier, a bare
//! model name) into the ordered list of concrete models that may answer. The built-in tiers and
//! the prefixes of bare names come from the providers' model tables; configured aliases come
//! first and may replace a tier.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind};
use crate::providers;
use crate::types::{ModelInfo, ProviderName, Tier};

/// One concrete model at one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub provider: ProviderName,
    /// The provider's own name for the model.
    pub model: String,
}

impl Route {
    /// `provider/model`, the id `llm.models` lists.
    pub fn id(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// The built-in tiers, from the providers' model tables: each tier's models in the order of
/// their ranks. The tables give each tier one model of every provider, so that any one
/// configured key serves each.
fn builtin_tiers() -> impl Iterator<Item = (String, Vec<Route>)> {
    Tier::ALL.into_iter().map(|tier| {
        let mut ranked: Vec<(u8, Route)> = ProviderName::ALL
            .into_iter()
            .flat_map(|provider| {
                providers::registered(provider)
                    .models
                    .models
                    .iter()
                    .filter_map(move |m| {
                        let route = Route {
                            provider,
                            model: m.id.to_owned(),
                        };
                        Some((m.rank_in(tier)?, route))
                    })
            })
            .collect();
        ranked.sort_by_key(|(rank, _)| *rank);
        let routes = ranked.into_iter().map(|(_, route)| route).collect();
        (tier.as_str().to_owned(), routes)
    })
}

/// The prefixes of bare names, each with the provider whose table routes them there.
fn prefixes() -> impl Iterator<Item = (&'static str, ProviderName)> {
    ProviderName::ALL.into_iter().flat_map(|provider| {
        let table = providers::registered(provider).models;
        table.routed_prefixes.iter().map(move |p| (*p, provider))
    })
}

/// `a, b or c`: the prefixes a bare name may start with, for the error that names none.
fn prefix_list() -> String {
    let prefixes: Vec<&str> = prefixes().map(|(p, _)| p).collect();
    match prefixes.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[derive(Debug)]
pub struct ModelRegistry {
    catalogs: Vec<(ProviderName, &'static [ModelInfo])>,
    aliases: BTreeMap<String, Vec<Route>>,
}

impl ModelRegistry {
    /// Fails when an alias target names no provider this service knows.
    pub fn new(
        catalogs: Vec<(ProviderName, &'static [ModelInfo])>,
        configured_aliases: &BTreeMap<String, Vec<String>>,
    ) -> Result<Self, String> {
        let mut aliases: BTreeMap<String, Vec<Route>> = builtin_tiers().collect();
        for (name, targets) in configured_aliases.clone() {
            let routes = targets
                .iter()
                .map(|t| {
                    direct_route(t).ok_or_else(|| format!("alias {name:?}: cannot route {t:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if routes.is_empty() {
                return Err(format!("alias {name:?} has no models"));
            }
            aliases.insert(name, routes);
        }
        Ok(Self { catalogs, aliases })
    }

    /// Resolves a model name to its candidates, in order of preference.
    pub fn resolve(&self, name: &str) -> Result<Vec<Route>, Error> {
        if let Some(routes) = self.aliases.get(name) {
            return Ok(routes.clone());
        }
        direct_route(name).map(|r| vec![r]).ok_or_else(|| {
            Error::new(
                ErrorKind::ModelNotFound,
                format!(
                    "unknown model {name:?}: use provider/model, an alias ({}), or a name starting with {}",
                    self.aliases.keys().map(String::as_str).collect::<Vec<_>>().join(", "),
                    prefix_list()
                ),
            )
        })
    }

    pub fn aliases(&self) -> &BTreeMap<String, Vec<Route>> {
        &self.aliases
    }

    /// Every catalogued model, provider by provider.
    pub fn catalog(&self) -> impl Iterator<Item = (Route, &ModelInfo)> {
        self.catalogs.iter().flat_map(|(provider, models)| {
            models.iter().map(|m| {
                (
                    Route {
                        provider: *provider,
                        model: m.id.to_owned(),
                    },
                    m,
                )
            })
        })
    }
}

/// `provider/model` or a bare name with a known prefix; aliases are not consulted.
fn direct_route(name: &str) -> Option<Route> {
    if let Some((provider, model)) = name.split_once('/') {
        let provider = ProviderName::parse(provider)?;
        return (!model.is_empty()).then(|| Route {
            provider,
            model: model.to_owned(),
        });
    }
    prefixes()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, provider)| Route {
            provider,
            model: name.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(aliases: &[(&str, &[&str])]) -> ModelRegistry {
        let aliases = aliases
            .iter()
            .map(|(n, t)| (n.to_string(), t.iter().map(|s| s.to_string()).collect()))
            .collect();
        ModelRegistry::new(vec![], &aliases).unwrap()
    }

    fn ids(routes: Vec<Route>) -> Vec<String> {
        routes.iter().map(Route::id).collect()
    }

    #[test]
    fn resolves_prefixes_and_provider_model_names() {
        let r = registry(&[]);
        assert_eq!(
            ids(r.resolve("gpt-4.1-mini").unwrap()),
            ["openai/gpt-4.1-mini"]
        );
        assert_eq!(ids(r.resolve("o3-mini").unwrap()), ["openai/o3-mini"]);
        assert_eq!(
            ids(r.resolve("chatgpt-4o-latest").unwrap()),
            ["openai/chatgpt-4o-latest"]
        );
        assert_eq!(
            ids(r.resolve("claude-sonnet-4-5").unwrap()),
            ["anthropic/claude-sonnet-4-5"]
        );
        assert_eq!(
            ids(r.resolve("gemini-2.5-pro").unwrap()),
            ["gemini/gemini-2.5-pro"]
        );
        assert_eq!(
            ids(r.resolve("anthropic/claude-sonnet-4-5").unwrap()),
            ["anthropic/claude-sonnet-4-5"]
        );
        assert_eq!(
            ids(r.resolve("openai/my-finetune").unwrap()),
            ["openai/my-finetune"]
        );
    }

    #[test]
    fn unknown_names_are_model_not_found() {
        let r = registry(&[]);
        assert!(
            r.resolve("llama-3").unwrap_err().message.ends_with(
                "or a name starting with gpt-, o1, o3, o4, chatgpt-, claude- or gemini-"
            ),
            "{}",
            r.resolve("llama-3").unwrap_err().message
        );
        for name in ["llama-3", "mistral/large", "openai/", ""] {
            assert_eq!(
                r.resolve(name).unwrap_err().kind,
                ErrorKind::ModelNotFound,
                "{name}"
            );
        }
    }

    #[test]
    fn aliases_come_first_and_may_replace_tiers() {
        let r = registry(&[
            ("gpt-4o", &["openai/gpt-4.1"]),
            ("fast", &["gemini-2.5-flash-lite"]),
        ]);
        assert_eq!(ids(r.resolve("gpt-4o").unwrap()), ["openai/gpt-4.1"]);
        assert_eq!(
            ids(r.resolve("fast").unwrap()),
            ["gemini/gemini-2.5-flash-lite"]
        );
        assert_eq!(r.resolve("balanced").unwrap().len(), 3);
    }

    #[test]
    fn every_tier_spans_all_three_providers() {
        let r = registry(&[]);
        for tier in ["fast", "balanced", "premium"] {
            let mut providers: Vec<_> = r
                .resolve(tier)
                .unwrap()
                .iter()
                .map(|r| r.provider)
                .collect();
            providers.sort();
            assert_eq!(providers, ProviderName::ALL, "{tier}");
        }
    }

    #[test]
    fn the_tables_give_the_tiers_their_models_in_order() {
        let r = registry(&[]);
        for (tier, models) in [
            (
                "fast",
                [
                    "openai/gpt-5-mini",
                    "anthropic/claude-haiku-4-5",
                    "gemini/gemini-2.5-flash",
                ],
            ),
            (
                "balanced",
                [
                    "anthropic/claude-sonnet-4-5",
                    "openai/gpt-5",
                    "gemini/gemini-2.5-pro",
                ],
            ),
            (
                "premium",
                [
                    "anthropic/claude-opus-4-1",
                    "openai/gpt-5",
                    "gemini/gemini-2.5-pro",
                ],
            ),
        ] {
            assert_eq!(ids(r.resolve(tier).unwrap()), models, "{tier}");
        }
        assert_eq!(r.aliases().len(), 3);
    }

    #[test]
    fn bad_alias_targets_are_refused_at_start() {
        let aliases = [("x".to_string(), vec!["nowhere/model".to_string()])]
            .into_iter()
            .collect();
        assert!(ModelRegistry::new(vec![], &aliases).is_err());
    }
}
