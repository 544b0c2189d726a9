//! The `GenerateContentRequest` for a call, and the method URL it goes to: turns and system
//! instruction, parts and images, generation config (thinking, structured output). Tools and
//! the parts of a tool loop are `tools.rs`'s.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::models::MODELS;
use super::tools::{
    function_call_part, function_calling_config, function_declaration, function_response_part,
};
use crate::error::{Error, ErrorKind};
use crate::types::{
    ChatRequest, Content, ImageSource, Message, Part, ProviderName, Reasoning, ReasoningEffort,
    ResponseFormat, Role, system_prompt,
};

/// The method URL. The key never goes in it (URLs end up in logs), and the model may only hold
/// the characters of real model ids: a `/`, `?`, `#` or `%` would let a caller rewrite the path
/// or query. Tuned models (`tunedModels/…`) are therefore not reachable.
pub(super) fn endpoint_for(
    models: &reqwest::Url,
    model: &str,
    stream: bool,
) -> Result<reqwest::Url, Error> {
    let valid = !model.is_empty()
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        return Err(Error::new(
            ErrorKind::ModelNotFound,
            format!("gemini: {model:?} is not a valid Gemini model name"),
        )
        .with_provider(ProviderName::Gemini));
    }
    let method = if stream {
        "streamGenerateContent"
    } else {
        "generateContent"
    };
    let mut url = models.clone();
    url.set_path(&format!("{}{model}:{method}", models.path()));
    if stream {
        url.set_query(Some("alt=sse"));
    }
    Ok(url)
}

/// Models that think with a token budget ([`Reasoning::ThinkingBudget`] in the table); older
/// models have no thinking and may refuse `thinkingConfig`, so `reasoning_effort` is ignored
/// for them.
fn has_thinking(model: &str) -> bool {
    MODELS.capabilities(model).reasoning == Reasoning::ThinkingBudget
}

/// The output a call may be billed at most: its cap, and the thinking budget it is sent with
/// (billed as output).
pub(super) fn output_cap(model: &str, req: &ChatRequest) -> Option<u32> {
    let thinking = req
        .reasoning_effort
        .filter(|_| has_thinking(model))
        .map_or(0, thinking_budget);
    req.max_tokens.map(|max| max.saturating_add(thinking))
}

fn thinking_budget(effort: ReasoningEffort) -> u32 {
    match effort {
        ReasoningEffort::Low => 1024,
        ReasoningEffort::Medium => 8192,
        // The largest budget every 2.5 model accepts (Flash and Flash-Lite stop at 24576).
        ReasoningEffort::High => 24576,
    }
}

/// Builds `GenerateContentRequest`. System messages become one `systemInstruction`; the other
/// roles map to `user`/`model`, and consecutive turns of one role are merged because Gemini
/// expects the two roles to alternate (which also puts the results of parallel calls in one
/// `user` turn, as Gemini wants them). A request without tools is sent as it was before tools
/// existed.
pub(super) fn request_body(req: &ChatRequest) -> Result<Value, Error> {
    // The name of each call made so far, by id: a `functionResponse` must name its function,
    // and a `tool` message only names the call.
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in &req.messages {
        let (role, parts) = match message.role {
            Role::System => continue,
            Role::User => ("user", content_parts(message)),
            Role::Tool => ("user", vec![function_response_part(message, &names)?]),
            Role::Assistant => ("model", model_parts(message, &mut names)?),
        };
        if message.content.is_none() && parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, merged)) if *last == role => merged.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let contents: Vec<Value> = turns
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect();
    let mut body = json!({ "contents": contents });
    if let Some(system) = system_prompt(&req.messages) {
        body["systemInstruction"] = json!({ "parts": [{ "text": system }] });
    }
    if !req.tools.is_empty() {
        let declarations: Vec<Value> = req.tools.iter().map(function_declaration).collect();
        body["tools"] = json!([{ "functionDeclarations": declarations }]);
    }
    if let Some(choice) = &req.tool_choice {
        body["toolConfig"] = json!({ "functionCallingConfig": function_calling_config(choice) });
    }
    let mut config = Map::new();
    if let Some(max) = req.max_tokens {
        config.insert("maxOutputTokens".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), json!(p));
    }
    if !req.stop.is_empty() {
        config.insert("stopSequences".into(), json!(req.stop));
    }
    // The Chat Completions members Gemini has an equivalent for.
    for (from, to) in [
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(value) = req.passthrough.get(from) {
            config.insert(to.into(), value.clone());
        }
    }
    if let (true, Some(effort)) = (has_thinking(&req.model), req.reasoning_effort) {
        config.insert(
            "thinkingConfig".into(),
            json!({ "thinkingBudget": thinking_budget(effort) }),
        );
    }
    match &req.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), json!("application/json"));
            config.insert("responseJsonSchema".into(), schema.clone());
        }
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    Ok(body)
}

fn content_parts(message: &Message) -> Vec<Value> {
    message.content.as_ref().map(parts).unwrap_or_default()
}

/// An assistant turn: what it said, then the calls it made, each remembered by id for the
/// results that answer it.
fn model_parts<'a>(
    message: &'a Message,
    names: &mut HashMap<&'a str, &'a str>,
) -> Result<Vec<Value>, Error> {
    let mut parts = content_parts(message);
    if !message.tool_calls.is_empty() {
        // OpenAI's clients send "" beside calls; Gemini refuses an empty text part.
        parts.retain(|part| part.get("text").and_then(Value::as_str) != Some(""));
    }
    for call in &message.tool_calls {
        names.insert(&call.id, &call.function.name);
        parts.push(function_call_part(call)?);
    }
    Ok(parts)
}

fn parts(content: &Content) -> Vec<Value> {
    match content {
        Content::Text(text) => vec![json!({ "text": text })],
        Content::Parts(parts) => parts
            .iter()
            .map(|part| match part {
                Part::Text { text } => json!({ "text": text }),
                Part::ImageUrl { image_url } => image_part(image_url.source()),
            })
            .collect(),
    }
}

/// Inline data is sent as it is. A URL (params validation lets only https through) is sent as
/// `fileData`, which the API fetches itself (public and signed URLs); it needs a MIME type,
/// guessed from the extension.
fn image_part(source: ImageSource<'_>) -> Value {
    match source {
        ImageSource::Inline { media_type, data } => {
            json!({ "inlineData": { "mimeType": media_type, "data": data } })
        }
        ImageSource::Url(url) => {
            json!({ "fileData": { "mimeType": guess_image_type(url), "fileUri": url } })
        }
    }
}

/// The image types Gemini accepts, by extension; JPEG when the URL does not say.
fn guess_image_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        _ => "image/jpeg",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::Gemini;
    use crate::providers::testing::*;

    /// Thinking tokens are billed as output beside the cap, so a reservation counts both.
    #[test]
    fn the_output_cap_adds_the_thinking_budget() {
        let mut req = request(
            "gemini-2.5-flash",
            vec![Message::new(Role::User, Content::Text("hi".into()))],
        );
        req.max_tokens = Some(16);
        assert_eq!(output_cap(&req.model, &req), Some(16));
        req.reasoning_effort = Some(ReasoningEffort::High);
        assert_eq!(output_cap(&req.model, &req), Some(16 + 24_576));
        req.model = "gemini-2.0-flash".into();
        assert_eq!(output_cap(&req.model, &req), Some(16));
    }

    /// The request the fixture shows, in our types.
    fn fixture_request(model: &str) -> ChatRequest {
        let fixture = fixture_json::<Gemini>("generate_content_request.json");
        let png = fixture["contents"][2]["parts"][1]["inline_data"]["data"]
            .as_str()
            .unwrap();
        ChatRequest {
            max_tokens: Some(1024),
            temperature: Some(0.7),
            top_p: Some(0.95),
            stop: vec!["END".into()],
            ..request(
                model,
                vec![
                    text(Role::System, "You are a concise assistant."),
                    text(Role::User, "Hello"),
                    text(Role::Assistant, "Hi! How can I help?"),
                    crate::providers::testing::parts(
                        Role::User,
                        vec![
                            text_part("What is in this image?"),
                            image(&format!("data:image/png;base64,{png}")),
                        ],
                    ),
                ],
            )
        }
    }

    #[test]
    fn request_body_matches_the_fixture() {
        // The fixture spells inline data in snake_case; we send the camelCase form throughout.
        let fixture = fixture_json::<Gemini>("generate_content_request.json").to_string();
        let fixture: Value = serde_json::from_str(
            &fixture
                .replace("\"inline_data\"", "\"inlineData\"")
                .replace("\"mime_type\"", "\"mimeType\""),
        )
        .unwrap();
        let body = request_body(&fixture_request("gemini-2.0-flash")).unwrap();
        assert_eq!(body["systemInstruction"], fixture["systemInstruction"]);
        assert_eq!(body["contents"], fixture["contents"]);
        // topK and candidateCount have no counterpart in a ChatRequest.
        let mut config = fixture["generationConfig"].clone();
        let config_map = config.as_object_mut().unwrap();
        config_map.remove("topK");
        config_map.remove("candidateCount");
        assert_eq!(body["generationConfig"], config);
        assert!(body.get("safetySettings").is_none());
    }

    #[test]
    fn reasoning_effort_sets_a_thinking_budget_only_on_thinking_models() {
        let mut req = fixture_request("gemini-2.0-flash");
        req.reasoning_effort = Some(ReasoningEffort::High);
        let body = request_body(&req).unwrap();
        assert!(body["generationConfig"].get("thinkingConfig").is_none());
        for (model, effort, budget) in [
            ("gemini-2.5-flash", ReasoningEffort::Low, 1024),
            ("gemini-2.5-pro", ReasoningEffort::Medium, 8192),
            ("gemini-3-pro-preview", ReasoningEffort::High, 24576),
        ] {
            req.model = model.into();
            req.reasoning_effort = Some(effort);
            let body = request_body(&req).unwrap();
            assert_eq!(
                body["generationConfig"]["thinkingConfig"],
                json!({ "thinkingBudget": budget }),
                "{model}"
            );
        }
    }

    #[test]
    fn consecutive_turns_merge_and_system_messages_join() {
        let req = request(
            "gemini-2.5-flash",
            vec![
                text(Role::System, "Be brief."),
                text(Role::User, "one"),
                text(Role::User, "two"),
                text(Role::System, "Be kind."),
                text(Role::Assistant, "three"),
                text(Role::Assistant, "four"),
                text(Role::User, "five"),
            ],
        );
        let body = request_body(&req).unwrap();
        assert_eq!(
            body,
            json!({
                "systemInstruction": { "parts": [{ "text": "Be brief.\n\nBe kind." }] },
                "contents": [
                    { "role": "user", "parts": [{ "text": "one" }, { "text": "two" }] },
                    { "role": "model", "parts": [{ "text": "three" }, { "text": "four" }] },
                    { "role": "user", "parts": [{ "text": "five" }] },
                ],
            })
        );
    }

    #[test]
    fn image_urls_become_inline_or_file_data() {
        for (url, mime) in [
            ("https://example.com/a/cat.PNG?size=2#x", "image/png"),
            ("https://example.com/photo.webp", "image/webp"),
            ("https://example.com/v1.2/photo", "image/jpeg"),
        ] {
            assert_eq!(
                image_part(ImageSource::Url(url)),
                json!({ "fileData": { "mimeType": mime, "fileUri": url } })
            );
        }
        assert_eq!(
            image_part(ImageSource::Inline {
                media_type: "image/jpeg",
                data: "AAAA"
            }),
            json!({ "inlineData": { "mimeType": "image/jpeg", "data": "AAAA" } })
        );
    }

    #[test]
    fn response_format_sets_the_mime_type_and_the_json_schema() {
        let schema = json!({ "type": "object", "properties": { "n": { "type": "integer" } } });
        let format = |format| ChatRequest {
            max_tokens: Some(64),
            response_format: Some(format),
            ..request("gemini-2.5-flash", vec![text(Role::User, "A number.")])
        };
        let config = |format| request_body(&format).unwrap()["generationConfig"].clone();
        assert_eq!(
            config(format(ResponseFormat::JsonSchema {
                name: "number".into(),
                schema: schema.clone(),
                strict: Some(true),
            })),
            json!({
                "maxOutputTokens": 64,
                "responseMimeType": "application/json",
                "responseJsonSchema": schema
            })
        );
        assert_eq!(
            config(format(ResponseFormat::JsonObject)),
            json!({ "maxOutputTokens": 64, "responseMimeType": "application/json" })
        );
        assert_eq!(
            config(format(ResponseFormat::Text)),
            json!({ "maxOutputTokens": 64 })
        );
    }
}
