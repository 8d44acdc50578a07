//! `tessera token …`: the token lifecycle, run directly on the database with
//! the same service functions (and JSON) as the HTTP API; actor `cli`.

use std::{io::Read, process::ExitCode};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tessera_core::{
    api_token::{ExpiryRequest, TokenState},
    audit::{Actor, RequestContext},
    DomainError,
};
use tessera_server::{
    service::tokens::{CreateToken, ListTokens, UpdateToken},
    Config, Services,
};

use crate::{
    cli::{ExpiryArgs, TokenCommand},
    output,
};

fn wants_json(cmd: &TokenCommand) -> bool {
    match cmd {
        TokenCommand::Create(a) => a.out.json,
        TokenCommand::List(a) => a.out.json,
        TokenCommand::Update(a) => a.out.json,
        TokenCommand::Show { out, .. }
        | TokenCommand::Rotate { out, .. }
        | TokenCommand::Revoke { out, .. }
        | TokenCommand::Delete { out, .. }
        | TokenCommand::Restore { out, .. }
        | TokenCommand::Verify { out, .. } => out.json,
    }
}

pub async fn run(config: Config, cmd: TokenCommand) -> ExitCode {
    let as_json = wants_json(&cmd);
    super::with_services(&config, as_json, async |services| {
        execute(services, cmd).await
    })
    .await
}

pub(crate) fn parse_duration_secs(field: &'static str, v: &str) -> Result<i64, DomainError> {
    humantime::parse_duration(v)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("expected a duration such as 30d or 12h, got {v:?}"),
            )
        })
}

fn expiry(args: &ExpiryArgs) -> Result<Option<ExpiryRequest>, DomainError> {
    if let Some(v) = &args.expires_in {
        return Ok(Some(ExpiryRequest::InSeconds(parse_duration_secs(
            "expires_in",
            v,
        )?)));
    }
    match args.expires_at.as_deref() {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("never") => Ok(Some(ExpiryRequest::Never)),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(ExpiryRequest::At(t.with_timezone(&Utc))))
            .map_err(|_| {
                DomainError::invalid("expires_at", "must be an RFC 3339 time or \"never\"")
            }),
    }
}

pub(crate) fn metadata(v: Option<&str>) -> Result<Option<Map<String, Value>>, DomainError> {
    v.map(|text| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(DomainError::invalid("metadata", "must be a JSON object")),
    })
    .transpose()
}

async fn execute(
    services: &Services,
    cmd: TokenCommand,
) -> Result<ExitCode, tessera_store::StoreError> {
    let tokens = &services.tokens;
    let actor = Actor::Cli;
    let ctx = RequestContext::default();
    let now = Utc::now();
    match cmd {
        TokenCommand::Create(a) => {
            let issued = tokens
                .create(
                    CreateToken {
                        name: a.name,
                        description: a.description,
                        owner: a.owner,
                        scopes: a.scopes,
                        expiry: expiry(&a.expiry)?,
                        metadata: metadata(a.metadata.as_deref())?,
                        auto_rotate: a.auto_rotate,
                    },
                    &actor,
                    &ctx,
                )
                .await?;
            if a.out.json {
                output::json(&issued);
            } else {
                output::token_details(&issued.token);
                println!("\nsecret        {}", issued.secret.expose());
                eprintln!("\nThis is the only time the secret is shown. Store it now.");
            }
        }
        TokenCommand::List(a) => {
            let state = a
                .state
                .as_deref()
                .map(|s| {
                    TokenState::parse(s).ok_or_else(|| {
                        DomainError::invalid("state", "must be active, expired, revoked or purged")
                    })
                })
                .transpose()?;
            let limit = tessera_core::pagination::page_size(Some(a.limit))?;
            let page = tokens
                .list(ListTokens {
                    state,
                    owner: a.owner,
                    include_deleted: a.include_deleted,
                    cursor: a.cursor,
                    limit,
                })
                .await?;
            let items: Vec<_> = page.items.iter().map(|t| t.view(now)).collect();
            if a.out.json {
                output::json(
                    &serde_json::json!({ "items": items, "next_cursor": page.next_cursor }),
                );
            } else {
                output::token_table(&items, page.next_cursor.as_deref());
            }
        }
        TokenCommand::Show { id, out } => {
            let t = tokens.get(&id).await?;
            print_token(&t.view(now), out.json);
        }
        TokenCommand::Update(a) => {
            let t = tokens
                .update(
                    &a.id,
                    UpdateToken {
                        name: a.name,
                        description: a.description.map(|d| (!d.is_empty()).then_some(d)),
                        scopes: a.scopes,
                        metadata: metadata(a.metadata.as_deref())?,
                        expiry: expiry(&a.expiry)?,
                        auto_rotate: None,
                    },
                    &actor,
                    &ctx,
                )
                .await?;
            print_token(&t.view(now), a.out.json);
        }
        TokenCommand::Rotate { id, grace, out } => {
            let grace = grace
                .as_deref()
                .map(|g| parse_duration_secs("grace_seconds", g))
                .transpose()?;
            let issued = tokens.rotate(&id, grace, &actor, &ctx).await?;
            if out.json {
                output::json(&issued);
            } else {
                output::token_details(&issued.token);
                println!("\nsecret        {}", issued.secret.expose());
                eprintln!("\nThis is the only time the new secret is shown. Store it now.");
            }
        }
        TokenCommand::Revoke {
            id,
            purge,
            reason,
            out,
        } => {
            let t = tokens.revoke(&id, purge, reason, &actor, &ctx).await?;
            print_token(&t.view(now), out.json);
        }
        TokenCommand::Delete { id, out } => {
            let t = tokens.delete(&id, &actor, &ctx).await?;
            print_token(&t.view(now), out.json);
        }
        TokenCommand::Restore { id, out } => {
            let t = tokens.restore(&id, &actor, &ctx).await?;
            print_token(&t.view(now), out.json);
        }
        TokenCommand::Verify { token, scopes, out } => {
            let raw = from_stdin_if_dash("token", token)?;
            let result = tokens
                .verify(&raw, &scopes, RequestContext::default)
                .await?;
            let (valid, body) = match result {
                Ok(t) => (
                    true,
                    serde_json::json!({ "valid": true, "token": t.view(now) }),
                ),
                Err(code) => (false, serde_json::json!({ "valid": false, "code": code })),
            };
            if out.json {
                output::json(&body);
            } else if valid {
                println!("valid: {} ({})", body["token"]["name"], body["token"]["id"]);
            } else {
                println!("invalid: {}", body["code"].as_str().unwrap_or_default());
            }
            return Ok(if valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `-` means "read the value from stdin", keeping secrets out of shell history.
pub(crate) fn from_stdin_if_dash(
    field: &'static str,
    value: String,
) -> Result<String, DomainError> {
    if value != "-" {
        return Ok(value);
    }
    let mut buf = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut buf)
        .map_err(|_| DomainError::invalid(field, "could not be read from stdin"))?;
    Ok(buf.trim().to_string())
}

fn print_token(t: &tessera_core::api_token::ApiTokenView, as_json: bool) {
    if as_json {
        output::json(t);
    } else {
        output::token_details(t);
    }
}
