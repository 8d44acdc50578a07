//! Login with e-mail and password, and its second-factor step.
//!
//! Attempts are reserved in the database before the password is checked
//! (per account, keyed by the normalised e-mail whether or not it has an
//! account, and per client IP), so parallel guesses cannot get past the
//! limit on any replica. An unknown e-mail, a wrong password and a disabled
//! account take the same path and the same time (a dummy hash is checked),
//! and get the same answer. Before any of it, the request rates per client
//! IP and per account (`[rate_limits]`, GCRA) are counted: they bound the
//! password hashing a flood can cause, on every replica.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use tessera_core::{
    audit::{Actor, RequestContext},
    ids::{is_valid_id, new_id},
    mfa::{DeviceStatus, MfaFailure},
    rate_limit::LimitKey,
    session::{grant_scope, CHALLENGE_TTL_SECS},
    user::{normalize_user_email, User},
    DomainError, SecretString,
};
use tessera_store::{AttemptKey, LoginChallenge, ThrottleRule};
use utoipa::ToSchema;

use super::{events, IssuedSession, SessionService, SessionSpec};
use crate::service::{error::Refusal, ServiceError};

#[derive(Debug)]
pub struct LoginRequest {
    pub email: String,
    /// Redacted in `Debug`: a login request may be logged, its password never.
    pub password: SecretString,
    pub client_id: Option<String>,
    /// Narrows the granted scopes (the user's roles decide the rest).
    pub scope: Option<Vec<String>>,
    pub client_ip: Option<IpAddr>,
    /// The `X-Device-Id` the login was sent with (validated): the session
    /// binds to it when `TESSERA_SESSION_DEVICE_BINDING` says so.
    pub device_id: Option<String>,
}

/// The second factor is due before a session opens.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    pub challenge_id: String,
    pub factors: Vec<&'static str>,
    /// Seconds the challenge stays open.
    pub expires_in: i64,
}

// Returned once per login and moved straight into the response.
#[allow(clippy::large_enum_variant)]
pub enum LoginOutcome {
    Session(IssuedSession),
    MfaRequired(MfaChallenge),
}

/// What a login asked of the session it opens.
struct Opening {
    client_id: Option<String>,
    /// Narrows the granted scopes.
    scope: Option<Vec<String>>,
    /// The device the session binds to (see `SessionSpec::device_id`).
    device_id: Option<String>,
}

/// The code that completes a challenge.
#[derive(Debug)]
pub enum SecondFactor {
    Totp(SecretString),
    RecoveryCode(SecretString),
}

impl SessionService {
    fn rules(&self) -> (ThrottleRule, ThrottleRule) {
        let window = self.settings.throttle_window;
        (
            ThrottleRule {
                max_failures: self.settings.login_max_failures,
                window,
            },
            ThrottleRule {
                max_failures: self.settings.login_ip_max_failures,
                window,
            },
        )
    }

    pub async fn login(
        &self,
        req: LoginRequest,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, ServiceError> {
        let email = normalize_user_email(&req.email)?;
        // A login that could not open a session is refused before any
        // password work (and before it counts as an attempt).
        self.settings
            .device_binding
            .device_to_bind(req.device_id.as_deref())?;
        self.admit_login(&email, req.client_ip).await?;
        let keys = attempt_keys(&email, req.client_ip);
        let now = tessera_core::ids::now();
        let user = self.reserve(&keys, now, ctx).await?;
        let check = self
            .passwords
            .verify(
                req.password.expose(),
                user.as_ref().and_then(|u| u.password_hash.clone()),
            )
            .await;
        let check = match check {
            Ok(c) => c,
            Err(e) => {
                // Nothing was checked: give the reservations back.
                self.release(&keys, false).await?;
                return Err(e);
            }
        };
        let user = match user {
            Some(u) if check.matches && u.can_sign_in() => u,
            other => {
                let id = other.as_ref().map(|u| u.id.clone());
                return Err(self.failed(id.as_deref(), ctx).await);
            }
        };
        if self.settings.require_verified_email && user.email_verified_at.is_none() {
            self.release(&keys, true).await?;
            self.count_login("unverified");
            return Err(DomainError::EmailUnverified.into());
        }
        let rehash = if check.needs_rehash {
            let normalised = tessera_core::password::normalise(req.password.expose());
            Some(self.passwords.hash(normalised).await?)
        } else {
            None
        };
        let opening = Opening {
            client_id: req.client_id,
            scope: req.scope,
            device_id: req.device_id,
        };
        self.succeed(user, &keys, rehash, opening, ctx).await
    }

    /// The login request rates: per client IP, then per account (known or
    /// not, so the answer tells nothing about accounts).
    async fn admit_login(&self, email: &str, ip: Option<IpAddr>) -> Result<(), ServiceError> {
        let limits = &self.rate_limits;
        let classes = limits.classes();
        if let Some(ip) = ip {
            let key = LimitKey::client(ip).to_string();
            limits
                .admit("login_ip", &key, classes.login_ip.as_ref())
                .await?;
        }
        limits
            .admit("login_user", email, classes.login_user.as_ref())
            .await
    }

    /// Reserves one attempt under each key (account first, then IP: one
    /// order everywhere), and reads the account in the same transaction.
    async fn reserve(
        &self,
        keys: &[AttemptKey],
        now: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Result<Option<User>, ServiceError> {
        let (account_rule, ip_rule) = self.rules();
        let mut tx = self.store.begin_write().await?;
        for key in keys {
            let (rule, policy) = match key {
                AttemptKey::Account(_) => (account_rule, "login_failures_user"),
                AttemptKey::Ip(_) => (ip_rule, "login_failures_ip"),
            };
            if let Some(retry_after_secs) = tx.reserve_login_attempt(key, rule, now).await? {
                drop(tx);
                self.throttled(key, ctx).await?;
                self.rate_limits.count_refusal(policy);
                let error = DomainError::LoginThrottled { retry_after_secs };
                let (quota, window) = (rule.max_failures, rule.window.num_seconds());
                return Err(Refusal::quota(&error, policy, quota as u64, window as u64).into());
            }
        }
        let AttemptKey::Account(email) = &keys[0] else {
            unreachable!("the account key is first");
        };
        let user = tx.find_user_by_email(email).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Gives back the IP's reservation, and on a right password forgets
    /// the account's failures.
    async fn release(&self, keys: &[AttemptKey], success: bool) -> Result<(), ServiceError> {
        let mut tx = self.store.begin_write().await?;
        for key in keys {
            match key {
                AttemptKey::Account(_) if success => tx.reset_login_attempts(key).await?,
                _ => tx.release_login_attempt(key).await?,
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn throttled(&self, key: &AttemptKey, ctx: &RequestContext) -> Result<(), ServiceError> {
        self.count_login("throttled");
        let limiter = match key {
            AttemptKey::Account(_) => "account",
            AttemptKey::Ip(_) => "ip",
        };
        let (audit, event) = events::login_event(
            "auth.login.throttled",
            None,
            "failure",
            ctx,
            json!({ "limiter": limiter }),
        );
        let mut tx = self.store.begin_write().await?;
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed login and answers the one `invalid_credentials`.
    async fn failed(&self, user_id: Option<&str>, ctx: &RequestContext) -> ServiceError {
        self.count_login("failed");
        let (audit, event) =
            events::login_event("auth.login.failed", user_id, "failure", ctx, json!({}));
        let write = async {
            let mut tx = self.store.begin_write().await?;
            tx.append_audit(&[audit]).await?;
            tx.append_events(&[event]).await?;
            tx.commit().await
        };
        match write.await {
            Ok(()) => DomainError::InvalidCredentials.into(),
            Err(e) => e.into(),
        }
    }

    /// The password was right: reset the counters, upgrade an old hash,
    /// then either open the session or ask for the second factor.
    async fn succeed(
        &self,
        user: User,
        keys: &[AttemptKey],
        rehash: Option<String>,
        opening: Opening,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, ServiceError> {
        let Opening {
            client_id,
            scope,
            device_id,
        } = opening;
        let now = tessera_core::ids::now();
        let needs_mfa = self
            .mfa
            .devices(&user.id)
            .await?
            .iter()
            .any(|d| d.status == DeviceStatus::Active);
        let mut tx = self.store.begin_write().await?;
        for key in keys {
            match key {
                AttemptKey::Account(_) => tx.reset_login_attempts(key).await?,
                AttemptKey::Ip(_) => tx.release_login_attempt(key).await?,
            }
        }
        // The password was checked against the account as read before the
        // (slow) hash: if it was disabled, deleted, erased or given a new
        // password since, this login must not open a session (nor write
        // the old password's re-hash over the new one).
        let mut user = tx
            .lock_user(&user.id)
            .await?
            .filter(|current| current.can_sign_in() && current.password_hash == user.password_hash)
            .ok_or(DomainError::InvalidCredentials)?;
        if let Some(hash) = rehash {
            user.password_hash = Some(hash);
            user.updated_at = now;
        }
        if needs_mfa {
            tx.update_user(&user).await?;
            let challenge = LoginChallenge {
                id: new_id(),
                user_id: user.id.clone(),
                client_id,
                scope: scope.map(|s| s.join(" ")),
                created_at: now,
                expires_at: now + Duration::seconds(CHALLENGE_TTL_SECS),
                used_at: None,
            };
            tx.insert_login_challenge(&challenge).await?;
            let (audit, event) = events::login_event(
                "auth.login.mfa_required",
                Some(&user.id),
                "success",
                ctx,
                json!({ "challenge_id": challenge.id }),
            );
            tx.append_audit(&[audit]).await?;
            tx.append_events(&[event]).await?;
            tx.commit().await?;
            self.count_login("mfa_required");
            return Ok(LoginOutcome::MfaRequired(MfaChallenge {
                mfa_required: true,
                challenge_id: challenge.id,
                factors: vec!["totp", "recovery_code"],
                expires_in: CHALLENGE_TTL_SECS,
            }));
        }
        let opening = Opening {
            client_id,
            scope,
            device_id,
        };
        let issued = self
            .finish(tx, user, opening, vec!["pwd".into()], ctx, now)
            .await?;
        Ok(LoginOutcome::Session(issued))
    }

    /// Opens the session of a signed-in user in `tx` and commits.
    async fn finish(
        &self,
        mut tx: tessera_store::WriteTx,
        mut user: User,
        opening: Opening,
        amr: Vec<String>,
        ctx: &RequestContext,
        now: DateTime<Utc>,
    ) -> Result<IssuedSession, ServiceError> {
        user.last_login_at = Some(now);
        tx.update_user(&user).await?;
        let scope = opening.scope.as_deref();
        let spec = SessionSpec {
            subject: user.id.clone(),
            user_id: Some(user.id.clone()),
            client_id: opening.client_id,
            scope: grant_scope(&self.settings.role_scopes, &user.roles, scope),
            amr,
            device_id: opening.device_id,
        };
        let actor = Actor::User(user.id.clone());
        let (session, raw, token) = self.open_in(&mut tx, spec, &actor, ctx, now).await?;
        let (audit, event) = events::login_succeeded(&session, ctx);
        tx.append_audit(&[audit]).await?;
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.count_login("succeeded");
        self.issue(&session, raw.raw, token.expires_at, Some(user.view()), now)
    }

    /// `POST /v1/auth/login/mfa`: the second factor, under the existing TOTP
    /// replay and lockout rules (subject = the user id); the challenge
    /// completes once. Counts against the login request rate of
    /// `client_ip` (`login_ip`), as the password step does. The session
    /// binds to `device_id`, this request's `X-Device-Id` (the request that
    /// opens it, as for a login).
    pub async fn login_mfa(
        &self,
        challenge_id: &str,
        factor: SecondFactor,
        client_ip: Option<IpAddr>,
        device_id: Option<String>,
        ctx: &RequestContext,
    ) -> Result<IssuedSession, ServiceError> {
        // Before anything is counted or checked: a refusal here spends no
        // request rate and no attempt.
        self.settings
            .device_binding
            .device_to_bind(device_id.as_deref())?;
        if let Some(ip) = client_ip {
            let rule = self.rate_limits.classes().login_ip.as_ref();
            let key = LimitKey::client(ip).to_string();
            self.rate_limits.admit("login_ip", &key, rule).await?;
        }
        let now = tessera_core::ids::now();
        if !is_valid_id(challenge_id) {
            return Err(DomainError::InvalidChallenge.into());
        }
        let challenge = {
            let mut tx = self.store.begin_write().await?;
            tx.get_login_challenge(challenge_id).await?
        }
        .filter(|c| c.is_open_at(now))
        .ok_or(DomainError::InvalidChallenge)?;
        let actor = Actor::User(challenge.user_id.clone());
        let (result, amr) = match &factor {
            SecondFactor::Totp(code) => (
                self.mfa
                    .verify(&challenge.user_id, code.expose(), &actor, ctx)
                    .await?
                    .map(|_| ()),
                "otp",
            ),
            SecondFactor::RecoveryCode(code) => (
                self.mfa
                    .use_recovery_code(&challenge.user_id, code.expose(), &actor, ctx)
                    .await?
                    .map(|_| ()),
                "mfa",
            ),
        };
        match result {
            Ok(()) => {}
            Err(MfaFailure::Locked) => {
                let retry_after_secs = self.mfa.lockout_secs();
                let policy = "mfa_failures_user";
                self.rate_limits.count_refusal(policy);
                let error = DomainError::RateLimited { retry_after_secs };
                let quota = self.mfa.lockout_max_failures() as u64;
                let refusal = Refusal::quota(&error, policy, quota, retry_after_secs as u64);
                return Err(refusal.into());
            }
            Err(_) => return Err(DomainError::InvalidCode.into()),
        }
        let mut tx = self.store.begin_write().await?;
        if !tx.complete_login_challenge(challenge_id, now).await? {
            return Err(DomainError::InvalidChallenge.into());
        }
        let user = tx
            .lock_user(&challenge.user_id)
            .await?
            .filter(User::can_sign_in)
            .ok_or(DomainError::InvalidChallenge)?;
        let scope: Option<Vec<String>> = challenge
            .scope
            .as_deref()
            .map(|s| s.split_whitespace().map(str::to_string).collect());
        let amr = vec!["pwd".to_string(), amr.to_string()];
        let opening = Opening {
            client_id: challenge.client_id,
            scope,
            device_id,
        };
        self.finish(tx, user, opening, amr, ctx, now).await
    }

    fn count_login(&self, outcome: &str) {
        self.metrics
            .sessions
            .logins
            .with_label_values(&[outcome])
            .inc();
    }
}

/// The throttle keys of a login: the account first, then the client IP.
fn attempt_keys(email: &str, ip: Option<IpAddr>) -> Vec<AttemptKey> {
    let mut keys = vec![AttemptKey::Account(email.to_string())];
    if let Some(ip) = ip {
        keys.push(AttemptKey::Ip(ip.to_string()));
    }
    keys
}
