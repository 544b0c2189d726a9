//! The tool scenario of `llmrpc mock-upstream`, against a real mock process: a first turn with
//! tools gets a call of the first tool, a turn ending with its result gets the result echoed,
//! in each provider's own shapes, whole and streamed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

struct MockUpstream {
    child: Child,
    url: String,
}

impl MockUpstream {
    /// Starts the mock on a free port, read from its `listening on` line.
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
            .args(["mock-upstream", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn llmrpc mock-upstream");
        let mut line = String::new();
        BufReader::new(child.stderr.take().expect("stderr"))
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("mock upstream listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        let url = format!("http://{addr}");
        Self { child, url }
    }

    async fn post(&self, path: &str, body: &Value) -> String {
        let response = llmrpc::http_client(Duration::from_secs(5))
            .expect("client")
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200);
        response.text().await.expect("body")
    }

    async fn whole(&self, path: &str, body: &Value) -> Value {
        serde_json::from_str(&self.post(path, body).await).expect("JSON answer")
    }

    /// The events of a streamed answer: each one's `event:` name (if any) and `data:`.
    async fn events(&self, path: &str, body: &Value) -> Vec<(Option<String>, String)> {
        let text = self.post(path, body).await.replace("\r\n", "\n");
        text.split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let field = |name: &str| {
                    event
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_owned)
                };
                (field("event: "), field("data: ").expect("data line"))
            })
            .collect()
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_of(data: &str) -> Value {
    serde_json::from_str(data).expect("event JSON")
}

/// Each required property of every type, and one optional that must not appear.
fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}, "scale": {"type": "number"},
            "metric": {"type": "boolean"}, "note": {"type": "string"}
        },
        "required": ["city", "days", "scale", "metric"]
    })
}

fn sampled() -> Value {
    json!({"city": "Paris", "days": 1, "scale": 1, "metric": true})
}

const OPENAI: &str = "/v1/chat/completions";

fn openai(stream: bool, messages: Value) -> Value {
    json!({
        "model": "gpt-4o-mini", "stream": stream, "messages": messages,
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": schema()}},
            {"type": "function", "function": {"name": "second", "parameters": {}}}
        ]
    })
}

fn openai_result_turns() -> Value {
    json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_mock", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_mock", "content": "18 C and sunny"}
    ])
}

#[tokio::test]
async fn openai_answers_a_first_turn_with_a_call_of_the_first_tool() {
    let mock = MockUpstream::start();
    let user = json!([{"role": "user", "content": "Weather in Paris?"}]);

    let answer = mock.whole(OPENAI, &openai(false, user.clone())).await;
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{answer}");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_mock");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments = call["function"]["arguments"]
        .as_str()
        .expect("arguments text");
    assert_eq!(json_of(arguments), sampled());
    assert_eq!(
        choice["message"]["tool_calls"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(answer["usage"]["completion_tokens"].as_u64() > Some(0));

    let events = mock.events(OPENAI, &openai(true, user)).await;
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| json_of(&e.1))
        .collect();
    let opening = &chunks[0]["choices"][0]["delta"];
    assert_eq!(opening["role"], "assistant");
    assert_eq!(
        opening["tool_calls"],
        json!([{"index": 0, "id": "call_mock", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    );
    let (finish, usage) = (&chunks[chunks.len() - 2], &chunks[chunks.len() - 1]);
    let fragments = &chunks[1..chunks.len() - 2];
    assert!((2..=3).contains(&fragments.len()), "{chunks:#?}");
    let mut streamed = String::new();
    for fragment in fragments {
        let delta = &fragment["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(delta["index"], 0);
        assert!(delta.get("id").is_none() && delta["function"].get("name").is_none());
        streamed += delta["function"]["arguments"].as_str().expect("fragment");
    }
    assert_eq!(json_of(&streamed), sampled());
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64() > Some(0));
}

#[tokio::test]
async fn openai_echoes_a_tool_result() {
    let mock = MockUpstream::start();

    let answer = mock
        .whole(OPENAI, &openai(false, openai_result_turns()))
        .await;
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "stop", "{answer}");
    assert_eq!(
        choice["message"]["content"],
        "The tool said: 18 C and sunny"
    );
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(answer["usage"]["completion_tokens"], 7);

    let events = mock
        .events(OPENAI, &openai(true, openai_result_turns()))
        .await;
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| json_of(&e.1))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "The tool said: 18 C and sunny");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
}

const ANTHROPIC: &str = "/v1/messages";

fn anthropic(stream: bool, messages: Value) -> Value {
    json!({
        "model": "claude-haiku-4-5", "max_tokens": 100, "stream": stream, "messages": messages,
        "tools": [
            {"type": "web_search_20250305", "name": "web_search"},
            {"name": "get_weather", "description": "Weather in a city", "input_schema": schema()}
        ]
    })
}

fn anthropic_result_turns() -> Value {
    json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_mock", "content": [{"type": "text", "text": "18 C"}]}
        ]}
    ])
}

#[tokio::test]
async fn anthropic_answers_a_first_turn_with_tool_use() {
    let mock = MockUpstream::start();
    let user = json!([{"role": "user", "content": "Weather in Paris?"}]);

    let answer = mock.whole(ANTHROPIC, &anthropic(false, user.clone())).await;
    assert_eq!(answer["stop_reason"], "tool_use", "{answer}");
    assert_eq!(
        answer["content"],
        json!([{"type": "tool_use", "id": "toolu_mock", "name": "get_weather", "input": sampled()}])
    );
    assert!(answer["usage"]["output_tokens"].as_u64() > Some(0));

    let events = mock.events(ANTHROPIC, &anthropic(true, user)).await;
    let names: Vec<&str> = events.iter().filter_map(|e| e.0.as_deref()).collect();
    assert_eq!(names.len(), events.len());
    assert_eq!(names[..2], ["message_start", "content_block_start"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let block = json_of(&events[1].1);
    assert_eq!(
        block["content_block"],
        json!({"type": "tool_use", "id": "toolu_mock", "name": "get_weather", "input": {}})
    );
    let pieces = &events[2..events.len() - 3];
    assert!((2..=3).contains(&pieces.len()), "{events:#?}");
    let mut input = String::new();
    for (name, data) in pieces {
        assert_eq!(name.as_deref(), Some("content_block_delta"));
        let delta = &json_of(data)["delta"];
        assert_eq!(delta["type"], "input_json_delta");
        input += delta["partial_json"].as_str().expect("partial_json");
    }
    assert_eq!(json_of(&input), sampled());
    let message_delta = json_of(&events[events.len() - 2].1);
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
    assert!(message_delta["usage"]["output_tokens"].as_u64() > Some(0));
}

#[tokio::test]
async fn anthropic_echoes_a_tool_result() {
    let mock = MockUpstream::start();

    let answer = mock
        .whole(ANTHROPIC, &anthropic(false, anthropic_result_turns()))
        .await;
    assert_eq!(answer["stop_reason"], "end_turn", "{answer}");
    assert_eq!(
        answer["content"],
        json!([{"type": "text", "text": "The tool said: 18 C"}])
    );

    let events = mock
        .events(ANTHROPIC, &anthropic(true, anthropic_result_turns()))
        .await;
    let text: String = events
        .iter()
        .map(|e| json_of(&e.1))
        .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "The tool said: 18 C");
    let message_delta = json_of(&events[events.len() - 2].1);
    assert_eq!(message_delta["delta"]["stop_reason"], "end_turn");
}

const GEMINI: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const GEMINI_STREAM: &str = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";

/// Gemini's own schema dialect: types in capitals.
fn gemini(contents: Value) -> Value {
    json!({
        "contents": contents,
        "tools": [
            {"googleSearch": {}},
            {"functionDeclarations": [{"name": "get_weather", "description": "Weather in a city", "parameters": {
                "type": "OBJECT",
                "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}, "scale": {"type": "NUMBER"}, "metric": {"type": "BOOLEAN"}},
                "required": ["city", "days", "scale", "metric"]
            }}]}
        ]
    })
}

fn gemini_result_turns() -> Value {
    json!([
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temperature": 18}}}]}
    ])
}

#[tokio::test]
async fn gemini_answers_a_first_turn_with_a_function_call() {
    let mock = MockUpstream::start();
    let user = json!([{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]);
    let call = json!([{"functionCall": {"name": "get_weather", "args": sampled()}}]);

    let answer = mock.whole(GEMINI, &gemini(user.clone())).await;
    let candidate = &answer["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP", "{answer}");
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(candidate["content"]["parts"], call);
    assert!(answer["usageMetadata"]["candidatesTokenCount"].as_u64() > Some(0));

    let events = mock.events(GEMINI_STREAM, &gemini(user)).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let chunk = json_of(&events[0].1);
    assert_eq!(chunk["candidates"][0]["content"]["parts"], call);
    assert_eq!(chunk["candidates"][0]["finishReason"], "STOP");
    assert!(chunk["usageMetadata"]["totalTokenCount"].as_u64() > Some(0));
}

#[tokio::test]
async fn gemini_echoes_a_function_response_as_json() {
    let mock = MockUpstream::start();
    let said = r#"The tool said: {"temperature":18}"#;

    let answer = mock.whole(GEMINI, &gemini(gemini_result_turns())).await;
    let candidate = &answer["candidates"][0];
    assert_eq!(candidate["content"]["parts"], json!([{"text": said}]));
    assert_eq!(candidate["finishReason"], "STOP");

    let events = mock
        .events(GEMINI_STREAM, &gemini(gemini_result_turns()))
        .await;
    let chunks: Vec<Value> = events.iter().map(|e| json_of(&e.1)).collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, said);
    assert_eq!(
        chunks.last().map(|c| &c["candidates"][0]["finishReason"]),
        Some(&json!("STOP"))
    );
}

#[tokio::test]
async fn a_tool_without_required_properties_is_called_with_an_empty_object() {
    let mock = MockUpstream::start();
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "What time is it?"}],
        "tools": [{"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}]
    });
    let answer = mock.whole(OPENAI, &body).await;
    let call = &answer["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "now");
    assert_eq!(call["arguments"], "{}");

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let events = mock.events(OPENAI, &streamed).await;
    let arguments: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.1).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(arguments, "{}");
}

#[tokio::test]
async fn requests_without_tools_get_the_usual_words() {
    let mock = MockUpstream::start();
    let body = json!({"model": "gpt-4o-mini_chunks-2", "messages": [{"role": "tool", "tool_call_id": "x", "content": "ignored"}]});
    let answer = mock.whole(OPENAI, &body).await;
    assert_eq!(answer["choices"][0]["message"]["content"], "tok0 tok1 ");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
}
