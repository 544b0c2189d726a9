//! Anthropic's model table: what the catalog lists, the built-in tiers and list prices take, and
//! which models think and take a JSON Schema natively (`request.rs` reads it).

use crate::types::{Capabilities, ModelInfo, ModelTable, Reasoning, Tier, TierRank};

const PLAIN: Capabilities = Capabilities {
    reasoning: Reasoning::None,
    json_schema: false,
};
/// Extended thinking, no native structured output.
const THINKING: Capabilities = Capabilities {
    reasoning: Reasoning::ThinkingBudget,
    json_schema: false,
};
/// Extended thinking and `output_config.format` (generally available without a beta header),
/// as Anthropic's structured outputs page lists the models.
const STRUCTURED: Capabilities = Capabilities {
    reasoning: Reasoning::ThinkingBudget,
    json_schema: true,
};

pub(super) const MODELS: ModelTable = ModelTable {
    models: &[
        ModelInfo::new("claude-opus-4-1", 200_000)
            .max_output(32_000)
            .price(15.0, 75.0)
            .capabilities(THINKING)
            .tiers(&[TierRank {
                tier: Tier::Premium,
                rank: 1,
            }]),
        ModelInfo::new("claude-opus-4-5", 200_000)
            .max_output(64_000)
            .price(5.0, 25.0)
            .capabilities(STRUCTURED),
        ModelInfo::new("claude-sonnet-4-5", 200_000)
            .max_output(64_000)
            .price(3.0, 15.0)
            .capabilities(STRUCTURED)
            .tiers(&[TierRank {
                tier: Tier::Balanced,
                rank: 1,
            }]),
        ModelInfo::new("claude-sonnet-4", 200_000)
            .max_output(64_000)
            .price(3.0, 15.0)
            .capabilities(THINKING),
        ModelInfo::new("claude-haiku-4-5", 200_000)
            .max_output(64_000)
            .price(1.0, 5.0)
            .capabilities(STRUCTURED)
            .tiers(&[TierRank {
                tier: Tier::Fast,
                rank: 2,
            }]),
        ModelInfo::new("claude-3-7-sonnet-latest", 200_000)
            .max_output(64_000)
            .price(3.0, 15.0)
            .capabilities(THINKING),
        ModelInfo::new("claude-3-5-haiku-latest", 200_000)
            .max_output(8_192)
            .price(0.80, 4.0)
            .capabilities(PLAIN),
    ],
    families: &[
        ModelInfo::family("claude-opus-4", THINKING),
        ModelInfo::family("claude-opus-4-6", STRUCTURED),
        ModelInfo::family("claude-sonnet-4-6", STRUCTURED),
        ModelInfo::family("claude-3-7-sonnet", THINKING),
    ],
    others: PLAIN,
    routed_prefixes: &["claude-"],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules before the table: the models of extended thinking, and of native structured
    /// output, were these prefixes.
    fn thought_before(model: &str) -> bool {
        [
            "claude-opus-4",
            "claude-sonnet-4",
            "claude-3-7-sonnet",
            "claude-haiku-4-5",
        ]
        .iter()
        .any(|p| model.starts_with(p))
    }

    fn structured_before(model: &str) -> bool {
        [
            "claude-opus-4-5",
            "claude-opus-4-6",
            "claude-sonnet-4-5",
            "claude-sonnet-4-6",
            "claude-haiku-4-5",
        ]
        .iter()
        .any(|p| model.starts_with(p))
    }

    #[test]
    fn capabilities_are_those_of_the_prefix_rules() {
        let rows = MODELS.models.iter().chain(MODELS.families).map(|m| m.id);
        let others = [
            "claude-opus-4-0",
            "claude-opus-4-20250514",
            "claude-opus-4-1-20250805",
            "claude-opus-4-5-20251101",
            "claude-opus-4-6",
            "claude-sonnet-4-0",
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-6",
            "claude-sonnet-4-7",
            "claude-haiku-4-5-20251001",
            "claude-haiku-4",
            "claude-3-7-sonnet-20250219",
            "claude-3-5-sonnet-latest",
            "claude-3-5-haiku-20241022",
            "claude-3-opus-latest",
            "claude-opus-5",
            "claude-",
            "",
        ];
        for model in rows.chain(others) {
            let caps = MODELS.capabilities(model);
            let thinking = caps.reasoning == Reasoning::ThinkingBudget;
            assert_eq!(thinking, thought_before(model), "{model}");
            assert!(thinking || caps.reasoning == Reasoning::None, "{model}");
            assert_eq!(caps.json_schema, structured_before(model), "{model}");
        }
    }
}
