//! Configuration: built-in defaults, then an optional TOML file, then the environment (which
//! includes a `.env` file in the working directory), then command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::access::AuthMode;
use crate::ledger::{DEFAULT_DATABASE_URL, Price};
use crate::providers::{Endpoint, registered};
use crate::resilience::{BreakerPolicy, RetryPolicy};
use crate::types::{ProviderName, Secret};

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    pub api_key: Option<Secret>,
    pub base_url: String,
    /// The environment variable that holds the key, named in errors when it is missing.
    pub key_var: &'static str,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
    /// Requests per minute this service sends the provider at most (queueing beyond it).
    pub requests_per_minute: Option<u32>,
    /// Requests in flight to the provider at most (queueing beyond it).
    pub max_concurrent: Option<u32>,
}

impl ProviderConfig {
    pub fn is_configured(&self) -> bool {
        self.api_key.is_some()
    }

    /// What the provider's driver needs of this: where it is, and its key.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            api_key: self.api_key.clone(),
            base_url: self.base_url.clone(),
            key_var: self.key_var,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub addr: String,
    pub providers: BTreeMap<ProviderName, ProviderConfig>,
    /// Alias name → ordered models; replaces a built-in tier of the same name.
    pub aliases: BTreeMap<String, Vec<String>>,
    /// When set, only these models (or aliases) may be called.
    pub allowed_models: Option<Vec<String>>,
    pub default_model: Option<String>,
    /// Deadline of a call that sets no `timeout_ms`.
    pub default_timeout: Duration,
    pub connect_timeout: Duration,
    /// Limit on waiting for an answer to begin (a whole non-streamed answer arrives at once).
    pub first_byte_timeout: Duration,
    /// Limit on the silence between two events of a stream.
    pub idle_timeout: Duration,
    /// Calls served at once; beyond it calls are refused with `overloaded`.
    pub max_in_flight: usize,
    /// Calls one team may have in flight at once.
    pub max_in_flight_per_team: usize,
    /// How long in-flight calls may take to finish once shutdown starts.
    pub drain_timeout: Duration,
    /// How long a request's body may take to arrive, whole.
    pub body_timeout: Duration,
    pub max_request_body_bytes: u32,
    pub max_connections: u32,
    /// Requests in one JSON-RPC batch at most: a batch bounds the calls (and upstream
    /// requests) one message can start, and the size of its answer.
    pub max_batch: usize,
    /// Streams (subscriptions) open at once on one WebSocket.
    pub max_streams_per_socket: u32,
    /// The largest answer of one request or batch: a bound on what one request can make the
    /// service hold in memory.
    pub max_response_body_bytes: u32,
    /// Where the call ledger lives: `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// How long ledger rows are kept.
    pub ledger_retention: Duration,
    /// Records queued for the ledger at most; beyond it they are dropped, never waited for.
    pub ledger_capacity: usize,
    /// Prices overriding the built-in list, keyed `provider/model`.
    pub prices: BTreeMap<String, Price>,
    /// Whether callers must present a key (`LLMRPC_AUTH`).
    pub auth: AuthMode,
    /// Where replicas share rate limits (`LLMRPC_REDIS_URL`); each keeps its own without it.
    pub redis_url: Option<String>,
    /// The output cap of a call paid from credits that sets no `max_tokens`.
    pub budget_max_tokens: u32,
    /// The service's URL as callers reach it (behind a load balancer), for the A2A agent card.
    pub public_url: Option<String>,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// The file this was read from, re-read on SIGHUP.
    pub file: Option<PathBuf>,
}

/// The TOML file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    addr: Option<String>,
    allowed_models: Option<Vec<String>>,
    default_model: Option<String>,
    timeout_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    stream_idle_timeout_ms: Option<u64>,
    max_in_flight: Option<usize>,
    max_in_flight_per_team: Option<usize>,
    drain_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_request_body_bytes: Option<u32>,
    database_url: Option<String>,
    ledger_retention_days: Option<u64>,
    ledger_capacity: Option<usize>,
    #[serde(default)]
    prices: BTreeMap<String, Price>,
    auth: Option<String>,
    redis_url: Option<String>,
    budget_max_tokens: Option<u32>,
    public_url: Option<String>,
    max_connections: Option<u32>,
    max_batch: Option<usize>,
    max_streams_per_socket: Option<u32>,
    max_response_body_bytes: Option<u32>,
    #[serde(default)]
    aliases: BTreeMap<String, AliasTargets>,
    #[serde(default)]
    providers: BTreeMap<ProviderName, FileProvider>,
    #[serde(default)]
    log: FileLog,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AliasTargets {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    api_key: Option<String>,
    base_url: Option<String>,
    max_retries: Option<u32>,
    retry_base_ms: Option<u64>,
    retry_cap_ms: Option<u64>,
    breaker_threshold: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    requests_per_minute: Option<u32>,
    max_concurrent: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    level: Option<String>,
    format: Option<LogFormat>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// Loads the configuration. `env` looks a variable up (the process environment in `main`);
    /// an empty value counts as unset, so `.env.test` can list every key without setting any.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let env = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };

        let read = Reader { env: &env };
        let mut providers = BTreeMap::new();
        for name in ProviderName::ALL {
            let defaults = registered(name);
            let file = file_config.providers.get(&name);
            let from_file = |f: fn(&FileProvider) -> Option<u64>| file.and_then(f);
            let api_key = defaults
                .key_vars
                .iter()
                .find_map(|var| env(var))
                .or_else(|| file.and_then(|p| p.api_key.clone()))
                .map(Secret::new);
            let base_url = env(defaults.base_url_var)
                .or_else(|| file.and_then(|p| p.base_url.clone()))
                .unwrap_or_else(|| defaults.base_url.to_owned());
            let retry = RetryPolicy {
                max_retries: read.number(
                    "LLMRPC_MAX_RETRIES",
                    file.and_then(|p| p.max_retries),
                    3,
                )?,
                base: read.millis("LLMRPC_RETRY_BASE_MS", from_file(|p| p.retry_base_ms), 250)?,
                cap: read.millis("LLMRPC_RETRY_CAP_MS", from_file(|p| p.retry_cap_ms), 20_000)?,
            };
            let breaker = BreakerPolicy {
                threshold: read.number(
                    "LLMRPC_BREAKER_THRESHOLD",
                    file.and_then(|p| p.breaker_threshold),
                    5,
                )?,
                cooldown: read.millis(
                    "LLMRPC_BREAKER_COOLDOWN_MS",
                    from_file(|p| p.breaker_cooldown_ms),
                    30_000,
                )?,
            };
            providers.insert(
                name,
                ProviderConfig {
                    api_key,
                    base_url,
                    key_var: defaults.key_vars[0],
                    retry,
                    breaker,
                    requests_per_minute: file.and_then(|p| p.requests_per_minute),
                    max_concurrent: file.and_then(|p| p.max_concurrent),
                },
            );
        }

        let allowed_models = match env("LLMRPC_ALLOWED_MODELS") {
            Some(list) => Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            None => file_config.allowed_models,
        };
        let log_format = match env("LLMRPC_LOG_FORMAT") {
            Some(v) => match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "LLMRPC_LOG_FORMAT",
                        reason: format!("{v:?} is neither json nor pretty"),
                    });
                }
            },
            None => file_config.log.format.unwrap_or(LogFormat::Pretty),
        };
        let auth = match env("LLMRPC_AUTH").or(file_config.auth).as_deref() {
            None | Some("auto") => AuthMode::Auto,
            Some("required") => AuthMode::Required,
            Some("off") => AuthMode::Off,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "LLMRPC_AUTH",
                    reason: format!("{other:?} is none of auto, required, off"),
                });
            }
        };
        let aliases = file_config
            .aliases
            .into_iter()
            .map(|(name, targets)| {
                let targets = match targets {
                    AliasTargets::One(t) => vec![t],
                    AliasTargets::Many(ts) => ts,
                };
                (name, targets)
            })
            .collect();
        let max_in_flight = read.number("LLMRPC_MAX_IN_FLIGHT", file_config.max_in_flight, 1024)?;

        Ok(Config {
            addr: env("LLMRPC_ADDR")
                .or(file_config.addr)
                .unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            providers,
            aliases,
            allowed_models,
            default_model: env("LLMRPC_DEFAULT_MODEL").or(file_config.default_model),
            default_timeout: read.millis("LLMRPC_TIMEOUT_MS", file_config.timeout_ms, 60_000)?,
            connect_timeout: read.millis(
                "LLMRPC_CONNECT_TIMEOUT_MS",
                file_config.connect_timeout_ms,
                10_000,
            )?,
            first_byte_timeout: read.millis(
                "LLMRPC_FIRST_BYTE_TIMEOUT_MS",
                file_config.first_byte_timeout_ms,
                60_000,
            )?,
            idle_timeout: read.millis(
                "LLMRPC_IDLE_TIMEOUT_MS",
                file_config.stream_idle_timeout_ms,
                30_000,
            )?,
            max_in_flight,
            // Half the service's by default: one team cannot take every slot.
            max_in_flight_per_team: read.number(
                "LLMRPC_MAX_IN_FLIGHT_PER_TEAM",
                file_config.max_in_flight_per_team,
                max_in_flight.div_ceil(2).max(1),
            )?,
            drain_timeout: read.millis(
                "LLMRPC_DRAIN_TIMEOUT_MS",
                file_config.drain_timeout_ms,
                65_000,
            )?,
            body_timeout: read.millis(
                "LLMRPC_BODY_TIMEOUT_MS",
                file_config.body_timeout_ms,
                30_000,
            )?,
            database_url: env("LLMRPC_DATABASE_URL")
                .or(file_config.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            ledger_retention: Duration::from_secs(
                86_400
                    * read
                        .number(
                            "LLMRPC_LEDGER_RETENTION_DAYS",
                            file_config.ledger_retention_days,
                            30,
                        )?
                        .max(1),
            ),
            ledger_capacity: read
                .number(
                    "LLMRPC_LEDGER_CAPACITY",
                    file_config.ledger_capacity,
                    65_536,
                )?
                .max(1),
            prices: file_config.prices,
            auth,
            redis_url: env("LLMRPC_REDIS_URL").or(file_config.redis_url),
            public_url: env("LLMRPC_PUBLIC_URL").or(file_config.public_url),
            budget_max_tokens: read
                .number(
                    "LLMRPC_BUDGET_MAX_TOKENS",
                    file_config.budget_max_tokens,
                    8192,
                )?
                .max(1),
            max_request_body_bytes: file_config
                .max_request_body_bytes
                .unwrap_or(10 * 1024 * 1024),
            max_connections: file_config.max_connections.unwrap_or(10_000),
            max_batch: read
                .number("LLMRPC_MAX_BATCH", file_config.max_batch, 64)?
                .max(1),
            max_response_body_bytes: read
                .number(
                    "LLMRPC_MAX_RESPONSE_BYTES",
                    file_config.max_response_body_bytes,
                    16 * 1024 * 1024,
                )?
                .max(1024),
            max_streams_per_socket: read
                .number(
                    "LLMRPC_MAX_STREAMS_PER_SOCKET",
                    file_config.max_streams_per_socket,
                    // Well below the service's calls in flight: one socket cannot take them all.
                    64,
                )?
                .max(1),
            log_filter: env("LLMRPC_LOG")
                .or(file_config.log.level)
                .unwrap_or_else(|| "info".to_owned()),
            log_format,
            file: file.map(Path::to_owned),
        })
    }

    pub fn provider(&self, name: ProviderName) -> &ProviderConfig {
        &self.providers[&name]
    }
}

/// Reads one setting: the environment wins over the file, which wins over the default.
struct Reader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    fn number<T: std::str::FromStr>(
        &self,
        var: &'static str,
        file: Option<T>,
        default: T,
    ) -> Result<T, ConfigError> {
        match (self.env)(var) {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name: var,
                reason: format!("{v:?} is not a number"),
            }),
            None => Ok(file.unwrap_or(default)),
        }
    }

    /// A duration in milliseconds, at least 1.
    fn millis(
        &self,
        var: &'static str,
        file: Option<u64>,
        default: u64,
    ) -> Result<Duration, ConfigError> {
        match self.number(var, file, default)? {
            0 => Err(ConfigError::Invalid {
                name: var,
                reason: "must be at least 1 ms".into(),
            }),
            ms => Ok(Duration::from_millis(ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(file: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llmrpc.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        Config::load(file.map(|_| path.as_path()), &|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.addr, "127.0.0.1:8080");
        assert_eq!(
            c.provider(ProviderName::Openai).base_url,
            "https://api.openai.com/v1"
        );
        assert_eq!(
            c.provider(ProviderName::Anthropic).base_url,
            "https://api.anthropic.com"
        );
        assert_eq!(
            c.provider(ProviderName::Gemini).base_url,
            "https://generativelanguage.googleapis.com"
        );
        assert!(
            ProviderName::ALL
                .iter()
                .all(|p| !c.provider(*p).is_configured())
        );
        assert_eq!(c.default_timeout, Duration::from_secs(60));
        assert_eq!(c.log_filter, "info");
        assert_eq!(c.allowed_models, None);
    }

    #[test]
    fn environment_overrides_the_file_and_empty_values_count_as_unset() {
        let file = r#"
            addr = "0.0.0.0:9000"
            allowed_models = ["gpt-4o"]
            [providers.openai]
            api_key = "from-file"
            base_url = "http://file"
            [aliases]
            mini = "openai/gpt-4.1-mini"
        "#;
        let c = load(
            Some(file),
            &[
                ("OPENAI_BASE_URL", "http://env"),
                ("LLMRPC_ALLOWED_MODELS", "a, b,,"),
                ("ANTHROPIC_API_KEY", ""),
            ],
        )
        .unwrap();
        assert_eq!(c.addr, "0.0.0.0:9000");
        assert_eq!(c.provider(ProviderName::Openai).base_url, "http://env");
        assert_eq!(
            c.provider(ProviderName::Openai)
                .api_key
                .as_ref()
                .unwrap()
                .expose(),
            "from-file"
        );
        assert!(!c.provider(ProviderName::Anthropic).is_configured());
        assert_eq!(c.allowed_models, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(c.aliases["mini"], vec!["openai/gpt-4.1-mini".to_owned()]);
    }

    #[test]
    fn gemini_falls_back_to_google_api_key() {
        let c = load(None, &[("GOOGLE_API_KEY", "g")]).unwrap();
        assert!(c.provider(ProviderName::Gemini).is_configured());
    }

    #[test]
    fn mistakes_are_reported_by_name() {
        assert!(
            load(Some("adr = 1"), &[])
                .unwrap_err()
                .to_string()
                .contains("adr")
        );
        assert!(
            load(None, &[("LLMRPC_LOG_FORMAT", "xml")])
                .unwrap_err()
                .to_string()
                .contains("LLMRPC_LOG_FORMAT")
        );
        assert!(load(None, &[("LLMRPC_TIMEOUT_MS", "0")]).is_err());
    }

    #[test]
    fn keys_never_print() {
        let c = load(None, &[("OPENAI_API_KEY", "sk-secret-value")]).unwrap();
        assert!(!format!("{c:?}").contains("sk-secret-value"));
    }
}
