//! Argument values as the services take them: durations (`30d`), JSON
//! metadata, and `-` for a value read from stdin. Shared by the commands so
//! that a bad value is reported the same way (as the API's validation error)
//! whichever command it was given to.

use std::io::Read;

use serde_json::{Map, Value};
use tessera_core::DomainError;

/// A duration such as `30d` or `12h`, in whole seconds.
pub fn parse_duration_secs(field: &'static str, v: &str) -> Result<i64, DomainError> {
    humantime::parse_duration(v)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("expected a duration such as 30d or 12h, got {v:?}"),
            )
        })
}

/// A JSON object given as text.
pub fn metadata(v: Option<&str>) -> Result<Option<Map<String, Value>>, DomainError> {
    v.map(|text| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(DomainError::invalid("metadata", "must be a JSON object")),
    })
    .transpose()
}

/// `-` means "read the value from stdin", keeping secrets out of shell history.
pub fn from_stdin_if_dash(field: &'static str, value: String) -> Result<String, DomainError> {
    if value != "-" {
        return Ok(value);
    }
    let mut buf = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut buf)
        .map_err(|_| DomainError::invalid(field, "could not be read from stdin"))?;
    Ok(buf.trim().to_string())
}
