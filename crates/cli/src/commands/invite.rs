//! `tessera invite …`: invites on the database, with the same service
//! functions (and JSON) as the HTTP API; actor `cli`, issuer `cli` as admin
//! unless `--on-behalf-of` names one.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    invite::{Grants, InviteState, InviteView, Issuer},
    pagination::{page_size, parse_filter},
    DomainError,
};
use tessera_server::service::ServiceError;
use tessera_server::{
    service::invites::{Attempt, CreateInvite, InviteExpiry, InviteService},
    Config, Services,
};
use tessera_store::InviteQuery;

use super::args::{from_stdin_if_dash, metadata, parse_duration_secs};
use crate::{
    cli::{InviteCommand, InviteCreateArgs, RedeemArgs, ValidateArgs},
    output,
};

wants_json_from_out!(InviteCommand: Create, Show, Revoke, Delete, Validate, Redeem; List);

pub async fn run(config: Config, cmd: InviteCommand) -> ExitCode {
    super::run_admin(&config, cmd, execute).await
}

fn print_invite(v: &InviteView, as_json: bool) {
    if as_json {
        output::json(v);
        return;
    }
    println!("id            {}", v.id);
    println!("state         {}", v.state.as_str());
    println!("role          {}", v.grants.role);
    println!("scopes        {}", output::list_or_dash(&v.grants.scopes));
    println!("issuer        {} ({})", v.issuer.subject, v.issuer.role);
    println!("email         {}", v.email.as_deref().unwrap_or("-"));
    println!("uses          {}/{}", v.uses, v.max_uses);
    println!("expires_at    {}", v.expires_at.to_rfc3339());
    println!("created_at    {}", v.created_at.to_rfc3339());
}

/// The CLI is an operator at the console: no client address to limit, and
/// no request context for the audit log.
const AT_THE_CONSOLE: Attempt<'static> = Attempt {
    client_ip: None,
    context: &RequestContext::default,
};

async fn execute(services: &Services, cmd: InviteCommand) -> Result<ExitCode, ServiceError> {
    let invites = &services.invites;
    let (actor, ctx) = (Actor::Cli, RequestContext::default());
    let now = Utc::now();
    match cmd {
        InviteCommand::Create(a) => create(invites, a, now).await?,
        InviteCommand::List {
            state,
            issuer,
            page,
            include_deleted,
            out,
        } => {
            let query = InviteQuery {
                state: parse_filter(
                    "state",
                    state.as_deref(),
                    InviteState::parse,
                    "must be active, used, expired or revoked",
                )?,
                issuer,
                include_deleted,
                cursor: page.cursor,
                limit: page_size(Some(page.limit))?,
            };
            list(invites, query, out.json, now).await?;
        }
        InviteCommand::Show(a) => print_invite(&invites.get(&a.id).await?.view(now), a.out.json),
        InviteCommand::Revoke(a) => print_invite(
            &invites.revoke(&a.id, &actor, &ctx).await?.view(now),
            a.out.json,
        ),
        InviteCommand::Delete(a) => print_invite(
            &invites.delete(&a.id, &actor, &ctx).await?.view(now),
            a.out.json,
        ),
        InviteCommand::Validate(a) => return validate(invites, a).await,
        InviteCommand::Redeem(a) => redeem(invites, a).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `--expires-in` or `--expires-at` (clap allows one), or the policy's default.
fn expiry(a: &InviteCreateArgs) -> Result<Option<InviteExpiry>, DomainError> {
    Ok(match (&a.expires_in, &a.expires_at) {
        (Some(d), _) => Some(InviteExpiry::InSeconds(parse_duration_secs(
            "expires_in",
            d,
        )?)),
        (None, Some(t)) => Some(InviteExpiry::At(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| DomainError::invalid("expires_at", "must be an RFC 3339 time"))?
                .with_timezone(&Utc),
        )),
        (None, None) => None,
    })
}

/// `--on-behalf-of SUBJECT:ROLE`.
fn on_behalf_of(v: Option<&str>) -> Result<Option<Issuer>, DomainError> {
    v.map(|v| {
        v.rsplit_once(':')
            .map(|(subject, role)| Issuer {
                subject: subject.into(),
                role: role.into(),
            })
            .ok_or_else(|| DomainError::invalid("on_behalf_of", "expected SUBJECT:ROLE"))
    })
    .transpose()
}

async fn create(
    invites: &InviteService,
    a: InviteCreateArgs,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let expiry = expiry(&a)?;
    let on_behalf_of = on_behalf_of(a.on_behalf_of.as_deref())?;
    let input = CreateInvite {
        grants: Grants {
            role: a.role,
            scopes: a.scopes,
        },
        email: a.email,
        max_uses: a.max_uses,
        expiry,
        metadata: metadata(a.metadata.as_deref())?,
        on_behalf_of,
    };
    let (invite, code) = invites
        .create(input, &Actor::Cli, &RequestContext::default())
        .await?;
    if a.out.json {
        output::json(&json!({ "invite": invite.view(now), "code": code }));
    } else {
        print_invite(&invite.view(now), false);
        println!("\ncode          {code}");
        eprintln!("\nThis is the only time the code is shown. Share it with the invitee now.");
    }
    Ok(())
}

async fn list(
    invites: &InviteService,
    query: InviteQuery,
    as_json: bool,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let page = invites.list(query).await?;
    let items: Vec<_> = page.items.iter().map(|i| i.view(now)).collect();
    if as_json {
        output::page(&items, page.next_cursor.as_deref());
        return Ok(());
    }
    // 100 columns: long roles and issuers (`token:<id>`) are clipped.
    println!(
        "{:<36}  {:<7}  {:<12}  {:<16}  {:<9}  EXPIRES",
        "ID", "STATE", "ROLE", "ISSUER", "USES"
    );
    for i in &items {
        println!(
            "{:<36}  {:<7}  {:<12}  {:<16}  {:<9}  {}",
            i.id,
            i.state.as_str(),
            output::clip(&i.grants.role, 12),
            output::clip(&i.issuer.subject, 16),
            format!("{}/{}", i.uses, i.max_uses),
            i.expires_at.format("%Y-%m-%d")
        );
    }
    if let Some(c) = page.next_cursor {
        println!("\nmore: --cursor {c}");
    }
    Ok(())
}

/// Exit 0 if the code can be used, 1 if not.
async fn validate(invites: &InviteService, a: ValidateArgs) -> Result<ExitCode, ServiceError> {
    let code = from_stdin_if_dash("code", a.code)?;
    let result = invites
        .validate(&code, a.email.as_deref(), &AT_THE_CONSOLE)
        .await?;
    let valid = result.is_ok();
    let body = match result {
        Ok(i) => {
            json!({"valid": true, "invite": {"id": i.id, "grants": i.grants, "expires_at": i.expires_at, "uses_left": i.uses_left()}})
        }
        Err(f) => json!({"valid": false, "code": f}),
    };
    if a.out.json {
        output::json(&body);
    } else if valid {
        println!(
            "valid: grants {} ({} uses left)",
            body["invite"]["grants"]["role"], body["invite"]["uses_left"]
        );
    } else {
        println!("invalid: {}", body["code"].as_str().unwrap_or_default());
    }
    Ok(output::valid_exit(valid))
}

async fn redeem(invites: &InviteService, a: RedeemArgs) -> Result<(), ServiceError> {
    let code = from_stdin_if_dash("code", a.code)?;
    let i = invites
        .redeem(&code, &a.subject, a.email.as_deref(), &AT_THE_CONSOLE)
        .await?;
    let body = json!({"invite_id": i.id, "subject": a.subject.trim(), "grants": i.grants, "uses_left": i.uses_left(), "redeemed_at": i.updated_at});
    if a.out.json {
        output::json(&body);
    } else {
        println!(
            "redeemed: {} now has role {}",
            body["subject"], i.grants.role
        );
    }
    Ok(())
}
