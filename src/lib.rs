//! llmrpc: a JSON-RPC 2.0 gateway through which AI agents call OpenAI, Anthropic and Gemini,
//! carrying each caller's A2A context and trace id through every hop.
//!
//! The crate is the `llmrpc` binary; its library is only what the binary, the integration tests
//! and the fuzz targets need. Every room is private, so the compiler reports what nothing uses;
//! the few public ones say why they are.

mod a2a;
mod access;
mod api;
mod bench;
mod cli;
mod config;
mod context;
mod error;
mod fnv;
/// The fuzz targets' entry points (`tests/fuzz/`).
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod gateway;
/// Public for its own tests (`tests/it/ledger.rs`), which drive the ledger's library API on
/// SQLite and PostgreSQL alike.
pub mod ledger;
/// Public for the tests that start it in-process (`tests/it/cli.rs`).
pub mod mock_upstream;
mod openai;
mod params;
mod providers;
mod reply;
mod resilience;
mod routing;
mod rpc;
mod server;
mod sse;
mod telemetry;
mod types;

pub use cli::main;
pub use providers::http_client;
pub use types::{ProviderName, Usage};
