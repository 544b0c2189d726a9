//! Errors on `/a2a`, in A2A's codes and shape: `error.data` is a list holding one
//! `google.rpc.ErrorInfo` whose `reason` names what went wrong (A2A's own condition, or the
//! service's error kind) and whose `metadata` holds the call's `trace_id` where there is one.
//! The one place this surface maps an error.

use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};

const PARSE_ERROR: i32 = -32700;
const INVALID_REQUEST: i32 = -32600;
const METHOD_NOT_FOUND: i32 = -32601;
const INVALID_PARAMS: i32 = -32602;
const INTERNAL: i32 = -32603;
const TASK_NOT_FOUND: i32 = -32001;
const TASK_NOT_CANCELABLE: i32 = -32002;
const PUSH_NOT_SUPPORTED: i32 = -32003;
const UNSUPPORTED_OPERATION: i32 = -32004;
const CONTENT_TYPE_NOT_SUPPORTED: i32 = -32005;
const EXTENDED_CARD_NOT_CONFIGURED: i32 = -32007;
const VERSION_NOT_SUPPORTED: i32 = -32009;
/// The service's own refusals before a task exists (an unknown or revoked key): A2A leaves
/// -32000 to servers.
const REFUSED: i32 = -32000;

#[derive(Debug, Clone, PartialEq)]
pub struct A2aError {
    code: i32,
    message: String,
    reason: &'static str,
    metadata: Map<String, Value>,
}

impl A2aError {
    fn new(code: i32, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason,
            metadata: Map::new(),
        }
    }

    pub fn parse(detail: &str) -> Self {
        Self::new(
            PARSE_ERROR,
            "PARSE_ERROR",
            format!("invalid JSON: {detail}"),
        )
    }

    pub fn invalid_request(message: &str) -> Self {
        Self::new(INVALID_REQUEST, "INVALID_REQUEST", message)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            METHOD_NOT_FOUND,
            "METHOD_NOT_FOUND",
            format!(
                "no method {method:?}: this agent serves SendMessage, SendStreamingMessage, GetTask and CancelTask (and their 0.3 names)"
            ),
        )
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, "INVALID_PARAMS", message)
    }

    pub fn internal(message: &str) -> Self {
        Self::new(INTERNAL, "INTERNAL", message)
    }

    pub fn task_not_found(id: &str) -> Self {
        Self::new(TASK_NOT_FOUND, "TASK_NOT_FOUND", format!("no task {id:?}"))
    }

    pub fn not_cancelable(id: &str) -> Self {
        Self::new(
            TASK_NOT_CANCELABLE,
            "TASK_NOT_CANCELABLE",
            format!("task {id:?} has ended already"),
        )
    }

    pub fn push_not_supported() -> Self {
        Self::new(
            PUSH_NOT_SUPPORTED,
            "PUSH_NOTIFICATION_NOT_SUPPORTED",
            "this agent does not send push notifications: stream the task, or poll GetTask",
        )
    }

    pub fn unsupported(message: &str) -> Self {
        Self::new(UNSUPPORTED_OPERATION, "UNSUPPORTED_OPERATION", message)
    }

    pub fn content_type_not_supported(media_type: &str) -> Self {
        Self::new(
            CONTENT_TYPE_NOT_SUPPORTED,
            "CONTENT_TYPE_NOT_SUPPORTED",
            format!(
                "{media_type} is not something a model here reads: send text, data, or images (image/*) by URL or inline"
            ),
        )
    }

    pub fn extended_card_not_configured() -> Self {
        Self::new(
            EXTENDED_CARD_NOT_CONFIGURED,
            "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            "this agent has no extended card: its public card says everything",
        )
    }

    pub fn version_not_supported(version: &str) -> Self {
        Self::new(
            VERSION_NOT_SUPPORTED,
            "VERSION_NOT_SUPPORTED",
            format!("A2A-Version {version:?} is not supported: this agent speaks 1.0 (and 0.3)"),
        )
    }

    /// A refusal of the call's params by the pipeline's checks (before any task exists).
    pub fn from_error(err: &Error, trace_id: &str) -> Self {
        let code = match err.kind {
            ErrorKind::InvalidParams | ErrorKind::ModelNotAllowed | ErrorKind::ModelNotFound => {
                INVALID_PARAMS
            }
            ErrorKind::Unauthorized => REFUSED,
            _ => INTERNAL,
        };
        let mut error = Self::new(code, err.kind.as_str(), err.message.clone());
        error.metadata.insert("trace_id".into(), json!(trace_id));
        error
    }

    /// The caller's key refused (the HTTP status says 401 or 403).
    pub fn refused(err: &Error, trace_id: &str) -> Self {
        let mut error = Self::from_error(err, trace_id);
        error.code = REFUSED;
        if let Some(denial) = err.denial() {
            error
                .metadata
                .insert("reason".into(), json!(denial.as_str()));
        }
        error
    }

    /// The error naming the trace `trace_id`, unless it names one already.
    pub fn traced(mut self, trace_id: &str) -> Self {
        self.metadata
            .entry("trace_id")
            .or_insert_with(|| json!(trace_id));
        self
    }

    pub fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "data": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": self.reason,
                "domain": "llmrpc",
                "metadata": self.metadata,
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Denial;

    #[test]
    fn errors_carry_an_error_info_with_the_kind_and_trace_id() {
        let err = Error::new(ErrorKind::ModelNotFound, "no model \"x\"");
        let json = A2aError::from_error(&err, "t-1").to_json();
        assert_eq!(json["code"], -32602);
        assert_eq!(
            json["data"][0]["@type"],
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        assert_eq!(json["data"][0]["reason"], "model_not_found");
        assert_eq!(json["data"][0]["metadata"]["trace_id"], "t-1");
        let denied = Error::denied(Denial::RevokedKey, "revoked");
        let json = A2aError::refused(&denied, "t-2").to_json();
        assert_eq!(json["code"], -32000);
        assert_eq!(json["data"][0]["reason"], "unauthorized");
        assert_eq!(json["data"][0]["metadata"]["reason"], "revoked_key");
        assert_eq!(A2aError::task_not_found("x").to_json()["code"], -32001);
        assert_eq!(
            A2aError::version_not_supported("2.0").to_json()["code"],
            -32009
        );
    }
}
