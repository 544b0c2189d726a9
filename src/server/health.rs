//! The plain-HTTP answers about the service itself, for load balancers and probes, served
//! without a key: `/health` (the process answers) and `/ready` (each provider configured, and
//! its circuit).

use http::StatusCode;
use jsonrpsee::server::HttpResponse;
use serde_json::{Map, Value, json};

use crate::gateway::ProviderStatus;
use crate::reply;

pub fn health() -> HttpResponse {
    reply::json(StatusCode::OK, &json!({"status": "ok"}))
}

pub fn ready(providers: &[ProviderStatus]) -> HttpResponse {
    reply::json(StatusCode::OK, &ready_body(providers))
}

fn ready_body(providers: &[ProviderStatus]) -> Value {
    let providers: Map<String, Value> = providers
        .iter()
        .map(|p| {
            let status = json!({"configured": p.configured, "circuit": p.circuit.as_str()});
            (p.provider.as_str().to_owned(), status)
        })
        .collect();
    json!({"status": "ready", "providers": providers})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::BreakerState;
    use crate::types::ProviderName;

    #[test]
    fn readiness_keeps_its_wire_shape() {
        let providers = [ProviderStatus {
            provider: ProviderName::Anthropic,
            configured: false,
            circuit: BreakerState::HalfOpen,
        }];
        assert_eq!(
            ready_body(&providers).to_string(),
            r#"{"providers":{"anthropic":{"circuit":"half_open","configured":false}},"status":"ready"}"#
        );
    }
}
