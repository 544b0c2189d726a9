//! Caller keys: `llmrpc-` and 40 hex digits (160 random bits from the operating system), shown
//! once when made and stored only as their SHA-256. A plain hash is enough: the keys are random,
//! not passwords, so there is nothing to guess from it.

use ring::digest::{SHA256, digest};

use crate::ledger::accounts::{Accounts, AccountsError, KeyInfo, NewKey, Role, hex, random_hex};

const SCHEME: &str = "llmrpc-";
/// Random bytes of a key.
const SECRET_BYTES: usize = 20;
/// Characters of the secret in the public prefix: enough to tell keys apart in the ledger, far
/// too few to guess the rest from.
const PREFIX_CHARS: usize = 8;

/// A key just made: the secret, shown once, and what is stored of it.
#[derive(Debug, serde::Serialize)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    hex(digest(&SHA256, key.as_bytes()).as_ref())
}

/// Whether `key` has the shape of one of ours (others are not worth a database lookup).
pub fn looks_like_key(key: &str) -> bool {
    key.strip_prefix(SCHEME).is_some_and(|rest| {
        rest.len() == 2 * SECRET_BYTES && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Makes a key for `team` (an id or a name) and stores its hash.
pub async fn create(
    accounts: &Accounts,
    team: &str,
    role: Role,
    name: Option<String>,
) -> Result<CreatedKey, AccountsError> {
    let key = format!("{SCHEME}{}", random_hex(SECRET_BYTES)?);
    let stored = NewKey {
        id: format!("key_{}", random_hex(8)?),
        prefix: key[..SCHEME.len() + PREFIX_CHARS].to_owned(),
        hash: hash(&key),
        team: team.to_owned(),
        role,
        name,
    };
    let info = accounts.create_key(&stored).await?;
    Ok(CreatedKey { key, info })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex() {
        // The FIPS 180-2 test vector.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_our_keys_look_like_keys() {
        assert!(looks_like_key(&format!("llmrpc-{}", "a1".repeat(20))));
        assert!(!looks_like_key("sk-anything"));
        assert!(!looks_like_key("llmrpc-short"));
    }
}
