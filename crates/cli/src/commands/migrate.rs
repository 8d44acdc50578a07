//! `tessera migrate`: apply (or with --status, report) schema migrations.

use std::process::ExitCode;

use serde_json::json;
use tessera_server::Config;

use crate::{cli::MigrateArgs, output};

pub async fn run(config: Config, args: MigrateArgs) -> ExitCode {
    let store = match tessera_store::connect(config.database_url.expose()).await {
        Ok(s) => s,
        Err(e) => return output::error(e, args.json),
    };
    let result = if args.status {
        store.schema_status().await.map(|s| {
            json!({ "backend": store.backend().name(), "applied": s.applied, "pending": s.pending })
        })
    } else {
        store
            .migrate()
            .await
            .map(|applied| json!({ "backend": store.backend().name(), "applied_now": applied }))
    };
    store.close().await;
    match result {
        Ok(v) if args.json => {
            output::json(&v);
            ExitCode::SUCCESS
        }
        Ok(v) => {
            if args.status {
                println!(
                    "{}: applied {}, pending {}",
                    v["backend"], v["applied"], v["pending"]
                );
            } else if v["applied_now"].as_array().is_some_and(|a| a.is_empty()) {
                println!("{}: schema is up to date", v["backend"]);
            } else {
                println!("{}: applied migrations {}", v["backend"], v["applied_now"]);
            }
            ExitCode::SUCCESS
        }
        Err(e) => output::error(e, args.json),
    }
}
