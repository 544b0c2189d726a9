//! The list of every method, with the names of its params read from its params type: what the
//! tests hold the registered module and `proto-docs/openrpc.json` to.

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, Visitor};

use super::admin::{
    CreditsAdd, KeysCreate, KeysList, KeysRevoke, TeamsCreate, TeamsDelete, TeamsGet, TeamsList,
    TeamsUpdate,
};
use super::llm::{Complete, Discover, Metrics, Models, Stream, StreamCancel};
use super::method::Method;
use super::ops::{Trace, Usage};

/// Every method of the contract, in the order of `proto-docs/openrpc.json`.
pub(crate) const METHODS: [Entry; 17] = [
    Entry::by_name::<Complete>(),
    Entry::by_name::<Stream>(),
    Entry::of::<StreamCancel>(),
    Entry::of::<Models>(),
    Entry::of::<Metrics>(),
    Entry::of::<Discover>(),
    Entry::by_name::<Trace>(),
    Entry::by_name::<Usage>(),
    Entry::by_name::<TeamsCreate>(),
    Entry::by_name::<TeamsList>(),
    Entry::by_name::<TeamsGet>(),
    Entry::by_name::<TeamsUpdate>(),
    Entry::by_name::<TeamsDelete>(),
    Entry::by_name::<KeysCreate>(),
    Entry::by_name::<KeysList>(),
    Entry::by_name::<KeysRevoke>(),
    Entry::by_name::<CreditsAdd>(),
];

/// A method as the catalogue lists it.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) name: &'static str,
    /// The names of its params.
    pub(crate) params: fn() -> Vec<&'static str>,
}

impl Entry {
    /// A method whose params are exactly its params type's fields.
    pub(crate) const fn of<M: Method>() -> Self {
        Entry {
            name: M::NAME,
            params: fields_of::<M>,
        }
    }

    /// A method with params by name, where the caller's A2A context may come as `a2a_context`
    /// too, read before (and apart from) the method's own params.
    pub(crate) const fn by_name<M: Method>() -> Self {
        Entry {
            name: M::NAME,
            params: with_context::<M>,
        }
    }
}

fn fields_of<M: Method>() -> Vec<&'static str> {
    fields::<M::Params>().to_vec()
}

fn with_context<M: Method>() -> Vec<&'static str> {
    let mut names = fields_of::<M>();
    if !names.contains(&"a2a_context") {
        names.push("a2a_context");
    }
    names
}

/// The field names a type deserializes from, as its `Deserialize` passes them to
/// `deserialize_struct`; none for a type that is not read as a struct (`()`, a map).
pub(crate) fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut recorded = None;
    // The recorder never produces a value: the error is expected, only the names matter.
    let _ = T::deserialize(FieldRecorder(&mut recorded));
    recorded.unwrap_or_default()
}

/// A deserializer that only notes the fields a struct asks for, and fails every request.
struct FieldRecorder<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldRecorder<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Two {
        first: String,
        #[serde(rename = "second_one")]
        second: Option<u32>,
    }

    #[test]
    fn fields_are_read_from_the_deserialize_impl() {
        assert_eq!(fields::<Two>(), ["first", "second_one"]);
        assert!(fields::<()>().is_empty());
        assert!(fields::<serde_json::Value>().is_empty());
    }
}
