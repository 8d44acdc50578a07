//! `tessera mfa …`: TOTP devices and their encryption key, run directly on
//! the database with the same service functions (and JSON) as the HTTP API;
//! actor `cli`. Exists so an operator can help a locked-out user and rotate
//! `TOTP_ENC_KEY` without an HTTP client or a token.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    mfa::TotpDevice,
};
use tessera_server::service::ServiceError;
use tessera_server::{Config, Services};

use super::WantsJson;
use crate::{cli::MfaCommand, output};

impl WantsJson for MfaCommand {
    fn wants_json(&self) -> bool {
        match self {
            MfaCommand::Devices { out, .. } => out.json,
            MfaCommand::Remove { json, .. }
            | MfaCommand::Unlock { json, .. }
            | MfaCommand::Rekey { json } => *json,
            MfaCommand::Code { .. } => false,
        }
    }
}

pub async fn run(config: Config, cmd: MfaCommand) -> ExitCode {
    if let MfaCommand::Code { uri, later } = cmd {
        return super::totp_code::run(uri, later);
    }
    // After a rekey the only thing left to do is retire the previous keys.
    let has_previous = config
        .mfa
        .totp_keys
        .as_ref()
        .is_some_and(|k| !k.previous.is_empty());
    super::with_services(&config, cmd.wants_json(), async |services| {
        execute(services, cmd, has_previous).await
    })
    .await
}

async fn execute(
    services: &Services,
    cmd: MfaCommand,
    has_previous: bool,
) -> Result<ExitCode, ServiceError> {
    let mfa = &services.mfa;
    match cmd {
        MfaCommand::Devices { subject, out } => {
            let devices = mfa.devices(&subject).await?;
            if out.json {
                // The object GET /v1/subjects/{subject}/totp returns.
                output::json(&json!({ "items": devices }));
            } else {
                device_table(&subject, &devices);
            }
        }
        MfaCommand::Remove {
            subject,
            device,
            json: as_json,
        } => {
            // The operator at the console has no client address or user agent.
            mfa.remove(&subject, &device, &Actor::Cli, &RequestContext::default())
                .await?;
            if as_json {
                output::json(&json!({ "removed": true, "subject": subject, "device_id": device }));
            } else {
                println!("removed TOTP device {device} of {subject}; its codes no longer work");
            }
        }
        MfaCommand::Unlock {
            subject,
            json: as_json,
        } => {
            let cleared = mfa
                .unlock(&subject, &Actor::Cli, &RequestContext::default())
                .await?;
            if as_json {
                output::json(&json!({ "cleared": cleared }));
            } else if cleared {
                println!("cleared the TOTP lockout and failure count of {subject}");
            } else {
                println!("{subject} was not locked and had no failed TOTP attempts");
            }
        }
        MfaCommand::Rekey { json: as_json } => {
            // Every stored secret must open before any is rewritten; the
            // message names the key that is missing, as `serve`'s does.
            if let Err(e) = services.check_totp_keys().await {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(output::EXIT_ERROR));
            }
            let report = mfa.rekey(&Actor::Cli).await?;
            if as_json {
                output::json(&report);
            } else {
                println!(
                    "re-encrypted {} TOTP secret(s); every secret is now under key id {}",
                    report.rekeyed, report.key_id
                );
                if has_previous {
                    eprintln!(
                        "TOTP_ENC_KEY_PREVIOUS is no longer needed for TOTP secrets: remove the old \
                         key from it and restart the servers."
                    );
                }
            }
        }
        // Handled in `run`, before the database is opened.
        MfaCommand::Code { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// Devices as an aligned table; names are clipped so columns stay aligned.
fn device_table(subject: &str, devices: &[TotpDevice]) {
    if devices.is_empty() {
        println!("{subject} has no TOTP devices");
        return;
    }
    println!(
        "{:<36}  {:<20}  {:<7}  {:<9}  {:<16}  {:<16}  LAST USED",
        "ID", "NAME", "STATUS", "ALGORITHM", "CREATED", "CONFIRMED"
    );
    for d in devices {
        let name: String = if d.name.chars().count() > 20 {
            d.name.chars().take(19).chain(['…']).collect()
        } else {
            d.name.clone()
        };
        println!(
            "{:<36}  {:<20}  {:<7}  {:<9}  {:<16}  {:<16}  {}",
            d.id,
            name,
            d.status.as_str(),
            format!("{}/{}", d.params.algorithm.as_str(), d.params.digits),
            when(Some(d.created_at)),
            when(d.confirmed_at),
            when(d.last_used_at),
        );
    }
}
