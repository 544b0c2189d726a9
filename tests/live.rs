//! Live calls to the real providers, one complete and one stream each. Not part of `make test`:
//! `make test-live` runs them with the keys of `.env.test`; a provider whose key is empty there is
//! skipped with a message saying so.

mod common;

use common::*;
use serde_json::json;

fn env_test() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.test");
    dotenvy::from_path_iter(path)
        .map(|iter| iter.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

async fn live(provider: &str, key_var: &str, base_var: &str, model: &str) {
    let vars = env_test();
    let value = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    if value(key_var).is_empty() {
        eprintln!("skipping the live {provider} test: {key_var} is empty in .env.test");
        return;
    }
    let (key, base) = (value(key_var), value(base_var));
    let mut env = vec![(key_var, key.as_str())];
    if !base.is_empty() {
        env.push((base_var, base.as_str()));
    }
    let service = Service::start_with(&env);
    let mut p = params(model);
    p["max_tokens"] = json!(32);
    let answer = service.call("llm.complete", p.clone()).await;
    assert!(
        answer["result"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{answer}"
    );
    assert_eq!(answer["result"]["provider"], provider);

    let response = service.sse_request(json!(1), p).send().await.unwrap();
    let events = sse_events(response).await;
    let last = &events.last().unwrap()["result"];
    assert_eq!(last["done"], true, "{events:?}");
    assert!(last.get("error").is_none(), "{last}");
    assert!(events.len() >= 2, "no delta arrived: {events:?}");
}

#[tokio::test]
#[ignore = "live: needs real keys in .env.test; run `make test-live`"]
async fn live_openai() {
    live(
        "openai",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "gpt-4.1-mini",
    )
    .await;
}

#[tokio::test]
#[ignore = "live: needs real keys in .env.test; run `make test-live`"]
async fn live_anthropic() {
    live(
        "anthropic",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "claude-haiku-4-5",
    )
    .await;
}

#[tokio::test]
#[ignore = "live: needs real keys in .env.test; run `make test-live`"]
async fn live_gemini() {
    live(
        "gemini",
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "gemini-2.5-flash",
    )
    .await;
}
