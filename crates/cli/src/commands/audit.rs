//! `tessera audit …`: the audit log read directly on the database, with the
//! same service functions (and JSON) as `GET /v1/audit`: client details
//! opened with the configured keys, and the read audited with actor `cli`.

use std::process::ExitCode;

use tessera_core::audit::{Actor, RequestContext};
use tessera_server::{
    service::{
        audit::{AuditEntryView, AuditFilters},
        ServiceError,
    },
    Config, Services,
};

use crate::{
    cli::{AuditCommand, AuditListArgs},
    output::{self, clip},
};

wants_json_from_out!(AuditCommand: List, Show);

pub async fn run(config: Config, cmd: AuditCommand) -> ExitCode {
    super::run_admin(&config, cmd, execute).await
}

async fn execute(services: &Services, cmd: AuditCommand) -> Result<ExitCode, ServiceError> {
    let (actor, ctx) = (Actor::Cli, RequestContext::default());
    match cmd {
        AuditCommand::List(a) => {
            let json = a.out.json;
            let page = services.audit.list(filters(a), &actor, &ctx).await?;
            if json {
                output::json(&page);
            } else {
                table(&page.items, page.next_cursor.as_deref());
            }
        }
        AuditCommand::Show(a) => {
            let entry = services.audit.show(&a.id, &actor, &ctx).await?;
            if a.out.json {
                output::json(&entry);
            } else {
                details(&entry);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn filters(a: AuditListArgs) -> AuditFilters {
    AuditFilters {
        actor: a.actor,
        action: a.action,
        target_type: a.target_type,
        target_id: a.target_id,
        outcome: a.outcome,
        channel: a.channel,
        since: a.since,
        until: a.until,
        limit: a.limit,
        cursor: a.cursor,
    }
}

/// Entries as a table of 100 columns: the id (for `audit show`), the
/// minute, and who did what, clipped.
fn table(items: &[AuditEntryView], next_cursor: Option<&str>) {
    println!(
        "{:<36}  {:<16}  {:<16}  {:<7}  ACTOR",
        "ID", "AT (UTC)", "ACTION", "OUTCOME"
    );
    for e in items {
        println!(
            "{:<36}  {:<16}  {:<16}  {:<7}  {}",
            e.id,
            e.at.format("%Y-%m-%d %H:%M"),
            clip(&e.action, 16),
            clip(&e.outcome, 7),
            clip(&e.actor, 17),
        );
    }
    if let Some(c) = next_cursor {
        println!("\nmore: --cursor {c}");
    }
}

/// One entry as `key: value` lines.
fn details(e: &AuditEntryView) {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows = [
        ("id", e.id.clone()),
        ("at", e.at.to_rfc3339()),
        ("actor", e.actor.clone()),
        ("action", e.action.clone()),
        ("target_type", e.target_type.clone()),
        ("target_id", or_dash(&e.target_id)),
        ("outcome", e.outcome.clone()),
        ("channel", or_dash(&e.channel)),
        ("occurrences", e.occurrences.to_string()),
        ("request_id", or_dash(&e.request_id)),
        ("ip", or_dash(&e.ip)),
        ("user_agent", or_dash(&e.user_agent)),
        ("details", e.details.to_string()),
    ];
    for (k, v) in rows {
        println!("{k:<12} {v}");
    }
}
