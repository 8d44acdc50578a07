//! The fuzz targets of Tessera's parsers of untrusted input, as plain
//! functions of raw bytes, so that the same code runs under libFuzzer
//! (`fuzz/`, nightly features) and on stable in `cargo test`, which replays
//! the committed corpus (`tests/corpus_replay.rs`).
//!
//! Each function must never panic on any input; where an invariant is cheap
//! to state (a round trip, a canonical form, a bound on the output) it is
//! asserted, so a violation shows up as a crash.

#[cfg(feature = "server")]
mod bodies;
mod codes;
#[cfg(feature = "server")]
mod config;
mod forwarded;
mod otpauth;
#[cfg(feature = "server")]
mod stripper;
mod token;

#[cfg(feature = "server")]
pub use bodies::open_json_bodies;
pub use codes::{auth_code, invite_code, recovery_code};
#[cfg(feature = "server")]
pub use config::config_values;
pub use forwarded::x_forwarded_for;
pub use otpauth::otpauth;
#[cfg(feature = "server")]
pub use stripper::problem_detail;
pub use token::token_format;

/// A target: it panics on input that breaks an invariant.
pub type Target = fn(&[u8]);

/// Every target by name, in the order of exposure; the corpus replay test
/// and `fuzz/fuzz_targets/` follow this list.
#[cfg(feature = "server")]
pub const TARGETS: &[(&str, Target)] = &[
    ("token_format", token_format),
    ("open_json_bodies", open_json_bodies),
    ("x_forwarded_for", x_forwarded_for),
    ("invite_code", invite_code),
    ("auth_code", auth_code),
    ("recovery_code", recovery_code),
    ("problem_detail", problem_detail),
    ("otpauth", otpauth),
    ("config_values", config_values),
];

/// The input as text: what an HTTP layer or environment would hand a parser
/// after UTF-8 decoding. Invalid bytes become U+FFFD rather than ending the
/// run, so every input reaches the parser.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}
