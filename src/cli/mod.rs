//! The `llmrpc` command line: `serve` runs the service; the other subcommands are its clients.

mod admin;
mod client;
mod doctor;
mod output;
mod probe;
mod rpc_client;
mod serve;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use output::Failure;

#[derive(Parser)]
#[command(
    name = "llmrpc",
    version,
    about = "JSON-RPC 2.0 gateway from AI agents to OpenAI, Anthropic and Gemini",
    after_help = output::EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Address to listen on (HOST:PORT; port 0 picks a free one).
        #[arg(long, env = "LLMRPC_ADDR")]
        addr: Option<String>,
        /// TOML configuration file.
        #[arg(long, env = "LLMRPC_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Ask a running service for one answer and print it.
    #[command(after_help = output::EXIT_CODES)]
    Complete(client::CallArgs),
    /// Ask a running service for an answer and print it as it streams in.
    #[command(after_help = output::EXIT_CODES)]
    Stream(client::CallArgs),
    /// List the models a running service can route to.
    #[command(after_help = output::EXIT_CODES)]
    Models(client::ServiceArgs),
    /// Show every call and attempt recorded under a trace id.
    #[command(after_help = output::EXIT_CODES)]
    Trace(client::TraceArgs),
    /// Ask a provider (or all of them) directly with the keys of the environment: no service.
    #[command(after_help = output::EXIT_CODES)]
    Test(probe::TestArgs),
    /// Check the configuration, each provider with one tiny call, the database and Redis.
    #[command(after_help = output::EXIT_CODES)]
    Doctor(doctor::DoctorArgs),
    /// Run the end-to-end suite against a deployed service: exit 0 when every case passes.
    #[command(after_help = output::EXIT_CODES)]
    Verify(verify::VerifyArgs),
    /// Run a fake of the providers' APIs whose behaviour each request chooses.
    MockUpstream {
        #[arg(long, default_value = "127.0.0.1:9000")]
        addr: String,
    },
    /// Load a running service (or an OpenAI-compatible URL) and report throughput and latency.
    Bench(crate::bench::BenchArgs),
    /// Teams, caller keys and credits: through a running service, or on the database directly.
    Admin(admin::AdminArgs),
}

async fn mock_upstream(addr: &str) -> Result<(), String> {
    let (listener, local) = crate::mock_upstream::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    eprintln!("mock upstream listening on {local}");
    crate::mock_upstream::serve(listener)
        .await
        .map_err(|e| e.to_string())
}

/// Rust ignores SIGPIPE, so a write to a pipe whose reader has gone (`llmrpc models --output
/// jsonl | head -1`) fails, and `println!` panics on that failure: a backtrace, exit 101, and a
/// pipeline under `set -o pipefail` that fails. A command whose output is meant for pipes gets the
/// default action back and ends as `cat` or `grep` do. The servers keep ignoring it.
#[allow(unsafe_code)]
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: sets the disposition of one signal to its default, before any thread of this
    // program exists (the runtime is built later); no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn main() -> ExitCode {
    // Before parsing, so that `.env` (in the working directory only) can supply the flags' environment variables too.
    let _ = dotenvy::from_path(".env");
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Serve { .. } | Command::MockUpstream { .. }
    ) {
        end_quietly_on_a_closed_pipe();
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // Threads that run calls; the default is one per core.
    if let Some(threads) = std::env::var("LLMRPC_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("llmrpc: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), Failure> = runtime.block_on(async {
        match cli.command {
            Command::Serve { addr, config } => serve::run(addr, config).await,
            Command::Complete(args) => client::complete(args).await,
            Command::Stream(args) => client::stream(args).await,
            Command::Models(args) => client::models(args).await,
            Command::Trace(args) => client::trace(args).await,
            Command::Test(args) => probe::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::MockUpstream { addr } => Ok(mock_upstream(&addr).await?),
            Command::Bench(args) => Ok(crate::bench::run(args).await?),
            Command::Admin(args) => Ok(admin::run(args).await?),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("llmrpc: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
