//! LLM providers behind one [`Provider`] trait. Each provider file turns a [`ChatRequest`] into
//! its own wire format and its answers back into these types; nothing here knows JSON-RPC.

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod sse;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::config::ProviderConfig;
use crate::error::{Error, ErrorKind};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    pub content: Content,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

/// A provider-neutral chat request, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The provider's own model name (no `provider/` prefix).
    pub model: String,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub reasoning_effort: Option<ReasoningEffort>,
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
    pub usage: Usage,
    pub finish_reason: FinishReason,
}

/// One event of a streamed answer, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Delta(String),
    Usage(Usage),
    Finish(FinishReason),
    Model(String),
}

pub type EventStream = BoxStream<'static, Result<StreamEvent, Error>>;

/// What every upstream request carries so ops can join it to the caller's trace.
#[derive(Debug, Clone)]
pub struct UpstreamTrace {
    pub traceparent: String,
    pub request_id: String,
}

/// A model a provider serves, with what the router needs to know of it.
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    pub id: &'static str,
    pub context_window: Option<u32>,
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> ProviderName;

    /// Whether it has an API key; an unconfigured provider answers every call with `provider_auth`.
    fn is_configured(&self) -> bool;

    /// The models this provider is known to serve.
    fn catalog(&self) -> &'static [ModelInfo];

    async fn complete(
        &self,
        req: &ChatRequest,
        trace: &UpstreamTrace,
    ) -> Result<ChatResponse, Error>;

    /// Starts a streamed answer. Fails before returning when the provider refuses the request.
    async fn stream(&self, req: &ChatRequest, trace: &UpstreamTrace) -> Result<EventStream, Error>;
}

/// The HTTP client a provider keeps for its whole life: one connection pool, TLS by rustls.
/// Provider APIs do not redirect, and retries are the gateway's (with its deadline and
/// breaker), so the client neither follows redirects nor retries, nor keeps copies of each
/// request to do so.
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // The first caller installs the process-wide TLS crypto provider; later calls find it there.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .build()
}

/// Parses a provider's endpoint once, at start-up: a mistyped base URL is refused there, and
/// no call pays for URL parsing.
pub(crate) fn endpoint_url(
    provider: ProviderName,
    base: &str,
    path: &str,
) -> Result<reqwest::Url, String> {
    let refused = || format!("{provider} base URL: {base:?} is not an http(s) base URL");
    let parsed = reqwest::Url::parse(base).map_err(|_| refused())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(refused());
    }
    reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/'))).map_err(|_| refused())
}

/// Sends one upstream request (its URL, authentication and body already set) with the trace
/// headers every provider request carries. An answer other than 2xx becomes the provider's own
/// error through `classify`, with the key taken out of whatever text came back.
pub(crate) async fn send(
    provider: ProviderName,
    config: &ProviderConfig,
    request: reqwest::RequestBuilder,
    trace: &UpstreamTrace,
    classify: fn(u16, &reqwest::header::HeaderMap, &[u8]) -> Error,
) -> Result<reqwest::Response, Error> {
    let response = request
        .header("traceparent", &trace.traceparent)
        .header("x-request-id", &trace.request_id)
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = response.status().as_u16();
    tracing::debug!(status, "upstream response");
    if response.status().is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    Err(config.redact(classify(status, &headers, &body)))
}

/// A 2xx answer whose body is not the provider's format: as if the provider were unwell.
pub(crate) fn invalid_body(provider: ProviderName, what: &str) -> Error {
    Error::new(
        ErrorKind::ProviderUnavailable,
        format!("{provider} sent an invalid {what}"),
    )
    .with_provider(provider)
}

/// Maps a transport failure (no HTTP answer, or a broken body) to the contract's vocabulary.
pub(crate) fn transport_error(provider: ProviderName, err: &reqwest::Error) -> Error {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::ProviderUnavailable
    };
    let what = if err.is_connect() {
        "could not connect"
    } else if err.is_timeout() {
        "timed out"
    } else if err.is_body() || err.is_decode() {
        "broke off its answer"
    } else {
        "failed to answer"
    };
    Error::new(kind, format!("{provider} {what}")).with_provider(provider)
}

/// Caps a wait an upstream asked for: no call lives a day, and an absurd value must not
/// overflow the clock arithmetic that uses it.
pub(crate) fn bounded_wait(wait: Duration) -> Duration {
    wait.min(Duration::from_secs(86_400))
}

/// Parses `Retry-After` (seconds or an HTTP date) and the non-standard `retry-after-ms`.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0)
            .ok()
            .map(bounded_wait);
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok().map(bounded_wait);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_after_reads_seconds_milliseconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("1e19"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(86_400)));
        for absurd in ["1e300", "-1", "NaN", "inf"] {
            h.insert("retry-after", HeaderValue::from_static(absurd));
            assert_eq!(retry_after(&h), None, "{absurd}");
        }
    }
}
