//! `llmrpc verify`: the end-to-end suite a staging pipeline runs against a deployed service, over
//! the network, as its callers would: every provider whole and streamed (WebSocket and SSE), the
//! trace id found again by `ops.trace`, the contract's errors, a deadline, many calls at once, the
//! plain-HTTP endpoints and the other surfaces. Each case has a stable name for CI history; with
//! `--repeat` a case passes when its success rate meets `--min-success`. Reports as text or JSON,
//! and as JUnit XML for CI.
//!
//! This file holds the flags and the order of the whole: `cases` is the catalogue, `checks` what
//! each case sends and expects, `client` the wire, `targets` the providers and models, `runner`
//! the runs, `report` the outputs.

mod cases;
mod checks;
mod client;
mod report;
mod runner;
mod targets;

use std::time::Duration;

use cases::{Case, Group};
use checks::Settings;
use client::Client;

use super::output::{Failure, progress};
use crate::providers;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The service to verify.
    #[arg(long, env = "LLMRPC_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A caller key, when the service requires one (`--api-key` as on the other subcommands).
    #[arg(
        long,
        alias = "api-key",
        env = "LLMRPC_API_KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    /// The model per provider (`openai=gpt-4.1-mini,anthropic=…`); each provider's member of
    /// the tier `fast` otherwise.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// The providers to verify; those the service has configured otherwise.
    #[arg(long, value_delimiter = ',')]
    providers: Vec<String>,
    /// Only these cases, in the suite's order; every case otherwise. The fault cases need
    /// `--mock`.
    #[arg(long, value_delimiter = ',', value_enum)]
    cases: Vec<Case>,
    /// Calls sent at once by the `concurrent` case.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Runs of the whole suite; each case's success rate is over its runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// The success rate a case needs to pass.
    #[arg(long, default_value_t = 1.0)]
    min_success: f64,
    /// Deadline of each call.
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// The answer's length cap of every call, which bounds what a live run costs.
    #[arg(long, default_value_t = 16)]
    max_tokens: u32,
    /// The service's providers point at `llmrpc mock-upstream`: also run the fault cases it
    /// can inject (a retried 503, a 429 with Retry-After, a stream cut off).
    #[arg(long)]
    mock: bool,
    /// List the cases and what they would send, and stop.
    #[arg(long)]
    dry_run: bool,
    /// Write a JUnit XML report here.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    output: VerifyFormat,
}

pub async fn run(args: VerifyArgs) -> Result<(), Failure> {
    // A fault case asked for by name would be dropped without the mock: a usage error, before
    // any call.
    if let Some(case) = args.cases.iter().find(|c| c.group() == Group::Fault)
        && !args.mock
    {
        return Err(Failure::new(
            2,
            format!("the fault case {} needs --mock", case.name()),
        ));
    }
    let http = providers::http_client(Duration::from_secs(10))
        .map_err(|e| Failure::from(e.to_string()))?;
    let client = Client::new(http, &args.url, args.key.clone());
    let targets = targets::targets(&client, &args.providers, &args.models).await?;
    let steps = runner::plan(&targets, &args.cases, args.mock);
    let concurrent = steps.iter().any(|s| s.case() == Case::Concurrent);
    let calls_per_run = steps.len() + if concurrent { args.concurrency } else { 0 };
    let calls = calls_per_run as u64 * u64::from(args.repeat);
    let dearest = targets::dearest_cost(&targets, args.max_tokens);
    eprintln!(
        "verify {}: {} cases × {} run(s), at most {calls} model calls of ≤ {} output tokens: ≤ {:.4} USD at list prices",
        client.url(),
        steps.len(),
        args.repeat,
        args.max_tokens,
        dearest * calls as f64
    );
    if args.dry_run {
        for step in &steps {
            println!(
                "{:<10} {:<24} {}",
                step.target(&targets),
                step.case().name(),
                step.model(&targets)
            );
        }
        return Ok(());
    }
    let settings = Settings {
        timeout_ms: args.timeout_ms,
        max_tokens: args.max_tokens,
        concurrency: args.concurrency,
        min_success: args.min_success,
        mock: args.mock,
    };
    let bar = progress(steps.len() as u64 * u64::from(args.repeat), "verify");
    let mut reports = runner::run(&client, &settings, &targets, &steps, args.repeat, &bar).await;
    bar.finish_and_clear();
    for report in &mut reports {
        report.judge(args.min_success);
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report::junit(&reports))
            .map_err(|e| Failure::from(format!("cannot write {}: {e}", path.display())))?;
    }
    match args.output {
        VerifyFormat::Json => {
            let summary = report::json(client.url(), &reports, args.min_success, args.repeat);
            println!("{summary:#}");
        }
        VerifyFormat::Text => println!("{}", report::text(&reports)),
    }
    match reports.iter().filter(|r| !r.ok()).count() {
        0 => Ok(()),
        n => Err(Failure::new(
            1,
            format!(
                "{n} of {} cases below {:.0} % success",
                reports.len(),
                args.min_success * 100.0
            ),
        )),
    }
}
