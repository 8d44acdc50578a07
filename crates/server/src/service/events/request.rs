//! What a client asks of an event stream, checked: the event types (names
//! of the webhook catalogue), where to resume (`Last-Event-ID`), and when
//! to end (`timeout`, `max_events`). Pure functions; every refusal is a
//! `422 validation_failed` naming the field.

use std::time::Duration;

use tessera_core::{webhook::event_types, DomainError};

/// The longest `timeout` a client may ask for, in seconds (a day).
pub const MAX_TIMEOUT_SECS: u64 = 86_400;
/// The most events a client may ask to end after.
pub const MAX_EVENTS: u64 = 100_000;

/// A stream request as the HTTP layer parsed it.
#[derive(Debug, Default, Clone)]
pub struct StreamRequest {
    /// Comma-separated catalogue names; `None` for every event.
    pub types: Option<String>,
    /// The `Last-Event-ID` header: a position this stream sent.
    pub last_event_id: Option<String>,
    /// End the stream this many seconds after it opened (0: send what is
    /// already there, then end).
    pub timeout: Option<u64>,
    /// End the stream after this many events.
    pub max_events: Option<u64>,
}

/// A [`StreamRequest`] after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ValidRequest {
    /// Sorted, without duplicates; empty for every event.
    pub types: Vec<String>,
    pub resume_after: Option<i64>,
    pub timeout: Option<Duration>,
    pub max_events: Option<u64>,
}

impl StreamRequest {
    pub(super) fn validate(self) -> Result<ValidRequest, DomainError> {
        let types = match self.types.as_deref() {
            None => Vec::new(),
            Some(list) => parse_types(list)?,
        };
        let resume_after = self
            .last_event_id
            .as_deref()
            .map(parse_position)
            .transpose()?;
        let timeout = match self.timeout {
            Some(s) if s > MAX_TIMEOUT_SECS => {
                return Err(DomainError::invalid("timeout", "must be 0-86400 seconds"))
            }
            t => t.map(Duration::from_secs),
        };
        let max_events = match self.max_events {
            Some(n) if n == 0 || n > MAX_EVENTS => {
                return Err(DomainError::invalid("max_events", "must be 1-100000"))
            }
            n => n,
        };
        Ok(ValidRequest {
            types,
            resume_after,
            timeout,
            max_events,
        })
    }
}

/// A comma-separated list of webhook catalogue names, sorted and without
/// duplicates. An unknown or empty name is refused.
pub(super) fn parse_types(list: &str) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',') {
        if !event_types().any(|known| known == name) {
            return Err(DomainError::invalid(
                "types",
                "must be a comma-separated list of webhook event types (see the \
                 webhook catalogue, e.g. session.revoked,revoked,updated)",
            ));
        }
        out.push(name.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A stream position as the stream sent it in `id:` (decimal, 0 or more).
pub(super) fn parse_position(id: &str) -> Result<i64, DomainError> {
    let digits = id.trim();
    let valid =
        !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| digits.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| {
            DomainError::invalid(
                "Last-Event-ID",
                "must be the id of an event this stream sent (a decimal position)",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_catalogue_names() {
        assert_eq!(
            parse_types("session.revoked,revoked,revoked,updated").unwrap(),
            ["revoked", "session.revoked", "updated"]
        );
        for bad in ["", "revoked,", "nope", "Revoked", "revoked, updated"] {
            let e = parse_types(bad).unwrap_err();
            assert!(
                matches!(e, DomainError::Invalid { field: "types", .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn positions_are_decimal() {
        assert_eq!(parse_position("0").unwrap(), 0);
        assert_eq!(parse_position(" 42 ").unwrap(), 42);
        for bad in ["", "-1", "4.2", "x", "1234567890123456789", "0x10"] {
            assert!(parse_position(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_checked() {
        let ok = StreamRequest {
            timeout: Some(0),
            max_events: Some(1),
            ..Default::default()
        };
        let v = ok.validate().unwrap();
        assert_eq!(v.timeout, Some(Duration::ZERO));
        assert!(v.types.is_empty() && v.resume_after.is_none());
        for bad in [
            StreamRequest {
                timeout: Some(MAX_TIMEOUT_SECS + 1),
                ..Default::default()
            },
            StreamRequest {
                max_events: Some(0),
                ..Default::default()
            },
            StreamRequest {
                last_event_id: Some("abc".into()),
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
