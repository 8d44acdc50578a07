//! `tessera user import FILE`: accounts from the service Tessera replaces,
//! read from JSONL or CSV and created one by one through
//! `UserService::import` (idempotent by e-mail). Each record is reported
//! by its line number; a reason never quotes the password hash.

use std::{collections::HashSet, path::Path, process::ExitCode};

use serde::{Deserialize, Serialize};
use tessera_core::{
    audit::{Actor, RequestContext},
    DomainError,
};
use tessera_server::error::ApiError;
use tessera_server::service::users::{ImportOutcome, ImportRecord};
use tessera_server::service::ServiceError;
use tessera_server::{Config, Services};

use crate::{
    cli::{ImportArgs, ImportFormat},
    output,
};

/// One record as a JSONL line holds it.
#[derive(Deserialize)]
struct JsonRecord {
    email: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    roles: Vec<String>,
    password_hash: String,
    display_name: Option<String>,
    locale: Option<String>,
}

/// A record of the file, or why its line is not one.
struct Line {
    number: usize,
    record: Result<ImportRecord, String>,
}

/// What happened to one line, as `--json` prints it.
#[derive(Serialize)]
struct LineReport {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// created, skipped or failed (with --dry-run: valid, skipped, failed).
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize, Default)]
struct Summary {
    dry_run: bool,
    created: usize,
    skipped: usize,
    failed: usize,
    records: Vec<LineReport>,
}

pub async fn run(config: &Config, a: ImportArgs) -> ExitCode {
    let lines = match read_file(&a.file, a.format) {
        Ok(lines) => lines,
        Err(e) => return output::error(ServiceError::from(e), a.json),
    };
    super::with_services(config, a.json, async |services| {
        let summary = import_all(services, lines, a.dry_run).await?;
        print_summary(&summary, a.json);
        Ok(if summary.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(output::EXIT_ERROR)
        })
    })
    .await
}

fn read_file(path: &Path, format: Option<ImportFormat>) -> Result<Vec<Line>, DomainError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        DomainError::invalid(
            "file",
            format!("cannot read {}: {}", path.display(), e.kind()),
        )
    })?;
    let csv = match format {
        Some(f) => f == ImportFormat::Csv,
        None => path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    if csv {
        parse_csv(&text)
    } else {
        Ok(parse_jsonl(&text))
    }
}

/// Why a JSON line is not a record, without quoting any value of it.
fn json_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.is_data() && (text.starts_with("missing field") || text.starts_with("unknown field")) {
        // Field names only: "missing field `password_hash` at line 1 column 40".
        text.split(" at line").next().unwrap_or("").to_string()
    } else if e.is_data() {
        "a field has the wrong type (email, password_hash, display_name and locale are \
         strings, email_verified a boolean, roles an array of strings)"
            .to_string()
    } else {
        format!("not a JSON object (column {})", e.column())
    }
}

fn parse_jsonl(text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Line {
            number: i + 1,
            record: serde_json::from_str::<JsonRecord>(l)
                .map(|r| ImportRecord {
                    email: r.email,
                    email_verified: r.email_verified,
                    roles: r.roles,
                    password_hash: r.password_hash,
                    display_name: r.display_name,
                    locale: r.locale,
                })
                .map_err(|e| json_problem(&e)),
        })
        .collect()
}

/// The fields of one CSV line: separated by commas, a field in double
/// quotes may hold commas and `""` for a quote. (A record spans one line.)
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err("email_verified must be true or false".into()),
    }
}

fn csv_record(header: &[String], fields: Vec<String>) -> Result<ImportRecord, String> {
    if fields.len() != header.len() {
        return Err(format!(
            "{} fields, the header names {}",
            fields.len(),
            header.len()
        ));
    }
    let mut r = ImportRecord::default();
    for (name, value) in header.iter().zip(fields) {
        let optional = |v: String| Some(v).filter(|v| !v.trim().is_empty());
        match name.as_str() {
            "email" => r.email = value,
            "email_verified" => r.email_verified = parse_bool(&value)?,
            "roles" => {
                r.roles = value
                    .split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            "password_hash" => r.password_hash = value,
            "display_name" => r.display_name = optional(value),
            "locale" => r.locale = optional(value),
            _ => {}
        }
    }
    Ok(r)
}

fn parse_csv(text: &str) -> Result<Vec<Line>, DomainError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => csv_fields(h)
            .map_err(|e| DomainError::invalid("file", format!("header: {e}")))?
            .into_iter()
            .map(|f| f.trim().to_ascii_lowercase())
            .collect(),
        None => return Ok(Vec::new()),
    };
    for required in ["email", "password_hash"] {
        if !header.iter().any(|h| h == required) {
            return Err(DomainError::invalid(
                "file",
                format!("the CSV header has no {required} column"),
            ));
        }
    }
    Ok(lines
        .map(|(i, l)| Line {
            number: i + 1,
            record: csv_fields(l).and_then(|f| csv_record(&header, f)),
        })
        .collect())
}

fn failed(line: usize, email: Option<String>, code: &'static str, reason: String) -> LineReport {
    LineReport {
        line,
        email,
        outcome: "failed",
        id: None,
        code: Some(code),
        reason: Some(reason),
    }
}

/// Imports (or with `dry_run` checks) every line. A rule a record breaks
/// fails that line; anything else (the database) stops the import.
async fn import_all(
    services: &Services,
    lines: Vec<Line>,
    dry_run: bool,
) -> Result<Summary, ServiceError> {
    let mut summary = Summary {
        dry_run,
        ..Summary::default()
    };
    let mut seen = HashSet::new();
    for Line { number, record } in lines {
        let record = match record {
            Ok(r) => r,
            Err(reason) => {
                summary
                    .records
                    .push(failed(number, None, "invalid_record", reason));
                continue;
            }
        };
        let email = Some(record.email.clone());
        let outcome = if dry_run {
            check(services, record, &mut seen).await
        } else {
            let (actor, ctx) = (Actor::Cli, RequestContext::default());
            services.users.import(record, &actor, &ctx).await
        };
        let report = match outcome {
            Ok(o) => done(number, email, o, dry_run),
            Err(ServiceError::Domain(d)) => {
                let e = ApiError::from(ServiceError::Domain(d));
                failed(number, email, e.code, e.detail)
            }
            Err(other) => return Err(other),
        };
        summary.records.push(report);
    }
    for r in &summary.records {
        match r.outcome {
            "failed" => summary.failed += 1,
            "skipped" => summary.skipped += 1,
            _ => summary.created += 1,
        }
    }
    Ok(summary)
}

/// `--dry-run`: what importing the record would do, changing nothing.
async fn check(
    services: &Services,
    record: ImportRecord,
    seen: &mut HashSet<String>,
) -> Result<ImportOutcome, ServiceError> {
    let user = services.users.prepare_import(record)?;
    if let Some(existing) = services.store.find_user_by_email(&user.email).await? {
        return Ok(ImportOutcome::Skipped {
            existing_id: existing.id,
        });
    }
    if !seen.insert(user.email.clone()) {
        // An earlier line of the file creates it.
        return Ok(ImportOutcome::Skipped {
            existing_id: String::new(),
        });
    }
    Ok(ImportOutcome::Created(user))
}

fn done(line: usize, email: Option<String>, o: ImportOutcome, dry_run: bool) -> LineReport {
    let (outcome, id) = match o {
        ImportOutcome::Created(_) if dry_run => ("valid", None),
        ImportOutcome::Created(u) => ("created", Some(u.id)),
        ImportOutcome::Skipped { existing_id } => ("skipped", Some(existing_id)),
    };
    LineReport {
        line,
        email,
        outcome,
        id: id.filter(|i| !i.is_empty()),
        code: None,
        reason: None,
    }
}

fn print_summary(s: &Summary, as_json: bool) {
    if as_json {
        output::json(s);
        return;
    }
    for r in &s.records {
        match (r.outcome, &r.reason) {
            ("failed", Some(reason)) => println!(
                "line {}: failed: {reason} ({})",
                r.line,
                r.code.unwrap_or("invalid")
            ),
            (outcome, _) => println!(
                "line {}: {outcome}: {}",
                r.line,
                r.email.as_deref().unwrap_or("-")
            ),
        }
    }
    let created = if s.dry_run { "valid" } else { "created" };
    println!(
        "\n{created} {}, skipped {}, failed {}{}",
        s.created,
        s.skipped,
        s.failed,
        if s.dry_run {
            " (dry run: nothing was created)"
        } else {
            ""
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes_and_commas() {
        assert_eq!(
            csv_fields(r#"a,"b,c","say ""hi""",,"#).unwrap(),
            vec!["a", "b,c", "say \"hi\"", "", ""]
        );
        assert!(csv_fields(r#"a,"b"#).is_err());
    }

    #[test]
    fn csv_records_by_header() {
        let lines = parse_csv(
            "email,email_verified,roles,password_hash,display_name\n\
             ada@example.com,true,admin;member,$2b$04$x,\"Lovelace, Ada\"\n\
             bad@example.com,maybe,,$2b$04$x,\n",
        )
        .unwrap();
        let first = lines[0].record.as_ref().unwrap();
        assert_eq!(lines[0].number, 2);
        assert_eq!(first.roles, vec!["admin", "member"]);
        assert!(first.email_verified);
        assert_eq!(first.display_name.as_deref(), Some("Lovelace, Ada"));
        assert_eq!(lines[1].number, 3);
        assert!(lines[1]
            .record
            .as_ref()
            .unwrap_err()
            .contains("email_verified"));
        assert!(
            parse_csv("email,roles\n").is_err(),
            "no password_hash column"
        );
    }

    #[test]
    fn json_reasons_never_quote_values() {
        let lines = parse_jsonl(
            "{\"email\":\"a@example.com\",\"password_hash\":\"$2b$04$secret\",\"roles\":\"x\"}\n\
             \n\
             {\"email\":\"a@example.com\"}\n\
             {\"password_hash\":\"$2b$04$secret\"",
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].number, 3);
        for l in &lines {
            let reason = l.record.as_ref().unwrap_err();
            assert!(!reason.contains("secret"), "{reason}");
        }
        assert!(lines[1]
            .record
            .as_ref()
            .unwrap_err()
            .contains("password_hash"));
    }
}
