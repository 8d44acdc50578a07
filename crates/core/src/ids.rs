//! Identifiers and timestamps: UUIDv7 ids as text, so ids sort by creation
//! time on every backend, "now" at the precision the database keeps, and the
//! shape rule for subjects (the application's own user ids).
//!
//! The newtypes ([`TokenId`], [`InviteId`], [`SessionId`], [`UserId`],
//! [`Subject`]) exist so that a function taking one id cannot be handed
//! another, and so that an id is checked once, where it enters, instead of at
//! every use. They serialize as the plain string, so JSON and stored rows do
//! not change; deserializing one checks it like [`FromStr`] does.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

use crate::DomainError;

/// A new time-ordered id (UUIDv7, hyphenated lower-case).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// Whether `s` looks like an id we issued. Checked before any lookup so that a
/// bad id is a 404/400 decision made without touching the database.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// The current time at the precision we store (milliseconds), so a record
/// returned at creation is identical to the same record read back later.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let t = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Subjects are opaque application ids: 1-200 printable characters.
pub fn validate_subject(subject: &str) -> Result<String, DomainError> {
    Subject::parse(subject).map(Subject::into_string)
}

/// Text that is not an id this service issued. The caller decides what that
/// means: "not found" for a path id, "invalid" for a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {entity} id")]
pub struct InvalidId {
    /// What the id was meant to name, e.g. `"token"`.
    pub entity: &'static str,
}

/// Defines an id type for ids this service issues (UUIDv7 text): parsed with
/// [`is_valid_id`], created with [`new_id`].
macro_rules! issued_id {
    ($(#[$doc:meta])* $name:ident, $entity:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// What this id names, as used in error messages.
            pub const ENTITY: &'static str = $entity;

            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self(new_id())
            }

            /// Checks that `s` is an id this service issued.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                if is_valid_id(s) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(InvalidId { entity: $entity })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

issued_id!(
    /// The id of an API token.
    TokenId,
    "token"
);
issued_id!(
    /// The id of an invite.
    InviteId,
    "invite"
);
issued_id!(
    /// The id of a login session.
    SessionId,
    "session"
);
issued_id!(
    /// The id of a user account kept by Tessera (unlike a [`Subject`], which
    /// the application assigns).
    UserId,
    "user"
);

/// A subject: the application's own id for a person (Tessera keeps no user
/// table for them), 1-200 printable characters, surrounding space trimmed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Subject(String);

impl Subject {
    /// Trims `s` and checks the subject rule.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        crate::text::printable("subject", s, 200).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for Subject {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Subject {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a20c4b-0000-7000-8000-000000000000";

    #[test]
    fn issued_ids_parse_like_is_valid_id() {
        for s in [
            ID,
            "",
            "nope",
            "01a20c4b00007000800000000000000000",
            " 01a20c4b-0000-7000-8000-00000000000",
        ] {
            assert_eq!(TokenId::parse(s).is_ok(), is_valid_id(s), "{s:?}");
        }
        let id = TokenId::parse(ID).unwrap();
        assert_eq!(id.as_str(), ID);
        assert_eq!(id.to_string(), ID);
        assert_eq!(ID.parse::<TokenId>().unwrap(), id);
        assert_eq!(id.clone().into_string(), ID);
        assert_eq!(
            InviteId::parse("x").unwrap_err(),
            InvalidId { entity: "invite" }
        );
        assert_eq!(SessionId::ENTITY, "session");
        assert_eq!(
            UserId::parse("x").unwrap_err().to_string(),
            "not a valid user id"
        );
    }

    #[test]
    fn generated_ids_are_valid() {
        let a = SessionId::generate();
        assert!(is_valid_id(a.as_str()));
        assert_eq!(UserId::parse(a.as_str()).unwrap().as_str(), a.as_str());
    }

    #[test]
    fn ids_serialize_as_plain_strings_and_are_checked_when_read() {
        let id = InviteId::parse(ID).unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{ID}\""));
        let back: InviteId = serde_json::from_str(&format!("\"{ID}\"")).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<InviteId>("\"nope\"").is_err());
        let subject: Subject = serde_json::from_str("\" u_1 \"").unwrap();
        assert_eq!(subject.as_str(), "u_1");
        assert_eq!(serde_json::to_string(&subject).unwrap(), "\"u_1\"");
        assert!(serde_json::from_str::<Subject>("\"\"").is_err());
    }

    #[test]
    fn subjects_follow_the_subject_rule() {
        assert_eq!(Subject::parse("  alice ").unwrap().as_str(), "alice");
        assert_eq!("bob".parse::<Subject>().unwrap().to_string(), "bob");
        let long = "é".repeat(200);
        assert_eq!(Subject::parse(&long).unwrap().as_str(), long);
        for bad in ["", "   "] {
            let e = Subject::parse(bad).unwrap_err();
            assert_eq!(e.code(), "validation_failed", "{bad:?}");
            assert_eq!(e.to_string(), "subject: must be 1-200 printable characters");
        }
        // Control, bidirectional and zero-width characters have their own
        // code (issue 11), and the message never quotes the subject.
        for bad in [
            "a\nb",
            "tab\there",
            "nul\0",
            "\u{202e}evil",
            "zero\u{200b}width",
        ] {
            let e = Subject::parse(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_characters", "{bad:?}");
            assert_eq!(
                e.to_string(),
                "subject: must not contain control characters, bidirectional controls or zero-width characters"
            );
        }
        assert!(Subject::parse(&"x".repeat(201)).is_err());
        assert_eq!(validate_subject(" u_42 ").unwrap(), "u_42");
        assert_eq!(
            validate_subject("").unwrap_err(),
            Subject::parse("").unwrap_err()
        );
    }
}
