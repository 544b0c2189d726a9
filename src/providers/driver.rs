//! The one HTTP driver under every provider. An [`Adapter`] says what a call looks like on one
//! provider's wire; the driver owns the rest, written once: the key, the trace headers, sending,
//! reading the SSE stream to its end, classifying error answers (the status table and the rule
//! that 408 and 409 may be retried), and taking the key out of any text that came back.

use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::{EventStream, Provider};
use crate::config::ProviderConfig;
use crate::error::{Error, ErrorKind};
use crate::sse::{self, SseEvent};
use crate::types::{
    ChatRequest, ChatResponse, ModelInfo, ProviderName, Secret, StreamEvent, UpstreamTrace,
};

/// One provider's wire format, as pure functions: no I/O, no state beyond one stream's.
pub(crate) trait Adapter: Send + Sync + 'static {
    const NAME: ProviderName;
    /// The models it is known to serve.
    const CATALOG: &'static [ModelInfo];
    /// Appended to the configured base URL, which is parsed once at start.
    const ENDPOINT: &'static str;
    /// What a stream remembers between its events (running totals, say).
    type StreamState: Default + Send + 'static;

    /// The request for one call: URL, authentication, headers and body.
    fn request(
        endpoint: &reqwest::Url,
        key: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Outgoing, Error>;

    /// A whole answer's body.
    fn parse_response(body: &[u8]) -> Result<ChatResponse, Error>;

    /// One event of a streamed answer; `None` when it ends the answer.
    fn parse_stream_event(
        event: &SseEvent,
        state: &mut Self::StreamState,
    ) -> Result<Option<Vec<StreamEvent>>, Error>;

    /// What an error answer's body says; the driver fills in the rest from the status.
    fn parse_error(status: u16, body: &[u8]) -> Fault;
}

/// An upstream request, before the driver adds the trace headers and sends it.
pub(crate) struct Outgoing {
    pub url: reqwest::Url,
    /// The header that carries the key, and its value.
    pub auth: (&'static str, String),
    /// Other fixed headers the provider requires.
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Value,
}

/// What a provider's error body says, as far as it says anything.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Fault {
    /// The kind the body names; `None` leaves it to the HTTP status.
    pub kind: Option<ErrorKind>,
    /// The provider's words; empty when it gave none.
    pub detail: String,
    /// A wait the body asks for; a `Retry-After` header wins over it.
    pub retry_after: Option<Duration>,
    /// Whether sending again may help, when the body says otherwise than the kind would.
    pub retryable: Option<bool>,
}

/// A provider behind the driver: its client, configuration and parsed endpoint.
pub(crate) struct Driver<A> {
    client: reqwest::Client,
    config: ProviderConfig,
    endpoint: reqwest::Url,
    adapter: PhantomData<A>,
}

impl<A: Adapter> Driver<A> {
    /// Fails when the configured base URL is not an http(s) URL.
    pub fn new(client: reqwest::Client, config: ProviderConfig) -> Result<Self, String> {
        let endpoint = endpoint_url(A::NAME, &config.base_url, A::ENDPOINT)?;
        Ok(Self {
            client,
            config,
            endpoint,
            adapter: PhantomData,
        })
    }

    /// Sends one call with the trace headers every provider request carries. An answer other
    /// than 2xx becomes the provider's error.
    async fn send(
        &self,
        req: &ChatRequest,
        trace: &UpstreamTrace,
        stream: bool,
    ) -> Result<reqwest::Response, Error> {
        let outgoing = A::request(&self.endpoint, self.key()?, req, stream)?;
        tracing::debug!(url = %outgoing.url, model = %req.model, stream, "upstream request");
        let (auth, secret) = outgoing.auth;
        let mut request = self
            .client
            .post(outgoing.url)
            .header(auth, self.sensitive(secret)?)
            .json(&outgoing.body);
        for (name, value) in outgoing.headers {
            request = request.header(*name, *value);
        }
        let response = request
            .header("traceparent", &trace.traceparent)
            .header("x-request-id", &trace.request_id)
            .send()
            .await
            .map_err(|e| transport_error(A::NAME, &e))?;
        let status = response.status().as_u16();
        tracing::debug!(status, "upstream response");
        if response.status().is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        Err(self.redact(http_error::<A>(status, &headers, &body)))
    }

    fn key(&self) -> Result<&str, Error> {
        match &self.config.api_key {
            Some(key) => Ok(key.expose()),
            None => {
                let message = format!("{} is not configured: set {}", A::NAME, self.config.key_var);
                Err(Error::new(ErrorKind::ProviderAuth, message).with_provider(A::NAME))
            }
        }
    }

    /// The authentication header's value, marked sensitive so that no debug print of the
    /// request shows it.
    fn sensitive(&self, value: String) -> Result<HeaderValue, Error> {
        let mut value = HeaderValue::try_from(value).map_err(|_| {
            let message = format!("{}: the API key is not a valid HTTP header value", A::NAME);
            Error::new(ErrorKind::ProviderAuth, message).with_provider(A::NAME)
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    fn redact(&self, err: Error) -> Error {
        redact(self.config.api_key.as_ref(), err)
    }
}

/// Removes the key from text that came back from upstream (some providers echo it).
fn redact(key: Option<&Secret>, mut err: Error) -> Error {
    if let Some(key) = key.filter(|k| k.expose().len() >= 8) {
        err.message = err.message.replace(key.expose(), "[redacted]");
    }
    err
}

#[async_trait]
impl<A: Adapter> Provider for Driver<A> {
    fn name(&self) -> ProviderName {
        A::NAME
    }

    fn is_configured(&self) -> bool {
        self.config.is_configured()
    }

    fn catalog(&self) -> &'static [ModelInfo] {
        A::CATALOG
    }

    async fn complete(
        &self,
        req: &ChatRequest,
        trace: &UpstreamTrace,
    ) -> Result<ChatResponse, Error> {
        let response = self.send(req, trace, false).await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(A::NAME, &e))?;
        A::parse_response(&body).map_err(|e| self.redact(e))
    }

    /// The stream ends at the event the adapter says ends it, even if the connection lingers,
    /// or with the body.
    async fn stream(&self, req: &ChatRequest, trace: &UpstreamTrace) -> Result<EventStream, Error> {
        let response = self.send(req, trace, true).await?;
        // Mid-stream errors carry upstream text too.
        let key = self.config.api_key.clone();
        let events = sse::decode(response.bytes_stream())
            .scan(A::StreamState::default(), move |state, event| {
                let parsed = match event {
                    Ok(event) => {
                        A::parse_stream_event(&event, state).map_err(|e| redact(key.as_ref(), e))
                    }
                    Err(e) => Err(transport_error(A::NAME, &e)),
                };
                futures::future::ready(match parsed {
                    Ok(None) => None,
                    other => Some(other),
                })
            })
            .flat_map(|parsed| {
                let items: Vec<Result<StreamEvent, Error>> = match parsed {
                    Ok(events) => events.unwrap_or_default().into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(items)
            });
        Ok(events.boxed())
    }
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
fn endpoint_url(provider: ProviderName, base: &str, path: &str) -> Result<reqwest::Url, String> {
    let refused = || format!("{provider} base URL: {base:?} is not an http(s) base URL");
    let parsed = reqwest::Url::parse(base).map_err(|_| refused())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(refused());
    }
    reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/'))).map_err(|_| refused())
}

/// The kind an HTTP status means when the body names none.
fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::ProviderAuth,
        404 => ErrorKind::ModelNotFound,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::ProviderRejected,
        _ => ErrorKind::ProviderUnavailable,
    }
}

/// An error answer of `A`'s as the contract's error: `Retry-After` wins over the body's own
/// wait, and 408 (a request timeout) and 409 (a conflict) may pass when sent again, as the
/// official SDKs assume, unless the body says otherwise.
pub(crate) fn http_error<A: Adapter>(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let fault = A::parse_error(status, body);
    let says_retryable = fault.retryable.is_some();
    let mut err = fault_error(A::NAME, status, fault).with_status(status);
    if let Some(wait) = retry_after(headers) {
        err.retry_after = Some(wait);
    }
    if matches!(status, 408 | 409) && !says_retryable {
        err.retryable = true;
    }
    err
}

/// What a provider said went wrong, with `status` (HTTP's, or a code that stands in for it)
/// deciding the kind when the provider named none.
pub(crate) fn fault_error(provider: ProviderName, status: u16, fault: Fault) -> Error {
    let kind = fault.kind.unwrap_or_else(|| kind_for_status(status));
    let detail = if fault.detail.is_empty() {
        format!("HTTP {status}")
    } else {
        fault.detail
    };
    let mut err = Error::new(kind, format!("{provider}: {detail}"))
        .with_provider(provider)
        .with_retry_after(fault.retry_after);
    if let Some(retryable) = fault.retryable {
        err.retryable = retryable;
    }
    err
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
fn transport_error(provider: ProviderName, err: &reqwest::Error) -> Error {
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
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
    use crate::config::Config;
    use crate::providers::openai::OpenAi;
    use crate::types::{Content, Message, Role};

    #[tokio::test]
    async fn a_missing_key_is_named_and_nothing_is_sent() {
        // Nothing listens on port 9: a request sent would fail as a connection error instead.
        let env = |name: &str| (name == "OPENAI_BASE_URL").then(|| "http://127.0.0.1:9".into());
        let config = Config::load(None, &env).unwrap();
        let client = http_client(Duration::from_secs(1)).unwrap();
        let openai = Driver::<OpenAi>::new(client, config.provider(OpenAi::NAME).clone()).unwrap();
        let req = ChatRequest {
            model: "gpt-4o".into(),
            messages: vec![Message::new(Role::User, Content::Text("hi".into()))],
            max_tokens: None,
            temperature: None,
            top_p: None,
            stop: vec![],
            reasoning_effort: None,
            ..ChatRequest::default()
        };
        let trace = UpstreamTrace {
            traceparent: String::new(),
            request_id: String::new(),
        };
        let err = openai.complete(&req, &trace).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProviderAuth);
        assert_eq!(err.message, "openai is not configured: set OPENAI_API_KEY");
    }

    #[test]
    fn keys_echoed_upstream_are_redacted() {
        let key = Secret::new("sk-secret-value".into());
        let echoed = Error::new(ErrorKind::ProviderAuth, "bad key sk-secret-value");
        assert_eq!(redact(Some(&key), echoed).message, "bad key [redacted]");
    }

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
