//! The one HTTP driver under every provider. An [`Adapter`] says what a call looks like on one
//! provider's wire; the driver owns the rest, written once: the key, the trace headers, sending,
//! reading the SSE stream to its end, classifying error answers (`Retry-After`, and the rule
//! that 408 and 409 may be retried, over the status table of `fault.rs`), and taking the key out
//! of any text that came back. Its tests run it over a fake adapter, so that what it does is
//! tested once for every provider.

use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};

use super::adapter::Adapter;
use super::endpoint::Endpoint;
use super::fault::{bounded_wait, fault_error};
use super::provider::{EventStream, Provider};
use crate::error::{Error, ErrorKind};
use crate::sse;
use crate::types::{
    ChatRequest, ChatResponse, ModelInfo, ProviderName, Secret, StreamEvent, UpstreamTrace,
};

/// A provider behind the driver: its client, where it is and its key, and the parsed URL of its
/// endpoint.
pub(crate) struct Driver<A> {
    client: reqwest::Client,
    target: Endpoint,
    endpoint: reqwest::Url,
    adapter: PhantomData<A>,
}

impl<A: Adapter> Driver<A> {
    /// Fails when the configured base URL is not an http(s) URL.
    pub fn new(client: reqwest::Client, target: Endpoint) -> Result<Self, String> {
        let endpoint = endpoint_url(A::NAME, &target.base_url, A::ENDPOINT)?;
        Ok(Self {
            client,
            target,
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
        match &self.target.api_key {
            Some(key) => Ok(key.expose()),
            None => {
                let message = format!("{} is not configured: set {}", A::NAME, self.target.key_var);
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
        redact(self.target.api_key.as_ref(), err)
    }
}

/// Removes the key from text that came back from upstream (some providers echo it).
fn redact(key: Option<&Secret>, mut err: Error) -> Error {
    if let Some(key) = key.filter(|k| k.expose().len() >= 8) {
        err.message = redact_text(key.expose(), &err.message);
    }
    err
}

/// What of a key is taken out wherever it stands: any piece of it this long, so that an
/// upstream echoing the key split (or cut, or in another case) gives none of it away.
const KEY_PIECE: usize = 12;

/// `text` with the key, in any case, and every piece of it of `KEY_PIECE` characters or more,
/// replaced by `[redacted]`.
fn redact_text(key: &str, text: &str) -> String {
    if !key.is_ascii() {
        return text.replace(key, "[redacted]");
    }
    let (key, lower) = (key.to_ascii_lowercase(), text.to_ascii_lowercase());
    let mut hidden = vec![false; text.len()];
    for piece in key.as_bytes().windows(KEY_PIECE.min(key.len())) {
        for at in memchr::memmem::find_iter(lower.as_bytes(), piece) {
            hidden[at..at + piece.len()].fill(true);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match hidden[i] {
            true => {
                out.push_str("[redacted]");
                while i < text.len() && hidden[i] {
                    i += 1;
                }
            }
            false => {
                let next = (i + 1..=text.len())
                    .find(|&j| j == text.len() || hidden[j])
                    .unwrap_or(text.len());
                out.push_str(&text[i..next]);
                i = next;
            }
        }
    }
    out
}

#[async_trait]
impl<A: Adapter> Provider for Driver<A> {
    fn name(&self) -> ProviderName {
        A::NAME
    }

    fn is_configured(&self) -> bool {
        self.target.api_key.is_some()
    }

    fn catalog(&self) -> &'static [ModelInfo] {
        A::MODELS.models
    }

    fn output_cap(&self, model: &str, req: &ChatRequest) -> Option<u32> {
        A::output_cap(model, req)
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
        let key = self.target.api_key.clone();
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
mod tests;
