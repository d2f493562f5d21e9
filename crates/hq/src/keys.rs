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

/// Issues a new key to `owner` and stores it.
pub async fn issue(ledger: &Ledger, owner: &str) -> Result<(ApiKey, KeyInfo), LedgerError> {
    let key = generate();
    let info = ledger.add_key(key.expose(), owner).await?;
    // Quoted: the owner is a caller's text, and may look like other fields.
    tracing::info!(
        key_id = %info.key_id,
        owner = %contracts::quote::quoted(&info.owner),
        "API key issued"
    );
    Ok((key, info))
}
