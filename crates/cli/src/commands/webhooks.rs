//! `tessera webhooks …`: endpoints and deliveries on the database, with the
//! same service functions (and JSON) as the HTTP API.

use std::process::ExitCode;

use serde_json::json;
use tessera_core::audit::{Actor, RequestContext};
use tessera_server::{
    service::webhooks::{parse_status, EndpointInput},
    Config,
};
use tessera_store::DeliveryQuery;

use super::WantsJson;
use crate::{
    cli::{EndpointsCommand, WebhooksCommand},
    output,
};

impl super::WantsJson for WebhooksCommand {
    fn wants_json(&self) -> bool {
        match self {
            WebhooksCommand::Deliveries { out, .. } | WebhooksCommand::Retry { out, .. } => {
                out.json
            }
            WebhooksCommand::Endpoints(e) => match e {
                EndpointsCommand::Delete(a) | EndpointsCommand::RotateSecret(a) => a.out.json,
                EndpointsCommand::List { out }
                | EndpointsCommand::Create { out, .. }
                | EndpointsCommand::Update { out, .. } => out.json,
            },
        }
    }
}

pub async fn run(config: Config, cmd: WebhooksCommand) -> ExitCode {
    super::with_services(&config, cmd.wants_json(), async |services| {
        let hooks = &services.webhooks;
        let (actor, ctx) = (Actor::Cli, RequestContext::default());
        let value = match cmd {
            WebhooksCommand::Endpoints(EndpointsCommand::List { .. }) => {
                json!({ "items": hooks.list_endpoints().await? })
            }
            WebhooksCommand::Endpoints(EndpointsCommand::Create { url, description, events, .. }) => {
                let input = EndpointInput {
                    url: Some(url),
                    description: Some(description),
                    event_types: Some(events),
                    enabled: None,
                };
                let (endpoint, secret) = hooks.create_endpoint(input, &actor, &ctx).await?;
                eprintln!("The signing secret is shown only now.");
                json!({ "endpoint": endpoint, "secret": secret.expose() })
            }
            WebhooksCommand::Endpoints(EndpointsCommand::Update { id, url, events, enable, disable, .. }) => {
                let input = EndpointInput {
                    url,
                    description: None,
                    event_types: events,
                    enabled: if enable { Some(true) } else if disable { Some(false) } else { None },
                };
                json!(hooks.update_endpoint(&id, input, &actor, &ctx).await?)
            }
            WebhooksCommand::Endpoints(EndpointsCommand::Delete(a)) => {
                json!(hooks.delete_endpoint(&a.id, &actor, &ctx).await?)
            }
            WebhooksCommand::Endpoints(EndpointsCommand::RotateSecret(a)) => {
                let secret = hooks.rotate_secret(&a.id, &actor, &ctx).await?;
                eprintln!("The new secret is shown only now; the previous one keeps signing for 24 hours.");
                json!({ "secret": secret.expose() })
            }
            WebhooksCommand::Deliveries { status, event, limit, cursor, .. } => {
                let page = hooks
                    .list_deliveries(DeliveryQuery {
                        status: status.as_deref().map(parse_status).transpose()?,
                        event_type: event,
                        endpoint_id: None,
                        cursor,
                        limit: tessera_core::pagination::page_size(Some(limit))?,
                    })
                    .await?;
                json!({ "items": page.items, "next_cursor": page.next_cursor })
            }
            WebhooksCommand::Retry { id, .. } => json!(hooks.retry(&id, &actor, &ctx).await?),
        };
        // The objects are small and regular; pretty JSON is the readable form too.
        output::json(&value);
        Ok(ExitCode::SUCCESS)
    })
    .await
}
