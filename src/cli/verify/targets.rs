//! The providers `llmrpc verify` runs its cases on, and their models: those the flags name, else
//! those the service's `llm.models` says are configured, each on its member of the tier `fast`;
//! and what one call to the dearest of them may cost, for the bound printed before the run.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::client::Client;
use crate::api;
use crate::cli::output::Failure;
use crate::ledger::Prices;

/// A provider to verify, and the model its cases call (`provider/model`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) provider: String,
    pub(crate) model: String,
}

/// The targets, from `--providers` and `--models` (`provider=model`) or the service's catalogue;
/// at least one.
pub(crate) async fn targets(
    client: &Client,
    providers: &[String],
    models: &[String],
) -> Result<Vec<Target>, Failure> {
    // Not reaching the service is exit 6; a service that answers with an error (a missing or
    // rejected key above all) exits by that error's class, 3 for auth.
    let answer = client
        .rpc::<api::Models>(json!({}))
        .await
        .map_err(Failure::unreachable)?;
    if let Some(error) = answer.get("error") {
        let failure = Failure::of_rpc(error);
        return Err(Failure::new(
            failure.code,
            format!("llm.models failed: {}", failure.message),
        ));
    }
    let listed = answer["result"]["models"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let chosen: BTreeMap<&str, &str> = models.iter().filter_map(|m| m.split_once('=')).collect();
    let providers = match providers.is_empty() {
        true => configured(&listed),
        false => providers.to_vec(),
    };
    let mut targets = Vec::new();
    for provider in providers {
        let model = match chosen.get(provider.as_str()) {
            Some(model) if model.contains('/') => (*model).to_owned(),
            Some(model) => format!("{provider}/{model}"),
            None => fast_model(&listed, &provider).ok_or_else(|| {
                Failure::new(2, format!("the service lists no model of {provider}"))
            })?,
        };
        targets.push(Target { provider, model });
    }
    if targets.is_empty() {
        return Err(Failure::new(
            3,
            "the service has no configured provider to verify",
        ));
    }
    Ok(targets)
}

/// The providers the catalogue says are configured, in its order.
fn configured(listed: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = listed
        .iter()
        .filter(|m| m["configured"] == json!(true))
        .filter_map(|m| m["provider"].as_str().map(str::to_owned))
        .collect();
    names.dedup();
    names
}

/// The provider's member of the tier `fast`, else its first model.
fn fast_model(listed: &[Value], provider: &str) -> Option<String> {
    let of = |m: &&Value| m["provider"] == json!(provider);
    let fast = listed.iter().filter(of).find(|m| {
        m["aliases"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "fast"))
    });
    let found = fast.or_else(|| listed.iter().find(of));
    found.and_then(|m| m["id"].as_str()).map(str::to_owned)
}

/// What one call may cost at most at list prices, the dearest target's: 200 prompt tokens and
/// `max_tokens` answer tokens.
pub(crate) fn dearest_cost(targets: &[Target], max_tokens: u32) -> f64 {
    let prices = Prices::default();
    targets
        .iter()
        .filter_map(|t| {
            let model = t.model.split_once('/').map_or(t.model.as_str(), |(_, m)| m);
            prices.get(&t.provider, model)
        })
        .map(|p| (200.0 * p.input + f64::from(max_tokens) * p.output) / 1_000_000.0)
        .fold(0.0, f64::max)
}
