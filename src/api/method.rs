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

/// Declares methods of the catalogue, one line each: `Type = "name": Params => Result;`, with
/// its doc comment. The name, the params and the result then stand in one place only.
macro_rules! methods {
    ($($(#[$doc:meta])* $method:ident = $name:literal: $params:ty => $result:ty;)*) => {
        $(
            $(#[$doc])*
            pub(crate) struct $method;

            impl $crate::api::method::Method for $method {
                const NAME: &'static str = $name;
                type Params = $params;
                type Result = $result;
            }
        )*
    };
}
pub(crate) use methods;
