//! Printing results: a readable form for people, or with `--json` exactly
//! the object the HTTP API returns. Errors use the same problem document.

use std::process::ExitCode;

use serde::Serialize;
use tessera_core::api_token::ApiTokenView;
use tessera_server::error::ApiError;

/// Exit status for any error.
pub const EXIT_ERROR: u8 = 2;

/// Exit status of `verify` and `validate` when the token or code is not valid.
pub const EXIT_INVALID: u8 = 1;

/// Success for a valid token or code, [`EXIT_INVALID`] otherwise.
pub fn valid_exit(valid: bool) -> ExitCode {
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

pub fn json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("API objects always serialize")
    );
}

/// A page of a list as the API returns it: `{"items": [...], "next_cursor": ...}`.
pub fn page<T: Serialize>(items: &[T], next_cursor: Option<&str>) {
    json(&serde_json::json!({ "items": items, "next_cursor": next_cursor }));
}

/// Reports an error the way the API would, and returns the error exit code.
pub fn error(e: impl Into<ApiError>, as_json: bool) -> ExitCode {
    let e: ApiError = e.into();
    if as_json {
        json(&e.problem());
    }
    eprintln!("error: {} ({})", e.detail, e.code);
    ExitCode::from(EXIT_ERROR)
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// A token as `key: value` lines.
pub fn token_details(t: &ApiTokenView) {
    let rows = [
        ("id", t.id.clone()),
        ("name", t.name.clone()),
        ("state", t.state.as_str().to_string()),
        ("hint", t.hint.clone()),
        ("owner", opt(&t.owner)),
        ("scopes", t.scopes.join(",")),
        ("description", opt(&t.description)),
        (
            "metadata",
            serde_json::Value::Object(t.metadata.clone()).to_string(),
        ),
        ("created_at", t.created_at.to_rfc3339()),
        ("updated_at", t.updated_at.to_rfc3339()),
        (
            "expires_at",
            t.expires_at
                .map_or_else(|| "never".into(), |e| e.to_rfc3339()),
        ),
        ("last_used_at", opt(&t.last_used_at.map(|d| d.to_rfc3339()))),
        ("revoked_at", opt(&t.revoked_at.map(|d| d.to_rfc3339()))),
        ("purged_at", opt(&t.purged_at.map(|d| d.to_rfc3339()))),
        ("deleted_at", opt(&t.deleted_at.map(|d| d.to_rfc3339()))),
    ];
    for (k, v) in rows {
        println!("{k:<13} {v}");
    }
    control_details(t);
}

/// The usage controls a token has, one line each (none: no lines).
fn control_details(t: &ApiTokenView) {
    let nets = |l: &[tessera_core::token_controls::IpNet]| {
        l.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut rows: Vec<(&str, String)> = Vec::new();
    if !t.ip_allow.is_empty() {
        rows.push(("ip_allow", nets(&t.ip_allow)));
    }
    if !t.ip_deny.is_empty() {
        rows.push(("ip_deny", nets(&t.ip_deny)));
    }
    if t.device_binding != tessera_core::token_controls::DeviceBinding::None {
        let bound = if t.device_bound { "bound" } else { "not bound" };
        let mode = serde_json::to_value(t.device_binding).unwrap_or_default();
        rows.push((
            "device",
            format!("{} ({bound})", mode.as_str().unwrap_or("")),
        ));
    }
    if let Some(c) = &t.credits {
        let refill = c
            .refill
            .map(|r| format!(", refill {}/{}", r.amount, r.interval))
            .unwrap_or_default();
        rows.push(("credits", format!("{}{refill}", c.remaining)));
    }
    for l in &t.ratelimits {
        let burst = l.burst.map(|b| format!(" (burst {b})")).unwrap_or_default();
        rows.push((
            "ratelimit",
            format!("{}: {}/{}{burst}", l.name, l.limit, l.period),
        ));
    }
    for (k, v) in rows {
        println!("{k:<13} {v}");
    }
}

/// Tokens as an aligned table that fits 100 columns: long names, owners
/// and scope lists are clipped (`token show ID` has them in full).
pub fn token_table(items: &[ApiTokenView], next_cursor: Option<&str>) {
    println!(
        "{:<36}  {:<16}  {:<7}  {:<10}  {:<11}  EXPIRES",
        "ID", "NAME", "STATE", "OWNER", "SCOPES"
    );
    for t in items {
        println!(
            "{:<36}  {:<16}  {:<7}  {:<10}  {:<11}  {}",
            t.id,
            clip(&t.name, 16),
            t.state.as_str(),
            clip(t.owner.as_deref().unwrap_or("-"), 10),
            clip(&t.scopes.join(","), 11),
            t.expires_at
                .map_or_else(|| "never".into(), |e| e.format("%Y-%m-%d").to_string()),
        );
    }
    if let Some(c) = next_cursor {
        println!("\nmore: --cursor {c}");
    }
}

/// Items joined with commas, or `-` for none.
pub fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}

/// `s` cut to `n` characters, the last one `…` when it was cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}
