//! `tessera keys …`: the JWT signing keys access tokens are signed with.

use clap::Subcommand;

use super::shared::JsonFlag;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys and their state (pending, signing, published, retired, expired).
    List {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Add a new signing key; it is published at once and signs after the pre-publication delay.
    #[command(
        long_about = "Add a signing key. It is published in the JWKS at once and starts \
signing after the pre-publication delay (so every verifier has fetched it by then); the keys \
signing until then are retired at that moment and stay published until the last token they \
signed has expired. Every replica picks the new key up on its next reload. Audited \
(signing_key.rotate)."
    )]
    Rotate {
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Stop a key signing now; it stays published while its tokens live.
    #[command(
        long_about = "Retire a signing key now (e.g. one suspected compromised after a \
rotation): it stops signing and stays published until the tokens it signed have expired. The \
only key that can sign cannot be retired: rotate first. Audited (signing_key.retire)."
    )]
    Retire {
        /// The key id (kid) as `tessera keys list` shows it.
        kid: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Re-seal every private key under the current TESSERA_ENC_KEY (after rotating it).
    #[command(
        long_about = "Re-seal the stored private signing keys under the current \
encryption key. Run it after rotating TESSERA_ENC_KEY, with the old key in \
TESSERA_ENC_KEY_PREVIOUS; once it reports success the old key is no longer needed for signing \
keys. Idempotent (a second run re-seals nothing) and audited (signing_key.rekey)."
    )]
    Rekey {
        #[command(flatten)]
        out: JsonFlag,
    },
}
