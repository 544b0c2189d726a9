//! The worst case of a call, reserved from its team's credits before anything is sent: an upper
//! bound of the prompt's tokens — every member of the request that reaches the provider — plus
//! the most output the provider may bill, for the dearest of the models that may answer (a
//! fallback may cost more than the first choice).

use crate::ledger::Price;
use crate::types::{ChatRequest, Content, Part, ResponseFormat, ToolChoice};

/// Tokens assumed per image: above what any provider charges for one image at full detail.
const IMAGE_TOKENS: u64 = 2_000;
/// Tokens of framing per message (role markers and separators).
const MESSAGE_TOKENS: u64 = 8;
/// Tokens a provider adds on its own to a call that offers tools (its tool-use instructions:
/// a few hundred on Anthropic).
const TOOL_USE_TOKENS: u64 = 512;

/// An upper bound of the prompt's tokens. Tokenizers of all three providers are byte-level, and
/// a token covers at least one byte, so the bytes of the text bound its tokens.
pub fn prompt_tokens(req: &ChatRequest) -> u64 {
    let text = |content: &Option<Content>| match content {
        None => 0,
        Some(Content::Text(text)) => text.len() as u64,
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|part| match part {
                Part::Text { text } => text.len() as u64,
                Part::ImageUrl { .. } => IMAGE_TOKENS,
            })
            .sum(),
    };
    let messages: u64 = req
        .messages
        .iter()
        .map(|m| {
            let calls: u64 = m
                .tool_calls
                .iter()
                .map(|c| (c.function.name.len() + c.function.arguments.len()) as u64)
                .sum();
            MESSAGE_TOKENS + text(&m.content) + calls
        })
        .sum();
    let tools: u64 = req
        .tools
        .iter()
        .map(|t| {
            let schema = t.parameters.as_ref().map_or(0, |p| p.to_string().len());
            (t.name.len() + t.description.as_ref().map_or(0, String::len) + schema) as u64
        })
        .sum();
    let tool_use = if req.tools.is_empty() {
        0
    } else {
        TOOL_USE_TOKENS
    };
    // The rest of what is sent: the answer's schema, the stop strings, the tool choice, and
    // the members passed through as they came.
    let stop: u64 = req.stop.iter().map(|s| s.len() as u64).sum();
    let format = match &req.response_format {
        Some(ResponseFormat::JsonSchema { name, schema, .. }) => {
            name.len() as u64 + json_len(schema)
        }
        Some(_) | None => 0,
    };
    let choice = match &req.tool_choice {
        Some(ToolChoice::Function(name)) => name.len() as u64,
        Some(_) | None => 0,
    };
    let passthrough = if req.passthrough.is_empty() {
        0
    } else {
        json_len(&req.passthrough)
    };
    messages + tools + tool_use + stop + format + choice + passthrough
}

/// The length of a value's JSON text: what of it reaches the provider, about.
fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    serde_json::to_vec(value).map_or(0, |text| text.len() as u64)
}

/// The most a call may cost: each candidate's price with the most output its provider may
/// bill for it (its `max_tokens`, or the cap the gateway sets, and what the adapter adds),
/// the dearest of them.
pub fn worst_case(prompt_tokens: u64, candidates: &[(Price, u32)]) -> f64 {
    candidates
        .iter()
        .map(|(price, output)| {
            (prompt_tokens as f64 * price.input + f64::from(*output) * price.output) / 1_000_000.0
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ImageUrl, Message, Role};

    #[test]
    fn the_prompt_bound_counts_bytes_images_and_framing() {
        let req = ChatRequest {
            messages: vec![
                Message::new(Role::System, Content::Text("be brief".into())),
                Message::new(
                    Role::User,
                    Content::Parts(vec![
                        Part::Text {
                            text: "héllo".into(),
                        },
                        Part::ImageUrl {
                            image_url: ImageUrl {
                                url: "https://example.com/a.png".into(),
                            },
                        },
                    ]),
                ),
            ],
            ..ChatRequest::default()
        };
        // 8 + "be brief" (8 bytes), 8 + "héllo" (6 bytes) + one image.
        assert_eq!(prompt_tokens(&req), 8 + 8 + 8 + 6 + 2_000);
    }

    #[test]
    fn the_worst_case_takes_the_dearest_candidate() {
        let cheap = Price {
            input: 1.0,
            output: 2.0,
        };
        let dear = Price {
            input: 3.0,
            output: 1.0,
        };
        // 1M prompt tokens: 1 + 1 USD at the cheap price, 3 + 0.5 at the dear one.
        assert!((worst_case(1_000_000, &[(cheap, 500_000), (dear, 500_000)]) - 3.5).abs() < 1e-9);
        // A candidate that may bill more output can be the dearer one.
        assert!((worst_case(1_000_000, &[(cheap, 3_000_000), (dear, 500_000)]) - 7.0).abs() < 1e-9);
        assert_eq!(worst_case(10, &[]), 0.0);
    }
}
