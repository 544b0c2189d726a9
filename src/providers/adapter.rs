//! What an adapter is: one provider's wire format as pure functions, which the
//! [`Driver`](super::driver::Driver) runs for every call. No I/O here, so that an adapter is
//! tested on bytes alone and fuzzed as it is.

use serde_json::Value;

use super::fault::Fault;
use crate::error::Error;
use crate::sse::SseEvent;
use crate::types::{ChatRequest, ChatResponse, ModelTable, ProviderName, StreamEvent};

/// One provider's wire format, as pure functions: no I/O, no state beyond one stream's.
pub(crate) trait Adapter: Send + Sync + 'static {
    const NAME: ProviderName;
    /// The models it is known to serve, and what the names callers give can do.
    const MODELS: &'static ModelTable;
    /// The environment variables that may hold the key, in order; errors name the first.
    const KEY_VARS: &'static [&'static str];
    /// The environment variable that overrides the base URL.
    const BASE_URL_VAR: &'static str;
    /// Where the provider is, unless configured otherwise.
    const BASE_URL: &'static str;
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

    /// The most output tokens the provider may bill for `req` as this adapter sends it: the
    /// caller's cap, and what the adapter adds to it (a thinking budget). A team's reservation
    /// is priced on it. `model` is the candidate's: `req.model` is still what the caller named.
    fn output_cap(_model: &str, req: &ChatRequest) -> Option<u32> {
        req.max_tokens
    }

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
