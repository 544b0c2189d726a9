//! How the client subcommands speak to people and to pipelines (contract §10): `--output
//! text|json|jsonl`, an exit code per class of failure, and spinners and progress bars on
//! standard error only when it is a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::telemetry::escape_controls;

/// The exit codes, as `--help` and the README list them.
pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other failure, 2 usage error, 3 auth (missing \
or rejected key), 4 rate limited or budget spent, 5 timeout, 6 provider (or service) \
unavailable, 7 model not found or not allowed.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: text and tables.
    Text,
    /// One JSON document.
    Json,
    /// One JSON object per line: per chunk of a stream, per row of a table.
    Jsonl,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    #[arg(long, value_enum, default_value = "text")]
    output: Format,
    /// The same as `--output json`.
    #[arg(long, conflicts_with = "output")]
    json: bool,
}

impl OutputArgs {
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.output }
    }
}

/// A failed command: what to print, and the exit code of its class.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A configuration that cannot be used (a bad variable, file or base URL): a usage error, as
    /// a bad flag is.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }

    /// The service or provider could not be reached.
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(UNAVAILABLE, message)
    }

    /// A call's error, by its kind.
    pub fn of(err: &Error) -> Self {
        Self::new(code_of_kind(err.kind.as_str()), err.message.clone())
    }

    /// A JSON-RPC error object from the service, by its `data.kind` (or its code).
    pub fn of_rpc(error: &Value) -> Self {
        let code = match error["data"]["kind"].as_str() {
            // A good key asking for a model outside its team's list, or without a price while
            // the team pays from credits: refused as `unauthorized` (403), but what is wrong is
            // the model, not the key.
            Some(_)
                if error["data"]["reason"] == "model_not_allowed_for_team"
                    || error["data"]["reason"] == "unpriced_model" =>
            {
                MODEL
            }
            Some(kind) => code_of_kind(kind),
            None if error["code"] == -32602 => USAGE,
            None => OTHER,
        };
        let message = error["message"].as_str().unwrap_or("the service failed");
        let trace = error["data"]["trace_id"]
            .as_str()
            .map_or(String::new(), |t| format!(" (trace {t})"));
        Self::new(code, format!("{message}{trace}"))
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::new(OTHER, message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self::new(OTHER, message)
    }
}

const OTHER: u8 = 1;
const USAGE: u8 = 2;
const AUTH: u8 = 3;
const LIMITED: u8 = 4;
const TIMEOUT: u8 = 5;
const UNAVAILABLE: u8 = 6;
const MODEL: u8 = 7;

/// The exit code of an error kind (`error.data.kind`).
fn code_of_kind(kind: &str) -> u8 {
    let kinds = [
        (ErrorKind::Unauthorized, AUTH),
        (ErrorKind::ProviderAuth, AUTH),
        (ErrorKind::RateLimited, LIMITED),
        (ErrorKind::BudgetExceeded, LIMITED),
        (ErrorKind::Timeout, TIMEOUT),
        (ErrorKind::ProviderUnavailable, UNAVAILABLE),
        (ErrorKind::Overloaded, UNAVAILABLE),
        (ErrorKind::ModelNotFound, MODEL),
        (ErrorKind::ModelNotAllowed, MODEL),
        (ErrorKind::InvalidParams, USAGE),
    ];
    kinds
        .iter()
        .find(|(k, _)| k.as_str() == kind)
        .map_or(OTHER, |(_, code)| *code)
}

/// A spinner on standard error while waiting, drawn only when it is a terminal.
pub fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A progress bar of `total` steps on standard error, drawn only when it is a terminal.
pub fn progress(total: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// A table for people: columns as wide as their widest cell. Cells hold what callers and
/// providers wrote (agent names, models, error texts), so their control characters are escaped:
/// a table must not clear the operator's screen or forge a line.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| escape_controls(cell).into_owned())
                .collect()
        })
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_has_its_class() {
        for (kind, code) in [
            ("unauthorized", 3),
            ("provider_auth", 3),
            ("rate_limited", 4),
            ("budget_exceeded", 4),
            ("timeout", 5),
            ("provider_unavailable", 6),
            ("overloaded", 6),
            ("model_not_found", 7),
            ("model_not_allowed", 7),
            ("invalid_params", 2),
            ("context_length_exceeded", 1),
            ("internal", 1),
        ] {
            let error = json!({"code": -32000, "message": "m", "data": {"kind": kind}});
            assert_eq!(Failure::of_rpc(&error).code, code, "{kind}");
        }
        assert_eq!(
            Failure::of_rpc(&json!({"code": -32601, "message": "m"})).code,
            1
        );
        for (reason, code) in [
            ("missing_key", 3),
            ("unknown_key", 3),
            ("revoked_key", 3),
            ("admin_only", 3),
            ("model_not_allowed_for_team", 7),
            ("unpriced_model", 7),
        ] {
            let error = json!({"code": -32009, "message": "m",
                               "data": {"kind": "unauthorized", "reason": reason}});
            assert_eq!(Failure::of_rpc(&error).code, code, "{reason}");
        }
    }

    #[test]
    fn tables_fit_their_widest_cell() {
        let rows = vec![
            vec!["openai/gpt-4.1-mini-2025-04-14".to_owned(), "ok".to_owned()],
            vec!["x".to_owned(), "timeout".to_owned()],
        ];
        let text = table(&["model", "status"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        let column = lines[1].find("ok").unwrap();
        assert_eq!(lines[0].find("status"), Some(column));
        assert_eq!(lines[2].find("timeout"), Some(column));
    }
}
