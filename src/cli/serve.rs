//! `llmrpc serve`: configuration, logging, providers and the server, wired together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::output::Failure;
use crate::access::{Access, AuthMode};
use crate::config::Config;
use crate::gateway::{Gateway, Settings, Upstream};
use crate::ledger::accounts::Accounts;
use crate::ledger::{self, Ledger, Prices};
use crate::providers;
use crate::resilience::RateLimits;
use crate::routing::ModelRegistry;
use crate::server::{self, Limits};
use crate::telemetry;
use crate::types::ProviderName;

/// Runs the service until SIGTERM or Ctrl-C. A configuration it cannot use (file, variables,
/// log settings, base URLs, aliases) exits 2, as it does for `test` and `doctor`; any other
/// failure to start exits 1.
pub async fn run(addr: Option<String>, config_path: Option<PathBuf>) -> Result<(), Failure> {
    let mut config = load_config(config_path.as_deref())?;
    if let Some(addr) = addr {
        config.addr = addr;
    }
    let telemetry =
        telemetry::init(&config.log_filter, config.log_format).map_err(Failure::config)?;

    let rates = Arc::new(match &config.redis_url {
        Some(url) => RateLimits::shared(url).map_err(|e| format!("LLMRPC_REDIS_URL: {e}"))?,
        None => RateLimits::local(),
    });
    let ledger = open_ledger(&config).await?;
    let access = open_access(&config, &rates).await?;

    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    guard_anonymous(&config, &access, &local)?;
    let gateway =
        Arc::new(gateway(&config, ledger.clone(), access, rates).map_err(Failure::config)?);
    tracing::info!(addr = %local, "listening on {local}");
    for (name, provider) in &config.providers {
        if !provider.is_configured() {
            tracing::warn!(
                provider = name.as_str(),
                "{name} is not configured: set {} to use it",
                provider.key_var
            );
        }
    }
    spawn_reload_on_sighup(Arc::clone(&gateway), config.clone());

    let limits = Limits {
        max_request_body_bytes: config.max_request_body_bytes,
        max_connections: config.max_connections,
        max_batch: config.max_batch,
        max_streams_per_socket: config.max_streams_per_socket,
        max_response_body_bytes: config.max_response_body_bytes,
        drain_timeout: config.drain_timeout,
        body_timeout: config.body_timeout,
    };
    let public_url = config.public_url.clone();
    if public_url.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            "LLMRPC_PUBLIC_URL is not set: the A2A agent card takes its URL from each request's \
             Host header; set it to the URL callers reach this service at"
        );
    }
    server::serve(listener, gateway, limits, public_url, shutdown_signal()).await?;
    // What the drained calls recorded is written before the process ends.
    if let Some(ledger) = ledger {
        match tokio::time::timeout(Duration::from_secs(10), ledger.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("ledger: last records not written: {e}"),
            Err(_) => tracing::error!("ledger: gave up writing the last records after 10 s"),
        }
    }
    telemetry.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// The configuration of the file and the environment, as every subcommand that reads it reads it;
/// its errors are usage errors.
pub(super) fn load_config(path: Option<&std::path::Path>) -> Result<Config, Failure> {
    let env = |name: &str| std::env::var(name).ok();
    Config::load(path, &env).map_err(|e| Failure::config(e.to_string()))
}

/// The call pipeline of `config`, without a port: what `serve` runs, and what `llmrpc test` and
/// `llmrpc doctor` call the providers through (same provider code, retries and deadlines).
pub(super) fn gateway(
    config: &Config,
    ledger: Option<Ledger>,
    access: Arc<Access>,
    rates: Arc<RateLimits>,
) -> Result<Gateway, String> {
    let client =
        providers::http_client(config.connect_timeout).map_err(|e| format!("HTTP client: {e}"))?;
    let implemented = ProviderName::ALL
        .into_iter()
        .map(|name| providers::build(name, client.clone(), config.provider(name).endpoint()))
        .collect::<Result<Vec<_>, _>>()?;
    let catalogs = implemented
        .iter()
        .map(|p| (p.name(), p.catalog()))
        .collect();
    let registry =
        ModelRegistry::new(catalogs, &config.aliases).map_err(|e| format!("config: {e}"))?;
    let upstreams = implemented
        .into_iter()
        .map(|p| {
            let settings = config.provider(p.name());
            Upstream::new(p, settings, Arc::clone(&rates))
        })
        .collect();
    let settings = Settings {
        default_model: config.default_model.clone(),
        default_timeout: config.default_timeout,
        first_byte_timeout: config.first_byte_timeout,
        idle_timeout: config.idle_timeout,
        max_in_flight: config.max_in_flight,
        max_in_flight_per_team: config.max_in_flight_per_team,
        budget_max_tokens: config.budget_max_tokens,
    };
    Ok(Gateway::new(
        registry,
        upstreams,
        settings,
        config.allowed_models.clone(),
        ledger,
        Prices::new(config.prices.clone()),
        access,
    ))
}

/// The call ledger, unless `LLMRPC_DATABASE_URL` is `off`.
async fn open_ledger(config: &Config) -> Result<Option<Ledger>, String> {
    if config.database_url == "off" {
        tracing::warn!("the call ledger is off: ops.trace and ops.usage will find nothing");
        return Ok(None);
    }
    let store = ledger::open(&config.database_url)
        .await
        .map_err(|e| format!("ledger: {e}"))?;
    let backend = config.database_url.split(':').next().unwrap_or_default();
    tracing::info!(backend, "call ledger open");
    Ok(Some(Ledger::start(
        store,
        config.ledger_capacity,
        Some(config.ledger_retention),
    )))
}

/// Callers and teams, kept in the ledger's database; without one, every caller is anonymous.
async fn open_access(config: &Config, rates: &Arc<RateLimits>) -> Result<Arc<Access>, String> {
    let url = &config.database_url;
    // An in-memory SQLite database is one per connection pool: keys made elsewhere could never
    // reach it, so it holds none.
    let in_memory =
        url.starts_with("sqlite:") && (url.contains(":memory:") || url.contains("mode=memory"));
    if url == "off" || in_memory {
        if config.auth == AuthMode::Required {
            return Err(
                "LLMRPC_AUTH=required needs the ledger's database on disk or on \
                 PostgreSQL, where caller keys live"
                    .into(),
            );
        }
        return Ok(Arc::new(Access::anonymous(Arc::clone(rates))));
    }
    let accounts = Accounts::open(&config.database_url)
        .await
        .map_err(|e| format!("ledger: {e}"))?;
    Access::start(Arc::new(accounts), config.auth, Arc::clone(rates)).await
}

/// Anonymous service is for loopback only: on any other address, with no key to require, the
/// service refuses to start (unless `LLMRPC_AUTH=off` says so, which is logged).
fn guard_anonymous(config: &Config, access: &Access, addr: &SocketAddr) -> Result<(), String> {
    // Anonymous calls only where nobody else can reach them.
    if access.required() || addr.ip().is_loopback() {
        return Ok(());
    }
    if config.auth == AuthMode::Off {
        tracing::warn!(
            addr = %addr,
            "LLMRPC_AUTH=off: serving anonymous callers on {addr}, which is not a loopback \
             address; anyone who reaches it spends the provider keys"
        );
        return Ok(());
    }
    Err(format!(
        "refusing to serve anonymous callers on {addr}, which is not a loopback address: create \
         a caller key first (llmrpc admin keys create --team ops --role admin, with the same \
         LLMRPC_DATABASE_URL), or set LLMRPC_AUTH=off to serve anyway"
    ))
}

/// SIGHUP re-reads the config file; the allow-list is what takes effect without a restart.
fn spawn_reload_on_sighup(gateway: Arc<Gateway>, config: Config) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let env = |name: &str| std::env::var(name).ok();
            match Config::load(config.file.as_deref(), &env) {
                Ok(reloaded) => {
                    tracing::info!(allowed_models = ?reloaded.allowed_models, "configuration reloaded");
                    gateway.set_allowed_models(reloaded.allowed_models);
                }
                Err(e) => tracing::error!("configuration reload failed, keeping the old one: {e}"),
            }
        }
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
