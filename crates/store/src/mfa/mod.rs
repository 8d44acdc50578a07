//! The storage interface for second factors: TOTP devices, the replay record
//! and attempt counters, recovery codes and one-time auth codes.
//!
//! Every check that must hold across replicas (a code accepted once, a
//! limited number of guesses, a recovery code used once) is a single atomic
//! statement or a locked transaction here, never a read-then-write in the
//! service.

pub mod auth_codes;
mod common;
mod maintenance;
pub mod recovery_codes;
pub mod totp;

pub use auth_codes::{
    AuthCodeLimits, AuthCodeLookup, AuthCodeRepository, AuthCodeVerdict, NewAuthCode,
};
pub use maintenance::MfaMaintenance;
pub use recovery_codes::RecoveryCodeRepository;
pub use totp::{NewTotpDevice, SealedDevice, TotpAttempt, TotpMatch, TotpOutcome, TotpRepository};
