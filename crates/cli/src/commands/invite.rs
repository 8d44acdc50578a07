//! `tessera invite …`: invites on the database, with the same service
//! functions (and JSON) as the HTTP API; actor `cli`, issuer `cli` as admin
//! unless `--on-behalf-of` names one.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    invite::{Grants, InviteState, InviteView, Issuer},
    DomainError,
};
use tessera_server::{
    service::invites::{Attempt, CreateInvite, InviteExpiry, ListInvites},
    Config, Services,
};

use super::token::{from_stdin_if_dash, metadata, parse_duration_secs};
use crate::{cli::InviteCommand, output};

fn wants_json(cmd: &InviteCommand) -> bool {
    match cmd {
        InviteCommand::Create(a) => a.out.json,
        InviteCommand::List { out, .. }
        | InviteCommand::Show { out, .. }
        | InviteCommand::Revoke { out, .. }
        | InviteCommand::Delete { out, .. }
        | InviteCommand::Validate { out, .. }
        | InviteCommand::Redeem { out, .. } => out.json,
    }
}

pub async fn run(config: Config, cmd: InviteCommand) -> ExitCode {
    let as_json = wants_json(&cmd);
    super::with_services(&config, as_json, async |services| {
        execute(services, cmd).await
    })
    .await
}

fn print_invite(v: &InviteView, as_json: bool) {
    if as_json {
        output::json(v);
        return;
    }
    println!("id            {}", v.id);
    println!("state         {:?}", v.state);
    println!(
        "grants        {} [{}]",
        v.grants.role,
        v.grants.scopes.join(",")
    );
    println!("issuer        {} ({})", v.issuer.subject, v.issuer.role);
    println!("email         {}", v.email.as_deref().unwrap_or("-"));
    println!("uses          {}/{}", v.uses, v.max_uses);
    println!("expires_at    {}", v.expires_at.to_rfc3339());
    println!("created_at    {}", v.created_at.to_rfc3339());
}

async fn execute(
    services: &Services,
    cmd: InviteCommand,
) -> Result<ExitCode, tessera_store::StoreError> {
    let invites = &services.invites;
    let actor = Actor::Cli;
    let ctx = RequestContext::default();
    let no_context = RequestContext::default;
    // The CLI is an operator at the console: no client address to limit.
    let attempt = Attempt {
        client_ip: None,
        context: &no_context,
    };
    let now = Utc::now();
    match cmd {
        InviteCommand::Create(a) => {
            let expiry = match (&a.expires_in, &a.expires_at) {
                (Some(d), _) => Some(InviteExpiry::InSeconds(parse_duration_secs(
                    "expires_in",
                    d,
                )?)),
                (None, Some(t)) => Some(InviteExpiry::At(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|_| {
                            DomainError::invalid("expires_at", "must be an RFC 3339 time")
                        })?
                        .with_timezone(&Utc),
                )),
                (None, None) => None,
            };
            let on_behalf_of = a
                .on_behalf_of
                .as_deref()
                .map(|v| {
                    v.rsplit_once(':')
                        .map(|(subject, role)| Issuer {
                            subject: subject.into(),
                            role: role.into(),
                        })
                        .ok_or_else(|| {
                            DomainError::invalid("on_behalf_of", "expected SUBJECT:ROLE")
                        })
                })
                .transpose()?;
            let (invite, code) = invites
                .create(
                    CreateInvite {
                        grants: Grants {
                            role: a.role,
                            scopes: a.scopes,
                        },
                        email: a.email,
                        max_uses: a.max_uses,
                        expiry,
                        metadata: metadata(a.metadata.as_deref())?,
                        on_behalf_of,
                    },
                    &actor,
                    &ctx,
                )
                .await?;
            if a.out.json {
                output::json(&json!({ "invite": invite.view(now), "code": code }));
            } else {
                print_invite(&invite.view(now), false);
                println!("\ncode          {code}");
                eprintln!(
                    "\nThis is the only time the code is shown. Share it with the invitee now."
                );
            }
        }
        InviteCommand::List {
            state,
            issuer,
            limit,
            cursor,
            include_deleted,
            out,
        } => {
            let state = state
                .as_deref()
                .map(|s| {
                    InviteState::parse(s).ok_or_else(|| {
                        DomainError::invalid("state", "must be active, used, expired or revoked")
                    })
                })
                .transpose()?;
            let limit = tessera_core::pagination::page_size(Some(limit))?;
            let page = invites
                .list(ListInvites {
                    state,
                    issuer,
                    include_deleted,
                    cursor,
                    limit,
                })
                .await?;
            let items: Vec<_> = page.items.iter().map(|i| i.view(now)).collect();
            if out.json {
                output::json(&json!({ "items": items, "next_cursor": page.next_cursor }));
            } else {
                println!(
                    "{:<36}  {:<8}  {:<16}  {:<20}  {:<7}  EXPIRES",
                    "ID", "STATE", "ROLE", "ISSUER", "USES"
                );
                for i in &items {
                    println!(
                        "{:<36}  {:<8}  {:<16}  {:<20}  {:<7}  {}",
                        i.id,
                        format!("{:?}", i.state).to_lowercase(),
                        i.grants.role,
                        i.issuer.subject,
                        format!("{}/{}", i.uses, i.max_uses),
                        i.expires_at.format("%Y-%m-%d %H:%M")
                    );
                }
                if let Some(c) = page.next_cursor {
                    println!("\nmore: --cursor {c}");
                }
            }
        }
        InviteCommand::Show { id, out } => {
            print_invite(&invites.get(&id).await?.view(now), out.json)
        }
        InviteCommand::Revoke { id, out } => print_invite(
            &invites.revoke(&id, &actor, &ctx).await?.view(now),
            out.json,
        ),
        InviteCommand::Delete { id, out } => print_invite(
            &invites.delete(&id, &actor, &ctx).await?.view(now),
            out.json,
        ),
        InviteCommand::Validate { code, email, out } => {
            let code = from_stdin_if_dash("code", code)?;
            let result = invites.validate(&code, email.as_deref(), &attempt).await?;
            let valid = result.is_ok();
            let body = match result {
                Ok(i) => {
                    json!({"valid": true, "invite": {"id": i.id, "grants": i.grants, "expires_at": i.expires_at, "uses_left": i.uses_left()}})
                }
                Err(f) => json!({"valid": false, "code": f}),
            };
            if out.json {
                output::json(&body);
            } else if valid {
                println!(
                    "valid: grants {} ({} uses left)",
                    body["invite"]["grants"]["role"], body["invite"]["uses_left"]
                );
            } else {
                println!("invalid: {}", body["code"].as_str().unwrap_or_default());
            }
            return Ok(if valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        InviteCommand::Redeem {
            code,
            subject,
            email,
            out,
        } => {
            let code = from_stdin_if_dash("code", code)?;
            let i = invites
                .redeem(&code, &subject, email.as_deref(), &attempt)
                .await?;
            let body = json!({"invite_id": i.id, "subject": subject.trim(), "grants": i.grants, "uses_left": i.uses_left(), "redeemed_at": i.updated_at});
            if out.json {
                output::json(&body);
            } else {
                println!(
                    "redeemed: {} now has role {}",
                    body["subject"], i.grants.role
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
