//! The agent card at `/.well-known/agent-card.json`, served without a key: what the service
//! is, where its JSON-RPC binding is (an absolute URL, since clients POST to it as written), a
//! skill per tier or alias, and bearer auth when caller keys are required.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde_json::{Value, json};

use crate::gateway::Gateway;

/// Where the card is served.
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// Where the JSON-RPC binding is served, as the card advertises it.
pub const PATH: &str = "/a2a";

/// What a message may carry: text, JSON data, and images.
const INPUT_MODES: [&str; 6] = [
    "text/plain",
    "application/json",
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
];

/// The card, its URLs absolute from `public_url`, else from the request's `Host` — which must
/// then be a host name or address with an optional port: the card must not advertise whatever
/// a caller wrote there (a path, a query, an injected URL). Anything else is answered 400.
pub fn card(gateway: &Gateway, public_url: Option<&str>, headers: &HeaderMap) -> HttpResponse {
    let base = match public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            if !is_host(host) {
                return crate::reply::text(
                    StatusCode::BAD_REQUEST,
                    "the Host header is not a host name: the agent card takes its URL from it \
                     (or from LLMRPC_PUBLIC_URL)",
                );
            }
            format!("http://{host}")
        }
    };
    let url = format!("{base}{PATH}");
    let catalog = gateway.models();
    let mut aliases: Vec<&str> = catalog
        .models
        .iter()
        .flat_map(|m| m.aliases.iter().map(String::as_str))
        .collect();
    aliases.sort_unstable();
    aliases.dedup();
    let skills: Vec<Value> = aliases
        .iter()
        .map(|alias| {
            let members: Vec<String> = catalog
                .models
                .iter()
                .filter(|m| m.aliases.iter().any(|a| a == alias))
                .map(|m| m.route.id())
                .collect();
            json!({
                "id": alias,
                "name": alias,
                "description": format!(
                    "Answers with the model `{alias}` names: the first configured of {}. Set message.metadata.model to `{alias}`, or to any model id llm.models lists.",
                    members.join(", ")
                ),
                "tags": ["llm", "chat"],
            })
        })
        .collect();
    let mut card = json!({
        "name": "llmrpc",
        "description": "A gateway to OpenAI, Anthropic and Gemini models. Each message is one model call, run as a task: its answer is the task's artifact, streamed as it arrives with SendStreamingMessage. The model is message.metadata.model (or the request's metadata.model), else the default.",
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        // For 0.3 clients, which read these instead.
        "url": url,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
        "capabilities": {"streaming": true, "pushNotifications": false},
        "defaultInputModes": INPUT_MODES,
        "defaultOutputModes": ["text/plain"],
        "skills": skills,
    });
    if gateway.access().required() {
        card["securitySchemes"] = json!({"bearer": {"httpAuthSecurityScheme": {
            "scheme": "Bearer", "bearerFormat": "llmrpc caller key",
            "description": "A caller key (llmrpc-…) made with llmrpc admin keys create"}}});
        card["securityRequirements"] = json!([{"schemes": {"bearer": {"list": []}}}]);
    }
    let mut response = HttpResponse::new(HttpBody::from(card.to_string()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A host name, IPv4 address or bracketed IPv6 address, with an optional port.
fn is_host(host: &str) -> bool {
    let v6 = host.starts_with('[');
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) if after.is_empty() || after.starts_with(':') => {
                (v6, after.strip_prefix(':'))
            }
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || (v6 && b == b':'));
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_names_with_a_port_make_a_card_url() {
        for host in [
            "llm.example.com",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[::1]",
            "localhost",
        ] {
            assert!(is_host(host), "{host}");
        }
        for host in [
            "",
            "evil.com/phish?",
            "a b",
            "x:port",
            "h:123456",
            "[::1",
            "user@host",
            "h:",
        ] {
            assert!(!is_host(host), "{host}");
        }
    }
}
