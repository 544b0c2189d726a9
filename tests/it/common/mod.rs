//! A real `llmrpc serve` process on 127.0.0.1 with a wiremock OpenAI upstream, and the clients
//! the tests drive it with.
#![allow(dead_code)]

pub mod gate;
pub mod pg;
pub mod raw;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const OPENAI_KEY: &str = "sk-test-0123456789abcdefghijklmnop";

/// The service's log lines so far, and a signal for each new one.
#[derive(Default)]
struct Logs {
    lines: Mutex<Vec<String>>,
    added: Condvar,
}

pub struct Service {
    child: Child,
    pub addr: String,
    logs: Arc<Logs>,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts the service with the OpenAI key set and its base URL pointed at `upstream`.
    pub fn start(upstream: &MockServer, env: &[(&str, &str)]) -> Service {
        let base = format!("{}/v1", upstream.uri());
        let mut all = vec![
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("OPENAI_BASE_URL", base.as_str()),
        ];
        all.extend_from_slice(env);
        Service::start_with(&all)
    }

    /// Starts the service with exactly these variables (plus test logging) and nothing else.
    pub fn start_with(env: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_llmrpc"));
        command
            .arg("serve")
            .env_clear()
            .env("LLMRPC_ADDR", "127.0.0.1:0")
            .env("LLMRPC_LOG_FORMAT", "json")
            .env("LLMRPC_LOG", "info,llmrpc=debug")
            // Short backoffs keep retrying tests fast; tests that need others set their own.
            .env("LLMRPC_RETRY_BASE_MS", "1")
            .env("LLMRPC_RETRY_CAP_MS", "10")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn llmrpc");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Logs::default());
        let (addr_tx, addr_rx) = mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = addr_tx.send(addr);
                }
                sink.lines.lock().unwrap().push(line);
                sink.added.notify_all();
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => panic!(
                "llmrpc did not start; logs:\n{}",
                logs.lines.lock().unwrap().join("\n")
            ),
        };
        Service {
            child,
            addr,
            logs,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lines.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `pred` (the logs arrive through a pipe, a little after
    /// the answer), failing after 10 s. It sleeps until each new line rather than spinning, so
    /// that it leaves the cores to the processes it waits for.
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = self.logs.lines.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| pred(l)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no such log line in:\n{}",
                lines.join("\n")
            );
            lines = self.logs.added.wait_timeout(lines, left).unwrap().0;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            // A poll, not a spin: the exit needs the cores this would take.
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// POSTs a JSON body to `/` and returns the HTTP status and the parsed answer.
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string(), &[]).await
    }

    pub async fn post_raw(&self, body: String, headers: &[(&str, &str)]) -> (u16, Value) {
        post_to(self.url(), body, headers).await
    }

    /// An `llm.stream` request with `id`, asking for Server-Sent Events.
    pub fn sse_request(&self, id: Value, params: Value) -> reqwest::RequestBuilder {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "llm.stream", "params": params});
        http_client()
            .post(self.url())
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(request.to_string())
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        http_client()
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Calls one method over HTTP with named params and returns the whole response object.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.post(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .await
            .1
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local address on which nothing listens, for as long as this lives. Its port stays bound but
/// not listening, so that a connection to it is refused at once and no other process (a test's
/// service, another build's) can be given the port meanwhile, as it could one merely freed.
pub struct ClosedPort {
    addr: std::net::SocketAddr,
    _socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("bind a port");
        ClosedPort {
            addr: socket.local_addr().expect("its address"),
            _socket: socket,
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// POSTs `body` as JSON to `url`: the HTTP status and the parsed answer. Owns its inputs, so
/// that a caller can be spawned and cancelled.
pub async fn post_to(url: String, body: String, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = http_client()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// One client for the whole test binary: building one loads the system's root certificates.
pub fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| llmrpc::http_client(Duration::from_secs(5)).expect("client"))
        .clone()
}

/// `llm.complete` params for `model` with one user message.
pub fn params(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello."}]})
}

pub fn completion_body(content: &str) -> Value {
    json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1, "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    })
}

/// An OpenAI stream of `pieces`, finishing with `stop`, a usage chunk and `[DONE]`.
pub fn stream_body(pieces: &[&str]) -> String {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut out = format!(
        "data: {}\n\n",
        chunk(json!({"role": "assistant", "content": ""}), Value::Null)
    );
    for piece in pieces {
        out += &format!(
            "data: {}\n\n",
            chunk(json!({"content": piece}), Value::Null)
        );
    }
    out += &format!("data: {}\n\n", chunk(json!({}), json!("stop")));
    let usage = json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-mini",
                       "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}});
    out += &format!("data: {usage}\n\ndata: [DONE]\n\n");
    out
}

/// Mounts a non-streaming answer of `content` and a streaming answer of `pieces`.
pub async fn mount_openai(server: &MockServer, content: &str, pieces: &[&str]) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(pieces)),
        )
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion_body(content)))
        .with_priority(2)
        .mount(server)
        .await;
}

/// An upstream whose answer is `echo:<x-request-id>`, so that each caller can check that it got
/// its own answer back.
/// The address of the `listening on …` line, in the JSON log format (`fields.addr`) or the text
/// one (`… listening on 127.0.0.1:PORT addr=127.0.0.1:PORT`).
fn listening_addr(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        return v["fields"]["addr"].as_str().map(str::to_owned);
    }
    let (_, rest) = line.split_once("listening on ")?;
    let (_, addr) = rest.split_once("addr=")?;
    Some(addr.trim().to_owned())
}

pub async fn mount_echo(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(|req: &Request| {
            let id = req
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            ResponseTemplate::new(200).set_body_json(completion_body(&format!("echo:{id}")))
        })
        .mount(server)
        .await;
}

pub async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads an SSE body into the JSON of each event's `data:`.
pub async fn sse_events(response: reqwest::Response) -> Vec<Value> {
    let text = response.text().await.expect("SSE body");
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).expect("event JSON"))
        .collect()
}
