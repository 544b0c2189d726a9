//! The params of an agent's tool loop (contract §6): `tools`, `tool_choice`,
//! `parallel_tool_calls`, `response_format`, and the two kinds of turn a loop replays (an
//! assistant turn with `tool_calls`, a `tool` turn with its result), in OpenAI's shapes, checked
//! against the rules a provider would otherwise refuse them by, with nothing sent upstream.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use crate::types::{Content, Message, Part, ResponseFormat, Role, ToolChoice, ToolDef, ToolKind};

/// At most this many tools per call (OpenAI's own limit).
const MAX_TOOLS: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireTool {
    #[serde(rename = "type")]
    _kind: ToolKind,
    function: WireFunctionDef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFunctionDef {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum WireToolChoice {
    Mode(String),
    Named(WireNamedChoice),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireNamedChoice {
    #[serde(rename = "type")]
    _kind: ToolKind,
    function: WireChoiceName,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireChoiceName {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum WireResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireJsonSchema },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireJsonSchema {
    name: String,
    schema: Value,
    strict: Option<bool>,
    /// Accepted as OpenAI's clients send it; no provider needs it.
    #[serde(rename = "description")]
    _description: Option<serde::de::IgnoredAny>,
}

/// The words serde uses for the untagged choice, replaced by the rule.
pub(super) const CHOICE_RULE: (&str, &str) = (
    "data did not match any variant of untagged enum WireToolChoice",
    "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":…}}",
);

/// Whether `name` is a valid tool name: `[A-Za-z0-9_-]{1,64}`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn tools(wire: Vec<WireTool>) -> Result<Vec<ToolDef>, String> {
    if wire.len() > MAX_TOOLS {
        return Err(format!(
            "tools: at most {MAX_TOOLS} tools, not {}",
            wire.len()
        ));
    }
    let mut seen = HashSet::new();
    wire.into_iter()
        .enumerate()
        .map(|(i, tool)| {
            let f = tool.function;
            if !valid_name(&f.name) {
                return Err(format!(
                    "tools[{i}].function.name must be 1-64 characters of A-Za-z0-9_-"
                ));
            }
            if !seen.insert(f.name.clone()) {
                return Err(format!(
                    "tools[{i}].function.name: {:?} is given twice",
                    f.name
                ));
            }
            if f.parameters.as_ref().is_some_and(|p| !p.is_object()) {
                return Err(format!(
                    "tools[{i}].function.parameters must be a JSON Schema object"
                ));
            }
            Ok(ToolDef {
                name: f.name,
                description: f.description,
                parameters: f.parameters,
                strict: f.strict,
            })
        })
        .collect()
}

pub(super) fn tool_choice(wire: WireToolChoice, tools: &[ToolDef]) -> Result<ToolChoice, String> {
    let choice = match wire {
        WireToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(CHOICE_RULE.1.to_owned()),
        },
        WireToolChoice::Named(named) => ToolChoice::Function(named.function.name),
    };
    if tools.is_empty() {
        return Err("tool_choice needs tools".to_owned());
    }
    if let ToolChoice::Function(name) = &choice {
        if !tools.iter().any(|t| t.name == *name) {
            return Err(format!(
                "tool_choice.function.name: {name:?} is not one of the tools"
            ));
        }
    }
    Ok(choice)
}

pub(super) fn response_format(wire: WireResponseFormat) -> Result<ResponseFormat, String> {
    Ok(match wire {
        WireResponseFormat::Text => ResponseFormat::Text,
        WireResponseFormat::JsonObject => ResponseFormat::JsonObject,
        WireResponseFormat::JsonSchema { json_schema } => {
            if !json_schema.schema.is_object() {
                return Err(
                    "response_format.json_schema.schema must be a JSON Schema object".into(),
                );
            }
            if !valid_name(&json_schema.name) {
                return Err(
                    "response_format.json_schema.name must be 1-64 characters of A-Za-z0-9_-"
                        .into(),
                );
            }
            ResponseFormat::JsonSchema {
                name: json_schema.name,
                schema: json_schema.schema,
                strict: json_schema.strict,
            }
        }
    })
}

/// The rules of the turns of a tool loop: which role may carry which field, that a `tool` turn
/// answers a call made earlier in the conversation, and that replayed arguments are a JSON
/// object (what Anthropic and Gemini take them as).
pub(super) fn turns(messages: &[Message]) -> Result<(), String> {
    let mut calls = HashSet::new();
    for (i, message) in messages.iter().enumerate() {
        if !message.tool_calls.is_empty() && message.role != Role::Assistant {
            return Err(format!(
                "messages[{i}].tool_calls: only assistant messages make tool calls"
            ));
        }
        for (j, call) in message.tool_calls.iter().enumerate() {
            if call.id.is_empty() {
                return Err(format!(
                    "messages[{i}].tool_calls[{j}].id must not be empty"
                ));
            }
            if !valid_name(&call.function.name) {
                return Err(format!(
                    "messages[{i}].tool_calls[{j}].function.name must be 1-64 characters of A-Za-z0-9_-"
                ));
            }
            let object = serde_json::from_str::<Value>(&call.function.arguments)
                .is_ok_and(|v| v.is_object());
            if !object {
                return Err(format!(
                    "messages[{i}].tool_calls[{j}].function.arguments must be the JSON text of an object"
                ));
            }
            calls.insert(call.id.as_str());
        }
        match (message.role, &message.tool_call_id) {
            (Role::Tool, None) => {
                return Err(format!("messages[{i}]: a tool message needs tool_call_id"));
            }
            (Role::Tool, Some(id)) if !calls.contains(id.as_str()) => {
                return Err(format!(
                    "messages[{i}].tool_call_id: {id:?} answers no tool call of an earlier assistant message"
                ));
            }
            (Role::Tool, Some(_)) => {}
            (_, Some(_)) => {
                return Err(format!(
                    "messages[{i}].tool_call_id: only tool messages have one"
                ));
            }
            (_, None) => {}
        }
        match &message.content {
            None if message.role == Role::Assistant && !message.tool_calls.is_empty() => {}
            None => return Err(format!("messages[{i}].content is required")),
            Some(Content::Parts(parts)) if message.role == Role::Tool => {
                if parts.iter().any(|p| matches!(p, Part::ImageUrl { .. })) {
                    return Err(format!(
                        "messages[{i}].content: tool messages take text only"
                    ));
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}
