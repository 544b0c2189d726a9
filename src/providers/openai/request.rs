//! The Chat Completions body for a call: the common request is OpenAI's own shape, so little
//! changes on the way; what does is which models take which token cap and `reasoning_effort`,
//! and the tools and structured output in OpenAI's spelling.

use serde_json::{Value, json};

use super::models::MODELS;
use crate::types::{ChatRequest, Reasoning, ReasoningEffort, ResponseFormat, ToolChoice, ToolDef};

/// Reasoning models ([`Reasoning::Effort`] in the table) take `max_completion_tokens` and
/// `reasoning_effort`; older and compatible models take `max_tokens` and reject
/// `reasoning_effort`.
fn is_reasoning_model(model: &str) -> bool {
    MODELS.capabilities(model).reasoning == Reasoning::Effort
}

pub(super) fn request_body(req: &ChatRequest, stream: bool) -> Value {
    let mut body = json!({ "model": req.model, "messages": req.messages });
    let reasoning = is_reasoning_model(&req.model);
    if let Some(max) = req.max_tokens {
        let field = if reasoning {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[field] = json!(max);
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = req.top_p {
        body["top_p"] = json!(p);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    if let (true, Some(effort)) = (reasoning, req.reasoning_effort) {
        body["reasoning_effort"] = json!(match effort {
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        });
    }
    if !req.tools.is_empty() {
        body["tools"] = req.tools.iter().map(tool).collect();
    }
    if let Some(choice) = &req.tool_choice {
        body["tool_choice"] = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => {
                json!({ "type": "function", "function": { "name": name } })
            }
        };
    }
    if let Some(parallel) = req.parallel_tool_calls {
        body["parallel_tool_calls"] = json!(parallel);
    }
    if let Some(format) = &req.response_format {
        body["response_format"] = match format {
            ResponseFormat::Text => json!({ "type": "text" }),
            ResponseFormat::JsonObject => json!({ "type": "json_object" }),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => {
                let mut spec = json!({ "name": name, "schema": schema });
                if let Some(strict) = strict {
                    spec["strict"] = json!(strict);
                }
                json!({ "type": "json_schema", "json_schema": spec })
            }
        };
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({ "include_usage": true });
    }
    if let Value::Object(fields) = &mut body {
        for (name, value) in &req.passthrough {
            fields.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    body
}

fn tool(def: &ToolDef) -> Value {
    let mut function = json!({ "name": def.name });
    if let Some(description) = &def.description {
        function["description"] = json!(description);
    }
    if let Some(parameters) = &def.parameters {
        function["parameters"] = parameters.clone();
    }
    if let Some(strict) = def.strict {
        function["strict"] = json!(strict);
    }
    json!({ "type": "function", "function": function })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::openai::OpenAi;
    use crate::providers::testing::fixture;
    use crate::types::{Content, Message, Role, ToolCall};

    fn request(model: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: vec![
                Message::new(
                    Role::System,
                    Content::Text("You are a terse assistant.".into()),
                ),
                Message::new(Role::User, Content::Text("Say hello.".into())),
            ],
            max_tokens: Some(64),
            temperature: Some(0.2),
            top_p: Some(1.0),
            stop: vec!["\n\n".into()],
            reasoning_effort: Some(ReasoningEffort::High),
            ..ChatRequest::default()
        }
    }

    #[test]
    fn streaming_body_asks_for_usage_and_uses_the_right_token_cap() {
        let body = request_body(&request("gpt-4o-mini"), true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert_eq!(body["max_tokens"], 64);
        assert!(body.get("max_completion_tokens").is_none());
        assert!(body.get("reasoning_effort").is_none());
        assert_eq!(body["stop"], json!(["\n\n"]));
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "You are a terse assistant."})
        );

        let body = request_body(&request("o4-mini"), false);
        assert_eq!(body["max_completion_tokens"], 64);
        assert_eq!(body["reasoning_effort"], "high");
        assert!(body.get("stream").is_none());
    }

    #[test]
    fn fixture_request_messages_round_trip_through_our_types() {
        let fixture: Value =
            serde_json::from_slice(&fixture::<OpenAi>("chat_completion_request_image.json"))
                .unwrap();
        let messages: Vec<Message> = serde_json::from_value(fixture["messages"].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&messages).unwrap(),
            fixture["messages"]
        );
    }

    #[test]
    fn tools_and_structured_output_are_sent_in_openais_own_shapes() {
        let mut req = request("gpt-4.1-mini");
        req.tools = vec![ToolDef {
            name: "get_weather".into(),
            description: Some("Weather of a city".into()),
            parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
            strict: Some(true),
        }];
        req.tool_choice = Some(ToolChoice::Function("get_weather".into()));
        req.parallel_tool_calls = Some(false);
        req.response_format = Some(ResponseFormat::JsonSchema {
            name: "weather".into(),
            schema: json!({"type": "object"}),
            strict: None,
        });
        let call = ToolCall::function("call_1".into(), "get_weather".into(), "{}".into());
        req.messages.push(Message {
            tool_calls: vec![call],
            content: None,
            ..Message::new(Role::Assistant, Content::Text(String::new()))
        });
        req.messages.push(Message {
            tool_call_id: Some("call_1".into()),
            ..Message::new(Role::Tool, Content::Text("18 C".into()))
        });
        let body = request_body(&req, false);
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}])
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(body["parallel_tool_calls"], false);
        assert_eq!(
            body["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "weather", "schema": {"type": "object"}}})
        );
        assert_eq!(
            body["messages"][2],
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]})
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "18 C"})
        );
        req.tool_choice = Some(ToolChoice::Required);
        req.response_format = Some(ResponseFormat::JsonObject);
        let body = request_body(&req, true);
        assert_eq!(
            (&body["tool_choice"], &body["response_format"]),
            (&json!("required"), &json!({"type": "json_object"}))
        );
    }
}
