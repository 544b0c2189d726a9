//! What each case sends and what it takes for the answer to pass: one function per check, over
//! [`Client`]. A check returns its detail when it passes and its reason when it fails, the reason
//! naming the trace id of the call to look up (`llmrpc trace`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use super::client::Client;
use crate::api::{self, Subscription};

/// The outcome of one run of one check.
pub(crate) type Outcome = Result<String, String>;

/// The flags every check may need.
pub(crate) struct Settings {
    pub(crate) timeout_ms: u64,
    pub(crate) max_tokens: u32,
    pub(crate) concurrency: usize,
    pub(crate) min_success: f64,
    /// The providers point at `llmrpc mock-upstream`, which model-name options steer.
    pub(crate) mock: bool,
}

impl Settings {
    /// `llm.complete`'s params for `model`, under `trace_id`.
    fn params(&self, model: &str, trace_id: &str) -> Value {
        json!({
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": self.max_tokens,
            "timeout_ms": self.timeout_ms,
            "a2a_context": {"trace_id": trace_id, "source_agent": "llmrpc-verify"},
        })
    }
}

const PROMPT: &str = "Reply with one short sentence.";

/// Reasoning models (`gpt-5*`, `o1`/`o3`/`o4`, Gemini 2.5) spend `max_tokens` on their hidden
/// reasoning first: at verify's small cap they often answer no text, finishing with `length`.
/// That is a whole round trip through the service, so it passes, saying so.
const CAPPED: &str = ", no text before the token cap (finish_reason length)";

fn new_trace_id() -> String {
    format!("verify-{:016x}", fastrand::u64(..))
}

pub(crate) async fn complete(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let result = client
        .result::<api::Complete>(settings.params(model, &trace_id))
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

pub(crate) async fn stream_sse(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let events = client
        .sse::<api::Stream>(settings.params(model, &trace_id))
        .await?;
    let mut events = std::pin::pin!(events);
    let mut chunks = Vec::new();
    while let Some(data) = events.next().await {
        let data = data.map_err(|e| format!("the stream broke: {e} (trace {trace_id})"))?;
        let answer: Value = serde_json::from_str(&data)
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

pub(crate) async fn stream_ws(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let mut socket = client
        .subscribe::<api::Stream>(settings.params(model, &trace_id))
        .await?;
    let deadline = Duration::from_millis(settings.timeout_ms + 5_000);
    let mut chunks = Vec::new();
    let read = async {
        while let Some(message) = socket.next().await {
            let message = message?;
            if let Some(error) = message.get("error") {
                return Err(format!("llm.stream failed: {error}"));
            }
            if message["method"] == api::Stream::NOTIFICATION {
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
    socket.close().await;
    check_chunks(&chunks, &trace_id)
}

/// A call, then `ops.trace` of its trace id: the call is there, with its attempts, and with
/// `usage` its tokens and cost too.
pub(crate) async fn trace_roundtrip(
    client: &Client,
    settings: &Settings,
    model: &str,
    usage: bool,
) -> Outcome {
    let trace_id = new_trace_id();
    let result = client
        .result::<api::Complete>(settings.params(model, &trace_id))
        .await?;
    // Behind a load balancer, ops.trace may reach another replica than the call did, and that
    // replica's ledger writer may hold the record for up to ~250 ms (operations.md): ask again
    // for a while before calling the record missing.
    let patience = Instant::now() + Duration::from_secs(2);
    let calls = loop {
        let calls = client
            .result::<api::Trace>(json!({"trace_id": trace_id}))
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

/// A call expected to fail with `code`, the trace id in its `error.data`.
async fn expect_error(client: &Client, params: Value, code: i64) -> Outcome {
    let trace_id = params["a2a_context"]["trace_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let answer = client.rpc::<api::Complete>(params).await?;
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

pub(crate) async fn unknown_model(client: &Client, settings: &Settings) -> Outcome {
    let params = settings.params("no-such-model-for-verify", &new_trace_id());
    expect_error(client, params, -32001).await
}

pub(crate) async fn invalid_params(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let mut params = settings.params(model, &new_trace_id());
    params["messages"] = json!([]);
    expect_error(client, params, -32602).await
}

/// A 1 ms deadline answered with -32003, soon. Against `llmrpc mock-upstream` the model asks
/// for a slow answer: the mock can answer within the millisecond, and the call would succeed.
pub(crate) async fn deadline(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let model = match settings.mock {
        true => format!("{model}_latency-1000"),
        false => model.to_owned(),
    };
    let mut params = settings.params(&model, &trace_id);
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

/// `--concurrency` calls at once, each checked as `complete` checks one.
pub(crate) async fn concurrent(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let n = settings.concurrency;
    let calls = (0..n).map(|_| async {
        let started = Instant::now();
        let ok = complete(client, settings, model).await.is_ok();
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
    if n == 0 || rate >= settings.min_success {
        Ok(detail)
    } else {
        Err(detail)
    }
}

pub(crate) async fn health_ready_metrics(client: &Client) -> Outcome {
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
pub(crate) async fn openai_compat(
    client: &Client,
    settings: &Settings,
    model: &str,
) -> Result<Option<String>, String> {
    let body = json!({"model": model, "max_tokens": settings.max_tokens,
                      "messages": [{"role": "user", "content": PROMPT}]});
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
pub(crate) async fn a2a(client: &Client, model: &str) -> Result<Option<String>, String> {
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
                    "parts": [{"text": PROMPT}],
                    "metadata": {"model": model}}}});
    let answer: Value = client
        .post_to(url)
        .header("a2a-version", "1.0")
        .json(&request)
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

/// The mock's 503, retried: `-32004` after more than one attempt.
pub(crate) async fn retry_transient(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let params = settings.params(&format!("{model}_status-503"), &new_trace_id());
    let answer = client.rpc::<api::Complete>(params).await?;
    let attempts = answer["error"]["data"]["attempts"].as_u64().unwrap_or(0);
    // The mock's 503, not any unavailability (a provider that cannot be reached, or whose
    // circuit is open, fails with -32004 too).
    let status = answer["error"]["data"]["status"].as_u64();
    match answer["error"]["code"].as_i64() {
        Some(-32004) if attempts > 1 && status == Some(503) => {
            Ok(format!("-32004 after {attempts} attempts"))
        }
        _ => Err(format!("expected -32004 after retries, got {answer}")),
    }
}

/// The mock's 429 with a Retry-After beyond the call's deadline: answered at once, not waited
/// out.
pub(crate) async fn rate_limit_retry_after(
    client: &Client,
    settings: &Settings,
    model: &str,
) -> Outcome {
    let trace_id = new_trace_id();
    let mut params = settings.params(&format!("{model}_status-429_retryafter-5"), &trace_id);
    params["timeout_ms"] = json!(1_000);
    let answer = client.rpc::<api::Complete>(params).await?;
    let wait = answer["error"]["data"]["retry_after_ms"].as_u64();
    match (answer["error"]["code"].as_i64(), wait) {
        (Some(-32002), Some(wait)) => Ok(format!("-32002, retry_after_ms {wait}")),
        _ => Err(format!("expected -32002 with retry_after_ms, got {answer}")),
    }
}

/// The mock's stream cut off midway: some deltas, then `-32004`.
pub(crate) async fn stream_drop(client: &Client, settings: &Settings, model: &str) -> Outcome {
    let trace_id = new_trace_id();
    let params = settings.params(&format!("{model}_chunks-10_drop-3_interval-5"), &trace_id);
    let events = client.sse::<api::Stream>(params).await?;
    let mut events = std::pin::pin!(events);
    let mut last = Value::Null;
    let mut deltas = 0;
    while let Some(Ok(data)) = events.next().await {
        last = serde_json::from_str(&data).unwrap_or_default();
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
