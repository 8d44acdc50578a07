//! `tessera jobs …`: the scheduled jobs' last runs, and running one now.

use std::process::ExitCode;

use serde_json::json;
use tessera_core::DomainError;
use tessera_server::{
    scheduler::{self, Job},
    Config,
};

use super::WantsJson;
use crate::{cli::JobsCommand, output};

fn run_json(r: &tessera_store::JobRun) -> serde_json::Value {
    json!({
        "job": r.job, "holder": r.holder, "started_at": r.started_at, "finished_at": r.finished_at,
        "outcome": r.outcome, "items": r.items, "error": r.error,
    })
}

impl WantsJson for JobsCommand {
    fn wants_json(&self) -> bool {
        match self {
            JobsCommand::List { out } | JobsCommand::Run { out, .. } => out.json,
        }
    }
}

pub async fn run(config: Config, cmd: JobsCommand) -> ExitCode {
    let settings = config.jobs.clone();
    super::with_services(&config, cmd.wants_json(), async |services| {
        match cmd {
            JobsCommand::List { out } => {
                let mut items = Vec::new();
                for job in Job::ALL {
                    let s = services.store.job_summary(job.name()).await?;
                    items.push(json!({
                        "job": job.name(),
                        "interval_seconds": job.interval(&settings).as_secs(),
                        "last_run": s.last_run.as_ref().map(run_json),
                        "last_success_at": s.last_success_at,
                    }));
                }
                if out.json {
                    output::json(&json!({ "items": items }));
                } else {
                    println!("{:<26} {:>10}  {:<8}  {:>6}  LAST RUN", "JOB", "INTERVAL", "OUTCOME", "ITEMS");
                    for i in &items {
                        let last = &i["last_run"];
                        println!(
                            "{:<26} {:>9}s  {:<8}  {:>6}  {}",
                            i["job"].as_str().unwrap_or_default(),
                            i["interval_seconds"],
                            last["outcome"].as_str().unwrap_or("never"),
                            last["items"].as_i64().map_or("-".to_string(), |n| n.to_string()),
                            last["started_at"].as_str().unwrap_or("-"),
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            JobsCommand::Run { name, .. } => {
                let job = Job::parse(&name).ok_or_else(|| {
                    DomainError::invalid(
                        "name",
                        "must be revoke_expired_tokens, purge_old_logs, rotate_expiring_tokens or resend_pending_webhooks",
                    )
                })?;
                let run = scheduler::run_now(services, &settings, job, "cli").await?;
                output::json(&run_json(&run));
                Ok(if run.outcome == "success" { ExitCode::SUCCESS } else { ExitCode::from(output::EXIT_ERROR) })
            }
        }
    })
    .await
}
