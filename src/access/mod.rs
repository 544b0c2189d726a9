//! Who calls, and what their team may do (contract §7): caller keys, roles, each team's models,
//! rate limits and credits. Surfaces authenticate a request's `Authorization` header here; the
//! gateway asks here before a call is sent and settles here when it ends.
//!
//! Keys and teams are cached in memory, so that a call without credits costs no database round
//! trip: each replica polls the database's access version every second and reloads when it
//! moved (a revocation reaches every replica within a second). A key the cache does not know
//! yet (made a moment ago, maybe on another replica) is looked up at once, at most ten times a
//! second.

pub mod admin;
pub mod budget;
pub mod keys;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{Denial, Error, ErrorKind};
use crate::ledger::accounts::{Accounts, Reserved, Role, Snapshot, Team};
use crate::resilience::{RateLimits, Rule};

/// How often replicas look for changed keys and teams.
const POLL: Duration = Duration::from_secs(1);
/// How often at most a key the cache does not know sends it to the database.
const MISS_REFRESH: Duration = Duration::from_millis(100);

/// `LLMRPC_AUTH`: whether callers must present a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Required as soon as any key exists.
    Auto,
    Required,
    /// Never required (a key that is presented and valid still names the caller).
    Off,
}

/// An authenticated caller: its key (never the secret) and its team as last loaded.
#[derive(Debug)]
pub struct Caller {
    pub prefix: String,
    pub role: Role,
    pub team: Arc<Team>,
    /// The stored form of its key, to find it again in a reloaded cache.
    hash: String,
}

impl Caller {
    /// Refuses a caller that is not an admin.
    pub fn require_admin(&self) -> Result<(), Error> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Caller => Err(Error::denied(
                Denial::AdminOnly,
                "this method needs an admin key; the key presented has the role caller",
            )),
        }
    }
}

#[derive(Default)]
struct Cache {
    version: i64,
    keys_made: bool,
    /// Live keys by hash.
    keys: HashMap<String, Arc<Caller>>,
    /// Hashes of revoked keys, to answer `revoked_key` rather than `unknown_key`.
    revoked: HashSet<String>,
}

impl Cache {
    fn build(snapshot: Snapshot) -> Self {
        let teams: HashMap<String, Arc<Team>> = snapshot
            .teams
            .into_iter()
            .map(|t| (t.id.clone(), Arc::new(t)))
            .collect();
        let mut cache = Cache {
            version: snapshot.version,
            keys_made: snapshot.keys_made,
            ..Cache::default()
        };
        for (hash, key) in snapshot.keys {
            let team = teams.get(&key.team_id);
            match (key.revoked_at, team) {
                (None, Some(team)) => {
                    let caller = Caller {
                        prefix: key.prefix,
                        role: key.role,
                        team: Arc::clone(team),
                        hash: hash.clone(),
                    };
                    cache.keys.insert(hash, Arc::new(caller));
                }
                _ => {
                    cache.revoked.insert(hash);
                }
            }
        }
        cache
    }

    fn any_key(&self) -> bool {
        self.keys_made || !self.keys.is_empty()
    }
}

/// A call's hold on its team's credits and limits, settled when the call ends.
#[derive(Debug)]
pub struct Charge {
    team_id: String,
    /// What was deducted before the call, if the team has credits.
    reserved_usd: Option<f64>,
    /// The team's tokens per minute and the key they are counted under.
    tokens_per_minute: Option<(u32, String)>,
}

impl Charge {
    pub fn reserved_usd(&self) -> Option<f64> {
        self.reserved_usd
    }
}

pub struct Access {
    accounts: Option<Arc<Accounts>>,
    mode: AuthMode,
    cache: ArcSwap<Cache>,
    rates: Arc<RateLimits>,
    last_refresh: Mutex<Instant>,
}

impl Access {
    /// Access without a database: nobody has a key, every caller is anonymous.
    pub fn anonymous(rates: Arc<RateLimits>) -> Self {
        Self {
            accounts: None,
            mode: AuthMode::Off,
            cache: ArcSwap::from_pointee(Cache::default()),
            rates,
            last_refresh: Mutex::new(Instant::now()),
        }
    }

    /// Loads keys and teams and keeps them fresh for as long as the returned `Access` lives.
    pub async fn start(
        accounts: Arc<Accounts>,
        mode: AuthMode,
        rates: Arc<RateLimits>,
    ) -> Result<Arc<Self>, String> {
        let snapshot = accounts
            .snapshot()
            .await
            .map_err(|e| format!("cannot read caller keys: {e}"))?;
        let access = Arc::new(Self {
            accounts: Some(accounts),
            mode,
            cache: ArcSwap::from_pointee(Cache::build(snapshot)),
            rates,
            last_refresh: Mutex::new(Instant::now()),
        });
        let weak = Arc::downgrade(&access);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(POLL).await;
                let Some(access) = weak.upgrade() else { return };
                match access.poll().await {
                    Ok(()) if failing => {
                        tracing::info!("caller keys can be read again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        tracing::warn!("cannot read caller keys, keeping the last ones: {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
        Ok(access)
    }

    /// Whether callers must present a key now.
    pub fn required(&self) -> bool {
        match self.mode {
            AuthMode::Required => true,
            AuthMode::Off => false,
            AuthMode::Auto => self.cache.load().any_key(),
        }
    }

    pub fn accounts(&self) -> Option<&Arc<Accounts>> {
        self.accounts.as_ref()
    }

    /// The caller of a request, from its `Authorization` header: `None` when anonymous calls
    /// are served and no valid key was presented.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Option<Arc<Caller>>, Error> {
        let key = authorization.and_then(|value| {
            let (scheme, key) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
        let required = self.required();
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return match required {
                true => Err(missing_key()),
                false => Ok(None),
            };
        };
        let hash = keys::hash(key);
        let mut found = self.lookup(&hash);
        if found.is_err() && keys::looks_like_key(key) {
            self.refresh_on_miss().await;
            found = self.lookup(&hash);
        }
        match found {
            Ok(caller) => Ok(Some(caller)),
            Err(_) if !required => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The caller as the cache knows it now, for each call of a connection that authenticated
    /// when it opened: a key revoked since is refused, a changed team applies, and an anonymous
    /// connection is refused once keys are required.
    pub fn recheck(&self, caller: Option<&Arc<Caller>>) -> Result<Option<Arc<Caller>>, Error> {
        match caller {
            Some(caller) => self.lookup(&caller.hash).map(Some),
            None if self.required() => Err(missing_key()),
            None => Ok(None),
        }
    }

    fn lookup(&self, hash: &str) -> Result<Arc<Caller>, Error> {
        let cache = self.cache.load();
        if let Some(caller) = cache.keys.get(hash) {
            return Ok(Arc::clone(caller));
        }
        Err(match cache.revoked.contains(hash) {
            true => Error::denied(Denial::RevokedKey, "this caller key has been revoked"),
            false => Error::denied(Denial::UnknownKey, "this caller key is not known here"),
        })
    }

    /// Reloads when the database's version moved: each second, and after a change made through
    /// this replica, which its next call must see.
    pub async fn poll(&self) -> Result<(), String> {
        let Some(accounts) = &self.accounts else {
            return Ok(());
        };
        let version = accounts.version().await.map_err(|e| e.to_string())?;
        if version != self.cache.load().version {
            self.reload().await?;
        }
        Ok(())
    }

    /// Reloads for a key the cache does not know, at most every `MISS_REFRESH`: callers that
    /// come sooner wait for the next reload, and callers that came during one share the next.
    async fn refresh_on_miss(&self) {
        let arrived = Instant::now();
        let mut last = self.last_refresh.lock().await;
        if *last >= arrived {
            return;
        }
        tokio::time::sleep_until(*last + MISS_REFRESH).await;
        *last = Instant::now();
        if let Err(e) = self.reload().await {
            tracing::warn!("cannot read caller keys: {e}");
        }
    }

    async fn reload(&self) -> Result<(), String> {
        let Some(accounts) = &self.accounts else {
            return Ok(());
        };
        let snapshot = accounts.snapshot().await.map_err(|e| e.to_string())?;
        self.cache.store(Arc::new(Cache::build(snapshot)));
        Ok(())
    }

    /// Applies the team's rate limits and reserves the call's worst case from its credits:
    /// refused calls are never sent. `worst_case_usd` is asked only when the team has credits.
    pub async fn admit(
        &self,
        caller: &Caller,
        worst_case_usd: impl FnOnce() -> f64,
    ) -> Result<Charge, Error> {
        let team = &caller.team;
        // Keys are made only for the limits the team has: most teams have none.
        let rpm = team
            .requests_per_minute
            .map(|rpm| (rpm, rate_key(team, "rpm")));
        let tpm = team
            .tokens_per_minute
            .map(|tpm| (tpm, rate_key(team, "tpm")));
        let rules: Vec<Rule<'_>> = [(&rpm, 1), (&tpm, 0)]
            .into_iter()
            .filter_map(|(limit, cost)| {
                limit.as_ref().map(|(per_minute, key)| Rule {
                    key,
                    per_minute: *per_minute,
                    cost,
                })
            })
            .collect();
        if !rules.is_empty() {
            if let Err(wait) = self.rates.check(&rules).await {
                let message = format!(
                    "team {:?} is over its requests_per_minute or tokens_per_minute; retry in {} ms",
                    team.name,
                    wait.as_millis()
                );
                return Err(
                    Error::new(ErrorKind::RateLimited, message).with_retry_after(Some(wait))
                );
            }
        }
        let mut charge = Charge {
            team_id: team.id.clone(),
            reserved_usd: None,
            tokens_per_minute: tpm,
        };
        if team.credits_usd.is_none() {
            return Ok(charge);
        }
        let Some(accounts) = &self.accounts else {
            return Ok(charge);
        };
        let needed = worst_case_usd();
        match accounts.reserve(&team.id, needed).await {
            Ok(Reserved::Granted) => {
                charge.reserved_usd = Some(needed);
                Ok(charge)
            }
            Ok(Reserved::Refused { left }) => {
                Err(Error::budget_exceeded(&team.id, &team.name, left, needed))
            }
            Err(e) => Err(Error::new(
                ErrorKind::Internal,
                format!("the team's credits cannot be checked: {e}"),
            )),
        }
    }

    /// Ends a call's hold: gives back what the reservation held beyond `cost_usd` and counts
    /// `tokens` against the team's tokens per minute. A call is charged its reservation at most,
    /// so that credits never go below zero: the rare call that costs more than its estimate
    /// (a provider counting more prompt tokens than the bound) is on the service. Runs in the
    /// background: the answer has gone already.
    pub fn settle(self: &Arc<Self>, charge: Charge, cost_usd: f64, tokens: u64) {
        if charge.tokens_per_minute.is_none() && charge.reserved_usd.is_none() {
            return;
        }
        let access = Arc::clone(self);
        tokio::spawn(async move {
            if let Some((per_minute, key)) = &charge.tokens_per_minute {
                let tokens = u32::try_from(tokens).unwrap_or(u32::MAX);
                access.rates.charge(key, *per_minute, tokens).await;
            }
            let (Some(reserved), Some(accounts)) = (charge.reserved_usd, &access.accounts) else {
                return;
            };
            let refund = reserved - cost_usd.min(reserved);
            if let Err(e) = accounts.settle(&charge.team_id, refund).await {
                tracing::error!(
                    team_id = charge.team_id,
                    "credits not settled ({reserved} USD reserved, {cost_usd} USD spent): {e}"
                );
            }
        });
    }
}

fn missing_key() -> Error {
    Error::denied(
        Denial::MissingKey,
        "this service needs a caller key: send Authorization: Bearer llmrpc-…",
    )
}

fn rate_key(team: &Team, what: &str) -> String {
    format!("team:{}:{what}", team.id)
}
