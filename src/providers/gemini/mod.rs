//! Google Gemini through the Generative Language API with an AI Studio key: `generateContent`
//! and `streamGenerateContent?alt=sse`; the [`Adapter`] and what it is made of. `request.rs`
//! builds the body and the method URL, `tools.rs` the tools, the parts of tool loops and the ids
//! of calls, `response.rs` reads a whole answer, `stream.rs` a stream's chunks and `error.rs`
//! error bodies. Request bodies use the canonical lowerCamelCase spelling throughout (the
//! server also accepts snake_case; one spelling avoids mixing them).

mod error;
mod models;
mod request;
mod response;
mod stream;
mod tools;

use crate::error::Error;
use crate::providers::adapter::{Adapter, Outgoing};
use crate::providers::fault::Fault;
use crate::sse::SseEvent;
use crate::types::{ChatRequest, ChatResponse, ModelTable, ProviderName, StreamEvent};

/// The adapter: requests and answers of `generateContent` and `streamGenerateContent`.
pub struct Gemini;

impl Adapter for Gemini {
    const NAME: ProviderName = ProviderName::Gemini;
    const MODELS: &'static ModelTable = &models::MODELS;
    const KEY_VARS: &'static [&'static str] = &["GEMINI_API_KEY", "GOOGLE_API_KEY"];
    const BASE_URL_VAR: &'static str = "GEMINI_BASE_URL";
    const BASE_URL: &'static str = "https://generativelanguage.googleapis.com";
    /// Each call appends its model and method.
    const ENDPOINT: &'static str = "/v1beta/models/";
    type StreamState = stream::StreamCalls;

    fn request(
        endpoint: &reqwest::Url,
        key: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            url: request::endpoint_for(endpoint, &req.model, stream)?,
            auth: ("x-goog-api-key", key.to_owned()),
            headers: &[],
            body: request::request_body(req)?,
        })
    }

    fn output_cap(model: &str, req: &ChatRequest) -> Option<u32> {
        request::output_cap(model, req)
    }

    fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
        response::parse_response(body)
    }

    /// There is no end event: the answer ends with the body, after the chunk with
    /// `finishReason`.
    fn parse_stream_event(
        event: &SseEvent,
        state: &mut stream::StreamCalls,
    ) -> Result<Option<Vec<StreamEvent>>, Error> {
        stream::parse_stream_data(&event.data, state).map(Some)
    }

    fn parse_error(_: u16, body: &[u8]) -> Fault {
        error::parse_error(body)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::ErrorKind;
    use crate::providers::conformance::{self, Recorded};
    use crate::providers::testing::{request, text};
    use crate::types::{FinishReason, Role};

    /// Gemini's recorded fixtures, for the conformance suite.
    const RECORDED: Recorded = Recorded {
        errors: &[
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
        ],
        // No headers recorded: the wait is the body's `RetryInfo.retryDelay`.
        rate_limit: (
            "error_429_resource_exhausted.json",
            None,
            Duration::from_secs(19),
        ),
        streams: &[
            (
                "stream_generate_content.sse",
                FinishReason::Stop,
                (399, 191, 590),
            ),
            (
                "stream_generate_content_current.sse",
                FinishReason::Stop,
                (8, 33, 41),
            ),
            // Thinking tokens count as completion tokens.
            (
                "stream_generate_content_function_call.sse",
                FinishReason::ToolCalls,
                (74, 129, 203),
            ),
        ],
        failing_streams: &[],
        unknown_event: "data: {\"brandNewField\":{\"x\":1}}\n\n",
    };

    conformance::suite!(Gemini, RECORDED);

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
}
