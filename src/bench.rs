//! `llmrpc bench`: a load generator for the service (`llm.complete` over HTTP, `llm.stream` over
//! SSE or WebSocket) or for any OpenAI-compatible URL (the mock directly, or a peer gateway), so
//! that both sides of a comparison are measured by the same client.
//!
//! Closed loop keeps `concurrency` requests in flight. Open loop sends at a fixed `rate` and
//! measures each request from when it was due, so that a slow server cannot hide its queueing
//! (coordinated omission).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::sse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `llm.complete` over HTTP (or a non-streamed chat completion).
    Complete,
    /// `llm.stream` as Server-Sent Events (or a streamed chat completion).
    Sse,
    /// `llm.stream` as a WebSocket subscription (the service only).
    Ws,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The llmrpc service to load.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Load an OpenAI-compatible base URL (…/v1) directly instead of llmrpc.
    #[arg(long)]
    openai_url: Option<String>,
    /// Bearer key: a caller key of the llmrpc service (when it requires one), or the key for
    /// --openai-url (`bench` when not given).
    #[arg(long, env = "LLMRPC_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[arg(long, value_enum, default_value = "complete")]
    mode: Mode,
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,
    /// Offer one tool with each request, so that the mock answers with a call of it: the first
    /// half of an agent's tool loop.
    #[arg(long)]
    tools: bool,
    /// Requests in flight (closed loop).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests per second (open loop); overrides --concurrency.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds run before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Percentiles {
    /// Milliseconds, from microsecond samples.
    fn of(samples: &mut [u64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
        };
        Some(Self {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    target: String,
    mode: Mode,
    concurrency: Option<usize>,
    rate: Option<f64>,
    seconds: f64,
    requests: u64,
    errors: u64,
    requests_per_second: f64,
    latency_ms: Option<Percentiles>,
    first_chunk_ms: Option<Percentiles>,
}

#[derive(Default)]
struct Samples {
    latency: Vec<u64>,
    first_chunk: Vec<u64>,
    errors: u64,
}

/// What one request measured: total and time to the first delta, in microseconds.
type Outcome = Result<(u64, Option<u64>), String>;

struct Target {
    client: reqwest::Client,
    args: BenchArgs,
    body: Bytes,
    endpoint: String,
}

impl Target {
    fn new(args: BenchArgs) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency.max(64))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| e.to_string())?;
        let mut params =
            json!({"model": args.model, "messages": [{"role": "user", "content": "Say hello."}]});
        if args.tools {
            params["tools"] = json!([{"type": "function", "function": {
                "name": "get_weather", "description": "The current weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            }}]);
        }
        let stream = args.mode != Mode::Complete;
        let (endpoint, body) = match &args.openai_url {
            Some(base) => {
                let mut body = params;
                if stream {
                    body["stream"] = json!(true);
                }
                (
                    format!("{}/chat/completions", base.trim_end_matches('/')),
                    body,
                )
            }
            None => {
                let method = if stream { "llm.stream" } else { "llm.complete" };
                (
                    args.url.clone(),
                    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
                )
            }
        };
        if args.openai_url.is_some() && args.mode == Mode::Ws {
            return Err("--mode ws needs the llmrpc service, not --openai-url".into());
        }
        if args.rate.is_some() && args.mode == Mode::Ws {
            return Err("--rate sends over HTTP; with --mode ws use --concurrency".into());
        }
        Ok(Self {
            client,
            body: Bytes::from(body.to_string()),
            endpoint,
            args,
        })
    }

    fn key(&self) -> Option<&str> {
        let default = self.args.openai_url.as_ref().map(|_| "bench");
        self.args.api_key.as_deref().or(default)
    }

    async fn http(&self, started: Instant) -> Outcome {
        let mut request = self
            .client
            .post(&self.endpoint)
            .header("content-type", "application/json");
        if let Some(key) = self.key() {
            request = request.bearer_auth(key);
        }
        if self.args.mode == Mode::Sse {
            request = request.header("accept", "text/event-stream");
        }
        let response = request
            .body(self.body.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        if self.args.mode == Mode::Complete {
            let body = response.bytes().await.map_err(|e| e.to_string())?;
            // A JSON-RPC error comes back as 200 too.
            if memchr::memmem::find(&body, b"\"error\"").is_some() {
                return Err(String::from_utf8_lossy(&body).chars().take(200).collect());
            }
            return Ok((micros(started), None));
        }
        let mut first = None;
        let mut events = std::pin::pin!(sse::decode(response.bytes_stream()));
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| e.to_string())?;
            if event.data.contains("\"error\"") {
                return Err(event.data.chars().take(200).collect());
            }
            if first.is_none() && has_content(&event.data) {
                first = Some(micros(started));
            }
            if event.data == "[DONE]" || event.data.contains("\"done\":true") {
                return Ok((micros(started), first));
            }
        }
        Err("the stream ended early".into())
    }
}

/// Whether a stream event carries some of the answer, text or a piece of a tool call (the whole
/// answer with `--tools`): an OpenAI-compatible stream opens with an event that only names the
/// role, and llmrpc's last chunk repeats the assembled calls.
fn has_content(data: &str) -> bool {
    let Ok(event) = serde_json::from_str::<Value>(data) else {
        return false;
    };
    let delta = &event["choices"][0]["delta"];
    let chunk = &event["result"];
    let text = delta["content"].as_str().or(chunk["delta"].as_str());
    text.is_some_and(|t| !t.is_empty())
        || delta["tool_calls"].is_array()
        || (chunk["tool_calls"].is_array() && chunk["done"] == false)
}

/// One WebSocket connection running `llm.stream` subscriptions one after another.
struct WsWorker {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    request: String,
}

impl WsWorker {
    async fn connect(target: &Target) -> Result<Self, String> {
        let url = target.args.url.replacen("http", "ws", 1);
        let mut upgrade = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(key) = target.key() {
            let value = format!("Bearer {key}")
                .parse()
                .map_err(|_| "invalid --api-key")?;
            upgrade.headers_mut().insert("authorization", value);
        }
        let (socket, _) = tokio_tungstenite::connect_async(upgrade)
            .await
            .map_err(|e| e.to_string())?;
        let request = String::from_utf8_lossy(&target.body).into_owned();
        Ok(Self { socket, request })
    }

    async fn stream(&mut self, started: Instant) -> Outcome {
        self.socket
            .send(Message::text(self.request.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let mut first = None;
        while let Some(message) = self.socket.next().await {
            let message = message.map_err(|e| e.to_string())?;
            let Ok(text) = message.to_text() else {
                continue;
            };
            let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            if value.get("error").is_some() {
                return Err(text.chars().take(200).collect());
            }
            let chunk = &value["params"]["result"];
            if chunk.get("error").is_some() {
                return Err(text.chars().take(200).collect());
            }
            if first.is_none() && chunk["done"] == false {
                first = Some(micros(started));
            }
            if chunk["done"] == true {
                return Ok((micros(started), first));
            }
        }
        Err("the socket closed".into())
    }
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

fn record(samples: &Mutex<Samples>, measuring: bool, outcome: Outcome) {
    if !measuring {
        return;
    }
    if let Ok(mut s) = samples.lock() {
        match outcome {
            Ok((latency, first)) => {
                s.latency.push(latency);
                s.first_chunk.extend(first);
            }
            Err(_) => s.errors += 1,
        }
    }
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    let report = measure(args.clone()).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_report(&report);
    }
    Ok(())
}

async fn measure(args: BenchArgs) -> Result<Report, String> {
    let target = Arc::new(Target::new(args.clone())?);
    // A first request says at once whether the target answers at all.
    let probe = match args.mode {
        Mode::Ws => {
            WsWorker::connect(&target)
                .await?
                .stream(Instant::now())
                .await
        }
        _ => target.http(Instant::now()).await,
    };
    probe.map_err(|e| format!("the target does not answer: {e}"))?;

    let samples = Arc::new(Mutex::new(Samples::default()));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let bar = progress(end - start);
    match args.rate {
        Some(rate) => open_loop(&target, &samples, rate, measure_from, end).await,
        None => closed_loop(&target, &samples, measure_from, end).await?,
    }
    bar.finish_and_clear();
    let mut samples = std::mem::take(&mut *samples.lock().map_err(|_| "samples poisoned")?);
    let requests = samples.latency.len() as u64 + samples.errors;
    Ok(Report {
        target: args.openai_url.clone().unwrap_or_else(|| args.url.clone()),
        mode: args.mode,
        concurrency: args.rate.is_none().then_some(args.concurrency),
        rate: args.rate,
        seconds: args.duration,
        requests,
        errors: samples.errors,
        requests_per_second: samples.latency.len() as f64 / args.duration,
        latency_ms: Percentiles::of(&mut samples.latency),
        first_chunk_ms: Percentiles::of(&mut samples.first_chunk),
    })
}

/// A bar of the run's seconds (warm-up included) on standard error, drawn only when it is a
/// terminal: a person sees how long is left, a script's output stays clean.
fn progress(total: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total.as_secs()),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template("bench [{bar:30}] {pos}/{len} s") {
        bar.set_style(style.progress_chars("=> "));
    }
    let ticking = bar.clone();
    tokio::spawn(async move {
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.tick().await;
        while !ticking.is_finished() {
            second.tick().await;
            ticking.inc(1);
        }
    });
    bar
}

async fn closed_loop(
    target: &Arc<Target>,
    samples: &Arc<Mutex<Samples>>,
    measure_from: Instant,
    end: Instant,
) -> Result<(), String> {
    let mut workers = Vec::new();
    for _ in 0..target.args.concurrency {
        let (target, samples) = (Arc::clone(target), Arc::clone(samples));
        let mut ws = match target.args.mode {
            Mode::Ws => Some(WsWorker::connect(&target).await?),
            _ => None,
        };
        workers.push(tokio::spawn(async move {
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let outcome = match ws.as_mut() {
                    Some(ws) => ws.stream(started).await,
                    None => target.http(started).await,
                };
                record(&samples, started >= measure_from, outcome);
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    Ok(())
}

async fn open_loop(
    target: &Arc<Target>,
    samples: &Arc<Mutex<Samples>>,
    rate: f64,
    measure_from: Instant,
    end: Instant,
) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut due = Instant::now();
    let mut inflight = Vec::new();
    while due < end {
        tokio::time::sleep_until(due).await;
        let (target, samples) = (Arc::clone(target), Arc::clone(samples));
        let scheduled = due;
        inflight.push(tokio::spawn(async move {
            // Measured from when it was due, not from when it could be sent.
            let outcome = target.http(scheduled).await;
            record(&samples, scheduled >= measure_from, outcome);
        }));
        due += interval;
        if inflight.len() > 4096 {
            inflight.retain(|t| !t.is_finished());
        }
    }
    for task in inflight {
        let _ = task.await;
    }
}

fn print_report(r: &Report) {
    let load = match (r.rate, r.concurrency) {
        (Some(rate), _) => format!("{rate} req/s (open loop)"),
        (None, Some(c)) => format!("{c} in flight (closed loop)"),
        _ => String::new(),
    };
    println!("target   {} ({:?}, {load})", r.target, r.mode);
    println!(
        "requests {} in {} s, {} errors, {:.0} req/s",
        r.requests, r.seconds, r.errors, r.requests_per_second
    );
    for (name, p) in [("latency", &r.latency_ms), ("1st chunk", &r.first_chunk_ms)] {
        if let Some(p) = p {
            println!(
                "{name:<9} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
                p.p50, p.p90, p.p99, p.p999, p.max
            );
        }
    }
}
