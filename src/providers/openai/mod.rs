//! OpenAI Chat Completions (and the many servers that speak its dialect): the [`Adapter`] and
//! what it is made of. `request.rs` builds the body, `response.rs` reads a whole answer,
//! `stream.rs` a stream's chunks and `error.rs` error bodies.

mod error;
mod models;
mod request;
mod response;
mod stream;

use crate::error::Error;
use crate::providers::adapter::{Adapter, Outgoing};
use crate::providers::fault::Fault;
use crate::sse::SseEvent;
use crate::types::{ChatRequest, ChatResponse, ModelTable, ProviderName, StreamEvent};

/// The adapter: requests and answers of Chat Completions.
pub struct OpenAi;

impl Adapter for OpenAi {
    const NAME: ProviderName = ProviderName::Openai;
    const MODELS: &'static ModelTable = &models::MODELS;
    const KEY_VARS: &'static [&'static str] = &["OPENAI_API_KEY"];
    const BASE_URL_VAR: &'static str = "OPENAI_BASE_URL";
    const BASE_URL: &'static str = "https://api.openai.com/v1";
    const ENDPOINT: &'static str = "/chat/completions";
    type StreamState = ();

    fn request(
        endpoint: &reqwest::Url,
        key: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Outgoing, Error> {
        Ok(Outgoing {
            url: endpoint.clone(),
            auth: ("authorization", format!("Bearer {key}")),
            headers: &[],
            body: request::request_body(req, stream),
        })
    }

    fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
        response::parse_response(body)
    }

    /// `[DONE]` ends the answer.
    fn parse_stream_event(event: &SseEvent, _: &mut ()) -> Result<Option<Vec<StreamEvent>>, Error> {
        stream::parse_stream_data(&event.data)
    }

    fn parse_error(status: u16, body: &[u8]) -> Fault {
        error::parse_error(status, body)
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

    /// OpenAI's recorded fixtures, for the conformance suite.
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
                "error_401_invalid_api_key.json",
                ErrorKind::ProviderAuth,
                false,
            ),
            (
                404,
                "error_404_model_not_found.json",
                ErrorKind::ModelNotFound,
                false,
            ),
            (
                429,
                "error_429_rate_limit.json",
                ErrorKind::RateLimited,
                true,
            ),
            (
                429,
                "error_429_insufficient_quota.json",
                ErrorKind::RateLimited,
                false,
            ),
            (
                500,
                "error_500_server_error.json",
                ErrorKind::ProviderUnavailable,
                true,
            ),
        ],
        // `retry-after-ms` is the finer of the two waits the headers give.
        rate_limit: (
            "error_429_rate_limit.json",
            Some("error_429_rate_limit.headers.txt"),
            Duration::from_millis(210),
        ),
        streams: &[
            (
                "chat_completion_stream.sse",
                FinishReason::Stop,
                (14, 30, 44),
            ),
            (
                "chat_completion_stream_refusal.sse",
                FinishReason::Stop,
                (79, 11, 90),
            ),
            (
                "chat_completion_stream_tool_calls.sse",
                FinishReason::ToolCalls,
                (44, 16, 60),
            ),
        ],
        failing_streams: &[],
        unknown_event: "event: brand_new\ndata: {\"object\":\"brand.new\",\"brand_new\":{\"x\":1}}\n\n",
    };

    conformance::suite!(OpenAi, RECORDED);

    #[test]
    fn the_key_is_a_bearer_token_and_the_endpoint_is_the_url() {
        let endpoint = reqwest::Url::parse("https://api.openai.com/v1/chat/completions").unwrap();
        let req = request("gpt-4o", vec![text(Role::User, "hi")]);
        let outgoing = OpenAi::request(&endpoint, "sk-test", &req, true).unwrap();
        assert_eq!(outgoing.url, endpoint);
        assert_eq!(
            outgoing.auth,
            ("authorization", "Bearer sk-test".to_owned())
        );
        assert!(outgoing.headers.is_empty());
        assert_eq!(outgoing.body["stream"], true);
    }
}
