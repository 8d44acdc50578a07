//! `tessera token …`: the token lifecycle, run directly on the database with
//! the same service functions (and JSON) as the HTTP API; actor `cli`.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_core::{
    api_token::{ApiTokenView, ExpiryRequest, TokenState},
    audit::{Actor, RequestContext},
    pagination::{page_size, parse_filter},
    DomainError,
};
use tessera_server::service::ServiceError;
use tessera_server::{
    service::tokens::{
        ControlsInput, CreateToken, CreditsInput, IssuedToken, RateLimitInput, TokenService,
        UpdateToken, VerifyCaller,
    },
    Config, Services,
};
use tessera_store::TokenQuery;

use super::args::{from_stdin_if_dash, metadata, parse_duration_secs};
use crate::{
    cli::{ControlArgs, CreateArgs, ExpiryArgs, ListArgs, TokenCommand, UpdateArgs, VerifyArgs},
    output,
};

wants_json_from_out!(TokenCommand: Create, List, Show, Update, Rotate, Revoke, Delete, Restore, Verify, UnbindDevice);

pub async fn run(config: Config, cmd: TokenCommand) -> ExitCode {
    super::run_admin(&config, cmd, execute).await
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

async fn execute(services: &Services, cmd: TokenCommand) -> Result<ExitCode, ServiceError> {
    let tokens = &services.tokens;
    let actor = Actor::Cli;
    let ctx = RequestContext::default();
    let now = Utc::now();
    match cmd {
        TokenCommand::Create(a) => create(tokens, a).await?,
        TokenCommand::List(a) => list(tokens, a, now).await?,
        TokenCommand::Show(a) => print_token(&tokens.get(&a.id).await?.view(now), a.out.json),
        TokenCommand::Update(a) => update(tokens, a, now).await?,
        TokenCommand::Rotate(a) => {
            let grace = a
                .grace
                .as_deref()
                .map(|g| parse_duration_secs("grace_seconds", g))
                .transpose()?;
            let issued = tokens.rotate(&a.id, grace, &actor, &ctx).await?;
            print_issued(&issued, a.out.json, "the new secret");
        }
        TokenCommand::Revoke(a) => {
            let t = tokens
                .revoke(&a.id, a.purge, a.reason, &actor, &ctx)
                .await?;
            print_token(&t.view(now), a.out.json);
        }
        TokenCommand::Delete(a) => {
            let t = tokens.delete(&a.id, &actor, &ctx).await?;
            print_token(&t.view(now), a.out.json);
        }
        TokenCommand::Restore(a) => {
            let t = tokens.restore(&a.id, &actor, &ctx).await?;
            print_token(&t.view(now), a.out.json);
        }
        TokenCommand::Verify(a) => return verify(tokens, a, now).await,
        TokenCommand::UnbindDevice(a) => {
            let t = tokens.unbind_device(&a.id, &actor, &ctx).await?;
            print_token(&t.view(now), a.out.json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(tokens: &TokenService, a: CreateArgs) -> Result<(), ServiceError> {
    let input = CreateToken {
        name: a.name,
        description: a.description,
        owner: a.owner,
        scopes: a.scopes,
        expiry: expiry(&a.expiry)?,
        metadata: metadata(a.metadata.as_deref())?,
        auto_rotate: a.auto_rotate,
        controls: controls(a.controls)?,
    };
    let defaulted = input.expiry.is_none();
    let issued = tokens
        .create(input, &Actor::Cli, &RequestContext::default())
        .await?;
    if a.secret_only {
        println!("{}", issued.secret.expose());
    } else {
        print_issued(&issued, a.out.json, "the secret");
    }
    if defaulted && !a.out.json {
        expiry_notice(&issued);
    }
    Ok(())
}

/// A token without an explicit lifetime gets the policy's default; say so,
/// or a bootstrap admin token silently stops working months later.
fn expiry_notice(issued: &IssuedToken) {
    if let Some(at) = issued.token.expires_at {
        let days = (at - Utc::now()).num_hours().div_euclid(24).max(0) + 1;
        eprintln!(
            "note: it expires on {} (in about {days} days, TESSERA_TOKEN_DEFAULT_TTL); \
             choose with --expires-in or --expires-at (`never` where \
             TESSERA_TOKEN_ALLOW_NEVER_EXPIRING allows)",
            at.format("%Y-%m-%d")
        );
    }
}

async fn list(tokens: &TokenService, a: ListArgs, now: DateTime<Utc>) -> Result<(), ServiceError> {
    let state = parse_filter(
        "state",
        a.state.as_deref(),
        TokenState::parse,
        "must be active, expired, revoked or purged",
    )?;
    let limit = page_size(Some(a.page.limit))?;
    let page = tokens
        .list(TokenQuery {
            state,
            owner: a.owner,
            include_deleted: a.include_deleted,
            cursor: a.page.cursor,
            limit,
        })
        .await?;
    let items: Vec<_> = page.items.iter().map(|t| t.view(now)).collect();
    if a.out.json {
        output::page(&items, page.next_cursor.as_deref());
    } else {
        output::token_table(&items, page.next_cursor.as_deref());
    }
    Ok(())
}

async fn update(
    tokens: &TokenService,
    a: UpdateArgs,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let input = UpdateToken {
        name: a.name,
        description: a.description.map(|d| (!d.is_empty()).then_some(d)),
        scopes: a.scopes,
        metadata: metadata(a.metadata.as_deref())?,
        expiry: expiry(&a.expiry)?,
        auto_rotate: None,
        controls: controls(a.controls)?,
    };
    let t = tokens
        .update(&a.id, input, &Actor::Cli, &RequestContext::default())
        .await?;
    print_token(&t.view(now), a.out.json);
    Ok(())
}

/// Exit 0 if the token is valid (and has `scopes`), 1 if not.
async fn verify(
    tokens: &TokenService,
    a: VerifyArgs,
    now: DateTime<Utc>,
) -> Result<ExitCode, ServiceError> {
    let raw = from_stdin_if_dash("token", a.token)?;
    let result = tokens
        .verify(&raw, &a.scopes, &VerifyCaller::console())
        .await?;
    let (valid, body) = match result {
        Ok(t) => (true, json!({ "valid": true, "token": t.view(now) })),
        Err(refusal) => (false, json!({ "valid": false, "code": refusal.code })),
    };
    if a.out.json {
        output::json(&body);
    } else if valid {
        println!("valid: {} ({})", body["token"]["name"], body["token"]["id"]);
    } else {
        println!("invalid: {}", body["code"].as_str().unwrap_or_default());
    }
    Ok(output::valid_exit(valid))
}

/// The usage-control flags as the service takes them. `none` clears a
/// list, the credits or the rate limits.
fn controls(a: ControlArgs) -> Result<ControlsInput, DomainError> {
    let list = |l: Option<Vec<String>>| l.map(|l| if is_none(&l) { Vec::new() } else { l });
    let credits = match a.credits.as_deref() {
        None => None,
        Some("none") if a.refill.is_none() => Some(None),
        Some(n) => Some(Some(CreditsInput {
            remaining: n
                .parse()
                .map_err(|_| DomainError::invalid("credits", "must be a whole number or none"))?,
            refill: a.refill.as_deref().map(refill).transpose()?,
        })),
    };
    let ratelimits = match a.ratelimits {
        None => None,
        Some(l) if is_none(&l) => Some(Vec::new()),
        Some(l) => Some(l.iter().map(|r| ratelimit(r)).collect::<Result<_, _>>()?),
    };
    Ok(ControlsInput {
        ip_allow: list(a.ip_allow),
        ip_deny: list(a.ip_deny),
        device_binding: a.device_binding,
        device_id: a.device_id,
        credits,
        ratelimits,
    })
}

fn is_none(list: &[String]) -> bool {
    matches!(list, [one] if one == "none")
}

/// `AMOUNT/INTERVAL`, e.g. `1000/1d`.
fn refill(v: &str) -> Result<(i64, String), DomainError> {
    let bad = || DomainError::invalid("refill", "expected AMOUNT/INTERVAL, e.g. 1000/1d");
    let (amount, interval) = v.split_once('/').ok_or_else(bad)?;
    Ok((amount.parse().map_err(|_| bad())?, interval.to_string()))
}

/// `NAME:LIMIT/PERIOD[:BURST]`, e.g. `default:100/1m` or `api:100/1m:150`.
fn ratelimit(v: &str) -> Result<RateLimitInput, DomainError> {
    let bad = || {
        DomainError::invalid(
            "ratelimit",
            "expected NAME:LIMIT/PERIOD[:BURST], e.g. default:100/1m",
        )
    };
    let (name, rest) = v.split_once(':').ok_or_else(bad)?;
    let (limit, rest) = rest.split_once('/').ok_or_else(bad)?;
    let (period, burst) = match rest.split_once(':') {
        Some((p, b)) => (p, Some(b.parse().map_err(|_| bad())?)),
        None => (rest, None),
    };
    Ok(RateLimitInput {
        name: name.to_string(),
        limit: limit.parse().map_err(|_| bad())?,
        period: period.to_string(),
        burst,
    })
}

fn print_token(t: &ApiTokenView, as_json: bool) {
    if as_json {
        output::json(t);
    } else {
        output::token_details(t);
    }
}

/// A token with its secret: `what` names the secret in the reminder that it
/// is shown only once.
fn print_issued(issued: &IssuedToken, as_json: bool, what: &str) {
    if as_json {
        output::json(issued);
    } else {
        output::token_details(&issued.token);
        println!("\nsecret        {}", issued.secret.expose());
        eprintln!("\nThis is the only time {what} is shown. Store it now.");
    }
}
