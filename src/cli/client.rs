//! `llmrpc complete | stream | models | trace`: the commands that call a running service through
//! the command line's JSON-RPC client, for people (text, a spinner) and for pipelines
//! (`--output json|jsonl`, exit codes).

use std::io::Write;

use futures::StreamExt;
use serde_json::{Value, json};

use super::output::{Failure, Format, OutputArgs, spinner, table};
use super::rpc_client::{CallError, RpcClient, result_of};
use crate::api::{self, Method};
use crate::providers;
use crate::sse;

#[derive(clap::Args)]
pub struct ServiceArgs {
    /// The service's URL.
    #[arg(long, env = "LLMRPC_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The caller key to send as `Authorization: Bearer …`.
    #[arg(long, env = "LLMRPC_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

impl ServiceArgs {
    /// The service's client, with the caller key when there is one.
    fn client(&self) -> Result<RpcClient, Failure> {
        let http = providers::http_client(std::time::Duration::from_secs(10))
            .map_err(|e| Failure::from(e.to_string()))?;
        Ok(RpcClient::new(http, self.url.clone(), self.api_key.clone()))
    }

    /// One call of `M`: its result, or the failure the commands report.
    async fn call<M: Method>(
        &self,
        params: &impl serde::Serialize,
        a2a_context: Option<&Value>,
    ) -> Result<Value, Failure> {
        let client = self.client()?;
        client
            .call::<M>(params, a2a_context)
            .await
            .map_err(|e| self.failure(e))
    }

    fn failure(&self, e: CallError) -> Failure {
        match e {
            CallError::Unreachable(e) => self.unreachable(e),
            CallError::NotJson(e) => {
                Failure::from(format!("invalid answer from {}: {e}", self.url))
            }
            CallError::Failed(error) => Failure::of_rpc(&error),
        }
    }

    fn format(&self) -> Format {
        self.output.format()
    }

    fn unreachable(&self, e: reqwest::Error) -> Failure {
        Failure::unreachable(format!("cannot reach {}: {e}", self.url))
    }
}

#[derive(clap::Args)]
pub struct CallArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Model, alias or tier.
    #[arg(long, short, default_value = "fast")]
    model: String,
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    #[arg(long)]
    max_tokens: Option<u32>,
    /// The A2A trace id to send (one is generated otherwise).
    #[arg(long)]
    trace_id: Option<String>,
    /// The A2A source agent to send.
    #[arg(long, default_value = "llmrpc-cli")]
    source_agent: String,
    /// The user's message.
    prompt: String,
}

impl CallArgs {
    /// `llm.complete`'s (and `llm.stream`'s) params, and the A2A context sent beside them.
    fn params(&self) -> (Value, Value) {
        let mut messages = Vec::new();
        if let Some(system) = &self.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": self.prompt}));
        let mut params = json!({"model": self.model, "messages": messages});
        if let Some(max) = self.max_tokens {
            params["max_tokens"] = json!(max);
        }
        let mut context = json!({"source_agent": self.source_agent});
        if let Some(trace_id) = &self.trace_id {
            context["trace_id"] = json!(trace_id);
        }
        (params, context)
    }
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// The line people read under an answer: who answered, how fast, how much, under which trace.
fn trailer(result: &Value) -> String {
    let ttft = result["ttft_ms"]
        .as_u64()
        .map_or(String::new(), |t| format!(" · first token {t} ms"));
    format!(
        "[{}/{} · {} ms{ttft} · {} tokens · trace {}]",
        result["provider"].as_str().unwrap_or("?"),
        result["model"].as_str().unwrap_or("?"),
        result["latency_ms"],
        result["usage"]["total_tokens"],
        result["trace_id"].as_str().unwrap_or("?"),
    )
}

pub async fn complete(args: CallArgs) -> Result<(), Failure> {
    let format = args.service.format();
    let waiting = (format == Format::Text).then(|| spinner("waiting for the answer"));
    let (params, context) = args.params();
    let result = args
        .service
        .call::<api::Complete>(&params, Some(&context))
        .await;
    if let Some(spinner) = waiting {
        spinner.finish_and_clear();
    }
    let result = result?;
    match format {
        Format::Json => println!("{result:#}"),
        Format::Jsonl => println!("{result}"),
        Format::Text => {
            println!("{}", result["content"].as_str().unwrap_or_default());
            eprintln!("{}", trailer(&result));
        }
    }
    Ok(())
}

pub async fn stream(args: CallArgs) -> Result<(), Failure> {
    let format = args.service.format();
    let waiting = (format == Format::Text).then(|| spinner("waiting for the first token"));
    let (params, context) = args.params();
    let client = args.service.client()?;
    let sent = client.events::<api::Stream>(&params, Some(&context)).await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            if let Some(spinner) = &waiting {
                spinner.finish_and_clear();
            }
            return Err(args.service.unreachable(e));
        }
    };
    // A request refused before any stream (a missing or unknown key: 401; a method the key may
    // not call: 403) is answered with one JSON-RPC error as a plain JSON body, not as events.
    if !is_event_stream(&response) {
        if let Some(spinner) = &waiting {
            spinner.finish_and_clear();
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("invalid answer from {}: {e}", args.service.url))?;
        result_of(body).map_err(|e| args.service.failure(e))?;
        return Err(Failure::from(format!(
            "{} answered without streaming",
            args.service.url
        )));
    }
    let mut events = std::pin::pin!(sse::decode(response.bytes_stream()));
    let mut stdout = std::io::stdout();
    let mut chunks = Vec::new();
    let mut waiting = waiting;
    let mut printed = false;
    let outcome = loop {
        let Some(event) = events.next().await else {
            break Err(Failure::unreachable(
                "the stream ended before its last chunk",
            ));
        };
        let chunk = match event
            .map_err(|e| Failure::unreachable(format!("stream broke: {e}")))
            .and_then(|event| {
                serde_json::from_str(&event.data)
                    .map_err(|e| Failure::from(format!("invalid event: {e}")))
            })
            .and_then(|answer| result_of(answer).map_err(|e| args.service.failure(e)))
        {
            Ok(chunk) => chunk,
            Err(failure) => break Err(failure),
        };
        if let Some(spinner) = waiting.take() {
            spinner.finish_and_clear();
        }
        match format {
            Format::Jsonl => println!("{chunk}"),
            Format::Json => chunks.push(chunk.clone()),
            Format::Text => {
                let delta = chunk["delta"].as_str().unwrap_or_default();
                print!("{delta}");
                let _ = stdout.flush();
                printed |= !delta.is_empty();
            }
        }
        if let Some(error) = chunk.get("error") {
            break Err(Failure::of_rpc(error));
        }
        if chunk["done"] == json!(true) {
            break Ok(chunk);
        }
    };
    if let Some(spinner) = waiting {
        spinner.finish_and_clear();
    }
    match format {
        Format::Json => println!("{:#}", Value::Array(chunks)),
        // Ends the answer's line; a stream that failed before any text leaves stdout empty.
        Format::Text if printed || outcome.is_ok() => println!(),
        Format::Text | Format::Jsonl => {}
    }
    let last = outcome?;
    if format == Format::Text {
        eprintln!("{}", trailer(&last));
    }
    Ok(())
}

pub async fn models(args: ServiceArgs) -> Result<(), Failure> {
    let result = args.call::<api::Models>(&(), None).await?;
    let models = result["models"].as_array().cloned().unwrap_or_default();
    match args.format() {
        Format::Json => println!("{result:#}"),
        Format::Jsonl => models.iter().for_each(|m| println!("{m}")),
        Format::Text => {
            let rows: Vec<Vec<String>> = models
                .iter()
                .map(|m| {
                    let aliases: Vec<&str> = m["aliases"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    vec![
                        text(&m["id"]),
                        m["configured"].to_string(),
                        m["allowed"].to_string(),
                        m["context_window"]
                            .as_u64()
                            .map_or("-".to_owned(), |c| c.to_string()),
                        aliases.join(","),
                    ]
                })
                .collect();
            let header = ["model", "configured", "allowed", "context", "aliases"];
            println!("{}", table(&header, &rows));
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct TraceArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The trace id to show.
    trace_id: String,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_owned()
}

/// Prints every call of a trace and each of its attempts, oldest first.
pub async fn trace(args: TraceArgs) -> Result<(), Failure> {
    let params = api::TraceParams {
        trace_id: args.trace_id.clone(),
    };
    let result = args.service.call::<api::Trace>(&params, None).await?;
    let calls = result.as_array().cloned().unwrap_or_default();
    match args.service.format() {
        Format::Json => {
            println!("{result:#}");
            return Ok(());
        }
        Format::Jsonl => {
            calls.iter().for_each(|c| println!("{c}"));
            return Ok(());
        }
        Format::Text => {}
    }
    if calls.is_empty() {
        println!("no calls recorded under trace {}", args.trace_id);
        return Ok(());
    }
    let mut rows = Vec::new();
    for c in &calls {
        let tokens = c["usage"]["total_tokens"].as_u64().unwrap_or(0);
        let cost = c["cost_usd"].as_f64().unwrap_or(0.0);
        rows.push(vec![
            text(&c["started_at"]),
            text(&c["method"]),
            text(&c["source_agent"]),
            format!("{}/{}", text(&c["provider"]), text(&c["model"])),
            text(&c["status"]),
            c["attempts"].as_array().map_or(0, Vec::len).to_string(),
            // A service from before tool_calls does not send it.
            c["tool_calls"]
                .as_u64()
                .map_or("-".to_owned(), |n| n.to_string()),
            c["latency_ms"].to_string(),
            c["ttft_ms"]
                .as_u64()
                .map_or("-".to_owned(), |t| t.to_string()),
            tokens.to_string(),
            // Tokens at no cost: the model has no price in the service's table.
            if cost == 0.0 && tokens > 0 {
                "-".to_owned()
            } else {
                format!("{cost:.6}")
            },
            // Last, so that a long message does not push the other columns apart.
            c["error_message"].as_str().unwrap_or_default().to_owned(),
        ]);
        for a in c["attempts"].as_array().into_iter().flatten() {
            let http = a["http_status"]
                .as_u64()
                .map_or(String::new(), |s| format!(" HTTP {s}"));
            rows.push(vec![
                format!("  {}", text(&a["started_at"])),
                "  attempt".to_owned(),
                String::new(),
                format!("{}/{}", text(&a["provider"]), text(&a["model"])),
                format!("{}{http}", text(&a["status"])),
                String::new(),
                String::new(),
                a["latency_ms"].to_string(),
            ]);
        }
    }
    let header = [
        "started",
        "method",
        "agent",
        "provider/model",
        "status",
        "attempts",
        "tools",
        "ms",
        "ttft ms",
        "tokens",
        "cost $",
        "error",
    ];
    println!("{}", table(&header, &rows));
    Ok(())
}
