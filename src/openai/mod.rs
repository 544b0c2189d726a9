//! The OpenAI-compatible surface: `POST /v1/chat/completions` and `GET /v1/models` on the
//! service's port, for the clients agents already have (OpenAI's SDKs, LangChain, LlamaIndex,
//! curl). It only translates: a request becomes the same call as `llm.complete` or `llm.stream`
//! (same params checks, routing, retries, deadlines, ledger and spans), and the answer goes back
//! in Chat Completions' shapes. Every response carries the call's trace id in
//! `x-llmrpc-trace-id` and `traceparent`.

mod errors;
mod request;
mod response;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::ready;
use http::{HeaderValue, StatusCode, header};
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde_json::Value;
use tracing::Instrument;

use crate::access::Caller;
use crate::context::{CallContext, TraceParent};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::params;
use crate::sse;
use crate::telemetry;

/// The method name of these calls in the ledger, logs and spans.
const METHOD: &str = "openai.chat.completions";

/// `POST /v1/chat/completions` with its body already read.
pub async fn chat_completions(
    gateway: Arc<Gateway>,
    body: &[u8],
    traceparent: Option<TraceParent>,
    caller: Option<Arc<Caller>>,
) -> HttpResponse {
    let fields = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => fields,
        _ => {
            let ctx = CallContext::new(None, traceparent.as_ref());
            let message = "the body must be a JSON object of Chat Completions parameters";
            return refused(&ctx, errors::invalid_request(message, None));
        }
    };
    let request::Translated {
        params: params_,
        passthrough,
        stream,
        include_usage,
    } = match request::translate(fields) {
        Ok(split) => split,
        Err((message, param)) => {
            let ctx = CallContext::new(None, traceparent.as_ref());
            return refused(&ctx, errors::invalid_request(&message, Some(param)));
        }
    };
    let requested = params_
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (mut ctx, call) = params::parse_value(Some(Value::Object(params_)), traceparent.as_ref());
    let span = telemetry::call_span(METHOD, &mut ctx);
    ctx.caller = match gateway.access().recheck(caller.as_ref()) {
        Ok(caller) => caller,
        Err(err) => return refused(&ctx, errors::answer(&err)),
    };
    let call = match call {
        Ok(mut call) => {
            call.chat.passthrough = passthrough;
            call
        }
        Err(err) => {
            span.in_scope(|| params::log_invalid(&err));
            return refused(&ctx, errors::answer(&err));
        }
    };
    if !stream {
        let answered = gateway.complete(METHOD, call, &ctx).instrument(span).await;
        return match answered {
            Ok(completion) => json(
                &ctx,
                StatusCode::OK,
                &response::completion(&completion, &ctx),
            ),
            Err(err) => refused(&ctx, errors::answer(&err)),
        };
    }
    let started = gateway
        .stream(METHOD, call, &ctx)
        .instrument(span.clone())
        .await;
    let chunks = match started {
        Ok(chunks) => chunks,
        Err(err) => return refused(&ctx, errors::answer(&err)),
    };
    let mut writer = response::ChunkWriter::new(&ctx, requested, include_usage);
    // `None` marks the end of the chunks: `[DONE]` follows, unless the stream failed.
    let mut failed = false;
    let events = chunks
        .map(Some)
        .chain(futures::stream::once(ready(None)))
        .flat_map(move |chunk| {
            let events: Vec<Bytes> = match chunk {
                Some(chunk) => {
                    failed |= matches!(chunk, crate::gateway::Chunk::Failed(_));
                    let events = writer.render(chunk, |err| errors::answer(err).body);
                    events.iter().map(|e| sse::event(&e.to_string())).collect()
                }
                None if failed => Vec::new(),
                None => vec![sse::event("[DONE]")],
            };
            futures::stream::iter(events)
        });
    with_trace(sse::respond(events, None, span), &ctx)
}

/// The answer to a body over the service's size limit.
pub fn too_large(limit: usize, traceparent: Option<TraceParent>) -> HttpResponse {
    let ctx = CallContext::new(None, traceparent.as_ref());
    let message = format!("the request body is larger than the limit of {limit} bytes");
    let mut answer = errors::invalid_request(&message, None);
    answer.status = StatusCode::PAYLOAD_TOO_LARGE;
    refused(&ctx, answer)
}

/// The answer to a body that did not arrive whole within `timeout`.
pub fn too_slow(timeout: Duration, traceparent: Option<TraceParent>) -> HttpResponse {
    let ctx = CallContext::new(None, traceparent.as_ref());
    let message = format!(
        "the request body did not arrive within {} ms",
        timeout.as_millis()
    );
    let mut answer = errors::invalid_request(&message, None);
    answer.status = StatusCode::REQUEST_TIMEOUT;
    refused(&ctx, answer)
}

/// The answer to a request without a valid key.
pub fn unauthorized(err: &Error, traceparent: Option<TraceParent>) -> HttpResponse {
    let ctx = CallContext::new(None, traceparent.as_ref());
    refused(&ctx, errors::answer(err))
}

/// `GET /v1/models`.
pub fn models(gateway: &Gateway, traceparent: Option<TraceParent>) -> HttpResponse {
    let ctx = CallContext::new(None, traceparent.as_ref());
    json(&ctx, StatusCode::OK, &response::models(&gateway.models()))
}

/// `GET /v1/models/{id}`: one entry of the list.
pub fn model(gateway: &Gateway, id: &str, traceparent: Option<TraceParent>) -> HttpResponse {
    let ctx = CallContext::new(None, traceparent.as_ref());
    let list = response::models(&gateway.models());
    let found = list["data"]
        .as_array()
        .and_then(|models| models.iter().find(|m| m["id"] == id));
    match found {
        Some(entry) => json(&ctx, StatusCode::OK, entry),
        None => refused(&ctx, errors::model_not_found(id)),
    }
}

fn refused(ctx: &CallContext, answer: errors::Answer) -> HttpResponse {
    let mut response = json(ctx, answer.status, &answer.body);
    let headers = response.headers_mut();
    if let Some(seconds) = answer.retry_after_s {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    let retry = if answer.retryable { "true" } else { "false" };
    headers.insert("x-should-retry", HeaderValue::from_static(retry));
    response
}

fn json(ctx: &CallContext, status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_trace(response, ctx)
}

/// The call's trace id, verbatim, and its W3C `traceparent` (this call's span in the trace).
fn with_trace(mut response: HttpResponse, ctx: &CallContext) -> HttpResponse {
    let headers = response.headers_mut();
    if let Ok(trace_id) = HeaderValue::from_str(&ctx.trace_id) {
        headers.insert("x-llmrpc-trace-id", trace_id);
    }
    if let Ok(traceparent) = HeaderValue::from_str(&ctx.upstream_traceparent(&ctx.span_id)) {
        headers.insert("traceparent", traceparent);
    }
    response
}

/// Reads a request body as [`chat_completions`] does, up to the call, for the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn exercise(body: &[u8]) {
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) {
        if let Ok(split) = request::translate(fields) {
            drop(params::parse_value(Some(Value::Object(split.params)), None));
        }
    }
}
