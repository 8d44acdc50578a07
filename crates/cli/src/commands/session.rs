//! `tessera session …`: list and revoke sessions on the database with the
//! service functions behind `/v1/users/{id}/sessions`,
//! `/v1/subjects/{subject}/sessions` and `DELETE /v1/sessions/{sid}`.

use std::process::ExitCode;

use tessera_core::{
    audit::{Actor, RequestContext},
    ids::validate_subject,
    pagination::page_size,
    session::{RevokeReason, SessionView},
};
use tessera_server::service::ServiceError;
use tessera_server::{Config, Services};
use tessera_store::SessionQuery;

use crate::{
    cli::{SessionCommand, SessionListArgs},
    output,
};

wants_json_from_out!(SessionCommand: List, Revoke);

pub async fn run(config: Config, cmd: SessionCommand) -> ExitCode {
    super::run_admin(&config, cmd, execute).await
}

async fn execute(services: &Services, cmd: SessionCommand) -> Result<ExitCode, ServiceError> {
    match cmd {
        SessionCommand::List(a) => list(services, a).await?,
        SessionCommand::Revoke(a) => {
            let s = services
                .sessions
                .revoke(
                    &a.id,
                    RevokeReason::Admin,
                    &Actor::Cli,
                    &RequestContext::default(),
                )
                .await?;
            print_session(&s.view(chrono::Utc::now()), a.out.json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_session(s: &SessionView, as_json: bool) {
    if as_json {
        output::json(s);
        return;
    }
    let date = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map_or_else(|| "-".to_string(), |d| d.to_rfc3339())
    };
    println!("id                 {}", s.id);
    println!("subject            {}", s.subject);
    println!("state              {}", s.state);
    println!(
        "client_id          {}",
        s.client_id.as_deref().unwrap_or("-")
    );
    println!("scope              {}", s.scope);
    println!("amr                {}", output::list_or_dash(&s.amr));
    // Whether refreshes must come from the device it was opened from.
    println!("device_bound       {}", s.device_bound);
    println!("created_at         {}", s.created_at.to_rfc3339());
    println!("last_refreshed_at  {}", date(s.last_refreshed_at));
    println!("expires_at         {}", s.expires_at.to_rfc3339());
    println!("revoked_at         {}", date(s.revoked_at));
    if let Some(r) = s.revoke_reason {
        println!("revoke_reason      {}", r.as_str());
    }
}

async fn list(services: &Services, a: SessionListArgs) -> Result<(), ServiceError> {
    // As over HTTP: a user must exist; a subject is only checked for form.
    let (user_id, subject) = match (a.user, a.subject) {
        (Some(id), _) => (Some(services.users.get(&id).await?.id), None),
        (None, Some(s)) => (None, Some(validate_subject(&s)?)),
        (None, None) => unreachable!("clap requires --user or --subject"),
    };
    let query = SessionQuery {
        subject,
        user_id,
        active_at: a.active.then(chrono::Utc::now),
        cursor: a.page.cursor,
        limit: page_size(Some(a.page.limit))?,
    };
    let page = services.sessions.list(query).await?;
    if a.out.json {
        output::page(&page.items, page.next_cursor.as_deref());
        return Ok(());
    }
    // 100 columns: long client ids and scopes are clipped.
    println!(
        "{:<36}  {:<7}  {:<12}  {:<16}  {:<10}  EXPIRES",
        "ID", "STATE", "CLIENT", "SCOPE", "CREATED"
    );
    for s in &page.items {
        println!(
            "{:<36}  {:<7}  {:<12}  {:<16}  {:<10}  {}",
            s.id,
            s.state,
            output::clip(s.client_id.as_deref().unwrap_or("-"), 12),
            output::clip(if s.scope.is_empty() { "-" } else { &s.scope }, 16),
            s.created_at.format("%Y-%m-%d"),
            s.expires_at.format("%Y-%m-%d"),
        );
    }
    if let Some(c) = page.next_cursor {
        println!("\nmore: --cursor {c}");
    }
    Ok(())
}
