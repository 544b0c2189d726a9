//! OpenAI's model table: what the catalog lists, the built-in tiers and list prices take, and
//! which models reason with `reasoning_effort` (`request.rs` reads it).

use crate::types::{Capabilities, ModelInfo, ModelTable, Reasoning, Tier, TierRank};

/// Chat Completions takes a JSON Schema from every model.
const PLAIN: Capabilities = Capabilities {
    reasoning: Reasoning::None,
    json_schema: true,
};
const EFFORT: Capabilities = Capabilities {
    reasoning: Reasoning::Effort,
    json_schema: true,
};

pub(super) const MODELS: ModelTable = ModelTable {
    models: &[
        ModelInfo::new("gpt-5", 400_000)
            .max_output(128_000)
            .price(1.25, 10.0)
            .capabilities(EFFORT)
            .tiers(&[
                TierRank {
                    tier: Tier::Balanced,
                    rank: 2,
                },
                TierRank {
                    tier: Tier::Premium,
                    rank: 2,
                },
            ]),
        ModelInfo::new("gpt-5-mini", 400_000)
            .max_output(128_000)
            .price(0.25, 2.0)
            .capabilities(EFFORT)
            .tiers(&[TierRank {
                tier: Tier::Fast,
                rank: 1,
            }]),
        ModelInfo::new("gpt-5-nano", 400_000)
            .max_output(128_000)
            .price(0.05, 0.40)
            .capabilities(EFFORT),
        ModelInfo::new("gpt-4.1", 1_047_576)
            .max_output(32_768)
            .price(2.0, 8.0)
            .capabilities(PLAIN),
        ModelInfo::new("gpt-4.1-mini", 1_047_576)
            .max_output(32_768)
            .price(0.40, 1.60)
            .capabilities(PLAIN),
        ModelInfo::new("gpt-4.1-nano", 1_047_576)
            .max_output(32_768)
            .price(0.10, 0.40)
            .capabilities(PLAIN),
        ModelInfo::new("gpt-4o", 128_000)
            .max_output(16_384)
            .price(2.50, 10.0)
            .capabilities(PLAIN),
        ModelInfo::new("gpt-4o-mini", 128_000)
            .max_output(16_384)
            .price(0.15, 0.60)
            .capabilities(PLAIN),
        ModelInfo::new("o3", 200_000)
            .max_output(100_000)
            .price(2.0, 8.0)
            .capabilities(EFFORT),
        ModelInfo::new("o4-mini", 200_000)
            .max_output(100_000)
            .price(1.10, 4.40)
            .capabilities(EFFORT),
    ],
    families: &[
        ModelInfo::family("o1", EFFORT),
        ModelInfo::family("o4", EFFORT),
    ],
    others: PLAIN,
    routed_prefixes: &["gpt-", "o1", "o3", "o4", "chatgpt-"],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule before the table: reasoning models were these prefixes.
    fn reasoned_before(model: &str) -> bool {
        ["o1", "o3", "o4", "gpt-5"]
            .iter()
            .any(|p| model.starts_with(p))
    }

    #[test]
    fn capabilities_are_those_of_the_prefix_rules() {
        let rows = MODELS.models.iter().chain(MODELS.families).map(|m| m.id);
        let others = [
            "o1",
            "o1-pro",
            "o1-mini",
            "o3-mini",
            "o3-pro",
            "o4-mini-2025-04-16",
            "o4",
            "gpt-5-pro",
            "gpt-5.1",
            "gpt-5-2025-08-07",
            "gpt-4o-2024-08-06",
            "gpt-4.1-mini-2025-04-14",
            "gpt-4",
            "gpt-3.5-turbo",
            "chatgpt-4o-latest",
            "my-finetune",
            "",
        ];
        for model in rows.chain(others) {
            let caps = MODELS.capabilities(model);
            let effort = caps.reasoning == Reasoning::Effort;
            assert_eq!(effort, reasoned_before(model), "{model}");
            assert!(effort || caps.reasoning == Reasoning::None, "{model}");
            assert!(caps.json_schema, "{model}");
        }
    }
}
