//! A2A's JSON, in both dialects in use: 1.0 (PascalCase methods, `TASK_STATE_*` enums, parts
//! without a discriminator, results wrapped in `{"task": …}`) and 0.3 (slash methods, `kind`
//! discriminators, lowercase states). Requests are read into one shape; tasks and events are
//! written in the dialect of the method that asked.

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Which version of the protocol a request speaks, by its method's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V1,
    V03,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Send,
    Stream,
    Get,
    Cancel,
    /// Push notification configuration: not offered.
    Push,
    /// The authenticated extended card: not configured.
    ExtendedCard,
    /// Listing and resubscribing: not offered.
    Unsupported,
}

impl Method {
    pub fn parse(name: &str) -> Option<(Self, Dialect)> {
        let found = match name {
            "SendMessage" => (Self::Send, Dialect::V1),
            "SendStreamingMessage" => (Self::Stream, Dialect::V1),
            "GetTask" => (Self::Get, Dialect::V1),
            "CancelTask" => (Self::Cancel, Dialect::V1),
            "ListTasks" | "SubscribeToTask" => (Self::Unsupported, Dialect::V1),
            "GetExtendedAgentCard" => (Self::ExtendedCard, Dialect::V1),
            "CreateTaskPushNotificationConfig"
            | "GetTaskPushNotificationConfig"
            | "ListTaskPushNotificationConfigs"
            | "DeleteTaskPushNotificationConfig" => (Self::Push, Dialect::V1),
            "message/send" => (Self::Send, Dialect::V03),
            "message/stream" => (Self::Stream, Dialect::V03),
            "tasks/get" => (Self::Get, Dialect::V03),
            "tasks/cancel" => (Self::Cancel, Dialect::V03),
            "tasks/resubscribe" => (Self::Unsupported, Dialect::V03),
            "agent/getAuthenticatedExtendedCard" => (Self::ExtendedCard, Dialect::V03),
            name if name.starts_with("tasks/pushNotificationConfig/") => (Self::Push, Dialect::V03),
            _ => return None,
        };
        Some(found)
    }

    /// The name this call has in the ledger, logs and spans.
    pub fn ledger_name(self) -> &'static str {
        match self {
            Self::Stream => "a2a.SendStreamingMessage",
            _ => "a2a.SendMessage",
        }
    }
}

/// One part of the caller's message, in either dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum InPart {
    Text(String),
    /// A file by URL or inline (base64), with its media type when given.
    File {
        url: Option<String>,
        bytes: Option<String>,
        media_type: Option<String>,
    },
    Data(Value),
}

/// `SendMessage`'s params, either dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct SendParams {
    pub parts: Vec<InPart>,
    pub context_id: Option<String>,
    pub task_id: Option<String>,
    /// `message.metadata.model`, else the request's `metadata.model`.
    pub model: Option<String>,
    /// `returnImmediately` (1.0), or `blocking: false` (0.3).
    pub return_immediately: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSend {
    message: RawMessage,
    #[serde(default)]
    configuration: Option<RawConfiguration>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    #[serde(default)]
    parts: Vec<Value>,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawConfiguration {
    #[serde(default)]
    return_immediately: Option<bool>,
    #[serde(default)]
    blocking: Option<bool>,
}

/// `GetTask` / `CancelTask` params.
#[derive(Deserialize)]
pub struct TaskParams {
    pub id: String,
}

/// Reads `SendMessage` params; the error names what is wrong.
pub fn send_params(params: Value) -> Result<SendParams, String> {
    let raw: RawSend =
        serde_json::from_value(params).map_err(|e| format!("invalid params: {e}"))?;
    let parts = raw
        .message
        .parts
        .into_iter()
        .map(part)
        .collect::<Result<Vec<_>, _>>()?;
    if parts.is_empty() {
        return Err("invalid params: message.parts must hold at least one part".into());
    }
    let model_of = |m: &Option<Map<String, Value>>| {
        m.as_ref()
            .and_then(|m| m.get("model"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let configuration = raw.configuration.unwrap_or_default();
    Ok(SendParams {
        parts,
        context_id: raw.message.context_id.filter(|c| !c.is_empty()),
        task_id: raw.message.task_id.filter(|t| !t.is_empty()),
        model: model_of(&raw.message.metadata).or_else(|| model_of(&raw.metadata)),
        return_immediately: configuration.return_immediately.unwrap_or(false)
            || configuration.blocking == Some(false),
    })
}

/// One part: 1.0's flattened form (`text`, `raw`, `url`, `data`) or 0.3's (`kind`).
fn part(value: Value) -> Result<InPart, String> {
    let Value::Object(mut p) = value else {
        return Err("invalid params: every part must be an object".into());
    };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    let media_type = text(p.remove("mediaType")).or_else(|| text(p.remove("mimeType")));
    match p.remove("kind").as_ref().and_then(Value::as_str) {
        Some("text") | None if p.contains_key("text") => match p.remove("text") {
            Some(Value::String(t)) => Ok(InPart::Text(t)),
            _ => Err("invalid params: a text part's text must be a string".into()),
        },
        Some("file") => {
            let Some(Value::Object(mut file)) = p.remove("file") else {
                return Err("invalid params: a file part needs its file object".into());
            };
            Ok(InPart::File {
                url: text(file.remove("uri")),
                bytes: text(file.remove("bytes")),
                media_type: text(file.remove("mimeType")).or(media_type),
            })
        }
        Some("data") | None if p.contains_key("data") => {
            Ok(InPart::Data(p.remove("data").unwrap_or(Value::Null)))
        }
        None if p.contains_key("url") || p.contains_key("raw") => Ok(InPart::File {
            url: text(p.remove("url")),
            bytes: text(p.remove("raw")),
            media_type,
        }),
        _ => Err("invalid params: a part must hold one of text, raw, url or data".into()),
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Working,
    Completed,
    Failed,
    Canceled,
}

impl State {
    pub fn is_terminal(self) -> bool {
        self != Self::Working
    }

    fn name(self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Self::Working, Dialect::V1) => "TASK_STATE_WORKING",
            (Self::Completed, Dialect::V1) => "TASK_STATE_COMPLETED",
            (Self::Failed, Dialect::V1) => "TASK_STATE_FAILED",
            (Self::Canceled, Dialect::V1) => "TASK_STATE_CANCELED",
            (Self::Working, Dialect::V03) => "working",
            (Self::Completed, Dialect::V03) => "completed",
            (Self::Failed, Dialect::V03) => "failed",
            (Self::Canceled, Dialect::V03) => "canceled",
        }
    }
}

/// A task as it is shown: what `GetTask` answers and the streams start with.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    pub context_id: String,
    pub state: State,
    /// RFC 3339, of the last change of state.
    pub timestamp: String,
    /// The model's answer so far; `None` when it is not known (a task read from the ledger).
    pub text: Option<String>,
    /// Why it failed or what it ended with, for the status message.
    pub status_text: Option<String>,
    /// What the service adds: `trace_id`, and the error's `kind` for a failed task.
    pub metadata: Map<String, Value>,
}

/// The one artifact of a task: the model's answer.
pub const ARTIFACT_ID: &str = "answer";

fn text_part(text: &str, dialect: Dialect) -> Value {
    match dialect {
        Dialect::V1 => json!({ "text": text }),
        Dialect::V03 => json!({ "kind": "text", "text": text }),
    }
}

fn status(view: &TaskView, dialect: Dialect) -> Value {
    let mut status = json!({ "state": view.state.name(dialect), "timestamp": view.timestamp });
    if let Some(text) = &view.status_text {
        let mut message = json!({
            "messageId": format!("{}-status", view.id),
            "role": match dialect { Dialect::V1 => "ROLE_AGENT", Dialect::V03 => "agent" },
            "parts": [text_part(text, dialect)],
            "taskId": view.id,
            "contextId": view.context_id,
        });
        if dialect == Dialect::V03 {
            message["kind"] = json!("message");
        }
        status["message"] = message;
    }
    status
}

/// The bare task object.
pub fn task(view: &TaskView, dialect: Dialect) -> Value {
    let mut task = json!({
        "id": view.id,
        "contextId": view.context_id,
        "status": status(view, dialect),
        "metadata": view.metadata,
    });
    if let Some(text) = view.text.as_deref().filter(|t| !t.is_empty()) {
        task["artifacts"] = json!([{
            "artifactId": ARTIFACT_ID,
            "name": ARTIFACT_ID,
            "parts": [text_part(text, dialect)],
        }]);
    }
    if dialect == Dialect::V03 {
        task["kind"] = json!("task");
    }
    task
}

/// `SendMessage`'s result and the first event of a stream: the task, wrapped in 1.0.
pub fn task_result(view: &TaskView, dialect: Dialect) -> Value {
    match dialect {
        Dialect::V1 => json!({ "task": task(view, dialect) }),
        Dialect::V03 => task(view, dialect),
    }
}

/// A piece of the answer, appended to the artifact after the first.
pub fn artifact_update(view: &TaskView, piece: &str, first: bool, dialect: Dialect) -> Value {
    let mut update = json!({
        "taskId": view.id,
        "contextId": view.context_id,
        "artifact": { "artifactId": ARTIFACT_ID, "name": ARTIFACT_ID, "parts": [text_part(piece, dialect)] },
        "append": !first,
        "lastChunk": false,
    });
    match dialect {
        Dialect::V1 => json!({ "artifactUpdate": update }),
        Dialect::V03 => {
            update["kind"] = json!("artifact-update");
            update
        }
    }
}

/// The last event of a stream: the task's end state.
pub fn status_update(view: &TaskView, dialect: Dialect) -> Value {
    let mut update = json!({
        "taskId": view.id,
        "contextId": view.context_id,
        "status": status(view, dialect),
        "metadata": view.metadata,
    });
    match dialect {
        Dialect::V1 => json!({ "statusUpdate": update }),
        Dialect::V03 => {
            update["kind"] = json!("status-update");
            update["final"] = json!(view.state.is_terminal());
            update
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_of_send_read_alike() {
        let v1 = json!({"message": {"messageId": "m", "role": "ROLE_USER", "contextId": "c-1",
            "parts": [{"text": "hi"}, {"url": "https://x/a.png", "mediaType": "image/png"}],
            "metadata": {"model": "fast"}}, "configuration": {"returnImmediately": true}});
        let v03 = json!({"message": {"kind": "message", "messageId": "m", "role": "user",
            "contextId": "c-1", "parts": [{"kind": "text", "text": "hi"},
            {"kind": "file", "file": {"uri": "https://x/a.png", "mimeType": "image/png"}}]},
            "configuration": {"blocking": false}, "metadata": {"model": "fast"}});
        let (a, b) = (send_params(v1).unwrap(), send_params(v03).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.model.as_deref(), Some("fast"));
        assert!(a.return_immediately);
        assert_eq!(
            a.parts[1],
            InPart::File {
                url: Some("https://x/a.png".into()),
                bytes: None,
                media_type: Some("image/png".into())
            }
        );
    }

    #[test]
    fn a_message_without_parts_is_refused() {
        let err = send_params(json!({"message": {"messageId": "m", "parts": []}})).unwrap_err();
        assert!(err.contains("message.parts"), "{err}");
        assert!(send_params(json!({"message": {"parts": [{"nothing": 1}]}})).is_err());
        assert!(send_params(json!({})).is_err());
    }

    #[test]
    fn tasks_render_in_each_dialect() {
        let view = TaskView {
            id: "t".into(),
            context_id: "c".into(),
            state: State::Completed,
            timestamp: "2026-12-02T10:00:00.000Z".into(),
            text: Some("Hello".into()),
            status_text: None,
            metadata: Map::new(),
        };
        let v1 = task_result(&view, Dialect::V1);
        assert_eq!(v1["task"]["status"]["state"], "TASK_STATE_COMPLETED");
        assert_eq!(
            v1["task"]["artifacts"][0]["parts"][0],
            json!({"text": "Hello"})
        );
        let v03 = task_result(&view, Dialect::V03);
        assert_eq!(v03["kind"], "task");
        assert_eq!(v03["status"]["state"], "completed");
        assert_eq!(v03["artifacts"][0]["parts"][0]["kind"], "text");
        let end = status_update(&view, Dialect::V03);
        assert_eq!(
            (end["kind"].as_str(), end["final"].as_bool()),
            (Some("status-update"), Some(true))
        );
        assert!(
            artifact_update(&view, "x", false, Dialect::V1)["artifactUpdate"]["append"]
                .as_bool()
                .unwrap()
        );
    }
}
