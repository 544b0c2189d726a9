//! FNV-1a, 64 bits: the one hash whose values are kept or sent (the ledger's trace key in every
//! SQLite row, the ids of Gemini's tool calls), so it must never change between builds,
//! platforms or releases — which Rust's own `Hasher`s do not promise. It is fixed by its
//! specification, small, and good enough to tell keys apart; collisions are settled by whoever
//! keeps the full value.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The hash of `bytes`, read in order.
pub fn fnv1a<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> u64 {
    bytes.into_iter().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
