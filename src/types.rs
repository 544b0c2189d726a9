//! The ground floor: the vocabulary every layer shares (a provider, a message, a request, an
//! answer, a stream event, usage) and the few rules about it that must read the same everywhere.
//! It imports nothing of the crate, so that every other module can depend on it and none of them
//! has to depend on the providers to speak of a call.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The providers this service can route to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Openai,
    Anthropic,
    Gemini,
}

impl ProviderName {
    pub const ALL: [ProviderName; 3] = [Self::Openai, Self::Anthropic, Self::Gemini];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of one tool call, answering the assistant turn that asked for it.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    pub url: String,
}

/// One turn of a conversation, in OpenAI's shape (the lingua franca of agent frameworks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    /// `None` only on an assistant turn that asked for tools and said nothing.
    pub content: Option<Content>,
    /// The tools an assistant turn asked for: replayed history of a tool loop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Which call a `tool` turn answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: Content) -> Self {
        Self {
            role,
            content: Some(content),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// The text of its content; empty when it has none.
    pub fn text(&self) -> String {
        self.content
            .as_ref()
            .and_then(Content::text)
            .unwrap_or_default()
    }
}

/// A tool the model may call: a function described by a JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// The JSON Schema of its arguments (an object schema), when it takes any.
    pub parameters: Option<serde_json::Value>,
    /// OpenAI's strict schema adherence, where the provider has it.
    pub strict: Option<bool>,
}

/// Whether and which tools the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

/// The shape the answer's text must have.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that fits `schema`.
    JsonSchema {
        name: String,
        schema: serde_json::Value,
        strict: Option<bool>,
    },
}

/// A call of a tool, as the model asked for it (and as the caller replays it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    Function,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionCall {
    pub name: String,
    /// The arguments as a JSON text, which the caller parses.
    pub arguments: String,
}

impl ToolCall {
    pub fn function(id: String, name: String, arguments: String) -> Self {
        Self {
            id,
            kind: ToolKind::Function,
            function: FunctionCall { name, arguments },
        }
    }
}

/// A piece of a tool call in a stream, in OpenAI's delta form: `index` always, `id` and `name`
/// on a call's first piece, and a fragment of its arguments' text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCallDelta {
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

/// OpenAI's wire form, which every surface sends: `{"index", "id"?, "type"?, "function":
/// {"name"?, "arguments"}}`, with `type` beside the id on a call's first piece.
impl Serialize for ToolCallDelta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        struct Function<'a>(&'a ToolCallDelta);
        impl Serialize for Function<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                if let Some(name) = &self.0.name {
                    map.serialize_entry("name", name)?;
                }
                map.serialize_entry("arguments", &self.0.arguments)?;
                map.end()
            }
        }

        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("index", &self.index)?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
            map.serialize_entry("type", &ToolKind::Function)?;
        }
        map.serialize_entry("function", &Function(self))?;
        map.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

/// A provider-neutral chat request, already validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The provider's own model name (no `provider/` prefix).
    pub model: String,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub reasoning_effort: Option<ReasoningEffort>,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    /// Chat Completions members the vocabulary does not model (`seed`, `user`, penalties, …),
    /// from the OpenAI-compatible surface: sent to OpenAI as they came, mapped by the other
    /// providers where they have an equivalent, dropped otherwise.
    pub passthrough: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    Other,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ContentFilter => "content_filter",
            Self::ToolCalls => "tool_calls",
            Self::Other => "other",
        }
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The provider's id for this answer, when it gives one.
    pub id: Option<String>,
    /// The model that answered, as the provider names it.
    pub model: Option<String>,
    pub content: String,
    /// The tools the model asked for, in order.
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub finish_reason: FinishReason,
}

/// One event of a streamed answer, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Delta(String),
    ToolCall(ToolCallDelta),
    Usage(Usage),
    Finish(FinishReason),
    Model(String),
}

/// Puts a stream's tool-call pieces together: per `index`, the first `id` and `name` given and
/// the argument fragments in order. Indices are keys, not positions, so that a provider's odd
/// index cannot make it allocate.
#[derive(Debug, Default)]
pub struct ToolCallAssembler(BTreeMap<u32, ToolCall>);

impl ToolCallAssembler {
    pub fn push(&mut self, delta: &ToolCallDelta) {
        let call = self
            .0
            .entry(delta.index)
            .or_insert_with(|| ToolCall::function(String::new(), String::new(), String::new()));
        if let (true, Some(id)) = (call.id.is_empty(), &delta.id) {
            call.id.clone_from(id);
        }
        if let (true, Some(name)) = (call.function.name.is_empty(), &delta.name) {
            call.function.name.clone_from(name);
        }
        call.function.arguments.push_str(&delta.arguments);
    }

    /// The calls, in the order of their indices.
    pub fn finish(self) -> Vec<ToolCall> {
        self.0.into_values().collect()
    }
}

/// What every upstream request carries so ops can join it to the caller's trace.
#[derive(Debug, Clone)]
pub struct UpstreamTrace {
    pub traceparent: String,
    pub request_id: String,
}

/// A model's price in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    pub const fn new(input: f64, output: f64) -> Self {
        Self { input, output }
    }

    /// The cost of `usage` at this price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.prompt_tokens as f64 * self.input + usage.completion_tokens as f64 * self.output)
            / 1_000_000.0
    }
}

/// How a model is asked to reason, which decides what an adapter sends for `reasoning_effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    /// No reasoning knob: `reasoning_effort` is not sent (such models may refuse it).
    None,
    /// OpenAI's reasoning models: `reasoning_effort` as it is, and `max_completion_tokens` for
    /// the cap.
    Effort,
    /// A budget of thinking tokens (Anthropic's extended thinking, Gemini's `thinkingBudget`).
    ThinkingBudget,
}

/// What a model can be asked for, where providers' models differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub reasoning: Reasoning,
    /// A JSON Schema for the answer is sent natively; where not, an adapter that has a
    /// fallback (Anthropic's instruction in the system prompt) uses it.
    pub json_schema: bool,
}

/// The built-in tiers, names that route to one model of each provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Fast,
    Balanced,
    Premium,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Self::Fast, Self::Balanced, Self::Premium];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Balanced => "balanced",
            Self::Premium => "premium",
        }
    }
}

/// A model's place in a built-in tier: candidates are tried by rank, 1 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierRank {
    pub tier: Tier,
    pub rank: u8,
}

/// One row of a provider's model table: a model it serves, or a family of names (see
/// [`ModelTable`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    pub id: &'static str,
    pub context_window: Option<u32>,
    /// The documented maximum of output tokens, from the provider's model page; nothing
    /// enforces it. `None` where unknown.
    pub max_output_tokens: Option<u32>,
    /// The public list price, standard tier: no batch or cached-input discounts, and the base
    /// rate where a provider charges more for long prompts (above 200k tokens). Prices change;
    /// config overrides them without a release.
    pub price: Option<Price>,
    pub capabilities: Capabilities,
    /// The built-in tiers it belongs to, with its rank in each.
    pub tiers: &'static [TierRank],
}

impl ModelInfo {
    /// A model with its context window, and nothing else known of it yet.
    pub const fn new(id: &'static str, context_window: u32) -> Self {
        Self {
            id,
            context_window: Some(context_window),
            max_output_tokens: None,
            price: None,
            capabilities: Capabilities {
                reasoning: Reasoning::None,
                json_schema: false,
            },
            tiers: &[],
        }
    }

    /// A family: the capabilities of every name that begins with `prefix`.
    pub const fn family(prefix: &'static str, capabilities: Capabilities) -> Self {
        Self {
            id: prefix,
            context_window: None,
            max_output_tokens: None,
            price: None,
            capabilities,
            tiers: &[],
        }
    }

    pub const fn max_output(self, tokens: u32) -> Self {
        Self {
            max_output_tokens: Some(tokens),
            ..self
        }
    }

    pub const fn price(self, input: f64, output: f64) -> Self {
        Self {
            price: Some(Price::new(input, output)),
            ..self
        }
    }

    pub const fn capabilities(self, capabilities: Capabilities) -> Self {
        Self {
            capabilities,
            ..self
        }
    }

    pub const fn tiers(self, tiers: &'static [TierRank]) -> Self {
        Self { tiers, ..self }
    }

    /// Its rank in `tier`, if it belongs to it.
    pub fn rank_in(&self, tier: Tier) -> Option<u8> {
        self.tiers.iter().find(|t| t.tier == tier).map(|t| t.rank)
    }
}

/// One provider's facts about its models, the one table that the catalog, the capability
/// rules of its adapter, the built-in tiers, the list prices and the routing of bare names all
/// read.
///
/// Callers name any model, not only those listed (`o1-pro`, dated snapshots such as
/// `claude-sonnet-4-5-20250929`), so capabilities are matched by prefix: a name has those of
/// the longest row, model or family, whose id it begins with, and `others` when it begins
/// with none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelTable {
    /// The models it serves, as `llm.models` lists them; each has a price.
    pub models: &'static [ModelInfo],
    /// Prefixes of names that are no model of `models` (no window, price or tier of their own).
    pub families: &'static [ModelInfo],
    /// The capabilities of a name no row matches.
    pub others: Capabilities,
    /// A bare model name that begins with one of these is routed to this provider.
    pub routed_prefixes: &'static [&'static str],
}

impl ModelTable {
    /// What `model` can be asked for.
    pub fn capabilities(&self, model: &str) -> Capabilities {
        self.models
            .iter()
            .chain(self.families)
            .filter(|row| model.starts_with(row.id))
            .max_by_key(|row| row.id.len())
            .map_or(self.others, |row| row.capabilities)
    }
}

impl Content {
    /// The text of a text-only content: parts are joined with a newline. `None` when it holds
    /// anything but text.
    pub fn text(&self) -> Option<String> {
        match self {
            Content::Text(text) => Some(text.clone()),
            Content::Parts(parts) => parts
                .iter()
                .map(|part| match part {
                    Part::Text { text } => Some(text.as_str()),
                    Part::ImageUrl { .. } => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|texts| texts.join("\n")),
        }
    }
}

/// The system prompt of a conversation, for providers that take it apart from the turns: the
/// text of every system message, in order, the non-empty ones joined by a blank line. `None`
/// when there is no such text. (Params validation has refused system messages holding anything
/// but text.)
pub fn system_prompt(messages: &[Message]) -> Option<String> {
    let texts: Vec<String> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .filter_map(|m| m.content.as_ref()?.text())
        .filter(|text| !text.is_empty())
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n\n"))
}

/// Where an image comes from, as providers that take inline data and URLs apart need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// A `data:<media type>[;…];base64,<data>` URL, taken apart.
    Inline { media_type: &'a str, data: &'a str },
    /// Any other URL, for the provider to fetch.
    Url(&'a str),
}

impl ImageUrl {
    /// The one reading of image URLs: a `data:` URL is inline only when it is base64 and names a
    /// media type (what every provider requires; params validation refuses any other), anything
    /// else is a URL.
    pub fn source(&self) -> ImageSource<'_> {
        self.inline().unwrap_or(ImageSource::Url(&self.url))
    }

    /// Whether this is a `data:` URL that does not follow that rule.
    pub fn is_malformed_data_url(&self) -> bool {
        self.url.starts_with("data:") && self.inline().is_none()
    }

    fn inline(&self) -> Option<ImageSource<'_>> {
        let (meta, data) = self.url.strip_prefix("data:")?.split_once(',')?;
        let mut params = meta.split(';');
        let media_type = params.next().filter(|m| !m.is_empty())?;
        let base64 = params
            .next_back()
            .is_some_and(|p| p.eq_ignore_ascii_case("base64"));
        (base64 && !data.is_empty()).then_some(ImageSource::Inline { media_type, data })
    }
}

/// An API key: shown as `***` by `Debug` so that it cannot reach a log line by accident.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests;
