//! Argument values as the services take them: durations (`30d`), JSON
//! metadata, and `-` for a value read from stdin. Shared by the commands so
//! that a bad value is reported the same way (as the API's validation error)
//! whichever command it was given to.

use std::io::{BufRead, Read};

use serde_json::{Map, Value};
use tessera_core::{DomainError, SecretString};

/// A duration such as `30d` or `12h`, in whole seconds.
pub fn parse_duration_secs(field: &'static str, v: &str) -> Result<i64, DomainError> {
    // Bare digits are seconds, as the API's `expires_in` takes them.
    if let Ok(secs) = v.trim().parse::<i64>() {
        return Ok(secs);
    }
    humantime::parse_duration(v)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("expected seconds or a duration such as 30d or 12h, got {v:?}"),
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

/// A password given on stdin (`--password-stdin`): the first line, without
/// its line ending, so it never appears in argv or shell history.
pub fn password_from_stdin(field: &'static str) -> Result<SecretString, DomainError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(4096)
        .read_line(&mut line)
        .map_err(|_| DomainError::invalid(field, "could not be read from stdin"))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(DomainError::invalid(field, "no password on stdin"));
    }
    Ok(SecretString::new(line.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_or_a_named_error() {
        assert_eq!(parse_duration_secs("grace_seconds", "1h"), Ok(3600));
        assert_eq!(parse_duration_secs("expires_in", "30d"), Ok(30 * 86_400));
        // Bare digits are seconds, as in the API's `expires_in`.
        assert_eq!(parse_duration_secs("expires_in", "2592000"), Ok(2_592_000));
        let e = parse_duration_secs("expires_in", "soon").unwrap_err();
        assert_eq!(
            e,
            DomainError::invalid(
                "expires_in",
                "expected seconds or a duration such as 30d or 12h, got \"soon\""
            )
        );
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert_eq!(metadata(None), Ok(None));
        assert_eq!(metadata(Some(r#"{"a":1}"#)).unwrap().unwrap()["a"], 1);
        for bad in ["[1]", "1", "not json"] {
            assert_eq!(
                metadata(Some(bad)),
                Err(DomainError::invalid("metadata", "must be a JSON object"))
            );
        }
    }

    #[test]
    fn values_other_than_a_dash_are_taken_as_given() {
        assert_eq!(from_stdin_if_dash("code", "ABCD".into()), Ok("ABCD".into()));
    }
}
