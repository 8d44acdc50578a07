//! The value parsers every configuration section shares, public so the fuzz
//! targets (crates/fuzz-targets) can feed them hostile input; nothing else
//! outside `config` should need them.

pub use super::layers::{
    at_most, chrono, in_range, list, number, parse_bool, parse_duration, positive_duration,
};
