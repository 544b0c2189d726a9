//! Google Gemini through the Generative Language API with an AI Studio key: `generateContent`
//! and `streamGenerateContent?alt=sse`. Request bodies use the canonical lowerCamelCase
//! spelling throughout (the server also accepts snake_case; one spelling avoids mixing them).
//!
//! Tool calls are mapped between OpenAI's shapes, which callers speak, and Gemini's
//! `functionCall` / `functionResponse` parts. Gemini may give a call no id, and a thinking model
//! signs its calls with a `thoughtSignature` that must come back with the history; both travel
//! in the id the caller sees (see [`call_id`]).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::driver::{bounded_wait, fault_error, invalid_body};
use super::{Adapter, Fault, Outgoing};
use crate::error::{Error, ErrorKind};
use crate::sse::SseEvent;
use crate::types::{
    ChatRequest, ChatResponse, Content, FinishReason, ImageSource, Message, ModelInfo, Part,
    ProviderName, ReasoningEffort, ResponseFormat, Role, StreamEvent, ToolCall, ToolCallDelta,
    ToolChoice, ToolDef, Usage, system_prompt,
};

const NAME: ProviderName = ProviderName::Gemini;

const CATALOG: &[ModelInfo] = &[
    ModelInfo::new("gemini-2.5-pro", 1_048_576),
    ModelInfo::new("gemini-2.5-flash", 1_048_576),
    ModelInfo::new("gemini-2.5-flash-lite", 1_048_576),
    ModelInfo::new("gemini-2.0-flash", 1_048_576),
    ModelInfo::new("gemini-3-pro-preview", 1_048_576),
];

/// The adapter: requests and answers of `generateContent` and `streamGenerateContent`.
pub struct Gemini;

impl Adapter for Gemini {
    const NAME: ProviderName = NAME;
    const CATALOG: &'static [ModelInfo] = CATALOG;
    /// Each call appends its model and method.
    const ENDPOINT: &'static str = "/v1beta/models/";
    type StreamState = StreamCalls;

    fn request(
        endpoint: &reqwest::Url,
        key: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            url: endpoint_for(endpoint, &req.model, stream)?,
            auth: ("x-goog-api-key", key.to_owned()),
            headers: &[],
            body: request_body(req)?,
        })
    }

    fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
        parse_response(body)
    }

    /// There is no end event: the answer ends with the body, after the chunk with
    /// `finishReason`.
    fn parse_stream_event(
        event: &SseEvent,
        state: &mut StreamCalls,
    ) -> Result<Option<Vec<StreamEvent>>, Error> {
        parse_stream_data(&event.data, state).map(Some)
    }

    fn parse_error(_: u16, body: &[u8]) -> Fault {
        parse_error(body)
    }
}

/// The method URL. The key never goes in it (URLs end up in logs), and the model may only hold
/// the characters of real model ids: a `/`, `?`, `#` or `%` would let a caller rewrite the path
/// or query. Tuned models (`tunedModels/…`) are therefore not reachable.
fn endpoint_for(models: &reqwest::Url, model: &str, stream: bool) -> Result<reqwest::Url, Error> {
    let valid = !model.is_empty()
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid {
        return Err(Error::new(
            ErrorKind::ModelNotFound,
            format!("gemini: {model:?} is not a valid Gemini model name"),
        )
        .with_provider(NAME));
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

/// Gemini 2.5 and 3 models think with a token budget; older models have no thinking and may
/// refuse `thinkingConfig`, so `reasoning_effort` is ignored for them. Gemini 3 prefers
/// `thinkingLevel` but still accepts `thinkingBudget`.
fn has_thinking(model: &str) -> bool {
    model.starts_with("gemini-2.5-") || model.starts_with("gemini-3")
}

fn thinking_budget(effort: ReasoningEffort) -> u32 {
    match effort {
        ReasoningEffort::Low => 1024,
        ReasoningEffort::Medium => 8192,
        // The largest budget every 2.5 model accepts (Flash and Flash-Lite stop at 24576).
        ReasoningEffort::High => 24576,
    }
}

fn rejected(message: &str) -> Error {
    Error::new(ErrorKind::ProviderRejected, format!("gemini: {message}")).with_provider(NAME)
}

/// Builds `GenerateContentRequest`. System messages become one `systemInstruction`; the other
/// roles map to `user`/`model`, and consecutive turns of one role are merged because Gemini
/// expects the two roles to alternate (which also puts the results of parallel calls in one
/// `user` turn, as Gemini wants them). A request without tools is sent as it was before tools
/// existed.
fn request_body(req: &ChatRequest) -> Result<Value, Error> {
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

/// A tool as a `FunctionDeclaration`. The schema goes in `parametersJsonSchema`, which takes
/// standard JSON Schema as OpenAI's callers write it (`additionalProperties`, `$ref`, `anyOf`,
/// lowercase types …); `parameters` takes only Gemini's OpenAPI 3.0 subset and refuses much of
/// that. `strict` has no counterpart and is dropped.
fn function_declaration(def: &ToolDef) -> Value {
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
fn function_calling_config(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Function(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    }
}

/// A replayed call as the `functionCall` part Gemini made, its signature back on the part.
fn function_call_part(call: &ToolCall) -> Result<Value, Error> {
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
fn function_response_part(message: &Message, names: &HashMap<&str, &str>) -> Result<Value, Error> {
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
fn call_id(index: u32, call: &WireFunctionCall, args: &str, signature: Option<&str>) -> String {
    let mut id = match &call.id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => format!("call_{:016x}", fnv1a(index, &call.name, args)),
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

/// FNV-1a, 64 bits: small, stable across builds and platforms (unlike `std`'s hasher), and
/// only needs to tell the calls of one conversation apart. The index has a fixed width and
/// 0xff, which UTF-8 never holds, ends each field, so no two calls feed it the same bytes.
fn fnv1a(index: u32, name: &str, args: &str) -> u64 {
    let fields = [&index.to_le_bytes()[..], name.as_bytes(), args.as_bytes()];
    fields
        .iter()
        .flat_map(|field| field.iter().chain(&[0xff]))
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
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

/// Zero counts are often omitted, hence the defaults.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireUsage {
    prompt_token_count: u64,
    candidates_token_count: u64,
    thoughts_token_count: u64,
    total_token_count: u64,
}

/// Thinking tokens are billed as output, so they count as completion tokens.
impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        let completion = u.candidates_token_count + u.thoughts_token_count;
        let total = if u.total_token_count > 0 {
            u.total_token_count
        } else {
            u.prompt_token_count + completion
        };
        Usage {
            prompt_tokens: u.prompt_token_count,
            completion_tokens: completion,
            total_tokens: total,
        }
    }
}

/// A whole answer, and also every stream chunk (which holds only the new text).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Vec<WireCandidate>,
    prompt_feedback: Option<WirePromptFeedback>,
    usage_metadata: Option<WireUsage>,
    model_version: Option<String>,
    response_id: Option<String>,
    /// Only in a stream, when it fails after it started.
    error: Option<WireStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCandidate {
    // Missing on a safety stop or an empty last chunk.
    content: Option<WireContent>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireContent {
    parts: Option<Vec<WirePart>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    function_call: Option<WireFunctionCall>,
    thought_signature: Option<String>,
}

#[derive(Deserialize)]
struct WireFunctionCall {
    id: Option<String>,
    #[serde(default)]
    name: String,
    /// Absent, or `null`, when the function takes no arguments.
    args: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePromptFeedback {
    block_reason: Option<String>,
}

impl WireCandidate {
    /// The answer's text; thought summaries are not part of it.
    fn text(&self) -> String {
        self.content
            .iter()
            .flat_map(|c| c.parts.iter().flatten())
            .filter(|p| !p.thought)
            .filter_map(|p| p.text.as_deref())
            .collect()
    }

    /// The calls the answer asks for, in order; `first` is the place of the first of them in
    /// the whole answer (a stream's chunks each hold only the new calls).
    fn tool_calls(&self, first: u32) -> Vec<ToolCall> {
        self.content
            .iter()
            .flat_map(|c| c.parts.iter().flatten())
            .filter_map(|p| Some((p.function_call.as_ref()?, p.thought_signature.as_deref())))
            .zip(first..)
            .map(|((call, signature), index)| {
                let args = call.args.clone().unwrap_or_default();
                let args = Value::Object(args).to_string();
                let id = call_id(index, call, &args, signature);
                ToolCall::function(id, call.name.clone(), args)
            })
            .collect()
    }
}

impl WireResponse {
    /// A blocked prompt comes back as HTTP 200 with no candidates; sending it again won't help.
    fn blocked(&self) -> Option<Error> {
        let reason = self.prompt_feedback.as_ref()?.block_reason.as_deref()?;
        self.candidates
            .is_empty()
            .then(|| rejected(&format!("the prompt was blocked ({reason})")))
    }
}

/// Gemini has no finish reason of its own for calls: an answer with calls that stopped
/// normally asked for tools.
fn finish_with_calls(value: Option<&str>, has_calls: bool) -> FinishReason {
    match finish_reason(value) {
        FinishReason::Stop if has_calls => FinishReason::ToolCalls,
        reason => reason,
    }
}

fn finish_reason(value: Option<&str>) -> FinishReason {
    match value {
        Some("STOP") => FinishReason::Stop,
        Some("MAX_TOKENS") => FinishReason::Length,
        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII") => {
            FinishReason::ContentFilter
        }
        Some(reason) if reason.starts_with("IMAGE_") => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
    let mut wire: WireResponse =
        serde_json::from_slice(body).map_err(|_| invalid_body(NAME, "response"))?;
    if let Some(err) = wire.error.take() {
        return Err(stream_error(err));
    }
    if let Some(err) = wire.blocked() {
        return Err(err);
    }
    let candidate = wire
        .candidates
        .first()
        .ok_or_else(|| invalid_body(NAME, "response (no candidates)"))?;
    let tool_calls = candidate.tool_calls(0);
    Ok(ChatResponse {
        finish_reason: finish_with_calls(
            candidate.finish_reason.as_deref(),
            !tool_calls.is_empty(),
        ),
        tool_calls,
        id: wire.response_id,
        model: wire.model_version,
        content: candidate.text(),
        usage: wire.usage_metadata.map(Usage::from).unwrap_or_default(),
    })
}

/// What a stream remembers: how many calls it has passed on, which numbers the next one and
/// says, at the finish, that the answer asked for tools.
#[derive(Default)]
pub(crate) struct StreamCalls {
    calls: u32,
}

/// One `data:` payload of the stream: a whole `GenerateContentResponse` with only the new text
/// and the new calls. Gemini sends each call whole in one chunk, so each is one delta with its
/// id, name and all its arguments. Usage is complete only on the last chunk, so it is sent each
/// time and the last one wins.
fn parse_stream_data(data: &str, state: &mut StreamCalls) -> Result<Vec<StreamEvent>, Error> {
    if data.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut chunk: WireResponse =
        serde_json::from_str(data).map_err(|_| invalid_body(NAME, "stream event"))?;
    if let Some(err) = chunk.error.take() {
        return Err(stream_error(err));
    }
    if let Some(err) = chunk.blocked() {
        return Err(err);
    }
    let mut events = Vec::new();
    if let Some(model) = chunk.model_version {
        events.push(StreamEvent::Model(model));
    }
    if let Some(candidate) = chunk.candidates.first() {
        let text = candidate.text();
        if !text.is_empty() {
            events.push(StreamEvent::Delta(text));
        }
        for call in candidate.tool_calls(state.calls) {
            events.push(StreamEvent::ToolCall(ToolCallDelta {
                index: state.calls,
                id: Some(call.id),
                name: Some(call.function.name),
                arguments: call.function.arguments,
            }));
            state.calls += 1;
        }
        if let Some(reason) = candidate.finish_reason.as_deref() {
            events.push(StreamEvent::Finish(finish_with_calls(
                Some(reason),
                state.calls > 0,
            )));
        }
    }
    if let Some(usage) = chunk.usage_metadata {
        events.push(StreamEvent::Usage(usage.into()));
    }
    Ok(events)
}

/// `google.rpc.Status` in JSON.
#[derive(Deserialize, Default)]
#[serde(default)]
struct WireStatus {
    code: Option<u64>,
    message: String,
    status: String,
    details: Vec<WireDetail>,
}

/// The fields read from `ErrorInfo` (`reason`) and `RetryInfo` (`retryDelay`).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireDetail {
    reason: Option<String>,
    retry_delay: Option<String>,
}

#[derive(Deserialize)]
struct WireEnvelope {
    error: WireStatus,
}

/// Error bodies come as an object, or (seen on some endpoints) a one-element array of them.
/// The array is tried first: serde would also read an array into a struct, field by position.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireErrorBody {
    Many(Vec<WireEnvelope>),
    One(WireEnvelope),
}

impl WireStatus {
    /// The kind the body names: an invalid key, or the canonical status.
    fn kind(&self) -> Option<ErrorKind> {
        if self
            .details
            .iter()
            .any(|d| d.reason.as_deref() == Some("API_KEY_INVALID"))
        {
            return Some(ErrorKind::ProviderAuth);
        }
        Some(match self.status.as_str() {
            "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
            "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" => ErrorKind::ProviderUnavailable,
            "NOT_FOUND" => ErrorKind::ModelNotFound,
            "PERMISSION_DENIED" | "UNAUTHENTICATED" => ErrorKind::ProviderAuth,
            "INVALID_ARGUMENT" if is_too_long(&self.message) => ErrorKind::ContextLengthExceeded,
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => ErrorKind::ProviderRejected,
            _ => return None,
        })
    }

    /// `RetryInfo.retryDelay`, a proto3 JSON duration such as `"19s"` or `"12.5s"`.
    fn retry_delay(&self) -> Option<Duration> {
        self.details.iter().find_map(|d| {
            let secs = d.retry_delay.as_deref()?.trim().strip_suffix('s')?;
            Duration::try_from_secs_f64(secs.parse().ok()?)
                .ok()
                .map(bounded_wait)
        })
    }

    fn fault(self) -> Fault {
        Fault {
            kind: self.kind(),
            retry_after: self.retry_delay(),
            detail: if self.message.is_empty() {
                self.status
            } else {
                self.message
            },
            retryable: None,
        }
    }
}

/// Gemini says "The input token count (…) exceeds the maximum number of tokens allowed (…)".
fn is_too_long(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "token count",
        "exceeds the maximum number of tokens",
        "too long",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// An error inside a 200 answer: its `code` stands in for the HTTP status.
fn stream_error(status: WireStatus) -> Error {
    let code = status
        .code
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    fault_error(NAME, code, status.fault())
}

fn parse_error(body: &[u8]) -> Fault {
    let wire = match serde_json::from_slice::<WireErrorBody>(body) {
        Ok(WireErrorBody::One(envelope)) => envelope.error,
        Ok(WireErrorBody::Many(envelopes)) => envelopes
            .into_iter()
            .next()
            .map(|e| e.error)
            .unwrap_or_default(),
        Err(_) => WireStatus::default(),
    };
    wire.fault()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::providers::testing::*;
    use crate::providers::{Driver, Provider};
    use crate::types::UpstreamTrace;
    use futures::StreamExt;
    use reqwest::header::{HeaderMap, HeaderValue};

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

    fn provider(base_url: &str, key: &str) -> Driver<Gemini> {
        let client = crate::providers::http_client(Duration::from_secs(5)).unwrap();
        let config = Config::load(None, &|name| match name {
            "GEMINI_API_KEY" => Some(key.to_owned()),
            "GEMINI_BASE_URL" => Some(base_url.to_owned()),
            _ => None,
        })
        .unwrap();
        Driver::new(client, config.provider(NAME).clone()).unwrap()
    }

    #[test]
    fn the_url_names_the_method_never_holds_the_key_and_cannot_be_rewritten() {
        let key = "AIzaSyTestKey0123456789";
        let models =
            reqwest::Url::parse("https://generativelanguage.googleapis.com/v1beta/models/")
                .unwrap();
        let url = |model: &str, stream| {
            let req = request(model, vec![text(Role::User, "hi")]);
            Gemini::request(&models, key, &req, stream).map(|out| out.url)
        };
        assert_eq!(
            url("gemini-2.5-flash", false).unwrap().as_str(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        let streaming = url("gemini-2.5-flash", true).unwrap();
        let streaming = streaming.as_str();
        assert!(streaming.ends_with("/models/gemini-2.5-flash:streamGenerateContent?alt=sse"));
        assert!(!streaming.contains(key) && !streaming.contains("key="));
        for model in [
            "",
            "../files",
            "x?key=1",
            "x#y",
            "tunedModels/x",
            "a%2Fb",
            "a b",
        ] {
            let err = url(model, false).unwrap_err();
            assert_eq!(err.kind, ErrorKind::ModelNotFound, "{model:?}");
        }
    }

    #[test]
    fn parses_the_fixture_responses() {
        let r = parse_response(&fixture::<Gemini>("generate_content_response.json")).unwrap();
        assert_eq!(
            r.content,
            "Learning patterns from data to make predictions.\n"
        );
        assert_eq!(
            r.usage,
            Usage {
                prompt_tokens: 8,
                completion_tokens: 9,
                total_tokens: 17
            }
        );
        assert_eq!(r.finish_reason, FinishReason::Stop);
        assert_eq!(r.model.as_deref(), Some("gemini-1.5-flash-latest"));
        assert_eq!(r.id.as_deref(), Some("UxQ6aM_sKbjFnvgPocrJaA"));

        let err = parse_response(&fixture::<Gemini>(
            "generate_content_response_prompt_blocked.json",
        ))
        .unwrap_err();
        assert_eq!(
            (err.kind, err.retryable),
            (ErrorKind::ProviderRejected, false)
        );
        assert!(err.message.contains("blocked (SAFETY)"), "{}", err.message);

        assert_eq!(
            parse_response(b"<html>").unwrap_err().kind,
            ErrorKind::ProviderUnavailable
        );
        assert_eq!(
            parse_response(b"{}").unwrap_err().kind,
            ErrorKind::ProviderUnavailable
        );
    }

    #[test]
    fn thoughts_are_skipped_and_content_may_be_missing() {
        let body = json!({
            "candidates": [{
                "content": { "role": "model", "parts": [
                    { "text": "Let me think.", "thought": true },
                    { "text": "Four" },
                    { "functionCall": { "name": "f", "args": {} } },
                    { "text": "." }
                ]},
                "finishReason": "MAX_TOKENS"
            }],
            "usageMetadata": { "promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 7 }
        });
        let r = parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(r.content, "Four.");
        assert_eq!(r.finish_reason, FinishReason::Length);
        assert_eq!(
            r.usage,
            Usage {
                prompt_tokens: 5,
                completion_tokens: 9,
                total_tokens: 14
            }
        );
        let r = parse_response(br#"{"candidates":[{"finishReason":"SAFETY"}]}"#).unwrap();
        assert_eq!(
            (r.content.as_str(), r.finish_reason),
            ("", FinishReason::ContentFilter)
        );
        let r = parse_response(br#"{"candidates":[{"content":{"role":"model"}}]}"#).unwrap();
        assert_eq!(
            (r.content.as_str(), r.finish_reason),
            ("", FinishReason::Other)
        );
    }

    #[test]
    fn finish_reasons_map_to_the_contract() {
        for (wire, ours) in [
            ("STOP", FinishReason::Stop),
            ("MAX_TOKENS", FinishReason::Length),
            ("SAFETY", FinishReason::ContentFilter),
            ("RECITATION", FinishReason::ContentFilter),
            ("BLOCKLIST", FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("SPII", FinishReason::ContentFilter),
            ("IMAGE_SAFETY", FinishReason::ContentFilter),
            ("IMAGE_PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("MALFORMED_FUNCTION_CALL", FinishReason::Other),
            ("LANGUAGE", FinishReason::Other),
            ("SOMETHING_NEW", FinishReason::Other),
        ] {
            assert_eq!(finish_reason(Some(wire)), ours, "{wire}");
        }
    }

    fn last_usage(events: &[StreamEvent]) -> Option<Usage> {
        events.iter().rev().find_map(|e| match e {
            StreamEvent::Usage(u) => Some(*u),
            _ => None,
        })
    }

    #[test]
    fn parses_the_fixture_streams_with_lf_and_crlf() {
        for (name, text, model, usage) in [
            (
                "stream_generate_content.sse",
                "Certainly! I'll create a simple \"Hello, World!\" page where each letter has a \
                 different color using inline styles for simplicity.  Each letter will be wrapped",
                "gemini-1.5-pro-002",
                (399, 191, 590),
            ),
            (
                "stream_generate_content_current.sse",
                "Hello! How can I help you today?",
                "gemini-2.5-flash",
                (8, 33, 41),
            ),
        ] {
            let lf = fixture::<Gemini>(name);
            let crlf = String::from_utf8(lf.clone()).unwrap().replace('\n', "\r\n");
            let events = stream_events::<Gemini>(&lf).unwrap();
            assert_eq!(
                stream_events::<Gemini>(crlf.as_bytes()).unwrap(),
                events,
                "{name}"
            );
            assert_eq!(text_of(&events), text, "{name}");
            assert!(!events.contains(&StreamEvent::Delta(String::new())));
            assert_eq!(events.first(), Some(&StreamEvent::Model(model.into())));
            let finishes: Vec<_> = events
                .iter()
                .filter(|e| matches!(e, StreamEvent::Finish(_)))
                .collect();
            assert_eq!(
                finishes,
                [&StreamEvent::Finish(FinishReason::Stop)],
                "{name}"
            );
            assert_eq!(
                last_usage(&events),
                Some(Usage {
                    prompt_tokens: usage.0,
                    completion_tokens: usage.1,
                    total_tokens: usage.2
                }),
                "{name}"
            );
        }
    }

    /// One event of a stream that has just begun.
    fn stream_data(data: &str) -> Result<Vec<StreamEvent>, Error> {
        parse_stream_data(data, &mut StreamCalls::default())
    }

    #[test]
    fn errors_and_blocks_inside_a_stream_are_errors() {
        let err = stream_data(
            r#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12.5s"}]}}"#,
        )
        .unwrap_err();
        assert_eq!((err.kind, err.retryable), (ErrorKind::RateLimited, true));
        assert_eq!(err.retry_after, Some(Duration::from_millis(12_500)));
        assert_eq!(err.message, "gemini: slow down");
        let err = stream_data(
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
        let err = stream_data(r#"{"error":{"code":400,"message":"bad"}}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderRejected);
        let err = stream_data(
            r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"modelVersion":"gemini-2.5-flash"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (err.kind, err.retryable),
            (ErrorKind::ProviderRejected, false)
        );
        assert_eq!(
            stream_data("not json").unwrap_err().kind,
            ErrorKind::ProviderUnavailable
        );
    }

    #[test]
    fn each_error_fixture_maps_to_its_contract_kind() {
        let empty = HeaderMap::new();
        for (status, file, kind, retryable) in [
            (
                400,
                "error_400_api_key_invalid.json",
                ErrorKind::ProviderAuth,
                false,
            ),
            (
                403,
                "error_403_permission_denied.json",
                ErrorKind::ProviderAuth,
                false,
            ),
            (
                404,
                "error_404_not_found.json",
                ErrorKind::ModelNotFound,
                false,
            ),
            (
                429,
                "error_429_resource_exhausted.json",
                ErrorKind::RateLimited,
                true,
            ),
            (
                500,
                "error_500_internal.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
            (
                503,
                "error_503_unavailable.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
            (
                504,
                "error_504_deadline_exceeded.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
        ] {
            let body = fixture::<Gemini>(file);
            let err = error_from_response::<Gemini>(status, &empty, &body);
            assert_eq!(
                (err.kind, err.retryable, err.status),
                (kind, retryable, Some(status)),
                "{file}"
            );
            let message = fixture_json::<Gemini>(file)["error"]["message"].clone();
            assert_eq!(
                err.message,
                format!("gemini: {}", message.as_str().unwrap())
            );
        }

        let quota = fixture::<Gemini>("error_429_resource_exhausted.json");
        let err = error_from_response::<Gemini>(429, &empty, &quota);
        assert_eq!(err.retry_after, Some(Duration::from_secs(19)));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        let err = error_from_response::<Gemini>(429, &headers, &quota);
        assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn other_error_bodies_are_classified_by_status_and_message() {
        let empty = HeaderMap::new();
        let too_long = br#"[{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}]"#;
        let err = error_from_response::<Gemini>(400, &empty, too_long);
        assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);
        assert!(err.message.starts_with("gemini: The input token count"));
        let cases: [(u16, &[u8], ErrorKind); 7] = [
            (
                400,
                br#"{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}"#,
                ErrorKind::ProviderRejected,
            ),
            (
                400,
                br#"{"error":{"code":400,"message":"User location is not supported","status":"FAILED_PRECONDITION"}}"#,
                ErrorKind::ProviderRejected,
            ),
            (
                401,
                br#"{"error":{"code":401,"message":"no","status":"UNAUTHENTICATED"}}"#,
                ErrorKind::ProviderAuth,
            ),
            (502, b"<html>Bad Gateway</html>", ErrorKind::ProviderUnavailable),
            (403, b"", ErrorKind::ProviderAuth),
            (404, b"[]", ErrorKind::ModelNotFound),
            (429, b"", ErrorKind::RateLimited),
        ];
        for (status, body, kind) in cases {
            let err = error_from_response::<Gemini>(status, &empty, body);
            assert_eq!((err.kind, err.status), (kind, Some(status)), "{status}");
        }
        assert_eq!(
            error_from_response::<Gemini>(502, &empty, b"").message,
            "gemini: HTTP 502"
        );
        let err = error_from_response::<Gemini>(408, &empty, b"");
        assert_eq!(
            (err.kind, err.retryable),
            (ErrorKind::ProviderRejected, true)
        );
        // A retry delay too large for a Duration is ignored rather than trusted.
        let huge =
            br#"{"error":{"status":"RESOURCE_EXHAUSTED","details":[{"retryDelay":"1e300s"}]}}"#;
        assert_eq!(
            error_from_response::<Gemini>(429, &empty, huge).retry_after,
            None
        );
    }

    #[tokio::test]
    async fn requests_carry_the_key_in_a_header_and_errors_are_redacted() {
        use wiremock::matchers::{header, method, path, query_param_is_missing};
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let key = "AIzaSyTestKey0123456789";
        let server = MockServer::start().await;
        let stream = String::from_utf8(fixture::<Gemini>("stream_generate_content_current.sse"))
            .unwrap()
            .replace('\n', "\r\n");
        Mock::given(method("POST"))
            .and(path(
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            ))
            .and(header("x-goog-api-key", key))
            .and(header("x-request-id", "trace-1"))
            .and(query_param_is_missing("key"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/event-stream")
                    .set_body_string(stream),
            )
            .mount(&server)
            .await;
        let echo = format!(
            r#"{{"error":{{"code":400,"message":"API key not valid: {key}","status":"INVALID_ARGUMENT","details":[{{"reason":"API_KEY_INVALID"}}]}}}}"#
        );
        Mock::given(method("POST"))
            .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
            .respond_with(ResponseTemplate::new(400).set_body_string(echo))
            .mount(&server)
            .await;

        let gemini = provider(&format!("{}/", server.uri()), key);
        let trace = UpstreamTrace {
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            request_id: "trace-1".into(),
        };
        let req = request("gemini-2.5-flash", vec![text(Role::User, "Hi")]);
        let events: Vec<StreamEvent> = gemini
            .stream(&req, &trace)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(text_of(&events), "Hello! How can I help you today?");
        assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));

        let err = gemini.complete(&req, &trace).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderAuth);
        assert!(!err.message.contains(key), "{}", err.message);

        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 2);
        for r in &received {
            assert!(!r.url.as_str().contains(key));
            assert_eq!(r.headers["traceparent"], trace.traceparent.as_str());
        }
    }

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
        let wire = |id: Option<&str>| WireFunctionCall {
            id: id.map(Into::into),
            name: "f".into(),
            args: None,
        };
        assert_eq!(
            call_id(3, &wire(Some("gem-7")), "{}", Some("c2ln")),
            "gem-7~ts~c2ln"
        );
        let ours = call_id(3, &wire(None), "{}", None);
        assert_eq!(ours, call_id(3, &wire(Some("")), "{}", None));
        // Place, name and arguments each tell calls apart.
        assert_ne!(ours, call_id(4, &wire(None), "{}", None));
        assert_ne!(ours, call_id(3, &wire(None), r#"{"a":1}"#, None));
        assert_ne!(fnv1a(0, "ab", "c"), fnv1a(0, "a", "bc"));
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
