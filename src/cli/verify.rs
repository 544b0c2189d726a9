//! `llmrpc verify`: the end-to-end suite a staging pipeline runs against a deployed service, over
//! the network, as its callers would: every provider whole and streamed (WebSocket and SSE), the
//! trace id found again by `ops.trace`, the contract's errors, a deadline, many calls at once, the
//! plain-HTTP endpoints and the other surfaces. Each case has a stable name for CI history; with
//! `--repeat` a case passes when its success rate meets `--min-success`. Reports as text or JSON,
//! and as JUnit XML for CI.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::output::{Failure, progress, table};
use crate::ledger::Prices;
use crate::providers;
use crate::sse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The service to verify.
    #[arg(long, env = "LLMRPC_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A caller key, when the service requires one (`--api-key` as on the other subcommands).
    #[arg(
        long,
        alias = "api-key",
        env = "LLMRPC_API_KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    /// The model per provider (`openai=gpt-4.1-mini,anthropic=…`); each provider's member of
    /// the tier `fast` otherwise.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// The providers to verify; those the service has configured otherwise.
    #[arg(long, value_delimiter = ',')]
    providers: Vec<String>,
    /// Calls sent at once by the `concurrent` case.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Runs of the whole suite; each case's success rate is over its runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// The success rate a case needs to pass.
    #[arg(long, default_value_t = 1.0)]
    min_success: f64,
    /// Deadline of each call.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// The answer's length cap of every call, which bounds what a live run costs.
    #[arg(long, default_value_t = 16)]
    max_tokens: u32,
    /// The service's providers point at `llmrpc mock-upstream`: also run the fault cases it
    /// can inject (a retried 503, a 429 with Retry-After, a stream cut off).
    #[arg(long)]
    mock: bool,
    /// List the cases and what they would send, and stop.
    #[arg(long)]
    dry_run: bool,
    /// Write a JUnit XML report here.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    output: VerifyFormat,
}

/// The outcome of one run of one case.
type Outcome = Result<String, String>;

/// A case's runs.
#[derive(Debug, Default, Serialize)]
struct CaseReport {
    case: String,
    /// The provider, or `service` for cases of the service as a whole.
    target: String,
    runs: u32,
    passed: u32,
    success_rate: f64,
    ok: bool,
    /// What the last run found: a detail when it passed, the reason when it failed (with the
    /// trace id to look up).
    detail: String,
    seconds: f64,
}

struct Client {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
    timeout_ms: u64,
    max_tokens: u32,
}

impl Client {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}{path}", self.url));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(format!("{}{path}", self.url));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// `llm.complete`'s params for `model`, under `trace_id`.
    fn params(&self, model: &str, trace_id: &str) -> Value {
        json!({
            "model": model,
            "messages": [{"role": "user", "content": "Reply with one short sentence."}],
            "max_tokens": self.max_tokens,
            "timeout_ms": self.timeout_ms,
            "a2a_context": {"trace_id": trace_id, "source_agent": "llmrpc-verify"},
        })
    }

    /// One JSON-RPC call over HTTP: the whole response object.
    async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .post("/")
            .json(&request)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.url))?;
        response
            .json()
            .await
            .map_err(|e| format!("{method}: the answer is not JSON: {e}"))
    }

    async fn result(&self, method: &str, params: Value) -> Result<Value, String> {
        let answer = self.rpc(method, params).await?;
        match answer.get("error") {
            Some(error) => Err(format!("{method} failed: {error}")),
            None => Ok(answer["result"].clone()),
        }
    }
}

fn new_trace_id() -> String {
    format!("verify-{:016x}", fastrand::u64(..))
}

/// Checks that every chunk of a stream is numbered in order and carries the trace id, and that
/// the last is `done` with usage; the streamed text.
fn check_chunks(chunks: &[Value], trace_id: &str) -> Outcome {
    let Some(last) = chunks.last() else {
        return Err(format!("no chunk (trace {trace_id})"));
    };
    for (i, chunk) in chunks.iter().enumerate() {
        if chunk["index"] != json!(i) {
            return Err(format!(
                "chunk {i} has index {} (trace {trace_id})",
                chunk["index"]
            ));
        }
        if chunk["trace_id"] != json!(trace_id) {
            return Err(format!("chunk {i} lacks the trace id {trace_id}"));
        }
    }
    if let Some(error) = last.get("error") {
        return Err(format!("the stream failed: {error} (trace {trace_id})"));
    }
    if last["done"] != json!(true) || last["usage"].is_null() {
        return Err(format!(
            "the last chunk is not done with usage: {last} (trace {trace_id})"
        ));
    }
    let text: String = chunks.iter().filter_map(|c| c["delta"].as_str()).collect();
    Ok(format!(
        "{} chunks, {} characters",
        chunks.len(),
        text.len()
    ))
}

async fn complete(client: &Client, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let result = client
        .result("llm.complete", client.params(model, &trace_id))
        .await?;
    if result["trace_id"] != json!(trace_id) {
        return Err(format!("the result lacks the trace id {trace_id}"));
    }
    let capped = result["finish_reason"] == "length";
    match result["content"].as_str() {
        Some(content) if !content.is_empty() || capped => Ok(format!(
            "{}/{} in {} ms{}",
            result["provider"].as_str().unwrap_or("?"),
            result["model"].as_str().unwrap_or("?"),
            result["latency_ms"],
            if content.is_empty() { CAPPED } else { "" }
        )),
        _ => Err(format!("an empty answer (trace {trace_id})")),
    }
}

/// Reasoning models (`gpt-5*`, `o1`/`o3`/`o4`, Gemini 2.5) spend `max_tokens` on their hidden
/// reasoning first: at verify's small cap they often answer no text, finishing with `length`.
/// That is a whole round trip through the service, so it passes, saying so.
const CAPPED: &str = ", no text before the token cap (finish_reason length)";

async fn stream_sse(client: &Client, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.stream",
                         "params": client.params(model, &trace_id)});
    let response = client
        .post("/")
        .header("accept", "text/event-stream")
        .json(&request)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", client.url))?;
    let mut events = std::pin::pin!(sse::decode(response.bytes_stream()));
    let mut chunks = Vec::new();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| format!("the stream broke: {e} (trace {trace_id})"))?;
        let answer: Value = serde_json::from_str(&event.data)
            .map_err(|e| format!("an event is not JSON: {e} (trace {trace_id})"))?;
        if let Some(error) = answer.get("error") {
            return Err(format!("llm.stream failed: {error}"));
        }
        let chunk = answer["result"].clone();
        let done = chunk["done"] == json!(true);
        chunks.push(chunk);
        if done {
            break;
        }
    }
    check_chunks(&chunks, &trace_id)
}

async fn stream_ws(client: &Client, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let url = client.url.replacen("http", "ws", 1);
    let mut upgrade = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(key) = &client.key {
        let value = format!("Bearer {key}")
            .parse()
            .map_err(|_| "the key is not a header value")?;
        upgrade.headers_mut().insert("authorization", value);
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(upgrade)
        .await
        .map_err(|e| format!("WebSocket: {e}"))?;
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.stream",
                         "params": client.params(model, &trace_id)});
    socket
        .send(Message::text(request.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Duration::from_millis(client.timeout_ms + 5_000);
    let mut chunks = Vec::new();
    let read = async {
        while let Some(message) = socket.next().await {
            let Message::Text(text) = message.map_err(|e| e.to_string())? else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if let Some(error) = message.get("error") {
                return Err(format!("llm.stream failed: {error}"));
            }
            if message["method"] == "llm.stream.chunk" {
                let chunk = message["params"]["result"].clone();
                let done = chunk["done"] == json!(true);
                chunks.push(chunk);
                if done {
                    return Ok(());
                }
            }
        }
        Err("the socket closed before the last chunk".to_owned())
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("{e} (trace {trace_id})")),
        Err(_) => {
            return Err(format!(
                "no last chunk in {} ms (trace {trace_id})",
                deadline.as_millis()
            ));
        }
    }
    let _ = socket.close(None).await;
    check_chunks(&chunks, &trace_id)
}

/// A call, then `ops.trace` of its trace id: the call is there, with its attempts, tokens and
/// cost.
async fn trace_roundtrip(client: &Client, model: &str, usage: bool) -> Outcome {
    let trace_id = new_trace_id();
    let result = client
        .result("llm.complete", client.params(model, &trace_id))
        .await?;
    // Behind a load balancer, ops.trace may reach another replica than the call did, and that
    // replica's ledger writer may hold the record for up to ~250 ms (operations.md): ask again
    // for a while before calling the record missing.
    let patience = Instant::now() + Duration::from_secs(2);
    let calls = loop {
        let calls = client
            .result("ops.trace", json!({"trace_id": trace_id}))
            .await?;
        if calls.as_array().is_some_and(|c| !c.is_empty()) || Instant::now() >= patience {
            break calls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(call) = calls.as_array().and_then(|c| c.first()) else {
        return Err(format!(
            "ops.trace does not find trace {trace_id} after 2 s (several replicas: is the ledger shared, on PostgreSQL?)"
        ));
    };
    if call["attempts"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!(
            "the recorded call has no attempts (trace {trace_id})"
        ));
    }
    if !usage {
        return Ok(format!(
            "found with {} attempt(s)",
            call["attempts"].as_array().map_or(0, Vec::len)
        ));
    }
    let total = result["usage"]["total_tokens"].as_u64().unwrap_or(0);
    let parts = result["usage"]["prompt_tokens"].as_u64().unwrap_or(0)
        + result["usage"]["completion_tokens"].as_u64().unwrap_or(0);
    if total == 0 || total != parts {
        return Err(format!(
            "usage does not add up: {} (trace {trace_id})",
            result["usage"]
        ));
    }
    if call["usage"]["total_tokens"].as_u64() != Some(total) {
        return Err(format!(
            "the ledger's tokens differ from the answer's (trace {trace_id})"
        ));
    }
    let cost = call["cost_usd"].as_f64().unwrap_or(-1.0);
    if cost < 0.0 {
        return Err(format!("the ledger's cost is missing (trace {trace_id})"));
    }
    Ok(format!("{total} tokens, {cost:.6} USD"))
}

/// A call expected to fail with `code`.
async fn expect_error(client: &Client, params: Value, code: i64) -> Outcome {
    let trace_id = params["a2a_context"]["trace_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let answer = client.rpc("llm.complete", params).await?;
    match answer["error"]["code"].as_i64() {
        Some(got) if got == code => {
            if answer["error"]["data"]["trace_id"] != json!(trace_id) {
                return Err(format!("error.data lacks the trace id {trace_id}"));
            }
            Ok(format!(
                "{code}: {}",
                answer["error"]["message"].as_str().unwrap_or_default()
            ))
        }
        _ => Err(format!("expected {code}, got {answer}")),
    }
}

/// A 1 ms deadline answered with -32003, soon. Against `llmrpc mock-upstream` the model asks
/// for a slow answer: the mock can answer within the millisecond, and the call would succeed.
async fn deadline(client: &Client, model: &str, mock: bool) -> Outcome {
    let trace_id = new_trace_id();
    let model = match mock {
        true => format!("{model}_latency-1000"),
        false => model.to_owned(),
    };
    let mut params = client.params(&model, &trace_id);
    params["timeout_ms"] = json!(1);
    let started = Instant::now();
    let outcome = expect_error(client, params, -32003).await?;
    let took = started.elapsed();
    match took < Duration::from_secs(2) {
        true => Ok(format!("{outcome} in {} ms", took.as_millis())),
        false => Err(format!(
            "a 1 ms deadline answered after {} ms (trace {trace_id})",
            took.as_millis()
        )),
    }
}

async fn concurrent(client: &Client, model: &str, n: usize, min_success: f64) -> Outcome {
    let calls = (0..n).map(|_| async {
        let started = Instant::now();
        let ok = complete(client, model).await.is_ok();
        (ok, started.elapsed())
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|(ok, _)| *ok).count();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort_unstable();
    // `--concurrency 0` sends nothing: no latencies to rank.
    let at = |q: f64| {
        let rank = (latencies.len().saturating_sub(1) as f64 * q) as usize;
        latencies.get(rank).map_or(0, Duration::as_millis)
    };
    let rate = ok as f64 / n.max(1) as f64;
    let detail = format!("{ok}/{n} answered, p50 {} ms, p99 {} ms", at(0.5), at(0.99));
    if n == 0 || rate >= min_success {
        Ok(detail)
    } else {
        Err(detail)
    }
}

async fn health_ready_metrics(client: &Client) -> Outcome {
    let health: Value = client
        .get("/health")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if health != json!({"status": "ok"}) {
        return Err(format!("/health answered {health}"));
    }
    let ready = client
        .get("/ready")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !ready.status().is_success() {
        return Err(format!("/ready answered {}", ready.status()));
    }
    let metrics = client
        .get("/metrics")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    match metrics.contains("llm_requests_total") {
        true => Ok("health, ready and metrics answer".into()),
        false => Err("/metrics lacks llm_requests_total".into()),
    }
}

/// `Ok(None)` when the service does not offer the surface.
async fn openai_compat(client: &Client, model: &str) -> Result<Option<String>, String> {
    let body = json!({"model": model, "max_tokens": client.max_tokens,
                      "messages": [{"role": "user", "content": "Reply with one short sentence."}]});
    let response = client
        .post("/v1/chat/completions")
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let trace = response
        .headers()
        .get("x-llmrpc-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    let status = response.status();
    let answer: Value = response.json().await.map_err(|e| e.to_string())?;
    let capped = answer["choices"][0]["finish_reason"] == "length";
    match answer["choices"][0]["message"]["content"].as_str() {
        Some(content) if status.is_success() && (!content.is_empty() || capped) => {
            Ok(Some(format!(
                "{} answered{}",
                answer["model"].as_str().unwrap_or("?"),
                if content.is_empty() { CAPPED } else { "" }
            )))
        }
        _ => Err(format!("{status}: {answer} (trace {trace})")),
    }
}

/// `Ok(None)` when the service is not an A2A agent.
async fn a2a(client: &Client, model: &str) -> Result<Option<String>, String> {
    let card = client
        .get("/.well-known/agent-card.json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if card.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let card: Value = card.json().await.map_err(|e| e.to_string())?;
    let Some(url) = card["supportedInterfaces"][0]["url"].as_str() else {
        return Err(format!("the agent card names no interface: {card}"));
    };
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": new_trace_id(), "role": "ROLE_USER",
                    "parts": [{"text": "Reply with one short sentence."}],
                    "metadata": {"model": model}}}});
    let mut post = client
        .http
        .post(url)
        .header("a2a-version", "1.0")
        .json(&request);
    if let Some(key) = &client.key {
        post = post.bearer_auth(key);
    }
    let answer: Value = post
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let task = &answer["result"]["task"];
    match task["status"]["state"].as_str() {
        Some("TASK_STATE_COMPLETED") if task["artifacts"][0]["parts"][0]["text"].is_string() => {
            Ok(Some(format!(
                "task {} completed",
                task["id"].as_str().unwrap_or("?")
            )))
        }
        _ => Err(format!("SendMessage answered {answer}")),
    }
}

/// The mock's faults: a 503 retried, a 429 with Retry-After, a stream cut off midway.
async fn mock_fault(client: &Client, case: &str, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    match case {
        "retry_transient" => {
            let params = client.params(&format!("{model}_status-503"), &trace_id);
            let answer = client.rpc("llm.complete", params).await?;
            let attempts = answer["error"]["data"]["attempts"].as_u64().unwrap_or(0);
            // The mock's 503, not any unavailability (a provider that cannot be reached, or
            // whose circuit is open, fails with -32004 too).
            let status = answer["error"]["data"]["status"].as_u64();
            match answer["error"]["code"].as_i64() {
                Some(-32004) if attempts > 1 && status == Some(503) => {
                    Ok(format!("-32004 after {attempts} attempts"))
                }
                _ => Err(format!("expected -32004 after retries, got {answer}")),
            }
        }
        "rate_limit_retry_after" => {
            // A Retry-After beyond the call's deadline is answered at once, not waited out.
            let mut params = client.params(&format!("{model}_status-429_retryafter-5"), &trace_id);
            params["timeout_ms"] = json!(1_000);
            let answer = client.rpc("llm.complete", params).await?;
            let wait = answer["error"]["data"]["retry_after_ms"].as_u64();
            match (answer["error"]["code"].as_i64(), wait) {
                (Some(-32002), Some(wait)) => Ok(format!("-32002, retry_after_ms {wait}")),
                _ => Err(format!("expected -32002 with retry_after_ms, got {answer}")),
            }
        }
        _ => {
            let request = json!({"jsonrpc": "2.0", "id": 1, "method": "llm.stream",
                "params": client.params(&format!("{model}_chunks-10_drop-3_interval-5"), &trace_id)});
            let response = client
                .post("/")
                .header("accept", "text/event-stream")
                .json(&request)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let mut events = std::pin::pin!(sse::decode(response.bytes_stream()));
            let mut last = Value::Null;
            let mut deltas = 0;
            while let Some(Ok(event)) = events.next().await {
                last = serde_json::from_str(&event.data).unwrap_or_default();
                if last["result"]["delta"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
                {
                    deltas += 1;
                }
            }
            // Broken off midway: a stream refused before its first delta is another failure.
            match last["result"]["error"]["code"]
                .as_i64()
                .or(last["error"]["code"].as_i64())
            {
                Some(-32004) if deltas > 0 => Ok(format!(
                    "the stream ended with -32004 after {deltas} deltas"
                )),
                _ => Err(format!(
                    "expected a stream ending in -32004, got {last} (trace {trace_id})"
                )),
            }
        }
    }
}

/// The providers to verify and their models, from the flags or the service's `llm.models`.
async fn targets(client: &Client, args: &VerifyArgs) -> Result<Vec<(String, String)>, Failure> {
    // Not reaching the service is exit 6; a service that answers with an error (a missing or
    // rejected key above all) exits by that error's class, 3 for auth.
    let answer = client
        .rpc("llm.models", json!({}))
        .await
        .map_err(Failure::unreachable)?;
    if let Some(error) = answer.get("error") {
        let failure = Failure::of_rpc(error);
        return Err(Failure::new(
            failure.code,
            format!("llm.models failed: {}", failure.message),
        ));
    }
    let catalog = &answer["result"];
    let models = catalog["models"].as_array().cloned().unwrap_or_default();
    let chosen: BTreeMap<&str, &str> = args
        .models
        .iter()
        .filter_map(|m| m.split_once('='))
        .collect();
    let configured: Vec<String> = {
        let mut names: Vec<String> = models
            .iter()
            .filter(|m| m["configured"] == json!(true))
            .filter_map(|m| m["provider"].as_str().map(str::to_owned))
            .collect();
        names.dedup();
        names
    };
    let providers = if args.providers.is_empty() {
        configured
    } else {
        args.providers.clone()
    };
    let mut targets = Vec::new();
    for provider in providers {
        let model = match chosen.get(provider.as_str()) {
            Some(model) if model.contains('/') => (*model).to_owned(),
            Some(model) => format!("{provider}/{model}"),
            None => {
                let of = |m: &&Value| m["provider"] == json!(provider);
                let fast = models.iter().filter(of).find(|m| {
                    m["aliases"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "fast"))
                });
                let found = fast.or_else(|| models.iter().find(of));
                match found.and_then(|m| m["id"].as_str()) {
                    Some(id) => id.to_owned(),
                    None => {
                        return Err(Failure::new(
                            2,
                            format!("the service lists no model of {provider}"),
                        ));
                    }
                }
            }
        };
        targets.push((provider, model));
    }
    if targets.is_empty() {
        return Err(Failure::new(
            3,
            "the service has no configured provider to verify",
        ));
    }
    Ok(targets)
}

/// The cases, in order: (case, target, model).
fn cases(targets: &[(String, String)], mock: bool) -> Vec<(&'static str, String, String)> {
    let mut cases = Vec::new();
    for (provider, model) in targets {
        for case in [
            "complete",
            "stream_ws",
            "stream_sse",
            "trace_roundtrip",
            "usage_and_cost",
        ] {
            cases.push((case, provider.clone(), model.clone()));
        }
        if mock {
            for case in ["retry_transient", "rate_limit_retry_after", "stream_drop"] {
                cases.push((case, provider.clone(), model.clone()));
            }
        }
    }
    let first = targets[0].1.clone();
    for case in [
        "unknown_model",
        "invalid_params",
        "deadline",
        "concurrent",
        "health_ready_metrics",
        "openai_compat",
        "a2a",
    ] {
        cases.push((case, "service".to_owned(), first.clone()));
    }
    cases
}

/// Runs one case once; `Ok(None)` for a surface the service does not offer.
async fn run_case(
    client: &Client,
    args: &VerifyArgs,
    case: &str,
    model: &str,
) -> Result<Option<String>, String> {
    let outcome = match case {
        "complete" => complete(client, model).await,
        "stream_ws" => stream_ws(client, model).await,
        "stream_sse" => stream_sse(client, model).await,
        "trace_roundtrip" => trace_roundtrip(client, model, false).await,
        "usage_and_cost" => trace_roundtrip(client, model, true).await,
        "unknown_model" => {
            expect_error(
                client,
                client.params("no-such-model-for-verify", &new_trace_id()),
                -32001,
            )
            .await
        }
        "invalid_params" => {
            let mut params = client.params(model, &new_trace_id());
            params["messages"] = json!([]);
            expect_error(client, params, -32602).await
        }
        "deadline" => deadline(client, model, args.mock).await,
        "concurrent" => concurrent(client, model, args.concurrency, args.min_success).await,
        "health_ready_metrics" => health_ready_metrics(client).await,
        "openai_compat" => return openai_compat(client, model).await,
        "a2a" => return a2a(client, model).await,
        fault => mock_fault(client, fault, model).await,
    };
    outcome.map(Some)
}

pub async fn run(args: VerifyArgs) -> Result<(), Failure> {
    let http = providers::http_client(Duration::from_secs(10))
        .map_err(|e| Failure::from(e.to_string()))?;
    let client = Client {
        http,
        url: args.url.trim_end_matches('/').to_owned(),
        key: args.key.clone(),
        timeout_ms: args.timeout_ms,
        max_tokens: args.max_tokens,
    };
    let targets = targets(&client, &args).await?;
    let cases = cases(&targets, args.mock);
    let calls_per_run = cases.len() + args.concurrency;
    let calls = calls_per_run as u64 * u64::from(args.repeat);
    let dearest = dearest_cost(&targets, args.max_tokens);
    eprintln!(
        "verify {}: {} cases × {} run(s), at most {calls} model calls of ≤ {} output tokens: ≤ {:.4} USD at list prices",
        client.url,
        cases.len(),
        args.repeat,
        args.max_tokens,
        dearest * calls as f64
    );
    if args.dry_run {
        for (case, target, model) in &cases {
            println!("{target:<10} {case:<24} {model}");
        }
        return Ok(());
    }
    let bar = progress(cases.len() as u64 * u64::from(args.repeat), "verify");
    let mut reports: Vec<CaseReport> = Vec::new();
    for _ in 0..args.repeat {
        for (i, (case, target, model)) in cases.iter().enumerate() {
            let started = Instant::now();
            let outcome = run_case(&client, &args, case, model).await;
            bar.inc(1);
            if reports.len() <= i {
                reports.push(CaseReport {
                    case: (*case).to_owned(),
                    target: target.clone(),
                    ..CaseReport::default()
                });
            }
            let report = &mut reports[i];
            report.seconds += started.elapsed().as_secs_f64();
            match outcome {
                Ok(None) => report.detail = "not offered by this service: skipped".into(),
                Ok(Some(detail)) => {
                    report.runs += 1;
                    report.passed += 1;
                    report.detail = detail;
                }
                Err(reason) => {
                    report.runs += 1;
                    report.detail = reason;
                }
            }
        }
    }
    bar.finish_and_clear();
    for report in &mut reports {
        report.success_rate = match report.runs {
            0 => 1.0,
            runs => f64::from(report.passed) / f64::from(runs),
        };
        report.ok = report.success_rate >= args.min_success;
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    if let Some(path) = &args.report {
        std::fs::write(path, junit(&reports))
            .map_err(|e| Failure::from(format!("cannot write {}: {e}", path.display())))?;
    }
    match args.output {
        VerifyFormat::Json => {
            let summary = json!({"url": client.url, "ok": failed == 0, "cases": reports.len(),
                                 "failed": failed, "min_success": args.min_success,
                                 "repeat": args.repeat, "results": reports});
            println!("{summary:#}");
        }
        VerifyFormat::Text => {
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|r| {
                    vec![
                        r.target.clone(),
                        r.case.clone(),
                        if r.runs == 0 {
                            "skipped".into()
                        } else if r.ok {
                            "ok".into()
                        } else {
                            "FAILED".into()
                        },
                        format!("{}/{}", r.passed, r.runs),
                        r.detail.clone(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(&["target", "case", "result", "passed", "detail"], &rows)
            );
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Failure::new(
            1,
            format!(
                "{n} of {} cases below {:.0} % success",
                reports.len(),
                args.min_success * 100.0
            ),
        )),
    }
}

/// What one call may cost at most at list prices, the dearest provider's.
fn dearest_cost(targets: &[(String, String)], max_tokens: u32) -> f64 {
    let prices = Prices::default();
    targets
        .iter()
        .filter_map(|(provider, model)| {
            let model = model.split_once('/').map_or(model.as_str(), |(_, m)| m);
            prices.get(provider, model)
        })
        .map(|p| (200.0 * p.input + f64::from(max_tokens) * p.output) / 1_000_000.0)
        .fold(0.0, f64::max)
}

/// One testsuite, one testcase per case and target, a failure with its reason.
fn junit(reports: &[CaseReport]) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    // What is rendered as a <failure>: a skipped case (no runs) is never one.
    let failures = reports.iter().filter(|r| r.runs > 0 && !r.ok).count();
    let skipped = reports.iter().filter(|r| r.runs == 0).count();
    let time: f64 = reports.iter().map(|r| r.seconds).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuite name=\"llmrpc verify\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        reports.len()
    );
    for r in reports {
        let _ = write!(
            xml,
            "  <testcase classname=\"llmrpc.verify.{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&r.target),
            escape(&r.case),
            r.seconds
        );
        if r.runs == 0 {
            let _ = writeln!(
                xml,
                ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                escape(&r.detail)
            );
        } else if !r.ok {
            let message = format!("{}/{} runs passed", r.passed, r.runs);
            let _ = writeln!(
                xml,
                ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>",
                escape(&message),
                escape(&r.detail)
            );
        } else {
            let _ = writeln!(xml, "/>");
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_has_a_testcase_per_case_and_escapes_reasons() {
        let reports = vec![
            CaseReport {
                case: "complete".into(),
                target: "openai".into(),
                runs: 1,
                passed: 1,
                ok: true,
                ..CaseReport::default()
            },
            CaseReport {
                case: "stream_ws".into(),
                target: "openai".into(),
                runs: 2,
                passed: 1,
                ok: false,
                detail: "expected <-32001> & \"x\"".into(),
                ..CaseReport::default()
            },
            CaseReport {
                case: "a2a".into(),
                target: "service".into(),
                ..CaseReport::default()
            },
        ];
        let xml = junit(&reports);
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("<testcase classname=\"llmrpc.verify.openai\" name=\"complete\""));
        assert!(xml.contains("<failure message=\"1/2 runs passed\">expected &lt;-32001&gt; &amp; &quot;x&quot;</failure>"), "{xml}");
        assert!(xml.contains("<skipped message="));
    }
}
