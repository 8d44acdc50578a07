//! `tessera client …`: the OAuth2 client registry, with the same service
//! functions (rules, audit rows, events and JSON) as `/v1/clients`; actor
//! `cli`. A secret is printed once, on stdout, and nowhere else.

use std::process::ExitCode;

use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    client_registry::ClientView,
    pagination::page_size,
};
use tessera_server::service::{
    clients::{CreateClient, IssuedSecret, UpdateClient},
    ServiceError,
};
use tessera_server::{Config, Services};

use crate::{
    cli::{ClientCommand, ClientUpdateArgs},
    output,
};

wants_json_from_out!(ClientCommand: Create, Show, Update, RotateSecret, Delete; List);

pub async fn run(config: Config, cmd: ClientCommand) -> ExitCode {
    super::run_admin(&config, cmd, execute).await
}

fn print_client(v: &ClientView, as_json: bool) {
    if as_json {
        output::json(v);
        return;
    }
    let caps: Vec<String> = v.capabilities.iter().map(|c| c.as_str().into()).collect();
    let date = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map_or_else(|| "-".to_string(), |d| d.to_rfc3339())
    };
    println!("id            {}", v.id);
    println!("name          {}", v.name);
    println!("source        {}", json!(v.source).as_str().unwrap_or("-"));
    println!("capabilities  {}", output::list_or_dash(&caps));
    match &v.audiences {
        Some(a) => println!("audiences     {}", output::list_or_dash(a)),
        None => println!("audiences     any"),
    }
    println!("created_at    {}", date(v.created_at));
    if v.previous_secret_expires_at.is_some() {
        println!("old secret until {}", date(v.previous_secret_expires_at));
    }
}

/// A client with its new secret: the API's JSON, or the details, the
/// secret and a reminder (on stderr) that it is shown once.
fn print_issued(issued: &IssuedSecret, as_json: bool, rotated: bool) {
    let view = issued.client.view();
    if as_json {
        let mut body = json!({ "client": view, "client_secret": issued.secret.expose() });
        if rotated {
            body["previous_secret_expires_at"] = json!(issued.client.previous_secret_expires_at);
        }
        output::json(&body);
        return;
    }
    print_client(&view, false);
    println!("\nclient_secret {}", issued.secret.expose());
    eprintln!("\nThis is the only time the secret is shown. Store it now.");
}

async fn execute(services: &Services, cmd: ClientCommand) -> Result<ExitCode, ServiceError> {
    let clients = &services.clients;
    let (actor, ctx) = (Actor::Cli, RequestContext::default());
    match cmd {
        ClientCommand::Create(a) => {
            let input = CreateClient {
                name: a.name,
                capabilities: a.capabilities,
                audiences: (!a.audiences.is_empty()).then_some(a.audiences),
                ip_allow: Some(a.ip_allow),
                ip_deny: Some(a.ip_deny),
            };
            let issued = clients.create(input, &actor, &ctx).await?;
            print_issued(&issued, a.out.json, false);
        }
        ClientCommand::List { page, out } => {
            let listed = clients
                .list(page.cursor, page_size(Some(page.limit))?)
                .await?;
            if out.json {
                output::page(&listed.items, listed.next_cursor.as_deref());
            } else {
                print_table(&listed.items, listed.next_cursor.as_deref());
            }
        }
        ClientCommand::Show(a) => print_client(&clients.get(&a.id).await?, a.out.json),
        ClientCommand::Update(a) => {
            let as_json = a.out.json;
            let id = a.id.clone();
            let view = clients.update(&id, update_of(a), &actor, &ctx).await?;
            print_client(&view, as_json);
        }
        ClientCommand::RotateSecret(a) => {
            let issued = clients
                .rotate_secret(&a.id, a.grace_seconds, &actor, &ctx)
                .await?;
            print_issued(&issued, a.out.json, true);
        }
        ClientCommand::Delete(a) => {
            clients.delete(&a.id, &actor, &ctx).await?;
            if a.out.json {
                output::json(&json!({ "id": a.id, "deleted": true }));
            } else {
                println!("deleted {}", a.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn update_of(a: ClientUpdateArgs) -> UpdateClient {
    let audiences = if a.any_audience {
        Some(None)
    } else {
        (!a.audiences.is_empty()).then_some(Some(a.audiences))
    };
    let list = |l: Option<Vec<String>>| {
        l.map(|l| match l.as_slice() {
            [one] if one == "none" => Vec::new(),
            _ => l,
        })
    };
    UpdateClient {
        name: a.name,
        capabilities: (!a.capabilities.is_empty()).then_some(a.capabilities),
        audiences,
        ip_allow: list(a.ip_allow),
        ip_deny: list(a.ip_deny),
    }
}

fn print_table(items: &[ClientView], next_cursor: Option<&str>) {
    println!(
        "{:<35}  {:<20}  {:<11}  CAPABILITIES",
        "ID", "NAME", "SOURCE"
    );
    for c in items {
        let caps: Vec<String> = c.capabilities.iter().map(|c| c.as_str().into()).collect();
        println!(
            "{:<35}  {:<20}  {:<11}  {}",
            c.id,
            output::clip(&c.name, 20),
            json!(c.source).as_str().unwrap_or("-"),
            caps.join(","),
        );
    }
    if let Some(c) = next_cursor {
        println!("\nmore: --cursor {c}");
    }
}
