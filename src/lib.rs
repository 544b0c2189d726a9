#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! llmrpc: a JSON-RPC 2.0 gateway through which AI agents call OpenAI, Anthropic and Gemini,
//! carrying each caller's A2A context and trace id through every hop.

pub mod a2a;
pub mod access;
pub mod bench;
pub mod cli;
pub mod config;
pub mod context;
pub mod error;
pub mod fnv;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod gateway;
pub mod ledger;
pub mod mock_upstream;
pub mod openai;
pub mod params;
pub mod providers;
pub mod reply;
pub mod resilience;
pub mod routing;
pub mod rpc;
pub mod server;
pub mod sse;
pub mod telemetry;
pub mod types;
