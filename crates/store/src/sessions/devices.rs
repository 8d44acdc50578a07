//! The device a refresh presents, as SQL: device-bound sessions are checked
//! inside the conditional update that records a refresh, so that a refresh
//! from another device changes no row (nothing used, nothing revoked).

use sqlx::{any::AnyArguments, query::Query, query::QueryAs, Any};

/// The keyed hashes the presented device id may be stored under: the
/// current key's first, then the previous keys' (so a binding made before
/// a key rotation still matches). Empty: the request named no device.
#[derive(Debug, Clone, Copy)]
pub struct PresentedDevice<'a> {
    pub hashes: &'a [String],
}

impl<'a> PresentedDevice<'a> {
    /// A refresh that names no device.
    pub const NONE: PresentedDevice<'static> = PresentedDevice { hashes: &[] };

    /// The `SET` part that moves a bound session's hash to the current key
    /// (empty, or starting with a comma), and the condition that this
    /// device may refresh the session; placeholders start at `$first`.
    pub(super) fn sql(&self, first: usize) -> (String, String) {
        if self.hashes.is_empty() {
            return (String::new(), "device_hash IS NULL".into());
        }
        let list: Vec<String> = (0..self.hashes.len())
            .map(|i| format!("${}", first + i))
            .collect();
        (
            format!(", device_hash = CASE WHEN device_hash IS NULL THEN NULL ELSE ${first} END"),
            format!(
                "(device_hash IS NULL OR device_hash IN ({}))",
                list.join(", ")
            ),
        )
    }

    /// The current key's hash only (for the `SET` part alone).
    pub(super) fn current(&self) -> PresentedDevice<'a> {
        PresentedDevice {
            hashes: &self.hashes[..self.hashes.len().min(1)],
        }
    }

    /// Binds every hash, in order, after the statement's other values.
    pub(super) fn bind_all<Q: BindText<'a>>(&self, mut q: Q) -> Q {
        for h in self.hashes {
            q = q.bind_text(h);
        }
        q
    }
}

/// Binding a text value to either kind of query.
pub(super) trait BindText<'q>: Sized {
    fn bind_text(self, v: &'q str) -> Self;
}

impl<'q> BindText<'q> for Query<'q, Any, AnyArguments<'q>> {
    fn bind_text(self, v: &'q str) -> Self {
        self.bind(v)
    }
}

impl<'q, O> BindText<'q> for QueryAs<'q, Any, O, AnyArguments<'q>> {
    fn bind_text(self, v: &'q str) -> Self {
        self.bind(v)
    }
}
