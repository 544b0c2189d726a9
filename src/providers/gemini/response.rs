//! A whole `GenerateContentResponse`, which is also what each of a stream's chunks is.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{WireStatus, invalid, rejected, stream_error};
use super::tools::call_id;
use crate::error::Error;
use crate::types::{ChatResponse, FinishReason, ToolCall, Usage};

/// Zero counts are often omitted, hence the defaults.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct WireUsage {
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
pub(super) struct WireResponse {
    #[serde(default)]
    pub(super) candidates: Vec<WireCandidate>,
    prompt_feedback: Option<WirePromptFeedback>,
    pub(super) usage_metadata: Option<WireUsage>,
    pub(super) model_version: Option<String>,
    response_id: Option<String>,
    /// Only in a stream, when it fails after it started.
    pub(super) error: Option<WireStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireCandidate {
    // Missing on a safety stop or an empty last chunk.
    content: Option<WireContent>,
    pub(super) finish_reason: Option<String>,
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
    pub(super) fn text(&self) -> String {
        self.content
            .iter()
            .flat_map(|c| c.parts.iter().flatten())
            .filter(|p| !p.thought)
            .filter_map(|p| p.text.as_deref())
            .collect()
    }

    /// The calls the answer asks for, in order; `first` is the place of the first of them in
    /// the whole answer (a stream's chunks each hold only the new calls).
    pub(super) fn tool_calls(&self, first: u32) -> Vec<ToolCall> {
        self.content
            .iter()
            .flat_map(|c| c.parts.iter().flatten())
            .filter_map(|p| Some((p.function_call.as_ref()?, p.thought_signature.as_deref())))
            .zip(first..)
            .map(|((call, signature), index)| {
                let args = call.args.clone().unwrap_or_default();
                let args = Value::Object(args).to_string();
                let id = call_id(index, call.id.as_deref(), &call.name, &args, signature);
                ToolCall::function(id, call.name.clone(), args)
            })
            .collect()
    }
}

impl WireResponse {
    /// A blocked prompt comes back as HTTP 200 with no candidates; sending it again won't help.
    pub(super) fn blocked(&self) -> Option<Error> {
        let reason = self.prompt_feedback.as_ref()?.block_reason.as_deref()?;
        self.candidates
            .is_empty()
            .then(|| rejected(&format!("the prompt was blocked ({reason})")))
    }
}

/// Gemini has no finish reason of its own for calls: an answer with calls that stopped
/// normally asked for tools.
pub(super) fn finish_with_calls(value: Option<&str>, has_calls: bool) -> FinishReason {
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

pub(super) fn parse_response(body: &[u8]) -> Result<ChatResponse, Error> {
    let mut wire: WireResponse = serde_json::from_slice(body).map_err(|_| invalid("response"))?;
    if let Some(err) = wire.error.take() {
        return Err(stream_error(err));
    }
    if let Some(err) = wire.blocked() {
        return Err(err);
    }
    let candidate = wire
        .candidates
        .first()
        .ok_or_else(|| invalid("response (no candidates)"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::providers::gemini::Gemini;
    use crate::providers::testing::*;
    use serde_json::json;

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
}
