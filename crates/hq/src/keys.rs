//! The key portal: API keys HQ issues (like the workshop's
//! interstella.trade/getkey.html) and keys given at start.

use crate::ledger::{KeyInfo, Ledger, LedgerError};
use platform::ApiKey;

/// Prefix of the keys HQ issues, so one is recognisable in a config file.
const PREFIX: &str = "isk_";

/// A fresh random key: the prefix and 40 hex digits (160 bits).
pub fn generate() -> ApiKey {
    ApiKey::new(format!("{PREFIX}{}", hex::encode(rand::random::<[u8; 20]>())))
}

/// Issues a new key to `owner` and stores it, as the successor of the key
/// with id `succeeds` when given (`None` then when no key has that id).
pub async fn issue(
    ledger: &Ledger,
    owner: &str,
    succeeds: Option<&str>,
) -> Result<Option<(ApiKey, KeyInfo)>, LedgerError> {
    let key = generate();
    let info = match succeeds {
        None => ledger.add_key(key.expose(), owner).await?,
        Some(predecessor) => match ledger.add_successor_key(key.expose(), owner, predecessor).await? {
            Some(info) => info,
            None => return Ok(None),
        },
    };
    // Quoted: the owner is a caller's text, and may look like other fields.
    tracing::info!(
        key_id = %info.key_id,
        owner = %contracts::quote::quoted(&info.owner),
        succeeds,
        "API key issued"
    );
    Ok(Some((key, info)))
}
