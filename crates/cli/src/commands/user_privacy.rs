//! `tessera user export` and `tessera user erase`: data-protection requests
//! answered from the console with the service functions behind
//! `GET /v1/users/{id}/export` and `POST /v1/users/{id}/erase`. Erasure
//! cannot be undone, so it asks first unless given `--yes`.

use std::{
    io::{BufRead, IsTerminal, Write},
    process::ExitCode,
};

use tessera_core::{
    audit::{Actor, RequestContext},
    DomainError,
};
use tessera_server::Config;

use crate::{cli::EraseArgs, output};

pub async fn export(config: &Config, id: String) -> ExitCode {
    super::with_services(config, true, async |services| {
        output::json(&services.users.export(&id).await?);
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// Asks on the terminal for the id to be typed back; refuses when stdin is
/// not a terminal (a script passes `--yes`).
fn confirmed(id: &str) -> Result<(), DomainError> {
    let refuse = |why: &str| DomainError::invalid("yes", why.to_string());
    if !std::io::stdin().is_terminal() {
        return Err(refuse(
            "erasure cannot be undone; pass --yes to confirm without a terminal",
        ));
    }
    eprint!("Erasing user {id} cannot be undone. Type the user id to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|_| refuse("no confirmation could be read"))?;
    if answer.trim() == id {
        Ok(())
    } else {
        Err(refuse("the id typed did not match; nothing was erased"))
    }
}

pub async fn erase(config: &Config, a: EraseArgs) -> ExitCode {
    if !a.yes {
        if let Err(e) = confirmed(&a.id) {
            return output::error(e, a.out.json);
        }
    }
    super::with_services(config, a.out.json, async |services| {
        let report = services
            .users
            .erase(&a.id, &Actor::Cli, &RequestContext::default())
            .await?;
        if a.out.json {
            output::json(&report);
        } else if !report.erased_now {
            println!(
                "user {} was already erased at {}; nothing changed",
                report.user_id,
                report.erased_at.to_rfc3339()
            );
        } else {
            println!("erased user {}", report.user_id);
            println!("sessions deleted          {}", report.sessions_deleted);
            println!("totp devices deleted      {}", report.totp_devices_deleted);
            println!(
                "recovery codes deleted    {}",
                report.recovery_codes_deleted
            );
            println!("second-factor state rows  {}", report.mfa_state_deleted);
            println!("audit rows scrubbed       {}", report.audit_rows_scrubbed);
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}
