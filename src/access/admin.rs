//! Administration: the typed operations behind the `admin.*` methods (their params and
//! results), shared by the JSON-RPC methods and `llmrpc admin` working directly on the
//! database, with the rules of what a team's settings may be and how the accounts' errors read.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::keys::{self, CreatedKey};
use crate::error::{Error, ErrorKind};
use crate::ledger::accounts::{Accounts, AccountsError, KeyInfo, NewTeam, Role, Team, TeamChanges};

/// `admin.teams.create`'s params.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTeam {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) allowed_models: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) credits_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) requests_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tokens_per_minute: Option<u32>,
}

/// A team (by id or name) or a key (by id).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Id {
    pub(crate) id: String,
}

/// The params of a method that takes none of its own.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoParams {}

/// `admin.keys.create`'s params.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// The team's id or name.
    pub(crate) team_id: String,
    pub(crate) role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
}

/// `admin.keys.list`'s params: one team's keys, or every key.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListKeys {
    pub(crate) team_id: Option<String>,
}

/// `admin.credits.add`'s params; a negative amount takes away.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddCredits {
    pub(crate) team_id: String,
    pub(crate) amount_usd: f64,
}

/// `admin.teams.update`'s params: `id`, and the settings to change, where `null` clears one
/// (unlimited credits, no rate limit). Read by hand, since absent and `null` differ.
#[derive(Debug)]
pub(crate) struct UpdateTeam {
    /// The team's id or name.
    pub(crate) id: String,
    pub(crate) changes: TeamChanges,
}

pub(crate) async fn create_team(accounts: &Accounts, p: CreateTeam) -> Result<Team, Error> {
    let team = NewTeam {
        name: p.name,
        allowed_models: p.allowed_models,
        credits_usd: p.credits_usd,
        requests_per_minute: p.requests_per_minute,
        tokens_per_minute: p.tokens_per_minute,
    };
    check_new_team(&team)?;
    accounts.create_team(&team).await.map_err(error)
}

pub(crate) async fn list_teams(
    accounts: &Accounts,
    NoParams {}: NoParams,
) -> Result<Vec<Team>, Error> {
    accounts.teams().await.map_err(error)
}

pub(crate) async fn get_team(accounts: &Accounts, p: Id) -> Result<Team, Error> {
    let team = accounts.team(&p.id).await.map_err(error)?;
    team.ok_or(AccountsError::NoTeam(p.id)).map_err(error)
}

pub(crate) async fn update_team(accounts: &Accounts, p: UpdateTeam) -> Result<Team, Error> {
    check_changes(&p.changes)?;
    accounts.update_team(&p.id, &p.changes).await.map_err(error)
}

pub(crate) async fn delete_team(accounts: &Accounts, p: Id) -> Result<Team, Error> {
    accounts.delete_team(&p.id).await.map_err(error)
}

pub(crate) async fn create_key(accounts: &Accounts, p: CreateKey) -> Result<CreatedKey, Error> {
    keys::create(accounts, &p.team_id, p.role, p.name)
        .await
        .map_err(error)
}

pub(crate) async fn list_keys(accounts: &Accounts, p: ListKeys) -> Result<Vec<KeyInfo>, Error> {
    accounts.keys(p.team_id.as_deref()).await.map_err(error)
}

pub(crate) async fn revoke_key(accounts: &Accounts, p: Id) -> Result<KeyInfo, Error> {
    accounts.revoke_key(&p.id).await.map_err(error)
}

pub(crate) async fn add_credits(accounts: &Accounts, p: AddCredits) -> Result<Team, Error> {
    check_amount(p.amount_usd)?;
    accounts
        .add_credits(&p.team_id, p.amount_usd)
        .await
        .map_err(error)
}

const MAX_NAME: usize = 128;

fn check_new_team(team: &NewTeam) -> Result<(), Error> {
    check_name(&team.name)?;
    check_models(&team.allowed_models)?;
    check_credits(team.credits_usd)?;
    check_limit("requests_per_minute", team.requests_per_minute)?;
    check_limit("tokens_per_minute", team.tokens_per_minute)
}

fn check_changes(changes: &TeamChanges) -> Result<(), Error> {
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

fn check_amount(amount_usd: f64) -> Result<(), Error> {
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

const UPDATE_FIELDS: &[&str] = &[
    "id",
    "name",
    "allowed_models",
    "credits_usd",
    "requests_per_minute",
    "tokens_per_minute",
];

impl<'de> Deserialize<'de> for UpdateTeam {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = UpdateTeam;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UpdateTeam, A::Error> {
                let mut fields = Map::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    fields.insert(name, value);
                }
                team_changes(fields).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_struct("UpdateTeam", UPDATE_FIELDS, Fields)
    }
}

/// Reads `admin.teams.update`'s fields; the messages lack only the `invalid params: ` that
/// every params error gets.
fn team_changes(mut p: Map<String, Value>) -> Result<UpdateTeam, String> {
    fn field<T: DeserializeOwned>(
        p: &mut Map<String, Value>,
        name: &str,
    ) -> Result<Option<Option<T>>, String> {
        match p.remove(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => serde_json::from_value(value)
                .map(|v| Some(Some(v)))
                .map_err(|e| format!("{name}: {e}")),
        }
    }
    let id: String = field(&mut p, "id")?
        .flatten()
        .ok_or("id (the team's id or name) is required")?;
    let changes = TeamChanges {
        name: field(&mut p, "name")?.flatten(),
        allowed_models: field::<Vec<String>>(&mut p, "allowed_models")?
            .map(Option::unwrap_or_default),
        credits_usd: field(&mut p, "credits_usd")?,
        requests_per_minute: field(&mut p, "requests_per_minute")?,
        tokens_per_minute: field(&mut p, "tokens_per_minute")?,
    };
    if let Some(unknown) = p.keys().next() {
        return Err(format!("unknown field {unknown:?} of admin.teams.update"));
    }
    Ok(UpdateTeam { id, changes })
}

/// Written as the method's params: absent leaves a setting alone, `null` clears it.
impl serde::Serialize for UpdateTeam {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let c = &self.changes;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        if let Some(name) = &c.name {
            map.serialize_entry("name", name)?;
        }
        if let Some(models) = &c.allowed_models {
            map.serialize_entry("allowed_models", models)?;
        }
        if let Some(credits) = &c.credits_usd {
            map.serialize_entry("credits_usd", credits)?;
        }
        if let Some(rpm) = &c.requests_per_minute {
            map.serialize_entry("requests_per_minute", rpm)?;
        }
        if let Some(tpm) = &c.tokens_per_minute {
            map.serialize_entry("tokens_per_minute", tpm)?;
        }
        map.end()
    }
}
