//! One module per top-level command, and the one way an admin command opens
//! the services, reports an error and flushes what it buffered.

/// Implements [`WantsJson`] for a command enum whose variants all have a
/// flattened `out: JsonFlag`: those that wrap an argument struct, then (after
/// a `;`) those that hold their arguments inline.
macro_rules! wants_json_from_out {
    ($command:ident: $($variant:ident),+ $(; $($inline:ident),+)?) => {
        impl $crate::commands::WantsJson for $command {
            fn wants_json(&self) -> bool {
                match self {
                    $($command::$variant(a) => a.out.json,)+
                    $($($command::$inline { out, .. } => out.json,)+)?
                }
            }
        }
    };
}

mod args;
pub mod audit;
pub mod client;
pub mod config;
mod doctor;
pub mod invite;
pub mod jobs;
pub mod keys;
pub mod mfa;
pub mod migrate;
pub mod serve;
pub mod session;
pub mod token;
pub mod totp_code;
pub mod upstream;
pub mod user;
mod user_import;
mod user_privacy;
pub mod webhooks;

use std::process::ExitCode;

use tessera_server::service::ServiceError;
use tessera_server::{config::KeySource, Config, Services};

use crate::output;

/// An admin command that knows whether it was given `--json` (its errors are
/// then printed as the API's problem object too).
pub trait WantsJson {
    fn wants_json(&self) -> bool;
}

/// Runs one admin command with [`with_services`], JSON errors as it asked.
pub async fn run_admin<C: WantsJson>(
    config: &Config,
    cmd: C,
    execute: impl AsyncFnOnce(&Services, C) -> Result<ExitCode, ServiceError>,
) -> ExitCode {
    let as_json = cmd.wants_json();
    with_services(config, as_json, async |services| {
        execute(services, cmd).await
    })
    .await
}

/// Opens the services for one admin command, runs it, reports an error the
/// way the API would, and writes buffered usage/audit rows before exiting.
pub async fn with_services(
    config: &Config,
    as_json: bool,
    command: impl AsyncFnOnce(&Services) -> Result<ExitCode, ServiceError>,
) -> ExitCode {
    let new_key_file = match &config.encryption_key {
        KeySource::File(path) if !path.exists() => Some(path),
        _ => None,
    };
    let services = match Services::open(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(output::EXIT_ERROR);
        }
    };
    if let Some(path) = new_key_file {
        eprintln!(
            "note: generated the encryption key {}; back it up (it decrypts the audit log's \
             IP addresses and user agents)",
            path.display()
        );
    }
    let code = match command(&services).await {
        Ok(code) => code,
        Err(e) => output::error(e, as_json),
    };
    services.background.flush().await;
    services.store.close().await;
    code
}
