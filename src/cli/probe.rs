//! `llmrpc test <provider|all> --prompt …`: calls the providers directly with the keys of the
//! environment, through the same pipeline the service runs (provider code, retries, deadlines,
//! prices), with no service and no ledger. `all` asks every configured provider at once and
//! prints a row each: which keys work, in one screen.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::output::{Failure, Format, OutputArgs, progress, spinner, table};
use super::serve::load_config;
use crate::access::Access;
use crate::config::Config;
use crate::context::CallContext;
use crate::error::Error;
use crate::gateway::{CallRequest, Chunk, Gateway};
use crate::ledger::Prices;
use crate::resilience::RateLimits;
use crate::types::{ChatRequest, Content, Message, ProviderName, Role, Usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Openai,
    Anthropic,
    Gemini,
    /// Every provider with a key, at once.
    All,
}

#[derive(clap::Args)]
pub struct TestArgs {
    target: Target,
    /// What to ask.
    #[arg(long)]
    prompt: String,
    /// The model to ask (`provider/model` or a bare name); the provider's member of the tier
    /// `fast` otherwise.
    #[arg(long, short)]
    model: Option<String>,
    /// Stream the answer, and report the time to its first token.
    #[arg(long)]
    stream: bool,
    /// Deadline of each call, retries included.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// TOML configuration file, read as `serve` reads it.
    #[arg(long, env = "LLMRPC_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// One provider's answer, or why there is none.
#[derive(Debug, Serialize)]
pub struct Probe {
    pub provider: ProviderName,
    pub model: Option<String>,
    /// `ok`, the error's kind, or `no_key`.
    pub status: String,
    pub content: Option<String>,
    pub usage: Option<Usage>,
    /// `None` when the model has no price.
    pub cost_usd: Option<f64>,
    pub latency_ms: Option<u64>,
    pub ttft_ms: Option<u64>,
    pub error: Option<String>,
    #[serde(skip)]
    pub failure: Option<Failure>,
}

/// The pipeline without a port, ledger or callers; what it refuses (a base URL that is not one,
/// an alias naming no provider) is the configuration's fault, a usage error.
pub fn pipeline(config: &Config) -> Result<Gateway, Failure> {
    let rates = Arc::new(RateLimits::local());
    let access = Arc::new(Access::anonymous(Arc::clone(&rates)));
    super::serve::gateway(config, None, access, rates).map_err(Failure::config)
}

/// The model `test` asks when none is named: the provider's member of `fast`, else its first.
fn default_model(gateway: &Gateway, provider: ProviderName) -> Option<String> {
    let catalog = gateway.models();
    let of_provider = || {
        catalog
            .models
            .iter()
            .filter(|m| m.route.provider == provider)
    };
    of_provider()
        .find(|m| m.aliases.iter().any(|a| a == "fast"))
        .or_else(|| of_provider().next())
        .map(|m| m.route.id())
}

/// What to ask each provider.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub prompt: &'a str,
    /// The model; the provider's default otherwise.
    pub model: Option<&'a str>,
    pub stream: bool,
    pub timeout: Duration,
    /// Print the answer as it comes.
    pub live: bool,
}

/// Asks one provider.
pub async fn probe(
    gateway: &Gateway,
    prices: &Prices,
    provider: ProviderName,
    ask: Ask<'_>,
) -> Probe {
    let Ask {
        prompt,
        model,
        stream,
        timeout,
        live,
    } = ask;
    let mut probe = Probe::new(provider);
    let name = match model {
        Some(m) if m.contains('/') => m.to_owned(),
        Some(m) => format!("{provider}/{m}"),
        None => match default_model(gateway, provider) {
            Some(m) => m,
            None => {
                return probe.failed(&Error::new(
                    crate::error::ErrorKind::ModelNotFound,
                    format!("{provider} has no model in the catalog"),
                ));
            }
        },
    };
    probe.model = Some(name.clone());
    let call = CallRequest {
        chat: ChatRequest {
            model: name,
            messages: vec![Message::new(Role::User, Content::Text(prompt.to_owned()))],
            ..ChatRequest::default()
        },
        timeout: Some(timeout),
        metadata: None,
    };
    let ctx = CallContext::new(None, None);
    let price =
        |model: &str, usage: &Usage| prices.get(provider.as_str(), model).map(|p| p.cost(usage));
    if !stream {
        return match gateway.complete("llmrpc.test", call, &ctx).await {
            Ok(done) => {
                probe.model = Some(done.route.id());
                probe.cost_usd = price(&done.route.model, &done.response.usage);
                probe.usage = Some(done.response.usage);
                probe.latency_ms = Some(done.latency.as_millis() as u64);
                if live {
                    println!("{}", done.response.content);
                }
                probe.content = Some(done.response.content);
                probe
            }
            Err(err) => probe.failed(&err),
        };
    }
    let mut chunks = match gateway.stream("llmrpc.test", call, &ctx).await {
        Ok(chunks) => chunks,
        Err(err) => return probe.failed(&err),
    };
    let mut content = String::new();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Chunk::Delta(piece) => {
                if live {
                    print!("{piece}");
                    let _ = std::io::stdout().flush();
                }
                content.push_str(&piece);
            }
            Chunk::ToolCall(_) => {}
            Chunk::Done(summary) => {
                if live {
                    println!();
                }
                probe.model = Some(summary.route.id());
                probe.cost_usd = price(&summary.route.model, &summary.usage);
                probe.usage = Some(summary.usage);
                probe.latency_ms = Some(summary.latency.as_millis() as u64);
                probe.ttft_ms = summary.ttft.map(|t| t.as_millis() as u64);
            }
            Chunk::Failed(err) => {
                probe.content = Some(content);
                return probe.failed(&err);
            }
        }
    }
    probe.content = Some(content);
    probe
}

impl Probe {
    fn failed(mut self, err: &Error) -> Self {
        self.status = err.kind.as_str().to_owned();
        self.error = Some(err.message.clone());
        self.failure = Some(Failure::of(err));
        self
    }

    /// A probe that has found nothing yet: `ok` until something fails.
    fn new(provider: ProviderName) -> Self {
        Probe {
            provider,
            model: None,
            status: "ok".into(),
            content: None,
            usage: None,
            cost_usd: None,
            latency_ms: None,
            ttft_ms: None,
            error: None,
            failure: None,
        }
    }

    fn no_key(provider: ProviderName, var: &str) -> Self {
        Probe {
            status: "no_key".into(),
            error: Some(format!("set {var} to use {provider}")),
            ..Probe::new(provider)
        }
    }

    /// The row of a table: provider, model, status, latency, first token, tokens, cost, and
    /// the answer's start or the error.
    pub fn row(&self) -> Vec<String> {
        let dash = || "-".to_owned();
        let said = match (&self.error, &self.content) {
            (Some(error), _) => error.clone(),
            (None, Some(content)) => one_line(content, 60),
            (None, None) => String::new(),
        };
        vec![
            self.provider.to_string(),
            self.model.clone().unwrap_or_else(dash),
            self.status.clone(),
            self.latency_ms.map_or_else(dash, |l| l.to_string()),
            self.ttft_ms.map_or_else(dash, |t| t.to_string()),
            self.usage.map_or_else(dash, |u| u.total_tokens.to_string()),
            self.cost_usd.map_or_else(dash, |c| format!("{c:.6}")),
            said,
        ]
    }
}

pub const ROW_HEADER: [&str; 8] = [
    "provider",
    "model",
    "status",
    "ms",
    "ttft ms",
    "tokens",
    "cost $",
    "answer or error",
];

/// The first `max` characters of `text`, on one line.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

pub async fn run(args: TestArgs) -> Result<(), Failure> {
    let config = load_config(args.config.as_deref())?;
    let gateway = pipeline(&config)?;
    let prices = Prices::new(config.prices.clone());
    let format = args.output.format();
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let providers: Vec<ProviderName> = match args.target {
        Target::Openai => vec![ProviderName::Openai],
        Target::Anthropic => vec![ProviderName::Anthropic],
        Target::Gemini => vec![ProviderName::Gemini],
        Target::All => ProviderName::ALL.to_vec(),
    };
    let configured: Vec<ProviderName> = providers
        .iter()
        .copied()
        .filter(|p| config.provider(*p).is_configured())
        .collect();
    if configured.is_empty() {
        let vars: Vec<&str> = providers
            .iter()
            .map(|p| config.provider(*p).key_var)
            .collect();
        return Err(Failure::new(
            3,
            format!(
                "no key: set {} (in the environment or .env)",
                vars.join(" or ")
            ),
        ));
    }
    let single = args.target != Target::All;
    let live = single && format == Format::Text;
    let bar = match (single, format) {
        (true, Format::Text) => spinner("asking"),
        (true, _) => spinner(""),
        (false, _) => progress(configured.len() as u64, "asking"),
    };
    if live {
        // The answer prints as it comes: nothing may draw over it.
        bar.finish_and_clear();
    }
    let ask = Ask {
        prompt: &args.prompt,
        model: args.model.as_deref(),
        stream: args.stream,
        timeout,
        live,
    };
    let asks = configured.iter().map(|p| {
        let (gateway, prices, bar) = (&gateway, &prices, &bar);
        async move {
            let probe = probe(gateway, prices, *p, ask).await;
            bar.inc(1);
            probe
        }
    });
    let mut probes = futures::future::join_all(asks).await;
    bar.finish_and_clear();
    for p in providers.iter().filter(|p| !configured.contains(p)) {
        probes.push(Probe::no_key(*p, config.provider(*p).key_var));
    }
    probes.sort_by_key(|p| p.provider);
    print(&probes, format, single);
    // The worst failure decides: a CI job branches on the highest class.
    match probes
        .iter()
        .filter_map(|p| p.failure.as_ref())
        .max_by_key(|f| f.code)
    {
        Some(worst) => Err(Failure::new(
            worst.code,
            format!("{} failed", describe(&probes)),
        )),
        None => Ok(()),
    }
}

fn describe(probes: &[Probe]) -> String {
    let failed: Vec<String> = probes
        .iter()
        .filter(|p| p.failure.is_some())
        .map(|p| format!("{} ({})", p.provider, p.status))
        .collect();
    failed.join(", ")
}

fn print(probes: &[Probe], format: Format, single: bool) {
    match format {
        Format::Json if single => {
            let probe = probes.first().map(|p| json!(p)).unwrap_or_default();
            println!("{probe:#}");
        }
        Format::Json => println!("{:#}", json!(probes)),
        Format::Jsonl => probes.iter().for_each(|p| println!("{}", json!(p))),
        Format::Text if single => {
            for p in probes {
                match &p.error {
                    Some(error) => eprintln!("{} {}: {error}", p.provider, p.status),
                    None => eprintln!("{}", trailer(p)),
                }
            }
        }
        Format::Text => {
            let rows: Vec<Vec<String>> = probes.iter().map(Probe::row).collect();
            println!("{}", table(&ROW_HEADER, &rows));
        }
    }
}

/// The line under a single answer, as `llmrpc complete` prints it.
fn trailer(p: &Probe) -> String {
    let ttft = p
        .ttft_ms
        .map_or(String::new(), |t| format!(" · first token {t} ms"));
    let cost = p
        .cost_usd
        .map_or("no price".to_owned(), |c| format!("${c:.6}"));
    format!(
        "[{} · {} ms{ttft} · {} tokens · {cost}]",
        p.model.as_deref().unwrap_or("?"),
        p.latency_ms.unwrap_or_default(),
        p.usage.map_or(0, |u| u.total_tokens),
    )
}
