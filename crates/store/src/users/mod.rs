//! Users of the built-in identity store: the read side as a trait, the
//! changes as [`crate::WriteTx`] methods (so creating a user can join an
//! invite redemption's transaction), next to the SQL (`sql`).

mod erasure;
mod sql;

use async_trait::async_trait;
use tessera_core::user::{User, UserStatus};

use crate::{error::StoreError, page::Page};

pub use erasure::SecondFactorsErased;

/// Filters for listing users (newest first).
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// The normalised e-mail address, exactly.
    pub email: Option<String>,
    pub status: Option<UserStatus>,
    pub include_deleted: bool,
    pub cursor: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait UserRepository: Send + Sync {
    async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;

    /// The live (not deleted) user with this normalised e-mail address.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    async fn list_users(&self, query: &UserQuery) -> Result<Page<User>, StoreError>;
}
