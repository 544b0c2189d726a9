//! Every runnable example of the docs — fenced blocks tagged exactly `sh` (curl) or `python`
//! (WebSocket) in proto-docs/*.md and README.md — run verbatim against a live server, as a user
//! would paste them. Other blocks (`json`, `text`, `bash`) are illustrations and are not run.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::upstream::Mocked;
use common::*;
use wiremock::MockServer;

fn runnable_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut current, fence) {
            (None, Some(info)) => current = Some((info.trim().to_owned(), String::new())),
            (Some(_), Some(_)) => {
                let (lang, code) = current.take().unwrap();
                if lang == "sh" || lang == "python" {
                    blocks.push((lang, code));
                }
            }
            (Some((_, code)), None) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_example_runs_against_a_live_server() {
    let upstream = MockServer::start().await;
    // First: the tool loop's mocks answer only requests that offer its tool.
    common::upstream::Provider::Openai
        .mount_tool_loop(&upstream)
        .await;
    mount_openai(&upstream, "Hello!", &["Hel", "lo", "!"]).await;
    let service = Service::start(&upstream, &[]);
    let python = std::env::var("LLMRPC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let has_websockets = Command::new(&python)
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_websockets,
        "{python} lacks the websockets package: run the tests with `make test`"
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("proto-docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.push(root.join("README.md"));
    files.sort();

    let mut ran = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (lang, code) in runnable_blocks(&text) {
            let code = code.replace("127.0.0.1:8080", &service.addr);
            let interpreter = if lang == "sh" {
                "bash"
            } else {
                python.as_str()
            };
            let output = Command::new("timeout")
                .args(["30", interpreter, "-c", &code])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let context = format!(
                "{}:\n{code}\nexit: {:?}\nstdout: {stdout}\nstderr: {}",
                file.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(output.status.success(), "example failed in {context}");
            assert!(
                ["jsonrpc", "status", "\"object\""]
                    .iter()
                    .any(|answer| stdout.contains(answer)),
                "example printed no answer in {context}"
            );
            ran += 1;
        }
    }
    assert!(ran >= 10, "only {ran} runnable examples found");
}
