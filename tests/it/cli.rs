//! The command line as people and CI use it (contract §10): the `llmrpc` binary run as a child
//! process, with assert_cmd, against a real `llmrpc serve` or straight at the providers
//! (`llmrpc test`, `llmrpc doctor`). It checks the exit code of each failure class, every
//! `--output` format parsed back, the text mode's lines, and that nothing written to a pipe
//! carries a terminal control byte.
//!
//! Upstreams are `llmrpc mock-upstream`'s fake providers (run in this process, on a thread of
//! their own), whose model name chooses the behaviour (`gpt-4o-mini_status-429`,
//! `_latency-3000`, …), and wiremock where an exact answer is needed (a 401). Each child gets a
//! clean environment (PATH, short retry backoffs, and what the test names) and a fresh temp dir as
//! its working directory, so that no `.env`, key or database of this machine leaks in.

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Command as StdCommand, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::{ClosedPort, OPENAI_KEY, Service};
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_llmrpc");

/// The exit codes of contract §10.
const OK: i32 = 0;
const OTHER: i32 = 1;
const USAGE: i32 = 2;
const AUTH: i32 = 3;
const LIMITED: i32 = 4;
const TIMEOUT: i32 = 5;
const UNAVAILABLE: i32 = 6;
const MODEL: i32 = 7;

/// What the mock answers a model with `_chunks-3`.
const THREE: &str = "tok0 tok1 tok2 ";

/// The base URL (`http://127.0.0.1:<port>`) of one `llmrpc mock-upstream` shared by the tests:
/// its behaviour is chosen per request, so tests do not disturb each other.
fn mock() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let (listener, addr) = llmrpc::mock_upstream::bind("127.0.0.1:0")
                    .await
                    .expect("bind the mock");
                tx.send(format!("http://{addr}")).expect("send the address");
                llmrpc::mock_upstream::serve(listener).await
            })
        });
        rx.recv().expect("the mock's address")
    })
}

/// `OPENAI_BASE_URL` pointed at the mock.
fn mock_openai() -> String {
    format!("{}/v1", mock())
}

/// A service whose OpenAI is the mock, without retries, plus `extra` variables.
fn service(extra: &[(&str, &str)]) -> Service {
    let base = mock_openai();
    let mut env = vec![
        ("OPENAI_API_KEY", "mock"),
        ("OPENAI_BASE_URL", base.as_str()),
        ("LLMRPC_MAX_RETRIES", "0"),
    ];
    env.extend_from_slice(extra);
    Service::start_with(&env)
}

/// What a run printed.
struct Out {
    stdout: String,
    stderr: String,
}

impl Out {
    /// Standard output as one JSON document.
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    /// Standard output as JSON lines: one object per line, at least one line.
    #[track_caller]
    fn jsonl(&self) -> Vec<Value> {
        assert!(self.stdout.ends_with('\n'), "{:?}", self.stdout);
        let lines: Vec<Value> = self
            .stdout
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
                assert!(value.is_object(), "not an object: {line}");
                value
            })
            .collect();
        assert!(!lines.is_empty(), "no lines");
        lines
    }

    /// The last line of standard error.
    fn last_stderr_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or_default()
    }
}

/// The command `llmrpc <args>` with a clean environment: PATH, short retry backoffs, then `env`;
/// its working directory is `dir`.
fn llmrpc(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LLMRPC_RETRY_BASE_MS", "1")
        .env("LLMRPC_RETRY_CAP_MS", "10")
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .args(args)
        .timeout(Duration::from_secs(60));
    command
}

/// Runs `llmrpc <args>` (see [`llmrpc`]) in a new temp dir, expects exit code `code`, and checks
/// that neither output holds an ESC byte: nothing here is a terminal, so no colour, spinner or
/// progress bar may be drawn.
#[track_caller]
fn run(env: &[(&str, &str)], args: &[&str], code: i32) -> Out {
    let dir = tempfile::tempdir().expect("temp dir");
    run_in(&dir, env, args, code)
}

#[track_caller]
fn run_in(dir: &TempDir, env: &[(&str, &str)], args: &[&str], code: i32) -> Out {
    let assert = llmrpc(dir, env, args).assert().code(code);
    let output = assert.get_output();
    let out = Out {
        stdout: String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr"),
    };
    assert!(
        !out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'),
        "a terminal control byte off a terminal, llmrpc {args:?}:\nstdout: {:?}\nstderr: {:?}",
        out.stdout,
        out.stderr
    );
    out
}

/// `complete` or `stream` against `service` (or any URL) with `model`, and `more` flags.
#[track_caller]
fn ask(command: &str, url: &str, model: &str, more: &[&str], code: i32) -> Out {
    let mut args = vec![command, "--url", url, "--model", model];
    args.extend_from_slice(more);
    args.push("Say hello.");
    run(&[], &args, code)
}

/// `llmrpc test openai` with OpenAI at the mock, without retries.
#[track_caller]
fn test_openai(more: &[&str], code: i32) -> Out {
    let base = mock_openai();
    let env = [
        ("OPENAI_API_KEY", "mock"),
        ("OPENAI_BASE_URL", base.as_str()),
        ("LLMRPC_MAX_RETRIES", "0"),
    ];
    let mut args = vec!["test", "openai", "--prompt", "Say hello."];
    args.extend_from_slice(more);
    run(&env, &args, code)
}

// ---- exit codes ----

#[test]
fn a_successful_call_exits_0_on_every_path() {
    let service = service(&[]);
    let model = "gpt-4o-mini_chunks-3";
    assert_eq!(
        ask("complete", &service.url(), model, &[], OK).stdout,
        format!("{THREE}\n")
    );
    assert_eq!(
        ask("stream", &service.url(), model, &[], OK).stdout,
        format!("{THREE}\n")
    );
    run(&[], &["models", "--url", &service.url()], OK);
    assert_eq!(
        test_openai(&["--model", model], OK).stdout,
        format!("{THREE}\n")
    );
    assert_eq!(
        test_openai(&["--model", model, "--stream"], OK).stdout,
        format!("{THREE}\n")
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["complete"][..],                          // no prompt
        &["test", "mistral", "--prompt", "hi"],     // no such target
        &["test", "openai"],                        // no --prompt
        &["complete", "--output", "xml", "hi"],     // no such format
        &["doctor", "--json", "--output", "jsonl"], // two formats
        &["stream", "--max-tokens", "many", "hi"],  // not a number
        &["frobnicate"],                            // no such subcommand
    ] {
        let out = run(&[], args, USAGE);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert!(
            out.stderr.contains("Usage:") || out.stderr.contains("--help"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Help is not an error, and lists the codes.
    let help = run(&[], &["test", "--help"], OK);
    assert!(
        help.stdout
            .contains("Exit codes: 0 ok, 1 other failure, 2 usage error"),
        "{}",
        help.stdout
    );
}

#[test]
fn a_configuration_that_cannot_be_used_exits_2_everywhere() {
    let xml = [("LLMRPC_LOG_FORMAT", "xml"), ("OPENAI_API_KEY", "mock")];
    let out = run(&xml, &["test", "openai", "--prompt", "hi"], USAGE);
    assert!(out.stderr.contains("LLMRPC_LOG_FORMAT"), "{}", out.stderr);
    let out = run(&xml, &["serve", "--addr", "127.0.0.1:0"], USAGE);
    assert!(out.stderr.contains("LLMRPC_LOG_FORMAT"), "{}", out.stderr);
    // doctor says so in its report too: one failed row, the config.
    let report = run(&xml, &["doctor", "--output", "json"], USAGE).json();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        report["checks"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(report["checks"][0]["check"], "config", "{report}");
    assert_eq!(report["checks"][0]["status"], "failed", "{report}");
    let detail = report["checks"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("LLMRPC_LOG_FORMAT"), "{report}");

    // A base URL that is not one is refused when the providers are built.
    let bad = [("OPENAI_API_KEY", "mock"), ("OPENAI_BASE_URL", "not a url")];
    let out = run(&bad, &["test", "all", "--prompt", "hi"], USAGE);
    assert!(out.stderr.contains("openai base URL"), "{}", out.stderr);
    let out = run(&bad, &["doctor"], USAGE);
    let row = out.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("config") && row.contains("failed") && row.contains("openai base URL"),
        "{}",
        out.stdout
    );
    let out = run(&bad, &["serve", "--addr", "127.0.0.1:0"], USAGE);
    assert!(out.stderr.contains("openai base URL"), "{}", out.stderr);
}

#[test]
fn invalid_params_from_the_service_exit_2() {
    let service = service(&[]);
    for command in ["complete", "stream"] {
        let out = ask(
            command,
            &service.url(),
            "gpt-4o-mini",
            &["--max-tokens", "0"],
            USAGE,
        );
        assert!(out.stderr.contains("max_tokens"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{command}: {:?}", out.stdout);
    }
}

#[tokio::test]
async fn a_provider_rejecting_the_key_exits_3() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "message": "Incorrect API key provided", "type": "invalid_request_error",
            "param": null, "code": "invalid_api_key"}})))
        .mount(&upstream)
        .await;
    let service = Service::start(&upstream, &[("LLMRPC_MAX_RETRIES", "0")]);
    for command in ["complete", "stream"] {
        let out = ask(command, &service.url(), "gpt-4o-mini", &[], AUTH);
        assert!(
            out.stderr.contains("Incorrect API key"),
            "{command}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{command}: {:?}", out.stdout);
    }
    let base = format!("{}/v1", upstream.uri());
    let env = [
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("OPENAI_BASE_URL", base.as_str()),
    ];
    for stream in [&[][..], &["--stream"]] {
        let mut args = vec!["test", "openai", "--prompt", "hi"];
        args.extend_from_slice(stream);
        let out = run(&env, &args, AUTH);
        assert!(
            out.stderr.contains("openai provider_auth"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn test_and_doctor_without_any_key_exit_3() {
    for target in ["openai", "anthropic", "gemini", "all"] {
        let out = run(&[], &["test", target, "--prompt", "hi"], AUTH);
        assert!(out.stderr.contains("no key: set"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    // A key of another provider does not help.
    let out = run(
        &[("GEMINI_API_KEY", "g")],
        &["test", "openai", "--prompt", "hi"],
        AUTH,
    );
    assert!(out.stderr.contains("OPENAI_API_KEY"), "{}", out.stderr);

    // doctor still prints its report: every provider skipped for want of a key.
    let report = run(&[], &["doctor", "--json"], AUTH).json();
    assert_eq!(
        report["ok"], true,
        "nothing failed, nothing was checked: {report}"
    );
    let providers: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with("provider "))
        .collect();
    assert_eq!(providers.len(), 3, "{report}");
    assert!(
        providers.iter().all(|c| c["status"] == "skipped"),
        "{report}"
    );
}

#[test]
fn rate_limits_exit_4() {
    let service = service(&[]);
    let model = "gpt-4o-mini_status-429";
    for command in ["complete", "stream"] {
        let out = ask(command, &service.url(), model, &[], LIMITED);
        assert!(
            out.stderr.contains("mock error 429"),
            "{command}: {}",
            out.stderr
        );
    }
    let out = test_openai(&["--model", model], LIMITED);
    assert!(out.stderr.contains("openai rate_limited"), "{}", out.stderr);
}

/// The first admin key, made on the database in `dir` before any service runs.
fn first_admin_key(dir: &TempDir, db: &str) -> String {
    let out = run_in(
        dir,
        &[("LLMRPC_DATABASE_URL", db)],
        &[
            "admin", "keys", "create", "--team", "ops", "--role", "admin",
        ],
        OK,
    );
    out.stdout.trim().to_owned()
}

/// A caller key of a new team made through `url` with `admin`'s key, `settings` its flags.
fn team_key(url: &str, admin: &str, name: &str, settings: &[&str]) -> String {
    let as_admin = ["--url", url, "--api-key", admin];
    let mut create = vec!["admin", "teams", "create", "--name", name];
    create.extend_from_slice(settings);
    create.extend_from_slice(&as_admin);
    run(&[], &create, OK);
    let mut key = vec![
        "admin", "keys", "create", "--team", name, "--role", "caller",
    ];
    key.extend_from_slice(&as_admin);
    run(&[], &key, OK).stdout.trim().to_owned()
}

#[test]
fn refusals_of_callers_and_teams_exit_with_their_class() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/llmrpc.db", dir.path().display());
    let admin = first_admin_key(&dir, &db);
    let service = service(&[("LLMRPC_DATABASE_URL", &db)]);
    let url = service.url();
    let broke = team_key(&url, &admin, "broke", &["--credits", "0"]);
    let narrow = team_key(
        &url,
        &admin,
        "narrow",
        &["--allowed-models", "openai/gpt-4.1"],
    );
    let stranger = "llmrpc-00000000000000000000000000000000deadbeef";

    for command in ["complete", "stream"] {
        // Over SSE, the refusals below are plain JSON answers (401, 403), not event streams.
        for (key, code, says) in [
            (broke.as_str(), LIMITED, "credits"),
            (stranger, AUTH, "not known"),
            ("", AUTH, "needs a caller key"),
            (narrow.as_str(), MODEL, "not allowed for team"),
        ] {
            let flags: &[&str] = if key.is_empty() {
                &[]
            } else {
                &["--api-key", key]
            };
            let out = ask(command, &url, "gpt-4o-mini", flags, code);
            assert!(
                out.stderr.contains(says),
                "{command} {says}: {}",
                out.stderr
            );
            assert!(out.stdout.is_empty(), "{command} {says}: {:?}", out.stdout);
        }
        ask(command, &url, "openai/gpt-4.1", &["--api-key", &narrow], OK);
    }
    run(&[], &["models", "--url", &url], AUTH);
    run(&[], &["trace", "--url", &url, "some-trace"], AUTH);
}

#[test]
fn deadlines_exit_5() {
    let service = service(&[("LLMRPC_TIMEOUT_MS", "300")]);
    let slow = "gpt-4o-mini_latency-3000";
    for command in ["complete", "stream"] {
        let out = ask(command, &service.url(), slow, &[], TIMEOUT);
        assert!(out.stderr.contains("deadline"), "{command}: {}", out.stderr);
    }
    for stream in [&[][..], &["--stream"]] {
        let mut args = vec!["--model", slow, "--timeout-ms", "300"];
        args.extend_from_slice(stream);
        let started = Instant::now();
        let out = test_openai(&args, TIMEOUT);
        assert!(out.stderr.contains("openai timeout"), "{}", out.stderr);
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn an_unavailable_provider_or_service_exits_6() {
    let service = service(&[]);
    let model = "gpt-4o-mini_status-503";
    for command in ["complete", "stream"] {
        let out = ask(command, &service.url(), model, &[], UNAVAILABLE);
        assert!(
            out.stderr.contains("mock error 503"),
            "{command}: {}",
            out.stderr
        );
    }
    let out = test_openai(&["--model", model], UNAVAILABLE);
    assert!(
        out.stderr.contains("openai provider_unavailable"),
        "{}",
        out.stderr
    );

    let closed = ClosedPort::new();
    let nowhere = closed.url();
    for command in ["complete", "stream"] {
        let out = ask(command, &nowhere, "fast", &[], UNAVAILABLE);
        assert!(
            out.stderr.contains("cannot reach"),
            "{command}: {}",
            out.stderr
        );
    }
    run(&[], &["models", "--url", &nowhere], UNAVAILABLE);
    run(&[], &["trace", "--url", &nowhere, "t"], UNAVAILABLE);
}

#[test]
fn an_unknown_model_exits_7() {
    let service = service(&[]);
    for command in ["complete", "stream"] {
        let out = ask(command, &service.url(), "llama-3", &[], MODEL);
        assert!(
            out.stderr.contains("unknown model"),
            "{command}: {}",
            out.stderr
        );
    }
    // A provider that does not know it (404), and a name no provider serves.
    let out = test_openai(&["--model", "gpt-4o-mini_status-404"], MODEL);
    assert!(
        out.stderr.contains("openai model_not_found"),
        "{}",
        out.stderr
    );
    test_openai(&["--model", "mistral/large"], MODEL);
}

#[test]
fn an_answer_that_is_not_json_rpc_exits_1() {
    // The mock answers an unknown path with a plain-text 404.
    let url = format!("{}/nowhere", mock());
    for command in ["complete", "stream"] {
        let out = ask(command, &url, "fast", &[], OTHER);
        assert!(
            out.stderr.starts_with("llmrpc: "),
            "{command}: {}",
            out.stderr
        );
    }
    run(&[], &["models", "--url", &url], OTHER);
}

// ---- output formats ----

#[test]
fn complete_prints_text_json_and_jsonl() {
    let service = service(&[]);
    let url = service.url();
    let model = "gpt-4o-mini_chunks-3";

    let text = ask("complete", &url, model, &["--trace-id", "cli-text"], OK);
    assert_eq!(text.stdout, format!("{THREE}\n"));
    // Standard error holds the trailer alone: no spinner off a terminal.
    assert_eq!(text.stderr.lines().count(), 1, "{}", text.stderr);
    let trailer = text.last_stderr_line();
    assert!(trailer.starts_with("[openai/gpt-4o-mini"), "{trailer}");
    assert!(trailer.ends_with(" · trace cli-text]"), "{trailer}");
    assert!(
        trailer.contains(" ms · ") && trailer.contains(" tokens · "),
        "{trailer}"
    );

    for flag in [&["--output", "json"][..], &["--json"]] {
        let out = ask("complete", &url, model, flag, OK);
        let result = out.json();
        assert_eq!(result["content"], THREE, "{result}");
        assert_eq!(result["provider"], "openai", "{result}");
        assert!(
            result["usage"]["total_tokens"].as_u64().unwrap() > 0,
            "{result}"
        );
        assert!(out.stderr.is_empty(), "{}", out.stderr);
    }
    let out = ask("complete", &url, model, &["--output", "jsonl"], OK);
    let lines = out.jsonl();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(lines[0]["content"], THREE);
}

#[test]
fn stream_prints_text_json_and_jsonl() {
    let service = service(&[]);
    let url = service.url();
    let model = "gpt-4o-mini_chunks-3";

    let text = ask("stream", &url, model, &["--trace-id", "cli-stream"], OK);
    assert_eq!(text.stdout, format!("{THREE}\n"));
    assert_eq!(text.stderr.lines().count(), 1, "{}", text.stderr);
    let trailer = text.last_stderr_line();
    assert!(trailer.starts_with("[openai/gpt-4o-mini"), "{trailer}");
    assert!(trailer.contains(" · first token "), "{trailer}");
    assert!(trailer.ends_with(" · trace cli-stream]"), "{trailer}");

    // json: one array of every chunk, the last one done.
    let chunks = ask("stream", &url, model, &["--output", "json"], OK).json();
    let chunks = chunks.as_array().expect("an array of chunks").clone();
    assert_eq!(chunks.len(), 4, "{chunks:?}");
    let said: String = chunks
        .iter()
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    assert_eq!(said, THREE);
    assert_eq!(chunks[3]["done"], true);
    assert!(chunks[..3].iter().all(|c| c["done"] == false), "{chunks:?}");

    // jsonl: one chunk per line.
    let lines = ask("stream", &url, model, &["--output", "jsonl"], OK).jsonl();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["delta"], "tok0 ");
    assert_eq!(lines[3]["done"], true);
    assert_eq!(lines[3]["usage"]["completion_tokens"], 3);

    // A stream that breaks mid-answer: what came, then the error and its class.
    let broken = "gpt-4o-mini_drop-4_interval-10";
    let out = ask("stream", &url, broken, &[], UNAVAILABLE);
    assert!(
        out.stdout.starts_with("tok0 ") && out.stdout.ends_with('\n'),
        "{:?}",
        out.stdout
    );
    assert!(out.stderr.contains("broke off"), "{}", out.stderr);
    let lines = ask("stream", &url, broken, &["--output", "jsonl"], UNAVAILABLE).jsonl();
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true, "{last}");
    assert_eq!(
        last["error"]["data"]["kind"], "provider_unavailable",
        "{last}"
    );
}

#[test]
fn models_and_trace_print_text_json_and_jsonl() {
    let service = service(&[]);
    let url = service.url();

    let text = run(&[], &["models", "--url", &url], OK);
    let header = text.stdout.lines().next().unwrap();
    assert!(
        header.starts_with("model") && header.contains("aliases"),
        "{header}"
    );
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("openai/gpt-4o-mini ")),
        "{}",
        text.stdout
    );
    let all = run(&[], &["models", "--url", &url, "--json"], OK).json();
    let models = all["models"].as_array().expect("models").clone();
    let lines = run(&[], &["models", "--url", &url, "--output", "jsonl"], OK).jsonl();
    assert_eq!(lines, models);
    assert!(lines.iter().all(|m| m["id"].is_string()));

    ask(
        "complete",
        &url,
        "gpt-4o-mini",
        &["--trace-id", "cli-trace"],
        OK,
    );
    ask(
        "stream",
        &url,
        "gpt-4o-mini",
        &["--trace-id", "cli-trace"],
        OK,
    );
    // The ledger writes in batches, a little after the answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let calls = loop {
        let calls = run(
            &[],
            &["trace", "--url", &url, "--output", "json", "cli-trace"],
            OK,
        )
        .json();
        if calls.as_array().map(Vec::len) == Some(2) {
            break calls;
        }
        assert!(Instant::now() < deadline, "the ledger shows {calls}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let methods: Vec<&str> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["llm.complete", "llm.stream"]);
    let lines = run(
        &[],
        &["trace", "--url", &url, "--output", "jsonl", "cli-trace"],
        OK,
    )
    .jsonl();
    assert_eq!(Value::Array(lines), calls);
    let text = run(&[], &["trace", "--url", &url, "cli-trace"], OK).stdout;
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].starts_with("started") && rows[0].contains("method"),
        "{text}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.contains("  attempt ")).count(),
        2,
        "{text}"
    );
    assert!(rows.iter().any(|r| r.contains("llm.complete")), "{text}");
    let none = run(&[], &["trace", "--url", &url, "no-such-trace"], OK).stdout;
    assert_eq!(none, "no calls recorded under trace no-such-trace\n");
    assert_eq!(
        run(
            &[],
            &["trace", "--url", &url, "--json", "no-such-trace"],
            OK
        )
        .json(),
        json!([])
    );
}

#[test]
fn test_prints_text_json_and_jsonl() {
    let model = "gpt-4o-mini_chunks-3";
    for stream in [&[][..], &["--stream"]] {
        let mut args = vec!["--model", model];
        args.extend_from_slice(stream);
        let text = test_openai(&args, OK);
        assert_eq!(text.stdout, format!("{THREE}\n"));
        assert_eq!(text.stderr.lines().count(), 1, "{}", text.stderr);
        let trailer = text.last_stderr_line();
        assert!(
            trailer.starts_with(&format!("[openai/{model} · ")),
            "{trailer}"
        );
        assert!(trailer.ends_with(" tokens · no price]"), "{trailer}");
        assert_eq!(
            trailer.contains("first token"),
            !stream.is_empty(),
            "{trailer}"
        );

        args.extend(["--output", "json"]);
        let probe = test_openai(&args, OK).json();
        assert_eq!(probe["provider"], "openai", "{probe}");
        assert_eq!(probe["status"], "ok", "{probe}");
        assert_eq!(probe["content"], THREE, "{probe}");
        assert_eq!(probe["model"], format!("openai/{model}"), "{probe}");
        assert_eq!(probe["usage"]["completion_tokens"], 3, "{probe}");
        assert_eq!(probe["ttft_ms"].is_u64(), !stream.is_empty(), "{probe}");
        args.pop();
        args.push("jsonl");
        let lines = test_openai(&args, OK).jsonl();
        assert_eq!(lines.len(), 1);
        // The same object as json's, latencies aside (they differ from run to run).
        let timeless = |mut p: Value| {
            p["latency_ms"] = Value::Null;
            p["ttft_ms"] = Value::Null;
            p
        };
        assert_eq!(timeless(lines[0].clone()), timeless(probe.clone()));
    }
    // A priced model of the catalog: its cost, in the trailer and the JSON.
    let text = test_openai(&["--model", "gpt-4o-mini"], OK);
    assert!(
        text.last_stderr_line().contains(" tokens · $0.0"),
        "{}",
        text.stderr
    );
    let probe = test_openai(&["--model", "gpt-4o-mini", "--json"], OK).json();
    assert!(probe["cost_usd"].as_f64().unwrap() > 0.0, "{probe}");
}

#[tokio::test]
async fn test_all_asks_every_provider_and_exits_with_the_worst_failure() {
    // OpenAI answers, Anthropic rejects the key (3), Gemini cannot be reached (6).
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"}})),
        )
        .mount(&anthropic)
        .await;
    let openai = mock_openai();
    let anthropic_url = anthropic.uri();
    let closed = ClosedPort::new();
    let gemini = closed.url();
    let env = [
        ("OPENAI_API_KEY", "mock"),
        ("OPENAI_BASE_URL", openai.as_str()),
        ("ANTHROPIC_API_KEY", "a"),
        ("ANTHROPIC_BASE_URL", anthropic_url.as_str()),
        ("GEMINI_API_KEY", "g"),
        ("GEMINI_BASE_URL", gemini.as_str()),
        ("LLMRPC_MAX_RETRIES", "0"),
    ];
    let args = ["test", "all", "--prompt", "hi"];
    let out = run(&env, &args, UNAVAILABLE);
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{}", out.stdout);
    assert!(
        rows[0].starts_with("provider") && rows[0].ends_with("answer or error"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("openai ")
            && rows[1].contains(" ok ")
            && rows[1].ends_with("tok0 tok1 tok2 tok3 tok4"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("anthropic ")
            && rows[2].contains(" provider_auth ")
            && rows[2].contains("invalid x-api-key"),
        "{}",
        rows[2]
    );
    assert!(
        rows[3].starts_with("gemini ")
            && rows[3].contains(" provider_unavailable ")
            && rows[3].contains("could not connect"),
        "{}",
        rows[3]
    );
    assert_eq!(
        out.last_stderr_line(),
        "llmrpc: anthropic (provider_auth), gemini (provider_unavailable) failed"
    );

    let mut json = args.to_vec();
    json.push("--json");
    let probes = run(&env, &json, UNAVAILABLE).json();
    let statuses: Vec<(&str, &str)> = probes
        .as_array()
        .expect("an array of probes")
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("openai", "ok"),
            ("anthropic", "provider_auth"),
            ("gemini", "provider_unavailable")
        ]
    );
    let mut jsonl = args.to_vec();
    jsonl.extend(["--output", "jsonl"]);
    let lines = run(&env, &jsonl, UNAVAILABLE).jsonl();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["error"], probes[1]["error"]);

    // Without Gemini, the worst is Anthropic's key.
    let out = run(&env[..4], &args, AUTH);
    assert!(
        out.stdout.lines().any(|r| r.starts_with("gemini ")
            && r.contains(" no_key ")
            && r.contains("set GEMINI_API_KEY")),
        "{}",
        out.stdout
    );
    // OpenAI alone: the others are listed as without a key, and that is no failure.
    let probes = run(&env[..2], &json, OK).json();
    let statuses: Vec<&str> = probes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "no_key", "no_key"]);
}

#[test]
fn doctor_skips_providers_without_a_key_and_fails_on_an_unreachable_base_url() {
    let openai = mock_openai();
    let env = [
        ("OPENAI_API_KEY", "mock"),
        ("OPENAI_BASE_URL", openai.as_str()),
    ];

    let text = run(&env, &["doctor"], OK).stdout;
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].starts_with("check") && rows[0].ends_with("detail"),
        "{text}"
    );
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row {name}:\n{text}"))
            .to_owned()
    };
    assert!(row("config").contains(" ok "), "{text}");
    assert!(row("provider openai").contains(" ok "), "{text}");
    assert!(
        row("provider anthropic").contains(" skipped ")
            && row("provider anthropic").contains("set ANTHROPIC_API_KEY"),
        "{text}"
    );
    assert!(row("provider gemini").contains(" skipped "), "{text}");
    assert!(row("ledger").contains(" ok "), "{text}");
    assert!(row("redis").contains(" skipped "), "{text}");

    let report = run(&env, &["doctor", "--output", "json"], OK).json();
    assert_eq!(report["ok"], true, "{report}");
    let checks = report["checks"].as_array().unwrap().clone();
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config",
            "provider openai",
            "provider anthropic",
            "provider gemini",
            "ledger",
            "redis"
        ]
    );
    assert!(checks[1]["latency_ms"].is_u64(), "{report}");
    let lines = run(&env, &["doctor", "--output", "jsonl"], OK).jsonl();
    let statuses: Vec<&str> = lines
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["ok", "ok", "skipped", "skipped", "ok", "skipped"]
    );

    // A base URL where nothing listens: the provider's row fails, and the exit code says why.
    let closed = ClosedPort::new();
    let nowhere = closed.url();
    let env = [
        ("OPENAI_API_KEY", "mock"),
        ("OPENAI_BASE_URL", nowhere.as_str()),
        ("LLMRPC_MAX_RETRIES", "0"),
    ];
    let out = run(&env, &["doctor"], UNAVAILABLE);
    let failed = out
        .stdout
        .lines()
        .find(|r| r.starts_with("provider openai"))
        .unwrap_or_default();
    assert!(
        failed.contains(" failed ")
            && failed.contains(&nowhere)
            && failed.contains("provider_unavailable"),
        "{}",
        out.stdout
    );
    assert_eq!(out.last_stderr_line(), "llmrpc: some checks failed");
    let report = run(&env, &["doctor", "--json"], UNAVAILABLE).json();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["checks"][1]["status"], "failed", "{report}");
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let service = service(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = service.url();
    for args in [
        &["models", "--url", url.as_str(), "--output", "jsonl"][..],
        &[
            "stream",
            "--url",
            url.as_str(),
            "--model",
            "gpt-4o-mini",
            "hi",
        ],
    ] {
        let mut child = StdCommand::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn llmrpc");
        // `| head -0`: the reader is gone before the first line is written.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // Ended by SIGPIPE, as `cat` is: the shell reports 141.
        assert_eq!(
            output.status.signal(),
            Some(13),
            "{args:?}: {:?} {stderr}",
            output.status
        );
    }
}

// ---- terminals ----

/// Lines of a child's standard error, gathered on a thread.
fn gather(
    stderr: impl Read + Send + 'static,
) -> (mpsc::Receiver<String>, std::thread::JoinHandle<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut lines = BufReader::new(stderr);
        let mut line = Vec::new();
        while lines.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            all.append(&mut line);
        }
        all
    });
    (rx, reader)
}

#[test]
fn serve_pretty_logs_off_a_terminal_have_no_control_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let openai = mock_openai();
    let mut child = StdCommand::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LLMRPC_ADDR", "127.0.0.1:0")
        .env("LLMRPC_LOG_FORMAT", "pretty")
        .env("LLMRPC_LOG", "debug")
        .env("LLMRPC_MAX_RETRIES", "0")
        .env("OPENAI_API_KEY", "mock")
        .env("OPENAI_BASE_URL", &openai)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn llmrpc serve");
    let (lines, reader) = gather(child.stderr.take().unwrap());
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a listening line");
        if let Some((_, rest)) = line.split_once("listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let url = format!("http://{addr}");
    // Log lines of every level: a call, a failing one (warn), an unknown model.
    ask(
        "complete",
        &url,
        "gpt-4o-mini",
        &["--trace-id", "pretty-1"],
        OK,
    );
    ask("complete", &url, "gpt-4o-mini_status-503", &[], UNAVAILABLE);
    ask("stream", &url, "llama-3", &[], MODEL);
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = String::from_utf8(reader.join().unwrap()).unwrap();
    assert!(
        logs.contains("pretty-1") && logs.contains(" WARN "),
        "{logs}"
    );
    assert!(!logs.contains('\x1b'), "colour off a terminal:\n{logs:?}");
}

/// Runs `llmrpc <args>` on a pseudo-terminal (util-linux `script`): its standard error is a
/// terminal there. `None` where `script` is missing.
fn on_a_terminal(env: &[(&str, &str)], args: &str) -> Option<(i32, String)> {
    let available = StdCommand::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("script (util-linux) is not installed: the terminal checks are skipped");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = StdCommand::new("script")
        .args(["-qefc", &format!("{BIN} {args}"), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    Some((output.status.code().unwrap_or(-1), text))
}

#[test]
fn on_a_terminal_serve_logs_are_coloured_unless_no_color() {
    // A port taken, so that serve logs its first lines and stops.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = format!("serve --addr {}", taken.local_addr().unwrap());
    let env = [("LLMRPC_LOG_FORMAT", "pretty"), ("LLMRPC_LOG", "info")];
    let Some((code, coloured)) = on_a_terminal(&env, &args) else {
        return;
    };
    assert_eq!(code, OTHER, "{coloured}");
    assert!(
        coloured.contains("call ledger open") && coloured.contains('\x1b'),
        "{coloured:?}"
    );
    // NO_COLOR set to anything but the empty string turns colour off (no-color.org).
    for (no_color, colour) in [("1", false), ("", true)] {
        let mut env = env.to_vec();
        env.push(("NO_COLOR", no_color));
        let (code, logs) = on_a_terminal(&env, &args).unwrap();
        assert_eq!(code, OTHER, "{logs}");
        assert!(logs.contains("call ledger open"), "{logs:?}");
        assert_eq!(
            logs.contains('\x1b'),
            colour,
            "NO_COLOR={no_color:?}: {logs:?}"
        );
    }
}
