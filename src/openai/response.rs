//! The pipeline's answers in Chat Completions' shapes: `chat.completion`, the
//! `chat.completion.chunk`s of a stream, and the `/v1/models` list.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::context::CallContext;
use crate::gateway::{Chunk, Completion, ModelCatalog};
use crate::types::{FinishReason, Usage};

/// OpenAI's finish reasons; ours has `other`, which its clients do not know: `stop` says the
/// model ended its turn, which is what a caller can act on.
fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Other => "stop",
        reason => reason.as_str(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn id(ctx: &CallContext) -> String {
    format!("chatcmpl-{}", ctx.span_id)
}

pub(super) fn completion(c: &Completion, ctx: &CallContext) -> Value {
    let response = &c.response;
    let mut message = json!({ "role": "assistant", "content": response.content, "refusal": null });
    if !response.tool_calls.is_empty() {
        message["tool_calls"] = json!(response.tool_calls);
        if response.content.is_empty() {
            message["content"] = Value::Null;
        }
    }
    json!({
        "id": id(ctx),
        "object": "chat.completion",
        "created": unix_now(),
        "model": c.route.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(response.finish_reason),
        }],
        "usage": usage(&response.usage),
        "system_fingerprint": null,
    })
}

fn usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    })
}

/// Renders one stream's chunks, each as the `data:` of an SSE event.
pub(super) struct ChunkWriter {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// Whether a chunk went out: the first one carries the role.
    started: bool,
}

impl ChunkWriter {
    /// `model` is the model as the caller named it: the chunks go out before the final one says
    /// which answered.
    pub(super) fn new(ctx: &CallContext, model: String, include_usage: bool) -> Self {
        Self {
            id: id(ctx),
            created: unix_now(),
            model,
            include_usage,
            started: false,
        }
    }

    /// The events of one chunk: one, or for the last two when usage was asked for. A failure is
    /// an `error` event, as OpenAI ends a stream that fails.
    pub(super) fn render(
        &mut self,
        chunk: Chunk,
        error: impl Fn(&crate::error::Error) -> Value,
    ) -> Vec<Value> {
        let (mut delta, finish) = match chunk {
            Chunk::Delta(text) => (json!({ "content": text }), None),
            Chunk::ToolCall(call) => (json!({ "tool_calls": [call] }), None),
            Chunk::Done(summary) => {
                let last = self.chunk(json!({}), Some(finish_reason(summary.finish_reason)));
                return if self.include_usage {
                    let mut tail = self.chunk(json!({}), None);
                    tail["choices"] = json!([]);
                    tail["usage"] = usage(&summary.usage);
                    vec![last, tail]
                } else {
                    vec![last]
                };
            }
            Chunk::Failed(err) => return vec![error(&err)],
        };
        if !self.started {
            self.started = true;
            delta["role"] = json!("assistant");
        }
        vec![self.chunk(delta, finish)]
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }
}

/// The models a caller can name here: every allowed model of a configured provider, as
/// `provider/model`, and the aliases and tiers that list one of them.
pub(super) fn models(catalog: &ModelCatalog) -> Value {
    let usable = catalog.models.iter().filter(|m| m.allowed && m.configured);
    let mut data: Vec<Value> = usable
        .clone()
        .map(|m| model(&m.route.id(), m.route.provider.as_str()))
        .collect();
    let aliases: BTreeSet<&str> = usable
        .flat_map(|m| m.aliases.iter().map(String::as_str))
        .collect();
    data.extend(aliases.into_iter().map(|alias| model(alias, "llmrpc")));
    json!({ "object": "list", "data": data })
}

fn model(id: &str, owner: &str) -> Value {
    json!({ "id": id, "object": "model", "created": 0, "owned_by": owner })
}
