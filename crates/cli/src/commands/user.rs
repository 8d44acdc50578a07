//! `tessera user …`: users of the built-in identity store, with the same
//! service functions (rules, audit rows, events and JSON) as the HTTP API;
//! actor `cli`. Import lives in `user_import`, export and erasure in
//! `user_privacy`.

use std::process::ExitCode;

use tessera_core::{
    audit::{Actor, RequestContext},
    pagination::page_size,
    user::{UserStatus, UserView},
};
use tessera_server::service::users::{CreateUser, UserService};
use tessera_server::service::ServiceError;
use tessera_server::{Config, Services};
use tessera_store::UserQuery;

use super::{args::password_from_stdin, WantsJson};
use crate::{
    cli::{SetPasswordArgs, UserCommand, UserCreateArgs},
    output,
};

impl WantsJson for UserCommand {
    fn wants_json(&self) -> bool {
        match self {
            UserCommand::Create(a) => a.out.json,
            UserCommand::List { out, .. } => out.json,
            UserCommand::Show(a)
            | UserCommand::Disable(a)
            | UserCommand::Enable(a)
            | UserCommand::Delete(a)
            | UserCommand::Unlock(a) => a.out.json,
            UserCommand::SetPassword(a) => a.out.json,
            UserCommand::Import(a) => a.json,
            UserCommand::Export { .. } => true,
            UserCommand::Erase(a) => a.out.json,
        }
    }
}

pub async fn run(config: Config, cmd: UserCommand) -> ExitCode {
    match cmd {
        UserCommand::Import(a) => super::user_import::run(&config, a).await,
        UserCommand::Export { id } => super::user_privacy::export(&config, id).await,
        UserCommand::Erase(a) => super::user_privacy::erase(&config, a).await,
        other => super::run_admin(&config, other, execute).await,
    }
}

/// A user as `key value` lines, or the API's JSON.
pub fn print_user(v: &UserView, as_json: bool) {
    if as_json {
        output::json(v);
        return;
    }
    let date = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map_or_else(|| "-".to_string(), |d| d.to_rfc3339())
    };
    println!("id              {}", v.id);
    println!("email           {}", v.email);
    println!("email_verified  {}", v.email_verified);
    println!(
        "display_name    {}",
        v.display_name.as_deref().unwrap_or("-")
    );
    println!("locale          {}", v.locale.as_deref().unwrap_or("-"));
    println!("roles           {}", output::list_or_dash(&v.roles));
    println!("status          {}", v.status.as_str());
    println!("has_password    {}", v.has_password);
    println!("created_at      {}", v.created_at.to_rfc3339());
    println!("last_login_at   {}", date(v.last_login_at));
    println!("deleted_at      {}", date(v.deleted_at));
}

async fn execute(services: &Services, cmd: UserCommand) -> Result<ExitCode, ServiceError> {
    let users = &services.users;
    let (actor, ctx) = (Actor::Cli, RequestContext::default());
    match cmd {
        UserCommand::Create(a) => {
            create(users, a).await?;
            // The verification mail (TESSERA_SEND_VERIFICATION_ON_SIGNUP)
            // goes out in the background: finish it before the process ends.
            services.links.wait_idle().await;
        }
        UserCommand::List {
            email,
            status,
            page,
            out,
        } => {
            let query = UserQuery {
                email,
                status: status.as_deref().and_then(UserStatus::parse),
                include_deleted: false,
                cursor: page.cursor,
                limit: page_size(Some(page.limit))?,
            };
            list(users, query, out.json).await?;
        }
        UserCommand::Show(a) => print_user(&users.get(&a.id).await?.view(), a.out.json),
        UserCommand::Disable(a) => {
            let user = users
                .set_status(&a.id, UserStatus::Disabled, &actor, &ctx)
                .await?;
            print_user(&user.view(), a.out.json);
        }
        UserCommand::Enable(a) => {
            let user = users
                .set_status(&a.id, UserStatus::Active, &actor, &ctx)
                .await?;
            print_user(&user.view(), a.out.json);
        }
        UserCommand::SetPassword(a) => set_password(users, a).await?,
        UserCommand::Delete(a) => {
            users.delete(&a.id, &actor, &ctx).await?;
            // The deleted account as it now stands (deleted_at set).
            match services.store.get_user(&a.id).await? {
                Some(u) => print_user(&u.view(), a.out.json),
                None => println!("deleted"),
            }
        }
        UserCommand::Unlock(a) => {
            print_user(&users.unlock(&a.id, &actor, &ctx).await?.view(), a.out.json);
        }
        UserCommand::Import(_) | UserCommand::Export { .. } | UserCommand::Erase(_) => {
            unreachable!("dispatched by run")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(users: &UserService, a: UserCreateArgs) -> Result<(), ServiceError> {
    let password = if a.password_stdin {
        Some(password_from_stdin("password")?)
    } else {
        None
    };
    let input = CreateUser {
        email: a.email,
        password,
        display_name: a.display_name,
        locale: a.locale,
        roles: a.roles,
        email_verified: a.email_verified,
    };
    let user = users
        .create(input, &Actor::Cli, &RequestContext::default())
        .await?;
    print_user(&user.view(), a.out.json);
    Ok(())
}

async fn set_password(users: &UserService, a: SetPasswordArgs) -> Result<(), ServiceError> {
    let password = password_from_stdin("password")?;
    let user = users
        .set_password(
            &a.id,
            &password,
            None,
            &Actor::Cli,
            &RequestContext::default(),
        )
        .await?;
    print_user(&user.view(), a.out.json);
    Ok(())
}

async fn list(users: &UserService, query: UserQuery, as_json: bool) -> Result<(), ServiceError> {
    let page = users.list(query).await?;
    let items: Vec<UserView> = page.items.iter().map(|u| u.view()).collect();
    if as_json {
        output::page(&items, page.next_cursor.as_deref());
        return Ok(());
    }
    // 100 columns: long e-mail addresses and role lists are clipped.
    println!(
        "{:<36}  {:<26}  {:<8}  {:<12}  LAST LOGIN",
        "ID", "EMAIL", "STATUS", "ROLES"
    );
    for u in &items {
        println!(
            "{:<36}  {:<26}  {:<8}  {:<12}  {}",
            u.id,
            output::clip(&u.email, 26),
            u.status.as_str(),
            output::clip(&output::list_or_dash(&u.roles), 12),
            u.last_login_at
                .map_or_else(|| "never".into(), |d| d.format("%Y-%m-%d").to_string()),
        );
    }
    if let Some(c) = page.next_cursor {
        println!("\nmore: --cursor {c}");
    }
    Ok(())
}
