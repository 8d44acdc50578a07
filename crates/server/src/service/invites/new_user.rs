//! Redeeming an invite by creating the account it is for: the use is
//! consumed and the user inserted (with the invite's role) in one
//! transaction, so there is never a used invite without its account, or an
//! account from an invite that was already used up.

use tessera_core::{audit::Actor, invite::Invite, user::User, DomainError};
use tessera_store::{InviteUsageRecord, Redemption};

use super::{Attempt, InviteService};
use crate::service::{users::insert_user_in, ServiceError};

impl InviteService {
    /// Mails the verification link to the accounts invites create (when
    /// sign-up verification is on).
    pub fn with_signup_links(mut self, links: crate::service::links::LinkService) -> Self {
        self.signup_links = Some(links);
        self
    }

    /// Consumes one use and creates `user` (already validated and hashed by
    /// `UserService::prepare`); the user's id is the redemption's subject and
    /// its role is the invite's. An invite bound to an e-mail needs the same
    /// address.
    pub async fn redeem_for_new_user(
        &self,
        code: &str,
        user: User,
        attempt: &Attempt<'_>,
    ) -> Result<(Invite, User), ServiceError> {
        let admission = self.check_limit(attempt).await?;
        let outcome = self.create_redeeming(code, user, attempt).await;
        let guessed = outcome.as_ref().is_err_and(super::limits::guessed_error);
        self.settle(attempt, admission, guessed).await;
        outcome
    }

    async fn create_redeeming(
        &self,
        code: &str,
        mut user: User,
        attempt: &Attempt<'_>,
    ) -> Result<(Invite, User), ServiceError> {
        let canonical = self
            .canonical(code, "redeem", Some(&user.id), attempt)
            .await?;
        let ctx = (attempt.context)();
        let redemption = Redemption {
            code_hashes: self.code_hashes(&canonical),
            email: Some(user.email.clone()),
            now: tessera_core::ids::now(),
            usage: InviteUsageRecord {
                invite_id: None,
                action: "redeem",
                outcome: "ok",
                subject: Some(user.id.clone()),
                context: ctx.clone(),
            },
        };
        let mut tx = self.store.begin_write().await?;
        match tx.redeem_invite(&redemption).await? {
            Ok(invite) => {
                user.roles = vec![invite.grants.role.clone()];
                insert_user_in(&mut tx, &user, &Actor::Anonymous, &ctx).await?;
                tx.commit().await?;
                self.metrics.invites_used.inc();
                tracing::info!(invite_id = %invite.id, "invite redeemed by a new account");
                if let Some(links) = &self.signup_links {
                    links.after_signup(&user, &Actor::Anonymous, &ctx);
                }
                Ok((invite, user))
            }
            Err((failure, id)) => {
                drop(tx);
                self.record_failure(failure.as_str());
                self.log_usage(id, "redeem", failure.as_str(), Some(&user.id), attempt);
                Err(DomainError::InviteUnusable(failure).into())
            }
        }
    }
}
