//! The results of `llm.complete` and the chunks of `llm.stream`, as contract §3 shapes them;
//! the same rendering for the WebSocket and the SSE transport.

use serde_json::{Value, json};

use super::errors::to_json;
use crate::context::CallContext;
use crate::gateway::{Chunk, Completion};

/// The result of a completed `llm.complete`.
pub fn complete_result(c: &Completion, ctx: &CallContext) -> Value {
    let mut result = json!({
        "content": c.response.content,
        "usage": c.response.usage,
        "latency_ms": c.latency.as_millis() as u64,
        "provider": c.route.provider,
        "model": c.route.model,
        "trace_id": ctx.trace_id,
        "id": c.response.id.clone().unwrap_or_else(|| format!("llmrpc-{}", ctx.span_id)),
        "finish_reason": c.response.finish_reason.as_str(),
        "attempts": c.attempts,
        "a2a_context": ctx.a2a,
    });
    if !c.response.tool_calls.is_empty() {
        result["tool_calls"] = json!(c.response.tool_calls);
    }
    result
}

/// Numbers and renders the chunks of one stream.
pub struct ChunkWriter {
    ctx: CallContext,
    index: u64,
}

impl ChunkWriter {
    pub fn new(ctx: CallContext) -> Self {
        Self { ctx, index: 0 }
    }

    pub fn render(&mut self, chunk: Chunk) -> Value {
        let mut out = json!({ "index": self.index, "trace_id": self.ctx.trace_id });
        self.index += 1;
        match chunk {
            Chunk::Delta(text) => {
                out["delta"] = json!(text);
                out["done"] = json!(false);
            }
            Chunk::ToolCall(delta) => {
                out["delta"] = json!("");
                out["done"] = json!(false);
                out["tool_calls"] = json!([delta]);
            }
            Chunk::Done(s) => {
                out["delta"] = json!("");
                out["done"] = json!(true);
                if !s.tool_calls.is_empty() {
                    out["tool_calls"] = json!(s.tool_calls);
                }
                out["finish_reason"] = json!(s.finish_reason.as_str());
                out["usage"] = json!(s.usage);
                out["model"] = json!(s.route.model);
                out["provider"] = json!(s.route.provider);
                out["latency_ms"] = json!(s.latency.as_millis() as u64);
                out["ttft_ms"] = json!(s.ttft.map(|t| t.as_millis() as u64));
                out["attempts"] = json!(s.attempts);
                out["a2a_context"] = json!(self.ctx.a2a);
            }
            Chunk::Failed(err) => {
                out["delta"] = json!("");
                out["done"] = json!(true);
                out["error"] = to_json(&err, &self.ctx.trace_id);
            }
        }
        out
    }
}
