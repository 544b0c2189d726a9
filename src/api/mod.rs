//! The catalogue of the JSON-RPC methods: each method's name, params type and result type,
//! written once. The JSON-RPC surface registers and dispatches from it, the command line's
//! client calls by it, and a test holds `proto-docs/openrpc.json` to it. It sits on the
//! pipeline floor, above the rooms whose types it names (`params`, `access`, `ledger`), so
//! that none of them needs to know it.

mod admin;
#[cfg(test)]
mod catalogue;
mod llm;
mod method;
mod ops;

pub(crate) use admin::{
    CreditsAdd, KeysCreate, KeysList, KeysRevoke, TeamsCreate, TeamsDelete, TeamsGet, TeamsList,
    TeamsUpdate,
};
#[cfg(test)]
pub(crate) use catalogue::METHODS;
pub(crate) use llm::{Complete, Discover, Metrics, Models, Stream};
pub(crate) use method::{Method, Subscription};
pub(crate) use ops::{Trace, TraceParams, Usage};
