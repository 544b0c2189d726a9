//! What the mock's answer to one request says, whatever the provider's format it is written in.

use serde_json::Value;

/// What an answer says.
pub enum Answer {
    /// `tok0 tok1 …`, the usual answer of `chunks` words.
    Words(u32),
    /// Any other text, one delta per word.
    Echo(String),
    Call(Call),
}

/// One call of a tool, as the mock makes it.
pub struct Call {
    pub name: String,
    /// The arguments as a JSON object (Anthropic's `input`, Gemini's `args`).
    pub input: Value,
    /// The same as JSON text (OpenAI's `arguments`).
    pub arguments: String,
}

impl Call {
    /// Tokens of the call: like the prompt's, its arguments' bytes divided by 4, at least 1.
    pub fn tokens(&self) -> u64 {
        (self.arguments.len() / 4).max(1) as u64
    }

    /// The arguments' text in three pieces (two for `{}`), cut between characters, as a
    /// model streams them.
    pub fn pieces(&self) -> impl Iterator<Item = &str> {
        let text = self.arguments.as_str();
        let chars = text.chars().count();
        let n = chars.min(3);
        let at = move |k: usize| {
            text.char_indices()
                .nth(chars * k / n)
                .map_or(text.len(), |(i, _)| i)
        };
        (0..n).filter_map(move |k| text.get(at(k)..at(k + 1)))
    }
}
