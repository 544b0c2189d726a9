//! `llmrpc complete | stream | models`: small JSON-RPC clients of a running service.

use std::io::Write;

use futures::StreamExt;
use serde_json::{Value, json};

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
    /// Print the whole JSON-RPC result instead of the text.
    #[arg(long)]
    json: bool,
}

impl ServiceArgs {
    /// A POST to the service, with the caller key when there is one.
    fn post(&self) -> Result<reqwest::RequestBuilder, String> {
        let request = client()?.post(&self.url);
        Ok(match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        })
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
    fn request(&self, method: &str) -> Value {
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
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params, "a2a_context": context})
    }
}

fn client() -> Result<reqwest::Client, String> {
    providers::http_client(std::time::Duration::from_secs(10)).map_err(|e| e.to_string())
}

async fn call(service: &ServiceArgs, request: &Value) -> Result<Value, String> {
    let response = service
        .post()?
        .json(request)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", service.url))?;
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("invalid answer from {}: {e}", service.url))?;
    result_of(body)
}

fn result_of(response: Value) -> Result<Value, String> {
    match response.get("error") {
        Some(error) => Err(format!("error {}", error)),
        None => Ok(response.get("result").cloned().unwrap_or(Value::Null)),
    }
}

pub async fn complete(args: CallArgs) -> Result<(), String> {
    let result = call(&args.service, &args.request("llm.complete")).await?;
    if args.service.json {
        println!("{result:#}");
    } else {
        println!("{}", result["content"].as_str().unwrap_or_default());
        eprintln!(
            "[{}/{} · {} ms · {} tokens · trace {}]",
            result["provider"].as_str().unwrap_or("?"),
            result["model"].as_str().unwrap_or("?"),
            result["latency_ms"],
            result["usage"]["total_tokens"],
            result["trace_id"].as_str().unwrap_or("?"),
        );
    }
    Ok(())
}

pub async fn stream(args: CallArgs) -> Result<(), String> {
    let response = args
        .service
        .post()?
        .header("accept", "text/event-stream")
        .json(&args.request("llm.stream"))
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", args.service.url))?;
    let mut events = std::pin::pin!(sse::decode(response.bytes_stream()));
    let mut stdout = std::io::stdout();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| format!("stream broke: {e}"))?;
        let chunk = result_of(
            serde_json::from_str(&event.data).map_err(|e| format!("invalid event: {e}"))?,
        )?;
        if args.service.json {
            println!("{chunk}");
        } else if let Some(delta) = chunk["delta"].as_str() {
            print!("{delta}");
            let _ = stdout.flush();
        }
        if let Some(error) = chunk.get("error") {
            return Err(format!("stream failed: {error}"));
        }
        if chunk["done"] == json!(true) {
            if !args.service.json {
                println!();
            }
            break;
        }
    }
    Ok(())
}

pub async fn models(args: ServiceArgs) -> Result<(), String> {
    let result = call(
        &args,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "llm.models"}),
    )
    .await?;
    if args.json {
        println!("{result:#}");
        return Ok(());
    }
    println!(
        "{:<40} {:<10} {:<8} {:>10}  aliases",
        "model", "configured", "allowed", "context"
    );
    for model in result["models"].as_array().into_iter().flatten() {
        println!(
            "{:<40} {:<10} {:<8} {:>10}  {}",
            model["id"].as_str().unwrap_or_default(),
            model["configured"],
            model["allowed"],
            model["context_window"],
            model["aliases"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
        );
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

/// Prints every call of a trace and each of its attempts, oldest first.
pub async fn trace(args: TraceArgs) -> Result<(), String> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "ops.trace", "params": {"trace_id": args.trace_id}});
    let calls = call(&args.service, &request).await?;
    if args.service.json {
        println!("{calls:#}");
        return Ok(());
    }
    let calls = calls.as_array().cloned().unwrap_or_default();
    if calls.is_empty() {
        println!("no calls recorded under trace {}", args.trace_id);
        return Ok(());
    }
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "{:<24} {:<12} {:<14} {:<36} {:<22} {:>8} {:>5} {:>8} {:>8} {:>10}",
        "started",
        "method",
        "agent",
        "provider/model",
        "status",
        "attempts",
        "tools",
        "ms",
        "ttft ms",
        "cost $"
    );
    for c in &calls {
        let routed = format!("{}/{}", text(&c["provider"]), text(&c["model"]));
        println!(
            "{:<24} {:<12} {:<14} {:<36} {:<22} {:>8} {:>5} {:>8} {:>8} {:>10.6}",
            text(&c["started_at"]),
            text(&c["method"]),
            text(&c["source_agent"]),
            routed,
            text(&c["status"]),
            c["attempts"].as_array().map_or(0, Vec::len),
            // A service from before tool_calls does not send it.
            c["tool_calls"]
                .as_u64()
                .map_or("-".to_owned(), |n| n.to_string()),
            c["latency_ms"],
            c["ttft_ms"]
                .as_u64()
                .map_or("-".to_owned(), |t| t.to_string()),
            c["cost_usd"].as_f64().unwrap_or_default(),
        );
        for a in c["attempts"].as_array().into_iter().flatten() {
            let http = a["http_status"]
                .as_u64()
                .map_or(String::new(), |s| format!(" HTTP {s}"));
            println!(
                "    {:<20} {}/{} {}{} {} ms",
                text(&a["started_at"]),
                text(&a["provider"]),
                text(&a["model"]),
                text(&a["status"]),
                http,
                a["latency_ms"]
            );
        }
        if let Some(error) = c["error_message"].as_str() {
            println!("    error: {error}");
        }
    }
    Ok(())
}
