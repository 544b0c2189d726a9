//! Tools in Gemini's shapes: `FunctionDeclaration`s, `functionCallingConfig`, and the
//! `functionCall` / `functionResponse` parts of a replayed tool loop. Gemini may give a call no
//! id, and a thinking model signs its calls with a `thoughtSignature` that must come back with
//! the history; both travel in the id the caller sees (see [`call_id`]).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::error::rejected;
use crate::error::Error;
use crate::fnv::fnv1a;
use crate::types::{Message, ToolCall, ToolChoice, ToolDef};

/// A tool as a `FunctionDeclaration`. The schema goes in `parametersJsonSchema`, which takes
/// standard JSON Schema as OpenAI's callers write it (`additionalProperties`, `$ref`, `anyOf`,
/// lowercase types …); `parameters` takes only Gemini's OpenAPI 3.0 subset and refuses much of
/// that. `strict` has no counterpart and is dropped.
pub(super) fn function_declaration(def: &ToolDef) -> Value {
    let mut declaration = json!({ "name": def.name });
    if let Some(description) = &def.description {
        declaration["description"] = json!(description);
    }
    if let Some(parameters) = &def.parameters {
        declaration["parametersJsonSchema"] = parameters.clone();
    }
    declaration
}

/// `tool_choice` as `functionCallingConfig`. Gemini has no switch for `parallel_tool_calls`: it
/// is ignored, and the model may ask for several calls at once whatever it says.
pub(super) fn function_calling_config(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Function(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    }
}

/// A replayed call as the `functionCall` part Gemini made, its signature back on the part.
pub(super) fn function_call_part(call: &ToolCall) -> Result<Value, Error> {
    let args: Map<String, Value> = serde_json::from_str(&call.function.arguments)
        .map_err(|_| rejected("tool call arguments must be the JSON text of an object"))?;
    let (id, signature) = split_call_id(&call.id);
    let mut function_call = json!({ "name": call.function.name, "args": args });
    if let Some(id) = id {
        function_call["id"] = json!(id);
    }
    let mut part = json!({ "functionCall": function_call });
    if let Some(signature) = signature {
        part["thoughtSignature"] = json!(signature);
    }
    Ok(part)
}

/// A `tool` message as a `functionResponse` part. Gemini wants an object: a result that is the
/// JSON text of one is sent as that object, any other text as `{"content": <text>}`.
pub(super) fn function_response_part(
    message: &Message,
    names: &HashMap<&str, &str>,
) -> Result<Value, Error> {
    let (call_id, name) = message
        .tool_call_id
        .as_deref()
        .and_then(|id| Some((id, *names.get(id)?)))
        .ok_or_else(|| rejected("a tool message answers no earlier tool call"))?;
    let text = message.text();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ "content": text }),
    };
    let mut function_response = json!({ "name": name, "response": response });
    if let (Some(id), _) = split_call_id(call_id) {
        function_response["id"] = json!(id);
    }
    Ok(json!({ "functionResponse": function_response }))
}

/// Parts an id from the thought signature it carries.
const SIGNATURE_MARK: &str = "~ts~";

/// The id a caller sees for a call Gemini asked for. It is Gemini's own `id` when Gemini gave
/// one, else `call_` and 16 hex digits of a hash of the call's place in the answer, its name
/// and its arguments: the same answer gets the same ids, streamed or not. A call signed with a
/// `thoughtSignature` carries it after [`SIGNATURE_MARK`], since Gemini refuses a replayed
/// history whose calls lost their signatures, and the id is the one thing of a call every
/// OpenAI client passes back unchanged. Callers must treat ids as opaque and send them back
/// as they came (OpenAI's SDKs do).
pub(super) fn call_id(
    index: u32,
    id: Option<&str>,
    name: &str,
    args: &str,
    signature: Option<&str>,
) -> String {
    let mut id = match id {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("call_{:016x}", call_hash(index, name, args)),
    };
    if let Some(signature) = signature {
        id.push_str(SIGNATURE_MARK);
        id.push_str(signature);
    }
    id
}

/// An id taken apart: the id to send Gemini, if any, and the thought signature, if any. Ids of
/// our own making (`call_` and 16 hex digits) are never sent: Gemini did not give them. Any
/// other id is, in `functionCall.id` and the answering `functionResponse.id`; Gemini takes the
/// id as the client's to pair the two.
fn split_call_id(id: &str) -> (Option<&str>, Option<&str>) {
    let (id, signature) = match id.split_once(SIGNATURE_MARK) {
        Some((id, signature)) => (id, Some(signature)),
        None => (id, None),
    };
    let ours = id.strip_prefix("call_").is_some_and(|hex| {
        hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    ((!ours && !id.is_empty()).then_some(id), signature)
}

/// The hash of a call's fields, which only needs to tell the calls of one conversation apart.
/// The index has a fixed width and 0xff, which UTF-8 never holds, ends each field, so no two
/// calls feed it the same bytes.
fn call_hash(index: u32, name: &str, args: &str) -> u64 {
    let fields = [&index.to_le_bytes()[..], name.as_bytes(), args.as_bytes()];
    fnv1a(fields.iter().flat_map(|field| field.iter().chain(&[0xff])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::providers::gemini::Gemini;
    use crate::providers::gemini::request::request_body;
    use crate::providers::gemini::response::parse_response;
    use crate::providers::testing::*;
    use crate::types::{ChatRequest, Content, FinishReason, Role, StreamEvent, ToolCallDelta};

    const SIGNATURE: &str =
        "CpwCAdHtim9nQ2x3+v/8Zk1aVJ0cWnBfR4s7TqLyE2uXo5hD6gKc0Mz1Pj+Q8rN3wYtA==";

    /// The ids of the fixture answer's two calls, pinned: a replay days later must match.
    const PARIS_ID: &str = "call_37c52fc2882822af";

    const LONDON_ID: &str = "call_028e0ab334bc7d37";

    fn tool_def(name: &str, description: Option<&str>, parameters: Option<Value>) -> ToolDef {
        ToolDef {
            name: name.into(),
            description: description.map(Into::into),
            parameters,
            strict: Some(true),
        }
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall::function(id.into(), name.into(), arguments.into())
    }

    fn weather_tools(model: &str) -> ChatRequest {
        let schema = json!({
            "type": "object",
            "properties": { "city": { "type": "string" }, "unit": { "enum": ["celsius", "fahrenheit"] } },
            "required": ["city"],
            "additionalProperties": false
        });
        ChatRequest {
            tools: vec![
                tool_def("get_weather", Some("The weather now."), Some(schema)),
                tool_def("get_time", None, None),
            ],
            ..request(
                model,
                vec![text(Role::User, "Weather in Paris and London?")],
            )
        }
    }

    #[test]
    fn tools_become_function_declarations_with_their_json_schema() {
        let req = ChatRequest {
            parallel_tool_calls: Some(false),
            ..weather_tools("gemini-2.5-flash")
        };
        let body = request_body(&req).unwrap();
        assert_eq!(
            body["tools"],
            json!([{ "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "The weather now.",
                    "parametersJsonSchema": req.tools[0].parameters.clone().unwrap()
                },
                { "name": "get_time" }
            ]}])
        );
        // No tool_choice: Gemini's default (AUTO); parallel_tool_calls has no counterpart.
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["contents", "tools"]
        );
    }

    #[test]
    fn tool_choice_becomes_a_function_calling_mode() {
        for (choice, config) in [
            (ToolChoice::Auto, json!({ "mode": "AUTO" })),
            (ToolChoice::None, json!({ "mode": "NONE" })),
            (ToolChoice::Required, json!({ "mode": "ANY" })),
            (
                ToolChoice::Function("get_time".into()),
                json!({ "mode": "ANY", "allowedFunctionNames": ["get_time"] }),
            ),
        ] {
            let req = ChatRequest {
                tool_choice: Some(choice.clone()),
                ..weather_tools("gemini-2.5-flash")
            };
            assert_eq!(
                request_body(&req).unwrap()["toolConfig"],
                json!({ "functionCallingConfig": config }),
                "{choice:?}"
            );
        }
    }

    #[test]
    fn replayed_calls_and_results_become_function_parts() {
        let paris = format!("{PARIS_ID}~ts~{SIGNATURE}");
        let req = request(
            "gemini-2.5-flash",
            vec![
                text(Role::User, "Weather in Paris and London?"),
                // OpenAI's clients may send "" beside calls.
                assistant_calls(
                    Some(""),
                    vec![
                        call(&paris, "get_weather", r#"{"city":"Paris"}"#),
                        call(LONDON_ID, "get_weather", r#"{"city":"London"}"#),
                    ],
                ),
                tool_message(&paris, Content::Text(r#"{"temp_c":21}"#.into())),
                tool_message(LONDON_ID, Content::Text("Rain, 14°C".into())),
                // A call Gemini gave its own id, and a call with no arguments.
                assistant_calls(Some("And the time?"), vec![call("gem-7", "get_time", "{}")]),
                tool_message("gem-7", Content::Text("[\"12:00\"]".into())),
                text(Role::User, "Thanks."),
            ],
        );
        assert_eq!(
            request_body(&req).unwrap()["contents"],
            json!([
                { "role": "user", "parts": [{ "text": "Weather in Paris and London?" }] },
                { "role": "model", "parts": [
                    {
                        "functionCall": { "name": "get_weather", "args": { "city": "Paris" } },
                        "thoughtSignature": SIGNATURE
                    },
                    { "functionCall": { "name": "get_weather", "args": { "city": "London" } } }
                ]},
                { "role": "user", "parts": [
                    { "functionResponse": { "name": "get_weather", "response": { "temp_c": 21 } } },
                    { "functionResponse": {
                        "name": "get_weather", "response": { "content": "Rain, 14°C" }
                    }}
                ]},
                { "role": "model", "parts": [
                    { "text": "And the time?" },
                    { "functionCall": { "id": "gem-7", "name": "get_time", "args": {} } }
                ]},
                { "role": "user", "parts": [
                    { "functionResponse": {
                        "id": "gem-7", "name": "get_time", "response": { "content": "[\"12:00\"]" }
                    }},
                    { "text": "Thanks." }
                ]}
            ])
        );
    }

    #[test]
    fn a_tool_message_answering_no_earlier_call_is_refused() {
        let req = request(
            "gemini-2.5-flash",
            vec![
                tool_message("call_1", Content::Text("early".into())),
                assistant_calls(None, vec![call("call_1", "get_time", "{}")]),
            ],
        );
        let err = request_body(&req).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderRejected);
    }

    #[test]
    fn call_ids_carry_gemini_ids_and_signatures_and_come_apart_again() {
        assert_eq!(split_call_id(PARIS_ID), (None, None));
        assert_eq!(
            split_call_id(&format!("{PARIS_ID}~ts~{SIGNATURE}")),
            (None, Some(SIGNATURE))
        );
        assert_eq!(
            split_call_id("gem-7~ts~c2ln"),
            (Some("gem-7"), Some("c2ln"))
        );
        // Ids from elsewhere (another provider's loop) pass as ids; only ours are held back.
        for foreign in [
            "call_abc123",
            "toolu_01A09q90qw90lq917835lq9",
            "call_37c52fc2882822aZ",
        ] {
            assert_eq!(split_call_id(foreign), (Some(foreign), None));
        }
        assert_eq!(
            call_id(3, Some("gem-7"), "f", "{}", Some("c2ln")),
            "gem-7~ts~c2ln"
        );
        let ours = call_id(3, None, "f", "{}", None);
        assert_eq!(ours, call_id(3, Some(""), "f", "{}", None));
        // Place, name and arguments each tell calls apart.
        assert_ne!(ours, call_id(4, None, "f", "{}", None));
        assert_ne!(ours, call_id(3, None, "f", r#"{"a":1}"#, None));
        assert_ne!(call_hash(0, "ab", "c"), call_hash(0, "a", "bc"));
    }

    #[test]
    fn function_calls_are_parsed_with_stable_ids() {
        let body = fixture::<Gemini>("generate_content_response_function_call.json");
        let r = parse_response(&body).unwrap();
        assert_eq!(
            r.tool_calls,
            [
                call(
                    &format!("{PARIS_ID}~ts~{SIGNATURE}"),
                    "get_weather",
                    r#"{"city":"Paris","unit":"celsius"}"#
                ),
                call(
                    LONDON_ID,
                    "get_weather",
                    r#"{"city":"London","unit":"celsius"}"#
                ),
            ]
        );
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.content, "");
        assert_eq!(parse_response(&body).unwrap().tool_calls, r.tool_calls);

        // Gemini's own id is kept; a cut-off answer keeps its reason; no args is `{}`.
        let r = parse_response(
            br#"{"candidates":[{"content":{"parts":[{"text":"Sure."},{"functionCall":{"id":"gem-7","name":"get_time"}}]},"finishReason":"MAX_TOKENS"}]}"#,
        )
        .unwrap();
        assert_eq!(r.tool_calls, [call("gem-7", "get_time", "{}")]);
        assert_eq!(
            (r.content.as_str(), r.finish_reason),
            ("Sure.", FinishReason::Length)
        );
    }

    #[test]
    fn a_streamed_call_is_one_whole_delta_with_the_same_id() {
        let events = stream_events::<Gemini>(&fixture::<Gemini>(
            "stream_generate_content_function_call.sse",
        ))
        .unwrap();
        let delta = |index, id: &str, city: &str| {
            StreamEvent::ToolCall(ToolCallDelta {
                index,
                id: Some(id.into()),
                name: Some("get_weather".into()),
                arguments: format!(r#"{{"city":"{city}","unit":"celsius"}}"#),
            })
        };
        let calls: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::ToolCall(_) | StreamEvent::Finish(_)))
            .cloned()
            .collect();
        assert_eq!(
            calls,
            [
                delta(0, &format!("{PARIS_ID}~ts~{SIGNATURE}"), "Paris"),
                delta(1, LONDON_ID, "London"),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
        assert_eq!(text_of(&events), "Checking both cities.");
        // Streamed or not, the same answer has the same calls.
        let whole = fixture::<Gemini>("generate_content_response_function_call.json");
        assert_eq!(
            tool_calls_of(&events),
            parse_response(&whole).unwrap().tool_calls
        );
    }

    #[test]
    fn replaying_an_answer_sends_its_parts_back_as_they_came() {
        let body = fixture::<Gemini>("generate_content_response_function_call.json");
        let answer = parse_response(&body).unwrap();
        let mut messages = vec![
            text(Role::User, "Weather in Paris and London?"),
            assistant_calls(None, answer.tool_calls.clone()),
        ];
        for call in &answer.tool_calls {
            messages.push(tool_message(&call.id, Content::Text("sunny".into())));
        }
        let req = ChatRequest {
            messages,
            ..weather_tools("gemini-2.5-flash")
        };
        let contents = request_body(&req).unwrap()["contents"].clone();
        let answered = fixture_json::<Gemini>("generate_content_response_function_call.json");
        assert_eq!(contents[1], answered["candidates"][0]["content"]);
        let response = json!({ "name": "get_weather", "response": { "content": "sunny" } });
        assert_eq!(
            contents[2],
            json!({ "role": "user", "parts": [
                { "functionResponse": response },
                { "functionResponse": response }
            ]})
        );
    }
}
