//! What a caller asks of a model, checked once for every surface: `llm.complete` / `llm.stream`
//! params (and the OpenAI-compatible surface's body, translated into them) are parsed by name and
//! checked against the contract's rules, with messages that name the field and the rule. The A2A
//! context is read here for every method that takes one, `ops.*` included.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::context::{A2aContext, CallContext, TraceParent};
use crate::error::Error;
use crate::gateway::CallRequest;
use crate::types::{ChatRequest, Content, Message, Part, ReasoningEffort, Role};

mod tools;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteParams {
    model: String,
    messages: Vec<Message>,
    max_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Stop>,
    reasoning_effort: Option<ReasoningEffort>,
    timeout_ms: Option<i64>,
    a2a_context: Option<Value>,
    metadata: Option<Map<String, Value>>,
    tools: Option<Vec<tools::WireTool>>,
    tool_choice: Option<tools::WireToolChoice>,
    parallel_tool_calls: Option<bool>,
    response_format: Option<tools::WireResponseFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Builds the call's context first, so that even an invalid call gets its trace id back, then
/// checks the params. `raw` is the JSON text of `params`, if any.
pub fn parse(
    raw: Option<&str>,
    traceparent: Option<&TraceParent>,
) -> (CallContext, Result<CallRequest, Error>) {
    // The common case, valid params, costs one pass over the text; the slower path below
    // finds the precise error.
    if let Some(Ok(params)) = raw.map(serde_json::from_str::<CompleteParams>) {
        if let Ok(a2a) = context_of(params.a2a_context.as_ref()) {
            return (CallContext::new(a2a, traceparent), validate(params));
        }
    }
    parse_value(raw.and_then(|r| serde_json::from_str(r).ok()), traceparent)
}

/// The same for params already parsed (the OpenAI-compatible surface's, taken from its body);
/// `None` is absent or unreadable params.
pub fn parse_value(
    value: Option<Value>,
    traceparent: Option<&TraceParent>,
) -> (CallContext, Result<CallRequest, Error>) {
    let (ctx, valid) = context(
        value.as_ref().and_then(|v| v.get("a2a_context")),
        traceparent,
    );
    (ctx, valid.and_then(|()| check(value)))
}

/// The call's context from the `a2a_context` of its params (where a top-level one has been
/// moved), by the rules every method shares. An invalid one is refused, naming the field, and
/// the call answers under a context of its own.
pub fn context(
    a2a: Option<&Value>,
    traceparent: Option<&TraceParent>,
) -> (CallContext, Result<(), Error>) {
    match context_of(a2a) {
        Ok(a2a) => (CallContext::new(a2a, traceparent), Ok(())),
        Err(err) => (CallContext::new(None, traceparent), Err(err)),
    }
}

fn context_of(value: Option<&Value>) -> Result<Option<A2aContext>, Error> {
    match value.filter(|v| !v.is_null()).map(A2aContext::deserialize) {
        None => Ok(None),
        Some(Ok(ctx)) => ctx.validate().map(|()| Some(ctx)),
        Some(Err(e)) => Err(Error::invalid_params(format!(
            "invalid params: a2a_context: {}",
            readable(&e.to_string())
        ))),
    }
}

fn check(value: Option<Value>) -> Result<CallRequest, Error> {
    let value = match value {
        Some(Value::Object(map)) => Value::Object(map),
        None => {
            return Err(Error::invalid_params(
                "invalid params: expected an object with model and messages",
            ));
        }
        Some(_) => {
            return Err(Error::invalid_params(
                "invalid params: params must be an object of named fields (model, messages, …), not an array",
            ));
        }
    };
    let params: CompleteParams = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = readable(&e.inner().to_string());
        let message = if path == "." {
            format!("invalid params: {inner}")
        } else {
            format!("invalid params: {path}: {inner}")
        };
        Error::invalid_params(message)
    })?;
    validate(params)
}

/// The contract's rules that types alone do not express.
fn validate(params: CompleteParams) -> Result<CallRequest, Error> {
    let invalid = |rule: &str| Err(Error::invalid_params(format!("invalid params: {rule}")));

    if params.model.trim().is_empty() {
        return invalid("model must be a non-empty string");
    }
    if params.messages.is_empty() {
        return invalid("messages must be a non-empty array");
    }
    for (i, message) in params.messages.iter().enumerate() {
        if let Some(Content::Parts(parts)) = &message.content {
            if parts.is_empty() {
                return invalid(&format!("messages[{i}].content must not be an empty array"));
            }
            for (j, part) in parts.iter().enumerate() {
                if let (Role::System, Part::ImageUrl { .. }) = (message.role, part) {
                    return invalid(&format!(
                        "messages[{i}].content[{j}]: system messages take text only"
                    ));
                }
                if let Part::ImageUrl { image_url } = part {
                    if image_url.is_malformed_data_url() {
                        return invalid(&format!(
                            "messages[{i}].content[{j}].image_url.url must be a data:<media type>;base64,<data> URL"
                        ));
                    }
                    if !(image_url.url.starts_with("data:")
                        || image_url.url.starts_with("https://"))
                    {
                        return invalid(&format!(
                            "messages[{i}].content[{j}].image_url.url must be a data: or https:// URL"
                        ));
                    }
                }
            }
        }
    }
    let max_tokens = match params.max_tokens {
        Some(n) if n < 1 || n > i64::from(u32::MAX) => {
            return invalid("max_tokens must be an integer ≥ 1");
        }
        n => n.map(|n| n as u32),
    };
    if params
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return invalid("temperature must be a number from 0 to 2");
    }
    if params.top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return invalid("top_p must be a number from 0 to 1");
    }
    let stop = match params.stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(list)) if list.len() > 4 => {
            return invalid("stop must be a string or an array of at most 4 strings");
        }
        Some(Stop::Many(list)) => list,
    };
    let timeout = match params.timeout_ms {
        Some(ms) if ms < 1 => return invalid("timeout_ms must be an integer ≥ 1"),
        ms => ms.map(|ms| Duration::from_millis(ms as u64)),
    };
    let rule = |rule: String| Error::invalid_params(format!("invalid params: {rule}"));
    tools::turns(&params.messages).map_err(rule)?;
    let tools = tools::tools(params.tools.unwrap_or_default()).map_err(rule)?;
    let tool_choice = params
        .tool_choice
        .map(|choice| tools::tool_choice(choice, &tools))
        .transpose()
        .map_err(rule)?;
    let response_format = params
        .response_format
        .map(tools::response_format)
        .transpose()
        .map_err(rule)?;
    Ok(CallRequest {
        chat: ChatRequest {
            model: params.model,
            messages: params.messages,
            max_tokens,
            temperature: params.temperature,
            top_p: params.top_p,
            stop,
            reasoning_effort: params.reasoning_effort,
            tools,
            tool_choice,
            parallel_tool_calls: params.parallel_tool_calls,
            response_format,
            passthrough: Map::new(),
        },
        timeout,
        metadata: params.metadata.map(Value::Object),
    })
}

/// Replaces serde's words for our untagged enums with the rule a caller can act on.
fn readable(message: &str) -> String {
    message
        .replace(
            "data did not match any variant of untagged enum Content",
            "content must be a string or an array of {\"type\":\"text\",\"text\":…} / {\"type\":\"image_url\",\"image_url\":{\"url\":…}} parts",
        )
        .replace(tools::CHOICE_RULE.0, tools::CHOICE_RULE.1)
        .replace(
            "data did not match any variant of untagged enum Stop",
            "stop must be a string or an array of at most 4 strings",
        )
}

/// The log line of a call refused for its params, written where the params are read.
pub fn log_invalid(err: &Error) {
    tracing::info!(status = err.kind.as_str(), "call refused: {}", err.message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ResponseFormat, ToolChoice};
    use serde_json::json;

    fn error_of(params: Value) -> String {
        let text = params.to_string();
        parse(Some(&text), None).1.unwrap_err().message
    }

    fn ok(extra: Value) -> CallRequest {
        let mut params =
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        parse(Some(&params.to_string()), None).1.unwrap()
    }

    #[test]
    fn accepts_every_documented_field() {
        let call = ok(json!({
            "max_tokens": 5, "temperature": 0.5, "top_p": 1, "stop": "\n", "reasoning_effort": "low",
            "timeout_ms": 1500, "metadata": {"k": "v"}, "a2a_context": {"trace_id": "t-1"}
        }));
        assert_eq!(call.chat.max_tokens, Some(5));
        assert_eq!(call.chat.stop, vec!["\n".to_owned()]);
        assert_eq!(call.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(call.chat.reasoning_effort, Some(ReasoningEffort::Low));
    }

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object"}}})
    }

    fn call(id: &str, arguments: &str) -> Value {
        json!({"id": id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}})
    }

    #[test]
    fn accepts_a_tool_loop_and_structured_output() {
        let call = ok(json!({
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [call("c1", "{\"city\":\"Paris\"}")]},
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "18 C"}]}
            ],
            "tools": [tool("get_weather")],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true, "description": "d"}}
        }));
        let chat = call.chat;
        assert_eq!(chat.tools[0].name, "get_weather");
        assert_eq!(
            chat.tool_choice,
            Some(ToolChoice::Function("get_weather".into()))
        );
        assert_eq!(chat.parallel_tool_calls, Some(false));
        assert_eq!(chat.messages[1].content, None);
        assert_eq!(chat.messages[1].tool_calls[0].function.name, "get_weather");
        assert_eq!(chat.messages[2].tool_call_id.as_deref(), Some("c1"));
        assert!(matches!(
            chat.response_format,
            Some(ResponseFormat::JsonSchema {
                strict: Some(true),
                ..
            })
        ));
    }

    #[test]
    fn every_rule_names_its_field() {
        let msg = |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
        let with = |field: &str, value: Value| {
            let mut p = msg(json!("hi"));
            p[field] = value;
            p
        };
        for (params, expected) in [
            (json!({"messages": []}), "missing field `model`"),
            (json!({"model": "m"}), "missing field `messages`"),
            (
                json!({"model": "", "messages": [{"role": "user", "content": "x"}]}),
                "model must be a non-empty string",
            ),
            (
                json!({"model": "m", "messages": []}),
                "messages must be a non-empty array",
            ),
            (json!({"model": 5, "messages": []}), "model: invalid type"),
            (
                json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
                "messages[0].role: unknown variant `robot`",
            ),
            (
                msg(json!(42)),
                "messages[0].content: content must be a string or an array",
            ),
            (
                msg(json!([])),
                "messages[0].content must not be an empty array",
            ),
            (
                msg(json!([{"type": "image_url", "image_url": {"url": "ftp://x"}}])),
                "image_url.url must be a data: or https:// URL",
            ),
            (
                json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
                "system messages take text only",
            ),
            (
                msg(json!([{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}])),
                "data:<media type>;base64,<data>",
            ),
            (
                with("max_tokens", json!(0)),
                "max_tokens must be an integer ≥ 1",
            ),
            (with("max_tokens", json!("5")), "max_tokens: invalid type"),
            (
                with("temperature", json!(2.5)),
                "temperature must be a number from 0 to 2",
            ),
            (
                with("top_p", json!(-0.1)),
                "top_p must be a number from 0 to 1",
            ),
            (
                with("stop", json!(["a", "b", "c", "d", "e"])),
                "stop must be a string or an array of at most 4 strings",
            ),
            (
                with("stop", json!(7)),
                "stop: stop must be a string or an array",
            ),
            (
                with("reasoning_effort", json!("max")),
                "reasoning_effort: unknown variant `max`",
            ),
            (
                with("timeout_ms", json!(0)),
                "timeout_ms must be an integer ≥ 1",
            ),
            (with("metadata", json!("x")), "metadata: invalid type"),
            (
                with("tools", json!([tool("get weather")])),
                "tools[0].function.name must be 1-64 characters of A-Za-z0-9_-",
            ),
            (
                with("tools", json!([tool("a"), tool("b"), tool("a")])),
                "tools[2].function.name: \"a\" is given twice",
            ),
            (
                with(
                    "tools",
                    json!((0..129).map(|i| tool(&format!("t{i}"))).collect::<Vec<_>>()),
                ),
                "tools: at most 128 tools, not 129",
            ),
            (
                with(
                    "tools",
                    json!([{"type": "function", "function": {"name": "a", "parameters": []}}]),
                ),
                "tools[0].function.parameters must be a JSON Schema object",
            ),
            (
                with(
                    "tools",
                    json!([{"type": "retrieval", "function": {"name": "a"}}]),
                ),
                "tools[0].type: unknown variant `retrieval`",
            ),
            (
                with("tool_choice", json!("auto")),
                "tool_choice needs tools",
            ),
            (
                {
                    let mut p = with("tools", json!([tool("a")]));
                    p["tool_choice"] = json!({"type": "function", "function": {"name": "b"}});
                    p
                },
                "tool_choice.function.name: \"b\" is not one of the tools",
            ),
            (
                with("tool_choice", json!("always")),
                "tool_choice must be \"auto\", \"none\", \"required\" or",
            ),
            (
                with(
                    "response_format",
                    json!({"type": "json_schema", "json_schema": {"name": "x"}}),
                ),
                "response_format: missing field `schema`",
            ),
            (
                with("response_format", json!({"type": "xml"})),
                "response_format.type: unknown variant `xml`",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "42"}]}),
                "messages[1]: a tool message needs tool_call_id",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "c1", "content": "42"}]}),
                "messages[1].tool_call_id: \"c1\" answers no tool call of an earlier assistant message",
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [call("c1", "[1]")]}]}),
                "messages[0].tool_calls[0].function.arguments must be the JSON text of an object",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x", "tool_calls": [call("c1", "{}")]}]}),
                "messages[0].tool_calls: only assistant messages make tool calls",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": null}]}),
                "messages[0].content is required",
            ),
            (
                with("a2a_context", json!({"trace_id": "bad id"})),
                "a2a_context.trace_id",
            ),
            (with("a2a_context", json!("x")), "a2a_context: invalid type"),
            (json!(["gpt-4o"]), "must be an object of named fields"),
        ] {
            let message = error_of(params.clone());
            assert!(
                message.contains(expected),
                "{params}: {message:?} lacks {expected:?}"
            );
        }
        assert!(
            parse(None, None)
                .1
                .unwrap_err()
                .message
                .contains("expected an object")
        );
    }

    #[test]
    fn an_invalid_call_still_gets_the_callers_trace_id() {
        let (ctx, call) = parse(
            Some(r#"{"model": 1, "a2a_context": {"trace_id": "keep-me"}}"#),
            None,
        );
        assert!(call.is_err());
        assert_eq!(ctx.trace_id, "keep-me");
    }
}
