//! The agent loop through llmrpc on every provider: the model asks for a tool, the agent runs
//! it and sends the result back, the model answers, in OpenAI's shapes on our side and in each
//! provider's own on the wire; complete and streamed; and bad tool params refused before
//! anything is sent.

use crate::common;

use common::upstream::{ALL, Mocked, Provider};
use common::*;
use serde_json::{Value, json};
use wiremock::MockServer;

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }})
}

fn first_turn(provider: Provider) -> Value {
    json!({
        "model": provider.model(),
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [weather_tool()],
        "a2a_context": {"trace_id": format!("tools-{}", provider.name())}
    })
}

/// The tool definition as each provider must receive it.
fn assert_tools_sent(provider: Provider, body: &Value) {
    let schema =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    match provider {
        Provider::Openai => assert_eq!(body["tools"], json!([weather_tool()])),
        Provider::Anthropic => assert_eq!(
            body["tools"],
            json!([{"name": "get_weather", "description": "The weather in a city", "input_schema": schema}])
        ),
        Provider::Gemini => {
            let declaration = &body["tools"][0]["functionDeclarations"][0];
            assert_eq!(declaration["name"], "get_weather", "{body}");
            assert_eq!(declaration["description"], "The weather in a city");
            let sent = declaration
                .get("parametersJsonSchema")
                .or_else(|| declaration.get("parameters"));
            assert_eq!(sent, Some(&schema), "{body}");
        }
    }
}

/// The replayed call and its result as each provider must receive them.
fn assert_history_sent(provider: Provider, body: &Value, call_id: &str) {
    match provider {
        Provider::Openai => {
            assert_eq!(body["messages"][1]["tool_calls"][0]["id"], call_id);
            assert_eq!(
                body["messages"][2],
                json!({"role": "tool", "tool_call_id": call_id, "content": "18 C"})
            );
        }
        Provider::Anthropic => {
            let turns = body["messages"].as_array().unwrap();
            assert_eq!(turns.len(), 3, "{body}");
            let asked = &turns[1]["content"][0];
            assert_eq!(
                (asked["type"].as_str(), asked["id"].as_str()),
                (Some("tool_use"), Some(call_id))
            );
            assert_eq!(asked["input"], json!({"city": "Paris"}));
            assert_eq!(turns[2]["role"], "user");
            let result = &turns[2]["content"][0];
            assert_eq!(result["type"], "tool_result");
            assert_eq!(result["tool_use_id"], call_id);
            assert!(result["content"].to_string().contains("18 C"), "{result}");
        }
        Provider::Gemini => {
            let turns = body["contents"].as_array().unwrap();
            assert_eq!(turns.len(), 3, "{body}");
            assert_eq!(turns[1]["role"], "model");
            let call = &turns[1]["parts"][0]["functionCall"];
            assert_eq!(
                (&call["name"], &call["args"]),
                (&json!("get_weather"), &json!({"city": "Paris"}))
            );
            assert_eq!(turns[2]["role"], "user");
            let response = &turns[2]["parts"][0]["functionResponse"];
            assert_eq!(response["name"], "get_weather", "{body}");
            assert!(
                response["response"].to_string().contains("18 C"),
                "{response}"
            );
        }
    }
}

fn arguments(call: &Value) -> Value {
    serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap()
}

/// The `tool_calls` counts of the ledger's records of `provider`'s trace, oldest first. Only
/// counts: nothing of the calls' content (the city is in the prompt and the arguments) is kept.
async fn recorded_tool_calls(service: &Service, provider: Provider) -> Vec<u64> {
    let trace_id = format!("tools-{}", provider.name());
    let trace = service
        .call("ops.trace", json!({"trace_id": trace_id}))
        .await;
    assert!(!trace.to_string().contains("Paris"), "{trace}");
    let calls = trace["result"].as_array().unwrap();
    calls
        .iter()
        .map(|c| c["tool_calls"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_whole_tool_loop_runs_on_every_provider() {
    for provider in ALL {
        let upstream = MockServer::start().await;
        provider.mount_tool_loop(&upstream).await;
        let service = provider.start(&upstream, &[]);

        let asked = service.call("llm.complete", first_turn(provider)).await;
        let result = &asked["result"];
        assert_eq!(
            result["finish_reason"], "tool_calls",
            "{provider:?}: {asked}"
        );
        let calls = result["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{provider:?}");
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(arguments(&calls[0]), json!({"city": "Paris"}));
        let call_id = calls[0]["id"].as_str().unwrap().to_owned();
        assert!(!call_id.is_empty());
        assert_tools_sent(provider, &received(&upstream).await[0].body_json().unwrap());

        let mut second = first_turn(provider);
        let messages = second["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
        messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": "18 C"}));
        let answered = service.call("llm.complete", second).await;
        let result = &answered["result"];
        assert_eq!(
            result["content"], "It is 18 C in Paris.",
            "{provider:?}: {answered}"
        );
        assert_eq!(result["finish_reason"], "stop");
        assert!(result.get("tool_calls").is_none(), "{result}");
        let requests = received(&upstream).await;
        assert_eq!(requests.len(), 2, "{provider:?}");
        assert_history_sent(provider, &requests[1].body_json().unwrap(), &call_id);
        assert_eq!(
            recorded_tool_calls(&service, provider).await,
            [1, 0],
            "{provider:?}"
        );
        let usage = service
            .call("ops.usage", json!({"group_by": "provider"}))
            .await;
        assert_eq!(usage["result"]["groups"][0]["tool_calls"], 1, "{usage}");
    }
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_deltas_and_whole_in_the_last_chunk() {
    for provider in ALL {
        let upstream = MockServer::start().await;
        provider.mount_tool_loop(&upstream).await;
        let service = provider.start(&upstream, &[]);
        let response = service
            .sse_request(json!(7), first_turn(provider))
            .send()
            .await
            .unwrap();
        let events = sse_events(response).await;
        let chunks: Vec<&Value> = events.iter().map(|e| &e["result"]).collect();
        let (last, deltas) = chunks.split_last().unwrap();
        assert_eq!(last["done"], true, "{provider:?}: {events:?}");
        assert_eq!(last["finish_reason"], "tool_calls", "{provider:?}: {last}");
        let calls = last["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{provider:?}: {last}");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        assert_eq!(arguments(&calls[0]), json!({"city": "Paris"}));

        // The deltas, in OpenAI's form: index always, id and name first, then fragments that
        // add up to the final arguments.
        let pieces: Vec<&Value> = deltas
            .iter()
            .flat_map(|c| c["tool_calls"].as_array().into_iter().flatten())
            .collect();
        assert!(!pieces.is_empty(), "{provider:?}: {events:?}");
        assert!(pieces.iter().all(|p| p["index"] == 0), "{pieces:?}");
        assert_eq!(pieces[0]["id"], calls[0]["id"]);
        assert_eq!(pieces[0]["function"]["name"], "get_weather");
        assert!(
            pieces[1..].iter().all(|p| p.get("id").is_none()),
            "{pieces:?}"
        );
        let joined: String = pieces
            .iter()
            .map(|p| p["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(joined, calls[0]["function"]["arguments"].as_str().unwrap());
        assert!(
            chunks
                .iter()
                .all(|c| c["trace_id"] == format!("tools-{}", provider.name()))
        );
        assert_eq!(
            recorded_tool_calls(&service, provider).await,
            [1],
            "{provider:?}"
        );
    }
}

#[tokio::test]
async fn bad_tool_params_are_refused_and_nothing_is_sent_upstream() {
    let upstream = MockServer::start().await;
    Provider::Openai.mount_tool_loop(&upstream).await;
    let service = Provider::Openai.start(&upstream, &[]);
    let with = |field: &str, value: Value| {
        let mut params = first_turn(Provider::Openai);
        params[field] = value;
        params
    };
    let mut unanswered = first_turn(Provider::Openai);
    unanswered["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "tool", "tool_call_id": "call_9", "content": "18 C"}));
    for (params, message) in [
        (
            with(
                "tool_choice",
                json!({"type": "function", "function": {"name": "get_time"}}),
            ),
            "invalid params: tool_choice.function.name: \"get_time\" is not one of the tools",
        ),
        (
            with("tools", json!([weather_tool(), weather_tool()])),
            "invalid params: tools[1].function.name: \"get_weather\" is given twice",
        ),
        (
            unanswered,
            "invalid params: messages[1].tool_call_id: \"call_9\" answers no tool call of an earlier assistant message",
        ),
        (
            with(
                "response_format",
                json!({"type": "json_schema", "json_schema": {"name": "w"}}),
            ),
            "invalid params: response_format: missing field `schema`",
        ),
    ] {
        let answer = service.call("llm.complete", params).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert_eq!(answer["error"]["message"], message);
        assert_eq!(answer["error"]["data"]["trace_id"], "tools-openai");
    }
    assert!(received(&upstream).await.is_empty());
}
