//! The ground floor's rules, tested: what every provider must read alike.

use super::*;

fn image(url: &str) -> ImageUrl {
    ImageUrl { url: url.into() }
}

#[test]
fn data_urls_are_inline_only_when_base64_with_a_media_type() {
    assert_eq!(
        image("data:image/png;base64,AAAA").source(),
        ImageSource::Inline {
            media_type: "image/png",
            data: "AAAA"
        }
    );
    assert_eq!(
        image("data:image/jpeg;name=a.jpg;BASE64,QUJD").source(),
        ImageSource::Inline {
            media_type: "image/jpeg",
            data: "QUJD"
        }
    );
    for malformed in [
        "data:image/png,raw",
        "data:;base64,AAAA",
        "data:image/png;base64,",
        "data:image/png;base64",
    ] {
        assert!(image(malformed).is_malformed_data_url(), "{malformed}");
        assert_eq!(image(malformed).source(), ImageSource::Url(malformed));
    }
    let https = image("https://example.com/a.png");
    assert!(!https.is_malformed_data_url());
    assert_eq!(
        https.source(),
        ImageSource::Url("https://example.com/a.png")
    );
}

proptest::proptest! {
    /// However a call's arguments are cut into fragments, and however calls interleave,
    /// each call's arguments come back whole.
    #[test]
    fn tool_call_fragments_assemble_whatever_the_cuts(
        args in proptest::collection::vec("[a-zé\"{}:,0-9 ]{0,12}", 1..4),
        cuts in proptest::collection::vec(0usize..64, 0..8),
    ) {
        let mut deltas = Vec::new();
        for (index, text) in args.iter().enumerate() {
            let chars: Vec<char> = text.chars().collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
            points.sort_unstable();
            let mut last = 0;
            for (n, p) in points.into_iter().chain([chars.len()]).enumerate() {
                deltas.push(ToolCallDelta {
                    index: index as u32,
                    id: (n == 0).then(|| format!("call_{index}")),
                    name: (n == 0).then(|| format!("tool_{index}")),
                    arguments: chars[last..p].iter().collect(),
                });
                last = p;
            }
        }
        // Every call opens before any continues, as providers send parallel calls.
        deltas.sort_by_key(|d| d.id.is_none());
        let mut assembler = ToolCallAssembler::default();
        for delta in &deltas {
            assembler.push(delta);
        }
        let calls = assembler.finish();
        proptest::prop_assert_eq!(calls.len(), args.len());
        for (index, (call, text)) in calls.iter().zip(&args).enumerate() {
            proptest::prop_assert_eq!(&call.id, &format!("call_{index}"));
            proptest::prop_assert_eq!(&call.function.name, &format!("tool_{index}"));
            proptest::prop_assert_eq!(&call.function.arguments, text);
        }
    }
}

#[test]
fn the_system_prompt_joins_parts_by_line_and_messages_by_blank_line() {
    let message = Message::new;
    let messages = vec![
        message(Role::System, Content::Text("One.".into())),
        message(Role::User, Content::Text("Hi".into())),
        message(Role::System, Content::Text(String::new())),
        message(
            Role::System,
            Content::Parts(vec![
                Part::Text { text: "Two".into() },
                Part::Text {
                    text: "lines.".into(),
                },
            ]),
        ),
    ];
    assert_eq!(
        system_prompt(&messages).as_deref(),
        Some("One.\n\nTwo\nlines.")
    );
    assert_eq!(system_prompt(&messages[1..2]), None);
    assert_eq!(system_prompt(&messages[1..3]), None);
}

const PLAIN: Capabilities = Capabilities {
    reasoning: Reasoning::None,
    json_schema: false,
};
const THINKING: Capabilities = Capabilities {
    reasoning: Reasoning::ThinkingBudget,
    json_schema: false,
};
const BOTH: Capabilities = Capabilities {
    reasoning: Reasoning::ThinkingBudget,
    json_schema: true,
};

#[test]
fn a_name_has_the_capabilities_of_its_longest_row() {
    const TABLE: ModelTable = ModelTable {
        models: &[ModelInfo::new("m-1-5", 10).capabilities(BOTH)],
        families: &[ModelInfo::family("m-1", THINKING)],
        others: PLAIN,
        routed_prefixes: &[],
    };
    for (model, expected) in [
        ("m-1-5", BOTH),
        ("m-1-5-20250101", BOTH),
        ("m-1", THINKING),
        ("m-1-4", THINKING),
        ("m-2", PLAIN),
        ("", PLAIN),
    ] {
        assert_eq!(TABLE.capabilities(model), expected, "{model}");
    }
}
