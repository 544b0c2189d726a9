//! `llmrpc admin …`: teams, caller keys and credits, through a running service's `admin.*`
//! methods (`--url`) or, without one, directly on the database of `LLMRPC_DATABASE_URL`, which
//! is how the first admin key is made. Either way the same typed operations of `access::admin`
//! check and apply each change, with the params built from the arguments.

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use super::rpc_client::{CallError, RpcClient};
use crate::access::admin::{
    self, AddCredits, CreateKey, CreateTeam, Id, ListKeys, NoParams, UpdateTeam,
};
use crate::api::{self, Method};
use crate::error::Error;
use crate::ledger::accounts::{Accounts, Role, TeamChanges};
use crate::ledger::{self, DEFAULT_DATABASE_URL};
use crate::providers;

#[derive(Args)]
pub struct AdminArgs {
    /// A running service to administer; without it, the database is changed directly.
    #[arg(long, env = "LLMRPC_URL", global = true)]
    url: Option<String>,
    /// An admin key, for `--url`.
    #[arg(long, env = "LLMRPC_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// The database to change without `--url`.
    #[arg(long, env = "LLMRPC_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true, global = true)]
    database_url: String,
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: Output,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Teams: who is billed, for which models, at which rates.
    #[command(subcommand)]
    Teams(Teams),
    /// Caller keys.
    #[command(subcommand)]
    Keys(Keys),
    /// A team's credits.
    #[command(subcommand)]
    Credits(Credits),
}

#[derive(Subcommand)]
enum Teams {
    Create {
        #[arg(long)]
        name: String,
        /// Credits in USD (without it: unlimited).
        #[arg(long)]
        credits: Option<f64>,
        /// Model ids, aliases or tiers the team may call, comma-separated.
        #[arg(long, value_delimiter = ',')]
        allowed_models: Vec<String>,
        #[arg(long)]
        requests_per_minute: Option<u32>,
        #[arg(long)]
        tokens_per_minute: Option<u32>,
    },
    List,
    Get {
        /// The team's id or name.
        id: String,
    },
    /// Changes a team's settings; `none` clears credits (unlimited) or a rate limit.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        credits: Option<Setting<f64>>,
        #[arg(long, value_delimiter = ',')]
        allowed_models: Option<Vec<String>>,
        #[arg(long)]
        requests_per_minute: Option<Setting<u32>>,
        #[arg(long)]
        tokens_per_minute: Option<Setting<u32>>,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum Keys {
    /// Makes a key and prints it, once. Without `--url`, a team named as `--team` that does not
    /// exist yet is created.
    Create {
        /// The team's id or name.
        #[arg(long)]
        team: String,
        #[arg(long, value_enum)]
        role: KeyRole,
        #[arg(long)]
        name: Option<String>,
    },
    List {
        #[arg(long)]
        team: Option<String>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Subcommand)]
enum Credits {
    Add {
        #[arg(long)]
        team: String,
        /// USD to add; a negative amount takes away.
        #[arg(long, allow_negative_numbers = true)]
        amount: f64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyRole {
    Caller,
    Admin,
}

/// A value, or `none` to clear the setting.
#[derive(Clone)]
struct Setting<T>(Option<T>);

impl<T: std::str::FromStr> std::str::FromStr for Setting<T> {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Self(None)),
            _ => text
                .parse()
                .map(|v| Self(Some(v)))
                .map_err(|_| format!("{text:?} is neither a number nor none")),
        }
    }
}

/// Where the methods run.
enum Target {
    Service { url: String, client: RpcClient },
    Database(Accounts),
}

impl Target {
    /// Runs method `M`: on the service, or on the database by `operation`, its work in
    /// `access::admin`, with the same typed params either way.
    async fn call<M>(
        &self,
        params: M::Params,
        operation: impl AsyncFnOnce(&Accounts, M::Params) -> Result<M::Result, Error>,
    ) -> Result<Value, String>
    where
        M: Method,
        M::Params: Serialize,
        M::Result: Serialize,
    {
        match self {
            Target::Database(accounts) => {
                let result = operation(accounts, params).await.map_err(|e| e.message)?;
                serde_json::to_value(result).map_err(|e| e.to_string())
            }
            Target::Service { url, client } => {
                client.call::<M>(&params, None).await.map_err(|e| match e {
                    CallError::Unreachable(e) => format!("cannot reach {url}: {e}"),
                    CallError::NotJson(e) => format!("invalid answer from {url}: {e}"),
                    CallError::Failed(error) => error["message"]
                        .as_str()
                        .map_or_else(|| error.to_string(), str::to_owned),
                })
            }
        }
    }
}

pub async fn run(args: AdminArgs) -> Result<(), String> {
    let target = match args.url {
        Some(url) => {
            let http = providers::http_client(std::time::Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let client = RpcClient::new(http, url.clone(), args.api_key);
            Target::Service { url, client }
        }
        None => {
            // Opening applies the migrations: the first command makes the database.
            ledger::open(&args.database_url)
                .await
                .map_err(|e| format!("ledger: {e}"))?;
            let accounts = Accounts::open(&args.database_url)
                .await
                .map_err(|e| format!("ledger: {e}"))?;
            Target::Database(accounts)
        }
    };
    let new_key = matches!(args.command, AdminCommand::Keys(Keys::Create { .. }));
    let result = execute(&target, args.command).await?;
    match args.output {
        Output::Json => println!("{result:#}"),
        Output::Text if new_key => print_key(&result),
        Output::Text => print_rows(&result),
    }
    Ok(())
}

/// Runs what a command asks for, with its arguments as the method's params.
async fn execute(target: &Target, command: AdminCommand) -> Result<Value, String> {
    match command {
        AdminCommand::Teams(Teams::Create {
            name,
            credits,
            allowed_models,
            requests_per_minute,
            tokens_per_minute,
        }) => {
            let team = CreateTeam {
                name,
                allowed_models,
                credits_usd: credits,
                requests_per_minute,
                tokens_per_minute,
            };
            target
                .call::<api::TeamsCreate>(team, admin::create_team)
                .await
        }
        AdminCommand::Teams(Teams::List) => {
            target
                .call::<api::TeamsList>(NoParams {}, admin::list_teams)
                .await
        }
        AdminCommand::Teams(Teams::Get { id }) => {
            target
                .call::<api::TeamsGet>(Id { id }, admin::get_team)
                .await
        }
        AdminCommand::Teams(Teams::Update {
            id,
            name,
            credits,
            allowed_models,
            requests_per_minute,
            tokens_per_minute,
        }) => {
            let changes = TeamChanges {
                name,
                allowed_models,
                credits_usd: credits.map(|Setting(c)| c),
                requests_per_minute: requests_per_minute.map(|Setting(n)| n),
                tokens_per_minute: tokens_per_minute.map(|Setting(n)| n),
            };
            let update = UpdateTeam { id, changes };
            target
                .call::<api::TeamsUpdate>(update, admin::update_team)
                .await
        }
        AdminCommand::Teams(Teams::Delete { id }) => {
            target
                .call::<api::TeamsDelete>(Id { id }, admin::delete_team)
                .await
        }
        AdminCommand::Keys(Keys::Create { team, role, name }) => {
            if let Target::Database(_) = target {
                let known = Id { id: team.clone() };
                if target
                    .call::<api::TeamsGet>(known, admin::get_team)
                    .await
                    .is_err()
                {
                    let new = CreateTeam {
                        name: team.clone(),
                        ..CreateTeam::default()
                    };
                    let made = target
                        .call::<api::TeamsCreate>(new, admin::create_team)
                        .await?;
                    eprintln!("created team {} ({})", made["name"], made["id"]);
                }
            }
            let role = match role {
                KeyRole::Caller => Role::Caller,
                KeyRole::Admin => Role::Admin,
            };
            let key = CreateKey {
                team_id: team,
                role,
                name,
            };
            target.call::<api::KeysCreate>(key, admin::create_key).await
        }
        AdminCommand::Keys(Keys::List { team }) => {
            let list = ListKeys { team_id: team };
            target.call::<api::KeysList>(list, admin::list_keys).await
        }
        AdminCommand::Keys(Keys::Revoke { id }) => {
            target
                .call::<api::KeysRevoke>(Id { id }, admin::revoke_key)
                .await
        }
        AdminCommand::Credits(Credits::Add { team, amount }) => {
            let credits = AddCredits {
                team_id: team,
                amount_usd: amount,
            };
            target
                .call::<api::CreditsAdd>(credits, admin::add_credits)
                .await
        }
    }
}

/// A new key for people: the secret on a line of its own, the rest on stderr.
fn print_key(result: &Value) {
    println!("{}", result["key"].as_str().unwrap_or_default());
    eprintln!(
        "key {} ({}, role {}, team {}): shown once, store it now",
        result["id"].as_str().unwrap_or_default(),
        result["prefix"].as_str().unwrap_or_default(),
        result["role"].as_str().unwrap_or_default(),
        result["team_id"].as_str().unwrap_or_default(),
    );
}

/// A result for people: one line per team or key.
fn print_rows(result: &Value) {
    let rows = match result {
        Value::Array(rows) => rows.clone(),
        row => vec![row.clone()],
    };
    for row in rows {
        let fields: Vec<String> = row
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, value)| match value {
                Value::String(text) => format!("{name}={text}"),
                other => format!("{name}={other}"),
            })
            .collect();
        println!("{}", fields.join("  "));
    }
}
