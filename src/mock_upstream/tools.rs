//! The tool scenario: a request that offers tools is answered with one call of its first tool,
//! and a request whose last turn is a tool's result with that result echoed back, so that an
//! agent's tool loop runs against the mock in each provider's own format. Only requests that
//! carry `tools` come here, so the usual answers pay for no more than that field's presence.

use serde_json::{Map, Value, json};

use super::answer::{Answer, Call};
use crate::types::ProviderName;

/// The answer to a request that carries `tools`: the tool's result echoed when its last turn is
/// one, else a call of the first tool; `None` (the usual answer) when the body is not JSON or
/// offers no function to call.
pub(super) fn answer(api: ProviderName, body: &[u8]) -> Option<Answer> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let turn = match api {
        ProviderName::Openai => openai(&request),
        ProviderName::Anthropic => anthropic(&request),
        ProviderName::Gemini => gemini(&request),
    }?;
    Some(match turn {
        Turn::Result(text) => Answer::Echo(format!("The tool said: {text}")),
        Turn::Call(call) => Answer::Call(call),
    })
}

enum Turn {
    /// The text of the tool result the conversation ends with.
    Result(String),
    Call(Call),
}

/// A `tool` message last; else the first `function` tool.
fn openai(request: &Value) -> Option<Turn> {
    let last = request["messages"].as_array().and_then(|m| m.last());
    if let Some(last) = last.filter(|m| m["role"] == "tool") {
        return Some(Turn::Result(text(&last["content"])));
    }
    let function = tools(request).find_map(|t| t.get("function"))?;
    Some(call(function["name"].as_str()?, &function["parameters"]))
}

/// A user turn with a `tool_result` block last; else the first tool with an `input_schema`
/// (server tools such as web search have none).
fn anthropic(request: &Value) -> Option<Turn> {
    let last = request["messages"].as_array().and_then(|m| m.last());
    let result = last
        .filter(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_array())
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_result"));
    if let Some(result) = result {
        return Some(Turn::Result(text(&result["content"])));
    }
    let tool = tools(request).find(|t| t.get("input_schema").is_some())?;
    Some(call(tool["name"].as_str()?, &tool["input_schema"]))
}

/// A turn with a `functionResponse` part last (its `response` as JSON text); else the first
/// function declaration of any `tools` entry.
fn gemini(request: &Value) -> Option<Turn> {
    let last = request["contents"].as_array().and_then(|c| c.last());
    let response = last
        .and_then(|c| c["parts"].as_array())
        .and_then(|parts| parts.iter().find_map(|p| p.get("functionResponse")));
    if let Some(response) = response {
        return Some(Turn::Result(response["response"].to_string()));
    }
    let declaration = tools(request).find_map(|t| t["functionDeclarations"].get(0))?;
    let schema = declaration
        .get("parameters")
        .or_else(|| declaration.get("parametersJsonSchema"))
        .unwrap_or(&Value::Null);
    Some(call(declaration["name"].as_str()?, schema))
}

fn tools(request: &Value) -> impl Iterator<Item = &Value> {
    request["tools"].as_array().into_iter().flatten()
}

/// A tool result's content: a string as it is, the `text` of a list of parts joined, anything
/// else as JSON.
fn text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A call whose arguments give each `required` property of the schema a sample value.
fn call(name: &str, schema: &Value) -> Turn {
    let input: Map<String, Value> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|property| (property.to_owned(), sample(&schema["properties"][property])))
        .collect();
    let input = Value::Object(input);
    Turn::Call(Call {
        name: name.to_owned(),
        arguments: input.to_string(),
        input,
    })
}

/// A fixed value of the schema's type. Gemini writes types in capitals (`STRING`), and JSON
/// Schema may list several (`["string", "null"]`): the first that is not `null` counts.
fn sample(schema: &Value) -> Value {
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| !k.eq_ignore_ascii_case("null")),
        kind => kind.as_str(),
    };
    match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("string") => json!("Paris"),
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        Some("object") => json!({}),
        Some("array") => json!([]),
        _ => Value::Null,
    }
}
