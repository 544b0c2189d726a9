//! The integration tests, as one test binary: most of them run the `llmrpc` binary and speak to
//! it over HTTP, so linking the whole crate into a binary per file only cost build time. Each
//! module is one subject, as each file was; `cargo test --test it <module>::` runs one of them
//! (`cargo test --test it -- --ignored ::postgres::` the PostgreSQL ones, as tests/run-services.sh
//! does). tests/live.rs stays apart: it has a harness of its own.

// A test fails by panicking: its helpers may unwrap and expect as its #[test]s do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod a2a;
mod a2a_sdk;
mod architecture;
mod cli;
mod complete;
mod docs_examples;
mod errors;
mod faults;
mod golden;
mod ledger;
mod mock_upstream;
mod openai_compat;
mod openai_sdk;
mod ops;
mod providers;
mod replicas;
mod resilience;
mod security;
mod stream;
mod teams;
mod tools;
mod tracing;
mod verify;
