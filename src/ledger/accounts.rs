//! Teams, their caller keys and their credits, in the ledger's database (contract §7). One
//! implementation for both backends through sqlx's `Any` driver: the statements are the same
//! text on SQLite and PostgreSQL (`$N` parameters, `RETURNING`). Credits move only by
//! single-statement updates, so replicas sharing one PostgreSQL database never spend more than
//! one would. Keys are stored as hashes; the secret is never seen here.

use std::sync::Once;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use super::error::LedgerError;
use super::timestamps::{now_ms, rfc3339};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The `llm.*` methods, and `ops.*` limited to its own team.
    Caller,
    /// Everything, `admin.*` included.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Caller => "caller",
            Self::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Result<Self, LedgerError> {
        match text {
            "caller" => Ok(Self::Caller),
            "admin" => Ok(Self::Admin),
            other => Err(LedgerError::Corrupt(format!("unknown key role {other:?}"))),
        }
    }
}

/// A team, as `admin.teams.*` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// Model ids, aliases or tiers; empty: whatever the service allows.
    pub allowed_models: Vec<String>,
    /// What the team may still spend; `None`: unlimited.
    pub credits_usd: Option<f64>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
}

/// The settings of a new team.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTeam {
    pub name: String,
    pub allowed_models: Vec<String>,
    pub credits_usd: Option<f64>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
}

/// What `admin.teams.update` changes: `None` leaves a setting alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamChanges {
    pub name: Option<String>,
    pub allowed_models: Option<Vec<String>>,
    pub credits_usd: Option<Option<f64>>,
    pub requests_per_minute: Option<Option<u32>>,
    pub tokens_per_minute: Option<Option<u32>>,
}

/// A key without its secret: what may be listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    /// The key's first characters, enough to recognise it in the ledger and logs.
    pub prefix: String,
    pub team_id: String,
    pub role: Role,
    pub name: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "optional_rfc3339")]
    pub revoked_at: Option<i64>,
}

/// A key to store: its public part and the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub prefix: String,
    pub hash: String,
    pub team: String,
    pub role: Role,
    pub name: Option<String>,
}

/// Every team and key, for a replica's cache.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: i64,
    /// Whether a key was ever made here (keys may since have been deleted with their team).
    pub keys_made: bool,
    pub teams: Vec<Team>,
    /// Keys with the hash of their secret, revoked ones included.
    pub keys: Vec<(String, KeyInfo)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("no team {0:?}")]
    NoTeam(String),
    #[error("no key {0:?}")]
    NoKey(String),
    #[error("a team named {0:?} exists already")]
    NameTaken(String),
    #[error("team {0:?} has no credit limit: set credits_usd with admin.teams.update first")]
    Unlimited(String),
    #[error("the system's random number generator failed")]
    Random,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<sqlx::Error> for AccountsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Ledger(LedgerError::Database(e))
    }
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reserved {
    /// Deducted.
    Granted,
    /// Not deducted: it did not fit in what is left.
    Refused { left: f64 },
}

const TEAM_COLUMNS: &str = "id, name, allowed_models, credits_usd, requests_per_minute, \
    tokens_per_minute, created_at";
const KEY_COLUMNS: &str = "id, prefix, team_id, role, name, created_at, revoked_at, hash";
/// The team a `team` parameter names: by id, else by name.
const TEAM_BY_ID_OR_NAME: &str =
    "(SELECT id FROM teams WHERE id = $1 UNION ALL SELECT id FROM teams WHERE name = $1 LIMIT 1)";

pub struct Accounts {
    pool: AnyPool,
}

impl Accounts {
    /// Connects to the ledger's database; `ledger::open` must have applied the migrations.
    pub async fn open(url: &str) -> Result<Self, LedgerError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // As the ledger's own connections: with WAL, NORMAL loses at most the last
                    // commits on power loss, never integrity, and spares a sync per reservation.
                    if conn.backend_name() == "SQLite" {
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub async fn create_team(&self, team: &NewTeam) -> Result<Team, AccountsError> {
        if self.team(&team.name).await?.is_some() {
            return Err(AccountsError::NameTaken(team.name.clone()));
        }
        let id = format!("team_{}", random_hex(8)?);
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO teams ({TEAM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&id)
        .bind(&team.name)
        .bind(models_json(&team.allowed_models)?)
        .bind(team.credits_usd)
        .bind(team.requests_per_minute.map(i64::from))
        .bind(team.tokens_per_minute.map(i64::from))
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| taken(e, &team.name))?;
        bump(&mut tx).await?;
        tx.commit().await?;
        self.team(&id)
            .await?
            .ok_or_else(|| AccountsError::NoTeam(id))
    }

    pub async fn teams(&self) -> Result<Vec<Team>, AccountsError> {
        let rows = sqlx::query(&format!(
            "SELECT {TEAM_COLUMNS} FROM teams ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(team).collect::<Result<_, _>>()?)
    }

    /// The team of that id, or else of that name.
    pub async fn team(&self, id_or_name: &str) -> Result<Option<Team>, AccountsError> {
        let row = sqlx::query(&format!(
            "SELECT {TEAM_COLUMNS} FROM teams WHERE id = {TEAM_BY_ID_OR_NAME}"
        ))
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(team).transpose()?)
    }

    pub async fn update_team(
        &self,
        id_or_name: &str,
        changes: &TeamChanges,
    ) -> Result<Team, AccountsError> {
        let current = self.existing(id_or_name).await?;
        let mut tx = self.pool.begin().await?;
        let set = |column: &str| format!("UPDATE teams SET {column} = $1 WHERE id = $2");
        if let Some(name) = &changes.name {
            sqlx::query(&set("name"))
                .bind(name)
                .bind(&current.id)
                .execute(&mut *tx)
                .await
                .map_err(|e| taken(e, name))?;
        }
        if let Some(models) = &changes.allowed_models {
            sqlx::query(&set("allowed_models"))
                .bind(models_json(models)?)
                .bind(&current.id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(credits) = changes.credits_usd {
            sqlx::query(&set("credits_usd"))
                .bind(credits)
                .bind(&current.id)
                .execute(&mut *tx)
                .await?;
        }
        for (column, value) in [
            ("requests_per_minute", changes.requests_per_minute),
            ("tokens_per_minute", changes.tokens_per_minute),
        ] {
            if let Some(value) = value {
                sqlx::query(&set(column))
                    .bind(value.map(i64::from))
                    .bind(&current.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        self.existing(&current.id).await
    }

    /// Deletes a team and its keys; its calls stay in the ledger under its id.
    pub async fn delete_team(&self, id_or_name: &str) -> Result<Team, AccountsError> {
        let current = self.existing(id_or_name).await?;
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM api_keys WHERE team_id = $1",
            "DELETE FROM teams WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&current.id).execute(&mut *tx).await?;
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(current)
    }

    pub async fn create_key(&self, key: &NewKey) -> Result<KeyInfo, AccountsError> {
        let team = self.existing(&key.team).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, prefix, team_id, role, name, created_at, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.id)
        .bind(&key.prefix)
        .bind(&team.id)
        .bind(key.role.as_str())
        .bind(key.name.as_deref())
        .bind(now_ms())
        .bind(&key.hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE access_version SET keys_made = 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        self.key(&key.id).await
    }

    /// Keys, oldest first: of one team, or all.
    pub async fn keys(&self, team: Option<&str>) -> Result<Vec<KeyInfo>, AccountsError> {
        let rows = match team {
            Some(team) => {
                let team = self.existing(team).await?;
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE team_id = $1 ORDER BY created_at, id"
                ))
                .bind(team.id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows
            .iter()
            .map(|row| key(row).map(|(_, info)| info))
            .collect::<Result<_, _>>()?)
    }

    /// Revokes a key (kept, so that the ledger's prefixes stay explicable); revoking twice keeps
    /// the first time.
    pub async fn revoke_key(&self, id: &str) -> Result<KeyInfo, AccountsError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() > 0 {
            bump(&mut tx).await?;
        }
        tx.commit().await?;
        self.key(id).await
    }

    /// Adds to a team's credits (a negative amount takes away); the team's new balance.
    pub async fn add_credits(&self, team: &str, amount_usd: f64) -> Result<Team, AccountsError> {
        let current = self.existing(team).await?;
        let done = sqlx::query(
            "UPDATE teams SET credits_usd = credits_usd + $1 \
             WHERE id = $2 AND credits_usd IS NOT NULL",
        )
        .bind(amount_usd)
        .bind(&current.id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AccountsError::Unlimited(current.name));
        }
        self.existing(&current.id).await
    }

    /// Deducts `amount_usd` from the team's credits if it fits, in one statement: one round
    /// trip, and atomic however many replicas reserve at once.
    pub async fn reserve(&self, team_id: &str, amount_usd: f64) -> Result<Reserved, LedgerError> {
        let granted = sqlx::query(
            "UPDATE teams SET credits_usd = credits_usd - $1 \
             WHERE id = $2 AND credits_usd >= $1",
        )
        .bind(amount_usd)
        .bind(team_id)
        .execute(&self.pool)
        .await?;
        if granted.rows_affected() > 0 {
            return Ok(Reserved::Granted);
        }
        let left: Option<Option<f64>> =
            sqlx::query_scalar("SELECT credits_usd FROM teams WHERE id = $1")
                .bind(team_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(Reserved::Refused {
            left: left.flatten().unwrap_or(0.0),
        })
    }

    /// Gives back what a reservation held beyond the call's real cost (or takes the excess).
    pub async fn settle(&self, team_id: &str, refund_usd: f64) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE teams SET credits_usd = credits_usd + $1 \
             WHERE id = $2 AND credits_usd IS NOT NULL",
        )
        .bind(refund_usd)
        .bind(team_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The number every change of teams or keys moves.
    pub async fn version(&self) -> Result<i64, LedgerError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM access_version WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Every team and key, read in one transaction so that they agree with the version.
    pub async fn snapshot(&self) -> Result<Snapshot, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let (version, keys_made): (i64, i64) =
            sqlx::query_as("SELECT version, keys_made FROM access_version WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let teams = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams"))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(team)
            .collect::<Result<_, _>>()?;
        let keys = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys"))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(key)
            .collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(Snapshot {
            version,
            keys_made: keys_made != 0,
            teams,
            keys,
        })
    }

    async fn existing(&self, id_or_name: &str) -> Result<Team, AccountsError> {
        self.team(id_or_name)
            .await?
            .ok_or_else(|| AccountsError::NoTeam(id_or_name.to_owned()))
    }

    async fn key(&self, id: &str) -> Result<KeyInfo, AccountsError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(key(&row)?.1),
            None => Err(AccountsError::NoKey(id.to_owned())),
        }
    }
}

/// Moves the version replicas poll, in the transaction of the change.
async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE access_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A unique-name violation, as the error it means.
fn taken(e: sqlx::Error, name: &str) -> AccountsError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            AccountsError::NameTaken(name.to_owned())
        }
        _ => e.into(),
    }
}

fn models_json(models: &[String]) -> Result<String, LedgerError> {
    Ok(serde_json::to_string(models)?)
}

fn limit(value: Option<i64>) -> Option<u32> {
    value.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

fn team(row: &AnyRow) -> Result<Team, LedgerError> {
    let models: String = row.try_get("allowed_models")?;
    Ok(Team {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        allowed_models: serde_json::from_str(&models)?,
        credits_usd: row.try_get("credits_usd")?,
        requests_per_minute: limit(row.try_get("requests_per_minute")?),
        tokens_per_minute: limit(row.try_get("tokens_per_minute")?),
        created_at: row.try_get("created_at")?,
    })
}

fn key(row: &AnyRow) -> Result<(String, KeyInfo), LedgerError> {
    let role: String = row.try_get("role")?;
    let info = KeyInfo {
        id: row.try_get("id")?,
        prefix: row.try_get("prefix")?,
        team_id: row.try_get("team_id")?,
        role: Role::parse(&role)?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    };
    Ok((row.try_get("hash")?, info))
}

fn optional_rfc3339<S: serde::Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => rfc3339(ms, s),
        None => s.serialize_none(),
    }
}

/// `bytes` random bytes as lowercase hex, from the operating system's generator: keys are
/// made of it, so it must be unpredictable.
pub fn random_hex(bytes: usize) -> Result<String, AccountsError> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| AccountsError::Random)?;
    Ok(hex(&buf))
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
