//! `tessera upstream …`: the upstream token cache from the command line,
//! built from the same `[upstreams]` table and `REDIS_URI` as the server.
//! Output is JSON (the same objects the HTTP API returns).

use std::process::ExitCode;

use serde_json::json;
use tessera_server::{error::ApiError, Config};
use tessera_upstream::UpstreamError;

use crate::{cli::UpstreamCommand, output};

fn user_or_default(
    cache: &tessera_upstream::TokenCache,
    api: &str,
    user: Option<String>,
) -> Result<String, UpstreamError> {
    match user {
        Some(u) => Ok(u),
        None => cache
            .default_user(api)
            .map(str::to_string)
            .ok_or_else(|| UpstreamError::UnknownUpstream(api.to_string())),
    }
}

pub async fn run(config: Config, cmd: UpstreamCommand) -> ExitCode {
    super::with_services(&config, true, async |services| {
        let cache = &services.upstream;
        let result: Result<serde_json::Value, UpstreamError> = async {
            Ok(match cmd {
                UpstreamCommand::List => {
                    let mut items = Vec::new();
                    for u in cache.upstreams() {
                        let cached = cache.get_token_info(&u.name, &u.default_user).await?;
                        items.push(json!({ "upstream": u, "cached": cached }));
                    }
                    json!({ "items": items })
                }
                UpstreamCommand::Info { api, user } => {
                    let user = user_or_default(cache, &api, user)?;
                    json!({ "api": api, "user": user, "cached": cache.get_token_info(&api, &user).await? })
                }
                UpstreamCommand::Token { api, user } => {
                    let user = user_or_default(cache, &api, user)?;
                    let t = cache.get_token(&api, &user).await?;
                    json!({ "token": t.expose(), "expires_at": t.expires_at, "tier": t.tier })
                }
                UpstreamCommand::Clear { api, user: Some(user) } => {
                    let api = api.expect("clap requires api with --user");
                    json!(cache.delete_token(&api, &user).await?)
                }
                UpstreamCommand::Clear { api, user: None } => json!(cache.clear_all_tokens(api.as_deref()).await?),
                UpstreamCommand::Health => json!(cache.health_check().await),
            })
        }
        .await;
        match result {
            Ok(v) => {
                output::json(&v);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(output::error(ApiError::from(e), true)),
        }
    })
    .await
}
