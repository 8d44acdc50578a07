//! `tessera config check` and `tessera openapi`.

use std::process::ExitCode;

use tessera_server::Config;

pub fn run(config: Config, cmd: crate::cli::ConfigCommand) -> ExitCode {
    match cmd {
        crate::cli::ConfigCommand::Check => {
            println!("configuration is valid");
            println!("listen          {}", config.listen);
            println!("database        {}", config.database_url_for_logs());
            println!("data_dir        {}", config.data_dir.display());
            println!(
                "encryption key  {}",
                match &config.encryption_key {
                    tessera_server::config::KeySource::Configured(_) =>
                        "configured (TESSERA_ENC_KEY)".to_string(),
                    tessera_server::config::KeySource::File(p) =>
                        format!("key file {}", p.display()),
                }
            );
            println!("token prefix    {}", config.tokens.format.prefix());
            println!(
                "scopes          {}",
                config.tokens.scopes.names().collect::<Vec<_>>().join(",")
            );
            ExitCode::SUCCESS
        }
    }
}

pub fn print_openapi() -> ExitCode {
    let doc = tessera_server::routes::openapi();
    println!(
        "{}",
        doc.to_pretty_json()
            .expect("the OpenAPI document serializes")
    );
    ExitCode::SUCCESS
}
