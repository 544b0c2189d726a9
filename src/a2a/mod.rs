//! The A2A agent surface (contract §9): the agent card at `/.well-known/agent-card.json` and
//! JSON-RPC at `POST /a2a`, so that any A2A client can call a model as it calls any other agent.
//! It only translates: a message becomes the same call as `llm.stream` (same params checks,
//! routing, auth, budgets, retries, ledger and spans), run as a task; the answer goes back as the
//! task's artifact. Errors use A2A's codes and shape, in one place: [`errors`].

mod card;
mod errors;
mod tasks;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::ready;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub use card::{CARD_PATH, PATH};
use errors::A2aError;
use tasks::Tasks;
use wire::{Dialect, InPart, Method, SendParams, TaskParams, TaskView};

use crate::access::Caller;
use crate::context::{CallContext, MAX_NAME, TraceParent};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::ledger::accounts::Role;
use crate::params;
use crate::telemetry;

/// Pieces buffered between a task and a slow reader of its stream.
const BUFFER: usize = 16;
/// A comment line this often keeps a quiet stream open through clients' read timeouts (the
/// official SDK's default is 5 s) while the model thinks.
const KEEPALIVE: Duration = Duration::from_secs(2);
/// How long `CancelTask` waits for the task to stop.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// The A2A surface's own state: the tasks this replica runs.
pub struct Agent {
    gateway: Arc<Gateway>,
    tasks: Arc<Tasks>,
    /// The base URL the card advertises; the request's `Host` otherwise.
    public_url: Option<String>,
}

/// One JSON-RPC request on `/a2a`, as far as it was read.
struct Request {
    id: Value,
    method: Method,
    dialect: Dialect,
    params: Value,
}

impl Agent {
    pub fn new(gateway: Arc<Gateway>, public_url: Option<String>) -> Self {
        Self {
            gateway,
            tasks: Arc::new(Tasks::default()),
            public_url,
        }
    }

    /// The agent card (`GET /.well-known/agent-card.json`).
    pub fn card(&self, headers: &HeaderMap) -> HttpResponse {
        card::card(&self.gateway, self.public_url.as_deref(), headers)
    }

    /// `POST /a2a` with its body read.
    pub async fn serve(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        caller: Option<Arc<Caller>>,
    ) -> HttpResponse {
        let traceparent = TraceParent::from_headers(headers);
        // Every error answer names a trace (the caller's, else a new one), as the call's do.
        let trace_id = CallContext::new(None, traceparent.as_ref()).trace_id;
        let request = match read(headers, body) {
            Ok(request) => request,
            Err((id, err)) => return answer(&id, Err(err.traced(&trace_id))),
        };
        let Request {
            id,
            method,
            dialect,
            params,
        } = request;
        let caller = match self.gateway.access().recheck(caller.as_ref()) {
            Ok(caller) => caller,
            Err(err) => return refusal(&err, traceparent.as_ref(), &id),
        };
        let result = match method {
            Method::Send | Method::Stream => match wire::send_params(params) {
                Ok(send) => {
                    let sent = self.send(id.clone(), method, dialect, send, caller, traceparent);
                    match sent.await {
                        Ok(response) => return response,
                        Err(err) => Err(err),
                    }
                }
                Err(err) => Err(A2aError::invalid_params(err)),
            },
            Method::Get => match task_params(params) {
                Ok(p) => self.get(&p.id, caller.as_deref()).await,
                Err(err) => Err(err),
            },
            Method::Cancel => match task_params(params) {
                Ok(p) => self.cancel(&p.id, caller.as_deref()).await,
                Err(err) => Err(err),
            },
            Method::Push => Err(A2aError::push_not_supported()),
            Method::ExtendedCard => Err(A2aError::extended_card_not_configured()),
            Method::Unsupported => Err(A2aError::unsupported(
                "this agent runs each message as one task: listing and resubscribing are not offered",
            )),
        };
        let result = result.map_err(|err| err.traced(&trace_id));
        answer(&id, result.map(|view| wire::task(&view, dialect)))
    }

    /// `SendMessage` / `SendStreamingMessage`: the message becomes a task whose call runs as
    /// `llm.stream` does; an error when it is refused before.
    async fn send(
        &self,
        id: Value,
        method: Method,
        dialect: Dialect,
        send: SendParams,
        caller: Option<Arc<Caller>>,
        traceparent: Option<TraceParent>,
    ) -> Result<HttpResponse, A2aError> {
        if let Some(task_id) = &send.task_id {
            let message = format!(
                "task {task_id:?} cannot take another message: every task here ends with its \
                 answer; send a new message in the same contextId"
            );
            return Err(A2aError::unsupported(&message));
        }
        // The conversation's id, as a2a_context.conversation_id is bounded on llm.*.
        if send
            .context_id
            .as_ref()
            .is_some_and(|id| id.chars().count() > MAX_NAME)
        {
            let message = format!("message.contextId must be at most {MAX_NAME} characters");
            return Err(A2aError::invalid_params(message));
        }
        let context_id = send.context_id.clone().unwrap_or_else(new_id);
        let call_params = self.call_params(&send)?;
        let (mut ctx, call) = params::parse_value(Some(call_params), traceparent.as_ref());
        ctx.a2a.conversation_id = Some(context_id);
        ctx.task_id = Some(new_id());
        ctx.caller = caller;
        let span = telemetry::call_span(method.ledger_name(), &mut ctx);
        let call = match call {
            Ok(call) => call,
            Err(err) => {
                span.in_scope(|| params::log_invalid(&err));
                return Err(A2aError::from_error(&err, &ctx.trace_id));
            }
        };
        let gateway = Arc::clone(&self.gateway);
        let name = method.ledger_name();
        if method == Method::Send {
            let task = self.tasks.start(gateway, name, call, ctx, span, None);
            let view = match send.return_immediately {
                true => task.begun.clone(),
                false => task.ended().await,
            };
            return Ok(answer(&id, Ok(wire::task_result(&view, dialect))));
        }
        let (tx, rx) = mpsc::channel(BUFFER);
        let task = self.tasks.start(gateway, name, call, ctx, span, Some(tx));
        Ok(stream(id, dialect, task, rx))
    }

    /// The params of the `llm.stream` call a message makes.
    fn call_params(&self, send: &SendParams) -> Result<Value, A2aError> {
        let model = send
            .model
            .clone()
            .or_else(|| self.gateway.models().default_model)
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let content = send
            .parts
            .iter()
            .map(content_part)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"model": model, "messages": [{"role": "user", "content": content}]}))
    }

    async fn get(&self, id: &str, caller: Option<&Caller>) -> Result<TaskView, A2aError> {
        if let Some(task) = self
            .tasks
            .get(id)
            .filter(|t| visible(t.team_id.as_deref(), caller))
        {
            return Ok(task.view());
        }
        let record = self.record(id).await?;
        match record.filter(|r| visible(r.team_id.as_deref(), caller)) {
            Some(record) => Ok(tasks::from_record(&record)),
            None => Err(A2aError::task_not_found(id)),
        }
    }

    async fn cancel(&self, id: &str, caller: Option<&Caller>) -> Result<TaskView, A2aError> {
        let Some(task) = self
            .tasks
            .get(id)
            .filter(|t| visible(t.team_id.as_deref(), caller))
        else {
            // Known to the ledger: it ended (or runs on another replica, which alone can stop it).
            let record = self.record(id).await?;
            return match record.filter(|r| visible(r.team_id.as_deref(), caller)) {
                Some(_) => Err(A2aError::not_cancelable(id)),
                None => Err(A2aError::task_not_found(id)),
            };
        };
        if !task.cancel() {
            return Err(A2aError::not_cancelable(id));
        }
        match tokio::time::timeout(CANCEL_WAIT, task.ended()).await {
            Ok(view) => Ok(view),
            Err(_) => Ok(task.view()),
        }
    }

    async fn record(&self, id: &str) -> Result<Option<crate::ledger::CallRecord>, A2aError> {
        let Some(ledger) = self.gateway.ledger() else {
            return Ok(None);
        };
        let unreadable = |e: crate::ledger::LedgerError| {
            A2aError::internal(&format!("the call ledger cannot be read: {e}"))
        };
        ledger.flush().await.map_err(unreadable)?;
        ledger.task(id).await.map_err(unreadable)
    }
}

/// The model a message without one goes to, when no default model is configured.
const DEFAULT_MODEL: &str = "fast";

/// Whether a caller may see a task of `team`: admins and anonymous callers see every task, a
/// caller key its own team's.
fn visible(team: Option<&str>, caller: Option<&Caller>) -> bool {
    match caller {
        Some(c) if c.role != Role::Admin => team == Some(c.team.id.as_str()),
        _ => true,
    }
}

/// A part of the caller's message as a part of `llm.stream`'s user message: text as text,
/// images (by URL or inline) as images, data as its JSON text.
fn content_part(part: &InPart) -> Result<Value, A2aError> {
    match part {
        InPart::Text(text) => Ok(json!({"type": "text", "text": text})),
        InPart::Data(data) => Ok(json!({"type": "text", "text": data.to_string()})),
        InPart::File {
            url,
            bytes,
            media_type,
        } => {
            let image = media_type
                .as_deref()
                .is_none_or(|m| m.starts_with("image/"));
            let url = match (url, bytes) {
                (Some(url), _) if image => url.clone(),
                (None, Some(bytes)) if image && media_type.is_some() => {
                    format!(
                        "data:{};base64,{bytes}",
                        media_type.as_deref().unwrap_or_default()
                    )
                }
                _ => {
                    return Err(A2aError::content_type_not_supported(
                        media_type
                            .as_deref()
                            .unwrap_or("a file without a media type"),
                    ));
                }
            };
            Ok(json!({"type": "image_url", "image_url": {"url": url}}))
        }
    }
}

/// Reads the envelope: the version header, the JSON-RPC object and its method.
fn read(headers: &HeaderMap, body: &[u8]) -> Result<Request, (Value, A2aError)> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| (Value::Null, A2aError::parse(&e.to_string())))?;
    let Value::Object(mut request) = request else {
        let message = "an A2A request is one JSON-RPC request object (batches are not served)";
        return Err((Value::Null, A2aError::invalid_request(message)));
    };
    let id = request.remove("id").unwrap_or(Value::Null);
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((id, A2aError::invalid_request("jsonrpc must be \"2.0\"")));
    }
    let Some(name) = request.get("method").and_then(Value::as_str) else {
        return Err((id, A2aError::invalid_request("method must be a string")));
    };
    let Some((method, dialect)) = Method::parse(name) else {
        return Err((id, A2aError::method_not_found(name)));
    };
    let version = headers.get("a2a-version").and_then(|v| v.to_str().ok());
    if let Some(version) = version.map(str::trim).filter(|v| !v.is_empty()) {
        let major_minor: Vec<&str> = version.split('.').take(2).collect();
        if !matches!(major_minor.as_slice(), ["1"] | ["1", "0"] | ["0", "3"]) {
            return Err((id, A2aError::version_not_supported(version)));
        }
    }
    let params = request.remove("params").unwrap_or_else(|| json!({}));
    Ok(Request {
        id,
        method,
        dialect,
        params,
    })
}

fn task_params(params: Value) -> Result<TaskParams, A2aError> {
    serde_json::from_value(params).map_err(|e| {
        A2aError::invalid_params(format!("invalid params: {e}; expected {{\"id\": …}}"))
    })
}

/// A task id or context id: a random (version 4) UUID, as A2A's examples use.
fn new_id() -> String {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes())
        .into_uuid()
        .to_string()
}

/// A whole JSON-RPC answer, always HTTP 200 (the SDKs read A2A's errors from 200 answers only).
fn answer(id: &Value, result: Result<Value, A2aError>) -> HttpResponse {
    let body = match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(err) => json!({"jsonrpc": "2.0", "id": id, "error": err.to_json()}),
    };
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The answer to a request on `/a2a` without a valid key: 401 (403 when known but not
/// allowed), with the A2A error, under the request's id, as body.
pub fn refused(err: &Error, headers: &HeaderMap, body: Option<&[u8]>) -> HttpResponse {
    let request: Value = body
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let id = request.get("id").unwrap_or(&Value::Null);
    refusal(err, TraceParent::from_headers(headers).as_ref(), id)
}

fn refusal(err: &Error, traceparent: Option<&TraceParent>, id: &Value) -> HttpResponse {
    let ctx = CallContext::new(None, traceparent);
    let mut response = answer(id, Err(A2aError::refused(err, &ctx.trace_id)));
    *response.status_mut() = refusal_status(err);
    response
}

/// 403 for a known caller that may not do what it asked, 401 for a missing, unknown or revoked
/// key.
fn refusal_status(err: &Error) -> StatusCode {
    match err.denial().is_some_and(|d| d.is_forbidden()) {
        true => StatusCode::FORBIDDEN,
        false => StatusCode::UNAUTHORIZED,
    }
}

/// `SendStreamingMessage`'s event stream: the task, its answer as append-style artifact
/// updates, then its end state; then the stream closes.
fn stream(
    id: Value,
    dialect: Dialect,
    task: Arc<tasks::Task>,
    mut pieces: mpsc::Receiver<String>,
) -> HttpResponse {
    let event = move |result: Value| {
        crate::sse::event(&json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
    };
    let begun = event(wire::task_result(&task.begun, dialect));
    let mut first = true;
    let updates = futures::stream::poll_fn(move |cx| pieces.poll_recv(cx)).map({
        let (event, task) = (event.clone(), Arc::clone(&task));
        move |piece| {
            let update = wire::artifact_update(&task.begun, &piece, first, dialect);
            first = false;
            event(update)
        }
    });
    let ended = async move { event(wire::status_update(&task.ended().await, dialect)) };
    let events = futures::stream::once(ready(begun))
        .chain(updates)
        .chain(futures::stream::once(ended));
    crate::sse::respond(events, Some(KEEPALIVE), tracing::Span::none())
}

/// Reads a request body as [`Agent::serve`] does, up to the call, for the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn exercise(body: &[u8]) {
    let Ok(request) = read(&HeaderMap::new(), body) else {
        return;
    };
    match request.method {
        Method::Send | Method::Stream => {
            if let Ok(send) = wire::send_params(request.params) {
                if let Ok(content) = send
                    .parts
                    .iter()
                    .map(content_part)
                    .collect::<Result<Vec<_>, _>>()
                {
                    let params = json!({"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": content}]});
                    drop(params::parse_value(Some(params), None));
                }
            }
        }
        Method::Get | Method::Cancel => drop(task_params(request.params)),
        Method::Push | Method::ExtendedCard | Method::Unsupported => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids() {
        for _ in 0..100 {
            let id = new_id();
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(groups[2].starts_with('4'), "{id}");
            assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"), "{id}");
        }
    }

    #[test]
    fn versions_other_than_1_0_and_0_3_are_refused() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}"#;
        let mut headers = HeaderMap::new();
        for (version, ok) in [
            ("1.0", true),
            ("1.0.1", true),
            ("0.3", true),
            ("2.0", false),
            ("0.2", false),
        ] {
            headers.insert("a2a-version", HeaderValue::from_static(version));
            let read = read(&headers, body);
            assert_eq!(read.is_ok(), ok, "{version}");
        }
        headers.remove("a2a-version");
        assert!(read(&headers, body).is_ok());
    }
}
