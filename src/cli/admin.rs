//! `llmrpc admin …`: teams, caller keys and credits, through a running service's `admin.*`
//! methods (`--url`) or, without one, directly on the database of `LLMRPC_DATABASE_URL`, which
//! is how the first admin key is made. Either way the same code checks and applies each change.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use crate::ledger::accounts::{Accounts, Role};
use crate::ledger::{self, DEFAULT_DATABASE_URL};
use crate::providers;
use crate::rpc::dispatch;

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
    Service {
        url: String,
        api_key: Option<String>,
    },
    Database(Accounts),
}

impl Target {
    async fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        match self {
            Target::Database(accounts) => dispatch(accounts, method, params)
                .await
                .map_err(|e| e.message),
            Target::Service { url, api_key } => {
                let client = providers::http_client(std::time::Duration::from_secs(10))
                    .map_err(|e| e.to_string())?;
                let request =
                    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
                let mut post = client.post(url).json(&request);
                if let Some(key) = api_key {
                    post = post.bearer_auth(key);
                }
                let response = post
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach {url}: {e}"))?;
                let body: Value = response
                    .json()
                    .await
                    .map_err(|e| format!("invalid answer from {url}: {e}"))?;
                match body.get("error") {
                    Some(error) => Err(error["message"]
                        .as_str()
                        .map_or_else(|| error.to_string(), str::to_owned)),
                    None => Ok(body["result"].clone()),
                }
            }
        }
    }
}

pub async fn run(args: AdminArgs) -> Result<(), String> {
    let target = match args.url {
        Some(url) => Target::Service {
            url,
            api_key: args.api_key,
        },
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
    let (method, params) = request(args.command);
    if let ("admin.keys.create", Target::Database(_)) = (method, &target) {
        let team = params["team_id"].clone();
        if target
            .call("admin.teams.get", json!({"id": team}))
            .await
            .is_err()
        {
            let team = target
                .call("admin.teams.create", json!({"name": team}))
                .await?;
            eprintln!("created team {} ({})", team["name"], team["id"]);
        }
    }
    let result = target.call(method, params).await?;
    match args.output {
        Output::Json => println!("{result:#}"),
        Output::Text => print_text(method, &result),
    }
    Ok(())
}

/// The method and params a command asks for.
fn request(command: AdminCommand) -> (&'static str, Value) {
    let set = |map: &mut Map<String, Value>, name: &str, value: Value| {
        map.insert(name.to_owned(), value);
    };
    match command {
        AdminCommand::Teams(Teams::Create {
            name,
            credits,
            allowed_models,
            requests_per_minute,
            tokens_per_minute,
        }) => {
            let mut p = Map::new();
            set(&mut p, "name", json!(name));
            set(&mut p, "allowed_models", json!(allowed_models));
            for (field, value) in [
                ("credits_usd", credits.map(|c| json!(c))),
                ("requests_per_minute", requests_per_minute.map(|n| json!(n))),
                ("tokens_per_minute", tokens_per_minute.map(|n| json!(n))),
            ] {
                if let Some(value) = value {
                    set(&mut p, field, value);
                }
            }
            ("admin.teams.create", Value::Object(p))
        }
        AdminCommand::Teams(Teams::List) => ("admin.teams.list", json!({})),
        AdminCommand::Teams(Teams::Get { id }) => ("admin.teams.get", json!({"id": id})),
        AdminCommand::Teams(Teams::Update {
            id,
            name,
            credits,
            allowed_models,
            requests_per_minute,
            tokens_per_minute,
        }) => {
            let mut p = Map::new();
            set(&mut p, "id", json!(id));
            if let Some(name) = name {
                set(&mut p, "name", json!(name));
            }
            if let Some(models) = allowed_models {
                set(&mut p, "allowed_models", json!(models));
            }
            if let Some(Setting(credits)) = credits {
                set(&mut p, "credits_usd", json!(credits));
            }
            if let Some(Setting(rpm)) = requests_per_minute {
                set(&mut p, "requests_per_minute", json!(rpm));
            }
            if let Some(Setting(tpm)) = tokens_per_minute {
                set(&mut p, "tokens_per_minute", json!(tpm));
            }
            ("admin.teams.update", Value::Object(p))
        }
        AdminCommand::Teams(Teams::Delete { id }) => ("admin.teams.delete", json!({"id": id})),
        AdminCommand::Keys(Keys::Create { team, role, name }) => {
            let role = match role {
                KeyRole::Caller => Role::Caller,
                KeyRole::Admin => Role::Admin,
            };
            let mut p = json!({"team_id": team, "role": role});
            if let Some(name) = name {
                p["name"] = json!(name);
            }
            ("admin.keys.create", p)
        }
        AdminCommand::Keys(Keys::List { team }) => ("admin.keys.list", json!({"team_id": team})),
        AdminCommand::Keys(Keys::Revoke { id }) => ("admin.keys.revoke", json!({"id": id})),
        AdminCommand::Credits(Credits::Add { team, amount }) => (
            "admin.credits.add",
            json!({"team_id": team, "amount_usd": amount}),
        ),
    }
}

/// A result for people: one line per team or key, the new key on a line of its own.
fn print_text(method: &str, result: &Value) {
    if method == "admin.keys.create" {
        println!("{}", result["key"].as_str().unwrap_or_default());
        eprintln!(
            "key {} ({}, role {}, team {}): shown once, store it now",
            result["id"].as_str().unwrap_or_default(),
            result["prefix"].as_str().unwrap_or_default(),
            result["role"].as_str().unwrap_or_default(),
            result["team_id"].as_str().unwrap_or_default(),
        );
        return;
    }
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
