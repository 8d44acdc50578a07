//! A string that holds a raw secret: redacted in `Debug`/`Display`, wiped on drop.
//!
//! Raw tokens travel in this type from the moment they are generated (or read
//! from a request) until they are hashed, so no `{:?}` or error message can
//! print them by accident.

use zeroize::Zeroize;

/// A secret value. Its `Debug` prints `[redacted]`; read it only with [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The raw value. Call this only where the secret is hashed, or shown once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A secret read from a request body (a password, a refresh token): it
/// goes straight into the redacting type.
impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// Serializes the secret itself, for the one response that shows it
/// (`#[serde(serialize_with = "tessera_core::secret::serialize_exposed")]`):
/// the type stays redacted everywhere else, `Debug` included.
pub fn serialize_exposed<S: serde::Serializer>(
    s: &SecretString,
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose())
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("tsr_supersecret".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(s.expose(), "tsr_supersecret");
    }
}
