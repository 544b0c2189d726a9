//! `llmrpc doctor`: reads the configuration as `serve` would and checks what it names: each
//! provider (key, base URL, one tiny call), the ledger's database and Redis. Exit 0 when every
//! configured provider answered and the rest is reachable.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::output::{Failure, Format, OutputArgs, spinner, table};
use super::probe::{Ask, pipeline, probe};
use super::serve::load_config;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::ledger::{self, Prices};
use crate::types::ProviderName;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// TOML configuration file, read as `serve` reads it.
    #[arg(long, env = "LLMRPC_CONFIG")]
    config: Option<PathBuf>,
    /// Deadline of each provider's call.
    #[arg(long, default_value_t = 15_000)]
    timeout_ms: u64,
    #[command(flatten)]
    output: OutputArgs,
}

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    check: String,
    /// `ok`, `failed`, or `skipped` (nothing to check).
    status: &'static str,
    detail: String,
    latency_ms: Option<u64>,
    #[serde(skip)]
    failure: Option<Failure>,
}

impl Check {
    fn new(check: impl Into<String>, status: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status,
            detail: detail.into(),
            latency_ms: None,
            failure: None,
        }
    }
}

/// What a prompt of a few tokens costs to check a key with.
const PING: &str = "Reply with the word OK.";

pub async fn run(args: DoctorArgs) -> Result<(), Failure> {
    let format = args.output.format();
    // The configuration is read, then the providers are built from it (which checks their base
    // URLs and the aliases): a refusal of either is the config row's failure, reported as such.
    let loaded = load_config(args.config.as_deref())
        .and_then(|config| pipeline(&config).map(|gateway| (config, gateway)));
    let (config, gateway) = match loaded {
        Ok(loaded) => loaded,
        Err(failure) => {
            let check = Check::new("config", "failed", failure.message.clone());
            report(&[check], format);
            return Err(failure);
        }
    };
    let waiting = spinner("checking");
    let source = match &config.file {
        Some(path) => format!("{} and the environment", path.display()),
        None => "defaults and the environment (no config file)".to_owned(),
    };
    let mut checks = vec![Check::new("config", "ok", source)];
    checks.extend(providers(&config, &gateway, &args).await);
    checks.push(database(&config).await);
    checks.push(redis(&config).await);
    waiting.finish_and_clear();
    report(&checks, format);
    let configured = config.providers.values().any(|p| p.is_configured());
    if !configured {
        let vars: Vec<&str> = config.providers.values().map(|p| p.key_var).collect();
        return Err(Failure::new(
            3,
            format!("no provider has a key: set {}", vars.join(", ")),
        ));
    }
    match checks
        .iter()
        .filter_map(|c| c.failure.as_ref())
        .max_by_key(|f| f.code)
    {
        Some(worst) => Err(Failure::new(worst.code, "some checks failed")),
        None => Ok(()),
    }
}

async fn providers(config: &Config, gateway: &Gateway, args: &DoctorArgs) -> Vec<Check> {
    let prices = Prices::new(config.prices.clone());
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let checks = ProviderName::ALL.into_iter().map(|name| {
        let prices = &prices;
        async move {
            let settings = config.provider(name);
            let check = format!("provider {name}");
            if !settings.is_configured() {
                let detail = format!("no key: set {} ({})", settings.key_var, settings.base_url);
                return Check::new(check, "skipped", detail);
            }
            let ask = Ask {
                prompt: PING,
                model: None,
                stream: false,
                timeout,
                live: false,
            };
            let p = probe(gateway, prices, name, ask).await;
            let model = p.model.clone().unwrap_or_default();
            let mut check = match &p.error {
                None => Check::new(
                    check,
                    "ok",
                    format!("{model} answered at {}", settings.base_url),
                ),
                Some(error) => Check::new(
                    check,
                    "failed",
                    format!("{model} at {}: {} ({error})", settings.base_url, p.status),
                ),
            };
            check.latency_ms = p.latency_ms;
            check.failure = p.failure;
            check
        }
    });
    futures::future::join_all(checks).await
}

/// The ledger's database: reachable, and its schema applied (an SQLite file not made yet is
/// fine: `serve` makes it).
async fn database(config: &Config) -> Check {
    let url = &config.database_url;
    let scheme = url.split(':').next().unwrap_or_default();
    if url == "off" {
        return Check::new(
            "ledger",
            "skipped",
            "LLMRPC_DATABASE_URL is off: no ledger, no caller keys",
        );
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let file = path.split('?').next().unwrap_or_default();
        if !file.contains(":memory:") && !std::path::Path::new(file).exists() {
            return Check::new(
                "ledger",
                "ok",
                format!("sqlite: {file} does not exist yet; serve creates it"),
            );
        }
    }
    let started = Instant::now();
    let opened = tokio::time::timeout(Duration::from_secs(10), ledger::open(url)).await;
    let mut check = match opened {
        Ok(Ok(_)) => Check::new(
            "ledger",
            "ok",
            format!("{scheme} database reachable, schema up to date"),
        ),
        Ok(Err(e)) => Check::new("ledger", "failed", format!("{scheme}: {e}")),
        Err(_) => Check::new("ledger", "failed", format!("{scheme}: no answer in 10 s")),
    };
    check.latency_ms = Some(started.elapsed().as_millis() as u64);
    if check.status == "failed" {
        check.failure = Some(Failure::unreachable(check.detail.clone()));
    }
    check
}

/// Redis, when the rate limits are to be shared through it.
async fn redis(config: &Config) -> Check {
    let Some(url) = &config.redis_url else {
        return Check::new(
            "redis",
            "skipped",
            "LLMRPC_REDIS_URL is not set: rate limits are per replica",
        );
    };
    let started = Instant::now();
    let ping = async {
        let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    let mut check = match tokio::time::timeout(Duration::from_secs(3), ping).await {
        Ok(Ok(_)) => Check::new(
            "redis",
            "ok",
            "reachable: rate limits are shared by the replicas",
        ),
        Ok(Err(e)) => Check::new(
            "redis",
            "failed",
            format!("{e}: rate limits fall back to per replica"),
        ),
        Err(_) => Check::new(
            "redis",
            "failed",
            "no answer in 3 s: rate limits fall back to per replica",
        ),
    };
    check.latency_ms = Some(started.elapsed().as_millis() as u64);
    if check.status == "failed" {
        check.failure = Some(Failure::unreachable(check.detail.clone()));
    }
    check
}

fn report(checks: &[Check], format: Format) {
    match format {
        Format::Json => {
            let ok = checks.iter().all(|c| c.status != "failed");
            println!("{:#}", json!({"ok": ok, "checks": checks}));
        }
        Format::Jsonl => checks.iter().for_each(|c| println!("{}", json!(c))),
        Format::Text => {
            let rows: Vec<Vec<String>> = checks
                .iter()
                .map(|c| {
                    vec![
                        c.check.clone(),
                        c.status.to_owned(),
                        c.latency_ms.map_or("-".to_owned(), |l| l.to_string()),
                        c.detail.clone(),
                    ]
                })
                .collect();
            println!("{}", table(&["check", "status", "ms", "detail"], &rows));
        }
    }
}
