//! The worst case of a call, reserved from its team's credits before anything is sent: an upper
//! bound of the prompt's tokens plus the most the answer may hold, at the dearest price among
//! the models that may answer (a fallback may cost more than the first choice).

use crate::ledger::Price;
use crate::types::{ChatRequest, Content, Part};

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
    messages + tools + tool_use
}

/// The most a call may cost: `output_tokens` is its `max_tokens`, or the cap the gateway sets
/// for it.
pub fn worst_case(prompt_tokens: u64, output_tokens: u32, prices: &[Price]) -> f64 {
    let input = prices.iter().map(|p| p.input).fold(0.0, f64::max);
    let output = prices.iter().map(|p| p.output).fold(0.0, f64::max);
    (prompt_tokens as f64 * input + f64::from(output_tokens) * output) / 1_000_000.0
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
        // 1M prompt tokens at 3 USD, 500k output tokens at 2 USD.
        assert!((worst_case(1_000_000, 500_000, &[cheap, dear]) - 4.0).abs() < 1e-9);
        assert_eq!(worst_case(10, 10, &[]), 0.0);
    }
}
