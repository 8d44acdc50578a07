//! `tessera user …`: people in the built-in identity store, their
//! migration from the service Tessera replaces, and data-protection
//! requests (export, erasure).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::shared::{JsonFlag, PageArgs, UserIdArgs};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password, if any, is read from stdin.
    #[command(
        long_about = "Create a user of the built-in identity store, with the same rules \
as POST /v1/users: the e-mail is normalised and must be free, roles are role names, and a \
password must meet the password policy (it is hashed with Argon2id).\n\nThe password is never \
taken from the command line: with --password-stdin it is read from stdin (one line); without it \
the account has no password until one is set (`tessera user set-password`).\n\nExample:\n  \
printf '%s\\n' \"$PW\" | tessera user create --email ada@example.com --role member \
--password-stdin"
    )]
    Create(UserCreateArgs),
    /// List users, newest first.
    List {
        /// Only the user with this e-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Only active or only disabled users.
        #[arg(long, value_parser = ["active", "disabled"])]
        status: Option<String>,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one user.
    Show(UserIdArgs),
    /// Disable sign-in (idempotent); every session is revoked.
    Disable(UserIdArgs),
    /// Enable sign-in again (idempotent).
    Enable(UserIdArgs),
    /// Set a user's password, read from stdin; every session is revoked.
    SetPassword(SetPasswordArgs),
    /// Delete a user (soft): sign-in ends, sessions are revoked, the e-mail is free again.
    Delete(UserIdArgs),
    /// Lift the login throttle of the user's account after too many failed logins.
    Unlock(UserIdArgs),
    /// Import users from the service being replaced, with their password hashes.
    #[command(long_about = IMPORT_HELP)]
    Import(ImportArgs),
    /// Print everything stored about a user as JSON (data-protection export).
    #[command(
        long_about = "Print, as one JSON object, everything Tessera stores about a user: \
the account, its sessions with the IP address and user agent they were opened from (decrypted), \
TOTP device metadata (never secrets), how many recovery codes are left, and the audit rows by \
the user, about the account and about its sessions, with IP and user agent decrypted. The same \
object as GET /v1/users/{id}/export. Deleted and erased accounts can be exported too."
    )]
    Export {
        /// User id.
        id: String,
    },
    /// Erase a user for good (data-protection erasure); asks for confirmation.
    #[command(
        long_about = "Erase a user; this cannot be undone. In one transaction: sessions \
and refresh tokens are deleted, TOTP devices, recovery codes, second-factor counters and login \
throttle counters removed, the account's e-mail replaced by erased+<id>@invalid, its name, \
locale and password hash cleared, the account disabled and marked deleted and erased, and the \
audit rows by or about the user (and their sessions) lose their IP address and user agent; the \
rows and the id stay. The erasure itself is audited (user.erase). Erasing an erased user changes \
nothing.\n\nWithout --yes the command asks you to type the id (and refuses when stdin is not a \
terminal). Same as POST /v1/users/{id}/erase."
    )]
    Erase(EraseArgs),
}

const IMPORT_HELP: &str = "Import accounts from the identity service Tessera replaces, keeping \
their password hashes: Argon2id, Argon2i, scrypt (PHC strings) and bcrypt ($2a$, $2b$, $2y$) \
are accepted and stored as they are; each is replaced by an Argon2id hash at the person's next \
successful login.\n\nFILE holds one record per line (JSONL) or a CSV file with a header row. \
Fields: email, email_verified (true/false), roles (a JSON array; in CSV separated by ';'), \
password_hash, and optionally display_name and locale.\n\n  \
{\"email\":\"ada@example.com\",\"email_verified\":true,\"roles\":[\"member\"],\
\"password_hash\":\"$2b$12$…\"}\n\nImporting is idempotent by e-mail: a record whose e-mail \
belongs to an existing account is skipped, never duplicated or overwritten, so a file can be \
imported again after fixing its bad lines. A bad line is reported with its line number and the \
reason (never the hash). Each account is created with its audit row and user.created event.\n\n\
Exit codes: 0 every record created or skipped; 2 some failed (or the file could not be read).";

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    /// The e-mail address the person signs in with.
    #[arg(long)]
    pub email: String,
    /// The name shown for the person.
    #[arg(long)]
    pub display_name: Option<String>,
    /// A language tag such as en or pt-BR.
    #[arg(long)]
    pub locale: Option<String>,
    /// A role the user holds (repeat for several); roles map to scopes.
    #[arg(long = "role", value_name = "ROLE")]
    pub roles: Vec<String>,
    /// Mark the e-mail address as already verified.
    #[arg(long)]
    pub email_verified: bool,
    /// Read the password from stdin (one line); without it no password is set.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}

#[derive(Debug, Args)]
pub struct SetPasswordArgs {
    /// User id.
    pub id: String,
    /// Read the new password from stdin (one line); required.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (JSONL or CSV).
    pub file: PathBuf,
    /// The file's format (default: csv for a .csv file, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Validate every record and report, but create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print {"created", "skipped", "failed", "records": [...]} on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// User id.
    pub id: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}
