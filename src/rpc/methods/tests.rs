//! The published OpenRPC document and the registered module, both held to the catalogue.

use std::collections::BTreeSet;

use super::*;
use crate::api::METHODS;
use crate::routing::ModelRegistry;

fn gateway() -> Gateway {
    let registry = ModelRegistry::new(vec![], &Default::default()).unwrap();
    let settings = crate::gateway::Settings {
        default_model: None,
        default_timeout: std::time::Duration::from_secs(1),
        first_byte_timeout: std::time::Duration::from_secs(1),
        idle_timeout: std::time::Duration::from_secs(1),
        max_in_flight: 1,
        max_in_flight_per_team: 1,
        budget_max_tokens: 1,
    };
    Gateway::new(
        registry,
        vec![],
        settings,
        None,
        None,
        crate::ledger::Prices::default(),
        Arc::new(crate::access::Access::anonymous(Arc::new(
            crate::resilience::RateLimits::local(),
        ))),
    )
}

#[test]
fn the_module_registers_exactly_the_catalogue() {
    let module = module(Arc::new(gateway())).unwrap();
    let registered: BTreeSet<&str> = module.method_names().collect();
    let catalogue: BTreeSet<&str> = METHODS.iter().map(|m| m.name).collect();
    assert_eq!(registered, catalogue);
}

/// Every difference between the document and the catalogue, each naming its method and param.
fn differences(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let described: Vec<(&str, BTreeSet<&str>)> = doc["methods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let params = m["params"].as_array().into_iter().flatten();
            let names = params.filter_map(|p| p["name"].as_str()).collect();
            (m["name"].as_str().unwrap_or_default(), names)
        })
        .collect();
    for entry in METHODS {
        let Some((_, documented)) = described.iter().find(|(name, _)| *name == entry.name) else {
            found.push(format!(
                "{} is in the catalogue, not in openrpc.json",
                entry.name
            ));
            continue;
        };
        let typed: BTreeSet<&str> = (entry.params)().into_iter().collect();
        for param in typed.difference(documented) {
            found.push(format!(
                "{}: param {param} is in the catalogue, not in openrpc.json",
                entry.name
            ));
        }
        for param in documented.difference(&typed) {
            found.push(format!(
                "{}: param {param} is in openrpc.json, not in the catalogue",
                entry.name
            ));
        }
    }
    for (name, _) in &described {
        if !METHODS.iter().any(|m| m.name == *name) {
            found.push(format!("{name} is in openrpc.json, not in the catalogue"));
        }
    }
    found
}

#[test]
fn openrpc_describes_exactly_the_catalogue_methods_and_params() {
    let doc: Value = serde_json::from_str(OPENRPC).unwrap();
    assert_eq!(differences(&doc), Vec::<String>::new());
}

#[test]
fn a_method_or_param_on_one_side_only_is_named() {
    let mut doc: Value = serde_json::from_str(OPENRPC).unwrap();
    let methods = doc["methods"].as_array_mut().unwrap();
    methods.retain(|m| m["name"] != "llm.metrics");
    methods.push(serde_json::json!({"name": "llm.extra", "params": []}));
    let trace = methods
        .iter_mut()
        .find(|m| m["name"] == "ops.trace")
        .unwrap();
    trace["params"] = serde_json::json!([{"name": "a2a_context"}, {"name": "since"}]);
    assert_eq!(
        differences(&doc),
        [
            "llm.metrics is in the catalogue, not in openrpc.json",
            "ops.trace: param trace_id is in the catalogue, not in openrpc.json",
            "ops.trace: param since is in openrpc.json, not in the catalogue",
            "llm.extra is in openrpc.json, not in the catalogue",
        ]
    );
}
