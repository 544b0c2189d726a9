//! Gemini's model table: what the catalog lists, the built-in tiers and list prices take, and
//! which models think with a token budget (`request.rs` reads it).

use crate::types::{Capabilities, ModelInfo, ModelTable, Reasoning, Tier, TierRank};

/// `generateContent` takes a JSON Schema from every model.
const PLAIN: Capabilities = Capabilities {
    reasoning: Reasoning::None,
    json_schema: true,
};
/// Gemini 2.5 and 3 think with a token budget; Gemini 3 prefers `thinkingLevel` but still
/// accepts `thinkingBudget`.
const THINKING: Capabilities = Capabilities {
    reasoning: Reasoning::ThinkingBudget,
    json_schema: true,
};

pub(super) const MODELS: ModelTable = ModelTable {
    models: &[
        ModelInfo::new("gemini-2.5-pro", 1_048_576)
            .max_output(65_536)
            .price(1.25, 10.0)
            .capabilities(THINKING)
            .tiers(&[
                TierRank {
                    tier: Tier::Balanced,
                    rank: 3,
                },
                TierRank {
                    tier: Tier::Premium,
                    rank: 3,
                },
            ]),
        ModelInfo::new("gemini-2.5-flash", 1_048_576)
            .max_output(65_536)
            .price(0.30, 2.50)
            .capabilities(THINKING)
            .tiers(&[TierRank {
                tier: Tier::Fast,
                rank: 3,
            }]),
        ModelInfo::new("gemini-2.5-flash-lite", 1_048_576)
            .max_output(65_536)
            .price(0.10, 0.40)
            .capabilities(THINKING),
        ModelInfo::new("gemini-2.0-flash", 1_048_576)
            .max_output(8_192)
            .price(0.10, 0.40)
            .capabilities(PLAIN),
        ModelInfo::new("gemini-3-pro-preview", 1_048_576)
            .max_output(65_536)
            .price(2.0, 12.0)
            .capabilities(THINKING),
    ],
    families: &[
        ModelInfo::family("gemini-2.5-", THINKING),
        ModelInfo::family("gemini-3", THINKING),
    ],
    others: PLAIN,
    routed_prefixes: &["gemini-"],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule before the table: thinking models were these prefixes.
    fn thought_before(model: &str) -> bool {
        model.starts_with("gemini-2.5-") || model.starts_with("gemini-3")
    }

    #[test]
    fn capabilities_are_those_of_the_prefix_rules() {
        let rows = MODELS.models.iter().chain(MODELS.families).map(|m| m.id);
        let others = [
            "gemini-2.5",
            "gemini-2.5-flash-preview-09-2025",
            "gemini-2.5-pro-001",
            "gemini-3",
            "gemini-3-flash",
            "gemini-3.0-pro",
            "gemini-2.0-flash-001",
            "gemini-2.0-flash-lite",
            "gemini-1.5-pro",
            "gemma-3-27b-it",
            "",
        ];
        for model in rows.chain(others) {
            let caps = MODELS.capabilities(model);
            let thinking = caps.reasoning == Reasoning::ThinkingBudget;
            assert_eq!(thinking, thought_before(model), "{model}");
            assert!(thinking || caps.reasoning == Reasoning::None, "{model}");
            assert!(caps.json_schema, "{model}");
        }
    }
}
