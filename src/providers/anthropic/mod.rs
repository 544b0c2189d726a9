//! Anthropic Messages (`POST /v1/messages`): the [`Adapter`] and what it is made of.
//! `request.rs` builds the body, `tools.rs` its tools and tool loops, `response.rs` reads a
//! whole answer, `stream.rs` a stream's events and `error.rs` error bodies.

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

/// The API version the official SDKs still send; newer features come as `anthropic-beta` flags.
const API_VERSION: &str = "2023-06-01";

/// The adapter: requests and answers of the Messages API.
pub struct Anthropic;

impl Adapter for Anthropic {
    const NAME: ProviderName = ProviderName::Anthropic;
    const MODELS: &'static ModelTable = &models::MODELS;
    const KEY_VARS: &'static [&'static str] = &["ANTHROPIC_API_KEY"];
    const BASE_URL_VAR: &'static str = "ANTHROPIC_BASE_URL";
    const BASE_URL: &'static str = "https://api.anthropic.com";
    const ENDPOINT: &'static str = "/v1/messages";
    type StreamState = stream::StreamState;

    fn request(
        endpoint: &reqwest::Url,
        key: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            url: endpoint.clone(),
            auth: ("x-api-key", key.to_owned()),
            headers: &[("anthropic-version", API_VERSION)],
            body: request::request_body(req, stream),
        })
    }

    fn output_cap(model: &str, req: &ChatRequest) -> Option<u32> {
        Some(request::output_cap(model, req))
    }

    fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
        response::parse_response(body)
    }

    /// `message_stop` ends the answer.
    fn parse_stream_event(
        event: &SseEvent,
        state: &mut stream::StreamState,
    ) -> Result<Option<Vec<StreamEvent>>, Error> {
        stream::parse_stream_event(event.event.as_deref(), &event.data, state)
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

    /// Anthropic's recorded fixtures, for the conformance suite.
    const RECORDED: Recorded = Recorded {
        errors: &[
            (
                400,
                "error_400_invalid_request.json",
                ErrorKind::ProviderRejected,
                false,
            ),
            (
                401,
                "error_401_authentication.json",
                ErrorKind::ProviderAuth,
                false,
            ),
            (
                403,
                "error_403_permission.json",
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
                413,
                "error_413_request_too_large.json",
                ErrorKind::ProviderRejected,
                false,
            ),
            (
                429,
                "error_429_rate_limit.json",
                ErrorKind::RateLimited,
                true,
            ),
            (
                500,
                "error_500_api_error.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
            (
                529,
                "error_529_overloaded.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
        ],
        rate_limit: (
            "error_429_rate_limit.json",
            Some("error_429_rate_limit.headers.txt"),
            Duration::from_secs(12),
        ),
        streams: &[
            ("messages_stream.sse", FinishReason::Stop, (11, 6, 17)),
            (
                "messages_stream_tool_use.sse",
                FinishReason::ToolCalls,
                (377, 65, 442),
            ),
            (
                "messages_stream_refusal.sse",
                FinishReason::ContentFilter,
                (20, 0, 20),
            ),
        ],
        failing_streams: &[(
            "messages_stream_error_overloaded.sse",
            ErrorKind::ProviderUnavailable,
        )],
        unknown_event: "event: brand_new_event\ndata: not even json\n\n",
    };

    conformance::suite!(Anthropic, RECORDED);

    #[test]
    fn the_key_and_the_api_version_go_in_anthropics_headers() {
        let endpoint = reqwest::Url::parse("https://api.anthropic.com/v1/messages").unwrap();
        let req = request("claude-sonnet-4-5", vec![text(Role::User, "hi")]);
        let outgoing = Anthropic::request(&endpoint, "sk-ant-test", &req, false).unwrap();
        assert_eq!(outgoing.url, endpoint);
        assert_eq!(outgoing.auth, ("x-api-key", "sk-ant-test".to_owned()));
        assert_eq!(outgoing.headers, [("anthropic-version", "2023-06-01")]);
        assert_eq!(
            (&outgoing.body["model"], &outgoing.body["max_tokens"]),
            (
                &serde_json::json!("claude-sonnet-4-5"),
                &serde_json::json!(1024)
            )
        );
    }
}
