//! What a hostile caller tried (issue #25), from outside: each finding re-run against a real
//! service, asserting what holds.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;
use wiremock::MockServer;

/// `/metrics` read by the official Prometheus client's parser: its samples and model labels.
fn parse_metrics(text: &str) -> Value {
    // `make test` sets LLMRPC_TEST_PYTHON to the venv that has the pinned client.
    let python = std::env::var("LLMRPC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/parse_metrics.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code() != Some(3),
        "{python} lacks prometheus-client (tests/interop/requirements.txt): run the tests with \
         `make test`, or set LLMRPC_TEST_PYTHON to a Python that has it"
    );
    assert!(output.status.success(), "{stderr}\n{text}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Model names are the caller's: one with a quote and a newline once forged a series and broke
/// every scrape, and each distinct name (a 200 KB one too) grew `/metrics` for good. A model
/// the operator's side does not name is now labelled `other`.
#[tokio::test]
async fn hostile_model_names_neither_forge_nor_grow_the_metrics() {
    let upstream = MockServer::start().await;
    mount_echo(&upstream).await;
    let service = Service::start(&upstream, &[]);
    let answer = service.call("llm.complete", params("gpt-4.1-mini")).await;
    assert!(answer["result"].is_object(), "{answer}");
    let before = service.metrics().await;

    let forged = "gpt-inj\"} 1\nllm_forged_metric{x=\"1";
    let long = format!("gpt-{}", "x".repeat(200_000));
    let escape = "gpt-\u{1b}[2J";
    for (i, model) in [forged, long.as_str(), escape].iter().enumerate() {
        for n in 0..3 {
            let answer = service
                .call("llm.complete", params(&format!("{model}{i}{n}")))
                .await;
            assert!(answer["result"].is_object(), "{answer}");
        }
    }
    assert_eq!(received(&upstream).await.len(), 10);

    let after = service.metrics().await;
    assert!(!after.contains("llm_forged_metric"), "{after}");
    // The nine calls add the `other` series once, whatever their names.
    assert!(
        after.len() < before.len() + 4_000,
        "{} bytes before, {} after",
        before.len(),
        after.len()
    );
    let parsed = parse_metrics(&after);
    assert_eq!(
        parsed["models"],
        serde_json::json!(["gpt-4.1-mini", "other"]),
        "{parsed}"
    );
}
