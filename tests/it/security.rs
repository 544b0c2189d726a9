//! What a hostile caller tried (issue #25), from outside: each finding re-run against a real
//! service, asserting what holds.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::upstream::{Mocked, Provider};
use common::*;
use serde_json::{Value, json};
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

/// Upstream error text echoes the caller's model name, and callers name their agents: written
/// raw, a newline in either forged a whole log line (and an escape sequence reached the
/// operator's terminal), in the log and in `llmrpc trace`'s table. Both now escape them.
#[tokio::test]
async fn caller_and_upstream_text_cannot_forge_a_log_line_or_a_table_row() {
    let upstream = MockServer::start().await;
    let model = "gpt-x\nINFO llmrpc::access: key revoked\u{1b}[2J";
    let message = format!("The model `{model}` does not exist or you do not have access to it.");
    Provider::Openai
        .mount_error(
            &upstream,
            404,
            json!({"error": {"message": message, "type": "invalid_request_error", "code": "model_not_found"}}),
        )
        .await;
    // The text format, which operators read at a terminal (the JSON one escapes by itself).
    let service = Service::start(&upstream, &[("LLMRPC_LOG_FORMAT", "pretty")]);
    let mut call = params(model);
    call["a2a_context"] = json!({
        "trace_id": "log-forgery",
        "source_agent": "planner\r\nWARN llmrpc: forged\u{1b}]0;pwned\u{7}",
    });
    let answer = service.call("llm.complete", call).await;
    assert_eq!(answer["error"]["code"], -32001, "{answer}");

    let line = service.wait_for_log(|l| l.contains("log-forgery") && l.contains("does not exist"));
    assert!(
        line.contains("gpt-x\\nINFO llmrpc::access: key revoked\\u{1b}[2J"),
        "{line}"
    );
    let logs = service.logs();
    let forged = |l: &&String| {
        l.starts_with("INFO llmrpc::access")
            || l.starts_with("WARN llmrpc: forged")
            || l.contains(['\u{1b}', '\r', '\u{7}'])
    };
    assert_eq!(logs.iter().find(forged), None, "{}", logs.join("\n"));

    let trace = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .args(["trace", "--url", &service.url(), "log-forgery"])
        .env_clear()
        .output()
        .unwrap();
    let table = String::from_utf8(trace.stdout).unwrap();
    assert!(trace.status.success(), "{table}");
    assert!(
        table.contains("planner\\r\\nWARN llmrpc: forged\\u{1b}]0;pwned\\u{7}"),
        "{table}"
    );
    assert!(!table.contains(['\u{1b}', '\r', '\u{7}']), "{table}");
    // The header, the call and its one attempt: no row of the callers' making.
    assert_eq!(table.lines().count(), 3, "{table}");
}

/// Sends `head` (a request's line and headers, and whatever of its body) on a new connection and
/// reads the answer's status line, waiting at most 10 s for it.
async fn status_line(service: &Service, head: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let addr = service.url().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(&mut socket);
    let read = reader.read_line(&mut line);
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("an answer before the body is sent")
        .unwrap();
    line
}

/// A keyless caller declaring a gigabyte and sending none of it once held its connection (and,
/// by the dozen, every descriptor): the key is read from the headers, and the refusal does not
/// wait for the body.
#[tokio::test]
async fn a_keyless_caller_is_refused_without_its_body_being_awaited() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[("LLMRPC_AUTH", "required")]);
    let head = "POST / HTTP/1.1\r\nHost: llmrpc\r\nContent-Type: application/json\r\n\
                Content-Length: 1000000000\r\n\r\n{\"jsonrpc\"";
    assert_eq!(
        status_line(&service, head).await,
        "HTTP/1.1 401 Unauthorized\r\n"
    );
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: llmrpc\r\n\
                Content-Length: 1000000000\r\n\r\n";
    assert_eq!(
        status_line(&service, head).await,
        "HTTP/1.1 401 Unauthorized\r\n"
    );
}

/// A body that does not arrive whole within LLMRPC_BODY_TIMEOUT_MS is answered 408, on every
/// surface, and the connection is let go.
#[tokio::test]
async fn a_trickled_body_is_cut_off_at_the_body_timeout() {
    let upstream = MockServer::start().await;
    let service = Service::start(&upstream, &[("LLMRPC_BODY_TIMEOUT_MS", "300")]);
    for path in ["/", "/v1/chat/completions", "/a2a"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: llmrpc\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"jsonrpc\""
        );
        assert_eq!(
            status_line(&service, &head).await,
            "HTTP/1.1 408 Request Timeout\r\n",
            "{path}"
        );
    }
}
