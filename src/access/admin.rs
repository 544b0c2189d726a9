//! The rules of administration, shared by the `admin.*` methods and `llmrpc admin` working
//! directly on the database: what a team's settings may be, and how the accounts' errors read.

use crate::error::{Error, ErrorKind};
use crate::ledger::accounts::{AccountsError, NewTeam, TeamChanges};

const MAX_NAME: usize = 128;

pub fn check_new_team(team: &NewTeam) -> Result<(), Error> {
    check_name(&team.name)?;
    check_models(&team.allowed_models)?;
    check_credits(team.credits_usd)?;
    check_limit("requests_per_minute", team.requests_per_minute)?;
    check_limit("tokens_per_minute", team.tokens_per_minute)
}

pub fn check_changes(changes: &TeamChanges) -> Result<(), Error> {
    if let Some(name) = &changes.name {
        check_name(name)?;
    }
    if let Some(models) = &changes.allowed_models {
        check_models(models)?;
    }
    check_credits(changes.credits_usd.flatten())?;
    check_limit("requests_per_minute", changes.requests_per_minute.flatten())?;
    check_limit("tokens_per_minute", changes.tokens_per_minute.flatten())
}

pub fn check_amount(amount_usd: f64) -> Result<(), Error> {
    match amount_usd.is_finite() {
        true => Ok(()),
        false => Err(Error::invalid_params(
            "invalid params: amount_usd must be a finite number of USD",
        )),
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let valid = !name.trim().is_empty() && name.chars().count() <= MAX_NAME;
    match valid {
        true => Ok(()),
        false => Err(Error::invalid_params(
            "invalid params: name must be 1-128 characters, not only spaces",
        )),
    }
}

fn check_models(models: &[String]) -> Result<(), Error> {
    match models.iter().any(|m| m.trim().is_empty()) {
        true => Err(Error::invalid_params(
            "invalid params: allowed_models must list model ids, aliases or tiers, none empty",
        )),
        false => Ok(()),
    }
}

fn check_credits(credits_usd: Option<f64>) -> Result<(), Error> {
    match credits_usd {
        Some(c) if !c.is_finite() || c < 0.0 => Err(Error::invalid_params(
            "invalid params: credits_usd must be a number of USD, 0 or more (absent: unlimited)",
        )),
        _ => Ok(()),
    }
}

fn check_limit(name: &str, limit: Option<u32>) -> Result<(), Error> {
    match limit {
        Some(0) => Err(Error::invalid_params(format!(
            "invalid params: {name} must be at least 1 (absent: no limit)"
        ))),
        _ => Ok(()),
    }
}

/// An accounts error as the caller's error: what they named does not exist or clashes
/// (invalid params), or the database failed (internal).
pub fn error(err: AccountsError) -> Error {
    match err {
        AccountsError::NoTeam(_)
        | AccountsError::NoKey(_)
        | AccountsError::NameTaken(_)
        | AccountsError::Unlimited(_) => Error::invalid_params(format!("invalid params: {err}")),
        AccountsError::Random | AccountsError::Ledger(_) => {
            Error::new(ErrorKind::Internal, err.to_string())
        }
    }
}
