//! `tessera keys …`: the JWT signing keys, with the same `KeyService`
//! functions the server uses (rotation rules, audit rows); actor `cli`.
//! A running server picks changes up on its next key reload.

use std::process::ExitCode;

use serde_json::json;
use tessera_core::audit::{Actor, RequestContext};
use tessera_server::service::keys::KeyView;
use tessera_server::service::ServiceError;
use tessera_server::{Config, Services};

use crate::{cli::KeysCommand, output};

impl super::WantsJson for KeysCommand {
    fn wants_json(&self) -> bool {
        match self {
            KeysCommand::List { out }
            | KeysCommand::Rotate { out }
            | KeysCommand::Retire { out, .. }
            | KeysCommand::Rekey { out } => out.json,
        }
    }
}

pub async fn run(config: Config, cmd: KeysCommand) -> ExitCode {
    super::run_admin(&config, cmd, execute).await
}

fn opt_date(d: Option<chrono::DateTime<chrono::Utc>>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |d| d.format("%Y-%m-%d %H:%M").to_string(),
    )
}

fn print_key(k: &KeyView, as_json: bool) {
    if as_json {
        output::json(k);
        return;
    }
    println!("kid            {}", k.kid);
    println!("algorithm      {}", k.algorithm);
    println!("state          {}", k.state);
    println!("created_at     {}", k.created_at.to_rfc3339());
    println!("signs_from     {}", k.signs_from.to_rfc3339());
    println!("retired_at     {}", opt_date(k.retired_at));
    println!("publish_until  {}", opt_date(k.publish_until));
}

fn print_keys(keys: &[KeyView], as_json: bool) {
    if as_json {
        output::json(&json!({ "items": keys }));
        return;
    }
    // Fits 100 columns: a kid longer than 44 characters is clipped
    // (`keys list --json` has it in full).
    println!(
        "{:<44}  {:<5}  {:<9}  {:<16}  PUBLISHED UNTIL",
        "KID", "ALG", "STATE", "SIGNS FROM"
    );
    for k in keys {
        println!(
            "{:<44}  {:<5}  {:<9}  {:<16}  {}",
            output::clip(&k.kid, 44),
            k.algorithm,
            k.state,
            k.signs_from.format("%Y-%m-%d %H:%M"),
            opt_date(k.publish_until),
        );
    }
}

async fn execute(services: &Services, cmd: KeysCommand) -> Result<ExitCode, ServiceError> {
    let keys = &services.keys;
    let (actor, ctx) = (Actor::Cli, RequestContext::default());
    match cmd {
        KeysCommand::List { out } => print_keys(&keys.list().await?, out.json),
        KeysCommand::Rotate { out } => print_key(&keys.rotate(&actor, &ctx).await?, out.json),
        KeysCommand::Retire { kid, out } => {
            print_key(&keys.retire(&kid, &actor, &ctx).await?, out.json);
        }
        KeysCommand::Rekey { out } => {
            let report = keys.rekey(&actor).await?;
            if out.json {
                output::json(&report);
            } else {
                println!(
                    "re-sealed {} signing key(s) under encryption key {}",
                    report.resealed, report.key_id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
