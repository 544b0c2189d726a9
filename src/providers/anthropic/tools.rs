//! Tools in Anthropic's shapes: their definitions, `tool_choice` (which also carries
//! `parallel_tool_calls`), and the turns of a replayed tool loop, whose calls become `tool_use`
//! blocks and whose results become `tool_result` blocks of user turns.

use serde_json::{Value, json};

use crate::types::{ChatRequest, Message, Role, ToolChoice, ToolDef};

/// Whether a call uses tools: it offers some, or its history holds calls or their results.
pub(super) fn uses_tools(req: &ChatRequest) -> bool {
    !req.tools.is_empty()
        || req
            .messages
            .iter()
            .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty())
}

/// A tool's answer: a `tool_result` block, its text left out when empty (the field is optional,
/// and Anthropic refuses empty text).
pub(super) fn tool_result(message: &Message) -> Value {
    let mut block = json!({ "type": "tool_result", "tool_use_id": message.tool_call_id });
    let text = message.text();
    if !text.is_empty() {
        block["content"] = json!(text);
    }
    block
}

pub(super) fn tool(def: &ToolDef) -> Value {
    let schema = def
        .parameters
        .clone()
        .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
    let mut tool = json!({ "name": def.name, "input_schema": schema });
    if let Some(description) = &def.description {
        tool["description"] = json!(description);
    }
    tool
}

/// Anthropic's `tool_choice`, which also carries what OpenAI's `parallel_tool_calls: false`
/// says (`disable_parallel_tool_use`); `none` takes no such flag.
pub(super) fn tool_choice(req: &ChatRequest) -> Option<Value> {
    let one_at_a_time = req.parallel_tool_calls == Some(false);
    let mut choice = match &req.tool_choice {
        Some(ToolChoice::None) => return Some(json!({ "type": "none" })),
        Some(ToolChoice::Auto) => json!({ "type": "auto" }),
        Some(ToolChoice::Required) => json!({ "type": "any" }),
        Some(ToolChoice::Function(name)) => json!({ "type": "tool", "name": name }),
        None if one_at_a_time => json!({ "type": "auto" }),
        None => return None,
    };
    if one_at_a_time {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    Some(choice)
}

/// A `tool_use` block per call of an assistant turn.
pub(super) fn tool_use_blocks(message: &Message) -> impl Iterator<Item = Value> + '_ {
    message.tool_calls.iter().map(|call| {
        // Params validation has made sure the arguments are the JSON text of an object.
        let input: Value = serde_json::from_str(&call.function.arguments).unwrap_or_default();
        json!({ "type": "tool_use", "id": call.id, "name": call.function.name, "input": input })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::Anthropic;
    use crate::providers::anthropic::request::request_body;
    use crate::providers::testing::*;
    use crate::types::{Content, ReasoningEffort, ToolCall};

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall::function(id.into(), name.into(), arguments.into())
    }

    fn weather_tool() -> ToolDef {
        let fixture = fixture_json::<Anthropic>("messages_request_tools.json");
        ToolDef {
            name: "get_weather".into(),
            description: fixture["tools"][0]["description"].as_str().map(Into::into),
            parameters: Some(fixture["tools"][0]["input_schema"].clone()),
            strict: None,
        }
    }

    #[test]
    fn tools_are_sent_as_the_fixture_request_has_them() {
        let req = ChatRequest {
            tools: vec![weather_tool()],
            ..request(
                "claude-haiku-4-5",
                vec![text(Role::User, "What is the weather in SF?")],
            )
        };
        assert_eq!(
            request_body(&req, false),
            fixture_json::<Anthropic>("messages_request_tools.json")
        );

        let bare = ToolDef {
            name: "now".into(),
            description: None,
            parameters: None,
            strict: None,
        };
        assert_eq!(
            tool(&bare),
            json!({"name": "now", "input_schema": {"type": "object", "properties": {}}})
        );
    }

    #[test]
    fn tool_choice_carries_parallel_tool_calls() {
        let mut req = ChatRequest {
            tools: vec![weather_tool()],
            ..request("claude-sonnet-4-5", vec![text(Role::User, "hi")])
        };
        let function = || Some(ToolChoice::Function("get_weather".into()));
        for (choice, parallel, expected) in [
            (None, None, None),
            (None, Some(true), None),
            (
                None,
                Some(false),
                Some(json!({"type": "auto", "disable_parallel_tool_use": true})),
            ),
            (Some(ToolChoice::Auto), None, Some(json!({"type": "auto"}))),
            (
                Some(ToolChoice::Required),
                None,
                Some(json!({"type": "any"})),
            ),
            (
                function(),
                None,
                Some(json!({"type": "tool", "name": "get_weather"})),
            ),
            (Some(ToolChoice::None), None, Some(json!({"type": "none"}))),
            (
                Some(ToolChoice::Required),
                Some(false),
                Some(json!({"type": "any", "disable_parallel_tool_use": true})),
            ),
            (
                function(),
                Some(false),
                Some(
                    json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}),
                ),
            ),
            (
                Some(ToolChoice::None),
                Some(false),
                Some(json!({"type": "none"})),
            ),
            (
                Some(ToolChoice::Auto),
                Some(true),
                Some(json!({"type": "auto"})),
            ),
        ] {
            req.tool_choice = choice.clone();
            req.parallel_tool_calls = parallel;
            let body = request_body(&req, false);
            assert_eq!(
                body.get("tool_choice"),
                expected.as_ref(),
                "{choice:?} {parallel:?}"
            );
        }
        // Without tools nothing about them is sent.
        req.tools.clear();
        req.tool_choice = None;
        let body = request_body(&req, false);
        assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
    }

    #[test]
    fn replayed_tool_loops_become_tool_use_and_merged_tool_results() {
        let req = ChatRequest {
            tools: vec![weather_tool()],
            ..request(
                "claude-sonnet-4-5",
                vec![
                    text(Role::System, "Be terse."),
                    text(Role::User, "Weather in Paris and Rome?"),
                    assistant_calls(
                        Some("Let me check."),
                        vec![
                            call(
                                "toolu_1",
                                "get_weather",
                                r#"{"location":"Paris","units":"c"}"#,
                            ),
                            call(
                                "toolu_2",
                                "get_weather",
                                r#"{"location":"Rome","units":"c"}"#,
                            ),
                        ],
                    ),
                    tool_message("toolu_1", Content::Text("18C, cloudy".into())),
                    tool_message(
                        "toolu_2",
                        Content::Parts(vec![text_part("21C,"), text_part("sunny")]),
                    ),
                    text(Role::User, "And Oslo?"),
                    assistant_calls(
                        Some(""),
                        vec![call(
                            "toolu_3",
                            "get_weather",
                            r#"{"location":"Oslo","units":"c"}"#,
                        )],
                    ),
                    tool_message("toolu_3", Content::Text(String::new())),
                    text(Role::Assistant, "Paris 18C, Rome 21C, Oslo unknown."),
                    text(Role::User, "Thanks."),
                    assistant_calls(None, vec![call("toolu_4", "get_weather", "{}")]),
                    tool_message("toolu_4", Content::Text("?".into())),
                ],
            )
        };
        let body = request_body(&req, false);
        assert_eq!(body["system"], "Be terse.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                     "input": {"location": "Paris", "units": "c"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                     "input": {"location": "Rome", "units": "c"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, cloudy"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "21C,\nsunny"},
                    {"type": "text", "text": "And Oslo?"},
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_3", "name": "get_weather",
                     "input": {"location": "Oslo", "units": "c"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_3"},
                ]},
                {"role": "assistant", "content": "Paris 18C, Rome 21C, Oslo unknown."},
                {"role": "user", "content": "Thanks."},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_4", "name": "get_weather", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_4", "content": "?"},
                ]},
            ])
        );
    }

    #[test]
    fn thinking_stays_off_when_tools_are_in_play() {
        let thinking = |req: &ChatRequest| request_body(req, false).get("thinking").cloned();
        let mut req = ChatRequest {
            reasoning_effort: Some(ReasoningEffort::High),
            temperature: Some(0.5),
            ..request("claude-sonnet-4-5", vec![text(Role::User, "hi")])
        };
        assert!(thinking(&req).is_some());

        req.tools = vec![weather_tool()];
        let body = request_body(&req, false);
        assert!(body.get("thinking").is_none());
        assert_eq!(
            (&body["temperature"], &body["max_tokens"]),
            (&json!(0.5), &json!(1024))
        );

        // A history of calls and results is enough, even with no tools offered now.
        req.tools.clear();
        req.messages.extend([
            assistant_calls(None, vec![call("toolu_1", "get_weather", "{}")]),
            tool_message("toolu_1", Content::Text("18C".into())),
        ]);
        assert!(thinking(&req).is_none());
        req.messages.truncate(2);
        assert!(thinking(&req).is_none());
    }
}
