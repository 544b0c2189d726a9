//! What a JSON-RPC method is in the catalogue: its name, the type of its params and the type of
//! its result, written once (in the manner of mini-redis's `Command`), so that the server, the
//! command line and the published OpenRPC document cannot drift apart unnoticed.

use serde::de::DeserializeOwned;

/// One JSON-RPC method of the contract.
pub(crate) trait Method {
    const NAME: &'static str;
    /// The params, by name; `()` for a method that takes none.
    type Params: DeserializeOwned;
    type Result;
}

/// A method whose result is a subscription: its items are sent as notifications, and it is
/// ended by a method of its own.
pub(crate) trait Subscription: Method {
    /// The method name of the notifications that carry its items.
    const NOTIFICATION: &'static str;
    type Cancel: Method;
}
