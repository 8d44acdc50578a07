//! `tessera mfa …`: second-factor commands, with the long help an operator
//! needs to rotate TOTP_ENC_KEY.

use clap::Subcommand;

use super::shared::JsonFlag;

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// List a subject's TOTP devices (pending and active), oldest first.
    #[command(
        long_about = "List a subject's TOTP devices, oldest first: id, name, status (pending \
until confirmed with a first code, then active), algorithm/digits, when it was created, confirmed \
and last used. Never shows secrets.\n\nWith --json prints {\"items\": [...]}, the object \
GET /v1/subjects/{subject}/totp returns."
    )]
    Devices {
        /// The application's user id the devices belong to.
        subject: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove a TOTP device at once; its codes stop working immediately.
    #[command(
        long_about = "Remove a TOTP device at once: its codes stop working immediately and there \
is no undo (the user enrols again). Recorded in the audit log with actor `cli` and announced \
with an mfa.enroll.removed event.\n\nA device that does not exist (or belongs to another \
subject) is an error: device_not_found, exit code 2."
    )]
    Remove {
        /// The application's user id the device belongs to.
        subject: String,
        /// Device id (see `tessera mfa devices SUBJECT`).
        device: String,
        /// Print {"removed": true, "subject": …, "device_id": …} on stdout
        /// (errors as the API's problem object).
        #[arg(long)]
        json: bool,
    },
    /// Lift a subject's TOTP lockout and forget its earlier failures.
    #[command(
        long_about = "Lift a subject's TOTP lockout (after too many wrong codes) and forget its \
earlier failures, for support staff helping a user who proved who they are some other way. \
Recorded in the audit log with actor `cli`. Prints whether there was anything to clear."
    )]
    Unlock {
        /// The application's user id.
        subject: String,
        /// Print {"cleared": true|false} on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the current code for an otpauth:// URI, as an authenticator app would.
    #[command(
        long_about = "Print the code an authenticator app would show now for an otpauth:// URI \
(its algorithm, digits and period are honoured) or a bare base32 secret (SHA1, 6 digits, 30 s). \
For scripts, tests and the README's walk-through; works offline, without the database.\n\n\
Keep the URI out of shell history: pass - and give it on stdin."
    )]
    Code {
        /// The otpauth://totp/… URI or a base32 secret, or - for stdin.
        uri: String,
        /// The code the app will show this much later, e.g. 30s for the next one.
        #[arg(long = "in", value_name = "DURATION")]
        later: Option<String>,
    },
    /// Re-encrypt every TOTP secret under the current TOTP_ENC_KEY.
    #[command(
        long_about = "Re-encrypt every stored TOTP secret under the current TOTP_ENC_KEY, so an \
old key can be retired. Secrets already under the current key are left alone, so running it \
again is harmless; it is safe while servers are running. Prints how many secrets were \
re-encrypted and the id of the key they are now under.",
        after_help = "Rotating TOTP_ENC_KEY (no downtime, no re-enrolment):\n  \
1. On every replica: TOTP_ENC_KEY=<old key>, TOTP_ENC_KEY_PREVIOUS=<new key>; restart\n     \
(every replica can read the new key before any writes with it).\n  \
2. On every replica: TOTP_ENC_KEY=<new key>, TOTP_ENC_KEY_PREVIOUS=<old key>; restart.\n  \
3. Run `tessera mfa rekey` with those same two settings.\n  \
4. On every replica: drop the old key from TOTP_ENC_KEY_PREVIOUS; restart.\n\n\
Start-up refuses to run while any stored secret still needs a key that is not configured, so \
a skipped step stops the process with a message instead of failing every login."
    )]
    Rekey {
        /// Print {"rekeyed": N, "key_id": "…"} on stdout (errors as the API's
        /// problem object).
        #[arg(long)]
        json: bool,
    },
}
