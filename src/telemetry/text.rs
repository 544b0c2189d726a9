//! Text that others wrote, made safe for a terminal and a line-oriented log: every control
//! character (newlines, carriage returns, escape sequences such as `ESC[2J`, DEL) written as its
//! Rust escape. Callers choose model names, agent names and contexts, and providers' error texts
//! echo them: written raw they could forge a log line (`…\nINFO llmrpc::access: key revoked`),
//! clear an operator's screen or retitle their terminal.

use std::borrow::Cow;
use std::fmt;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// `text` with its control characters escaped; borrowed when it has none.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c.is_control() {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The fields of the text log format, events' and spans' alike: `name=value` (the message
/// bare), space-separated, as tracing-subscriber's default writes them, with every value's
/// control characters escaped. (The JSON format escapes by itself.)
pub fn fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(field).delimited(" ")
}

fn field(writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let text = format!("{value:?}");
    let text = escape_controls(&text);
    match field.name() {
        "message" => write!(writer, "{text}"),
        name => write!(writer, "{}={text}", name.trim_start_matches("r#")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("gpt-4.1-mini é"), "gpt-4.1-mini é");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("a\nINFO forged\r\u{1b}[2J\u{7}\u{9b}"),
            "a\\nINFO forged\\r\\u{1b}[2J\\u{7}\\u{9b}"
        );
    }
}
