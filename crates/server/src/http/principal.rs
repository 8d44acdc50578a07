//! Who is calling and what they may do. Authentication finds the
//! [`Principal`] behind a request (today an API token presented as a bearer
//! token, verified through the same cached path as `POST /v1/tokens/verify`;
//! later also a user session or an OAuth2 client). A handler states what it
//! needs as a type, `Require<AdminScope>` or
//! `Require<AnyOf<(MfaScope, AdminScope)>>`, and receives the principal
//! together with the request's audit context, so no handler checks scopes
//! or seals client details by hand.

use std::{borrow::Cow, marker::PhantomData, sync::Arc};

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts, HeaderMap},
};
use tessera_core::{
    api_token::{ApiToken, VerifyFailure},
    audit::{Actor, RequestContext},
    scopes::{ADMIN_SCOPE, MFA_SCOPE, SESSIONS_SCOPE, UPSTREAM_ADMIN_SCOPE, UPSTREAM_READ_SCOPE},
};

use super::{client::RequestAudit, error::ApiError, state::AppState};
use crate::service::{
    sessions::AccessGrant,
    tokens::{CallerFacts, Controls, Refusal, VerifyCaller},
};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A machine API token.
    Token(Arc<ApiToken>),
    /// A person's access token (a JWT) whose session is live.
    User(Arc<AccessGrant>),
}

/// The answer to a bearer token its own usage controls refuse: the token
/// is good, so not a 401 (clients read that as a dead token), but a 429
/// past its rate limit or credits and a 403 from the wrong address or
/// device. Any other refusal is an invalid credential.
fn refused(refusal: &Refusal) -> ApiError {
    use axum::http::StatusCode;
    let (status, code, detail) = match refusal.code {
        VerifyFailure::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "the token is over one of its rate limits",
        ),
        VerifyFailure::UsageExceeded => (
            StatusCode::TOO_MANY_REQUESTS,
            "usage_exceeded",
            "the token has no credits left",
        ),
        VerifyFailure::IpNotAllowed => (
            StatusCode::FORBIDDEN,
            "ip_not_allowed",
            "the token may not be used from this address",
        ),
        VerifyFailure::DeviceMismatch | VerifyFailure::DeviceRequired => (
            StatusCode::FORBIDDEN,
            "device_mismatch",
            "the token is bound to another device; send its X-Device-Id",
        ),
        _ => return invalid_credential(),
    };
    let mut e = ApiError::new(status, code, detail);
    if let Some(state) = refusal.ratelimit {
        e.retry_after = Some(state.reset.max(1) as u64);
    }
    e
}

/// Whether a bearer credential is a JWT (three base64url parts) rather than
/// an API token, whose alphabet has no dot.
fn is_jwt(raw: &str) -> bool {
    raw.bytes().filter(|&b| b == b'.').count() == 2
}

impl Principal {
    /// Verifies the request's bearer token: 401 when absent or invalid. A
    /// token's usage controls apply (and are used up) as on verify.
    pub async fn authenticate(
        state: &AppState,
        headers: &HeaderMap,
        audit: &RequestAudit,
    ) -> Result<Self, ApiError> {
        let controls = Controls::Enforce(CallerFacts {
            device_id: device_header(headers),
            ..CallerFacts::default()
        });
        Self::authenticate_with(state, headers, audit, controls).await
    }

    /// [`Self::authenticate`] with the usage controls applied as `controls`
    /// says: `Observe` checks who the caller is without using anything up.
    pub async fn authenticate_with(
        state: &AppState,
        headers: &HeaderMap,
        audit: &RequestAudit,
        controls: Controls,
    ) -> Result<Self, ApiError> {
        let raw = bearer(headers)
            .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
        if is_jwt(raw) {
            return match state.sessions().authenticate(raw).await? {
                Some(grant) => Ok(Self::User(Arc::new(grant))),
                None => Err(invalid_credential()),
            };
        }
        let context = || audit.context().clone();
        let caller = VerifyCaller {
            client_ip: audit.client.ip,
            // A failed bearer token is a 401, not a verification answer.
            limited: false,
            context: &context,
            // A token's usage controls hold for Tessera's own API too: the
            // connection's address, the device the request names, one use.
            controls,
        };
        match state.tokens().verify(raw, &[], &caller).await? {
            Ok(verified) => Ok(Self::Token(verified.token)),
            Err(refusal) => Err(refused(&refusal)),
        }
    }

    /// Who the audit log names for this principal's actions.
    pub fn actor(&self) -> Actor {
        match self {
            Self::Token(token) => Actor::Token(token.id.clone()),
            Self::User(grant) => Actor::User(grant.claims.sub.clone()),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        match self {
            Self::Token(token) => token.scopes.iter().any(|s| s == scope),
            Self::User(grant) => grant.claims.scope.split(' ').any(|s| s == scope),
        }
    }

    /// The API token behind the principal, when it is one.
    pub fn token(&self) -> Option<&Arc<ApiToken>> {
        match self {
            Self::Token(token) => Some(token),
            Self::User(_) => None,
        }
    }

    /// 403 with the requirement's detail when `R` does not allow this principal.
    pub fn require<R: Requirement>(&self) -> Result<(), ApiError> {
        if R::allows(self) {
            Ok(())
        } else {
            Err(ApiError::forbidden(&R::denial()))
        }
    }
}

/// 401 for a credential that does not authenticate.
pub fn invalid_credential() -> ApiError {
    ApiError::unauthorized("the bearer token is not valid (unknown, expired, revoked or malformed)")
}

/// The `X-Device-Id` of a request a device-bound token authenticates, if
/// it is a well-formed device id (anything else is as if absent).
fn device_header(headers: &HeaderMap) -> Option<String> {
    let id = headers.get("x-device-id")?.to_str().ok()?;
    tessera_core::token_controls::validate_device_id(id).ok()?;
    Some(id.to_string())
}

/// The bearer token from `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What a principal must have for an endpoint.
pub trait Requirement {
    fn allows(principal: &Principal) -> bool;
    /// The 403 problem's detail (stable API text).
    fn denial() -> Cow<'static, str>;
}

/// A scope a token can hold.
pub trait Scope {
    const NAME: &'static str;
}

pub struct AdminScope;
impl Scope for AdminScope {
    const NAME: &'static str = ADMIN_SCOPE;
}

pub struct MfaScope;
impl Scope for MfaScope {
    const NAME: &'static str = MFA_SCOPE;
}

pub struct UpstreamReadScope;
impl Scope for UpstreamReadScope {
    const NAME: &'static str = UPSTREAM_READ_SCOPE;
}

pub struct UpstreamAdminScope;
impl Scope for UpstreamAdminScope {
    const NAME: &'static str = UPSTREAM_ADMIN_SCOPE;
}

impl<S: Scope> Requirement for S {
    fn allows(principal: &Principal) -> bool {
        principal.has_scope(S::NAME)
    }

    fn denial() -> Cow<'static, str> {
        format!("this endpoint needs a token with the {} scope", S::NAME).into()
    }
}

/// Any of the scopes in the tuple.
pub struct AnyOf<T>(PhantomData<T>);

impl<A: Scope, B: Scope> Requirement for AnyOf<(A, B)> {
    fn allows(principal: &Principal) -> bool {
        principal.has_scope(A::NAME) || principal.has_scope(B::NAME)
    }

    fn denial() -> Cow<'static, str> {
        format!(
            "this endpoint needs a token with the {} or {} scope",
            A::NAME,
            B::NAME
        )
        .into()
    }
}

pub struct SessionsScope;
impl Scope for SessionsScope {
    const NAME: &'static str = SESSIONS_SCOPE;
}

/// A person signed in with an access token: the `/v1/users/me…` routes.
pub struct SignedIn;

impl Requirement for SignedIn {
    fn allows(principal: &Principal) -> bool {
        matches!(principal, Principal::User(_))
    }

    fn denial() -> Cow<'static, str> {
        Cow::Borrowed("this endpoint needs a person's access token (from /v1/auth/login)")
    }
}

/// Any valid credential: endpoints about the caller itself.
pub struct Authenticated;

impl Requirement for Authenticated {
    fn allows(_: &Principal) -> bool {
        true
    }

    fn denial() -> Cow<'static, str> {
        Cow::Borrowed("")
    }
}

/// The upstream cache's readers: `admin` or `upstream:read`. Its own type
/// only because its 403 detail predates the common wording.
pub struct UpstreamReader;

impl Requirement for UpstreamReader {
    fn allows(principal: &Principal) -> bool {
        AnyOf::<(AdminScope, UpstreamReadScope)>::allows(principal)
    }

    fn denial() -> Cow<'static, str> {
        Cow::Borrowed("this endpoint needs the admin or upstream:read scope")
    }
}

/// Who may forget cached upstream tokens: `admin` or `upstream:admin`
/// (not `upstream:read`, which only reads).
pub type UpstreamClearer = AnyOf<(AdminScope, UpstreamAdminScope)>;

/// `POST /v1/tokens/verify` when the server requires an admin verifier
/// (`tokens.verify_requires_admin`); its 403 detail says so.
pub struct AdminVerifier;

impl Requirement for AdminVerifier {
    fn allows(principal: &Principal) -> bool {
        AdminScope::allows(principal)
    }

    fn denial() -> Cow<'static, str> {
        Cow::Borrowed("verification needs a token with the admin scope on this server")
    }
}

/// An authenticated request whose principal meets `R`: 401 without a valid
/// credential, 403 when `R` is not met. Carries the audit context.
pub struct Require<R> {
    pub principal: Principal,
    pub audit: RequestAudit,
    requirement: PhantomData<fn() -> R>,
}

impl<R> Require<R> {
    pub fn actor(&self) -> Actor {
        self.principal.actor()
    }

    /// The access grant of a signed-in person (with [`SignedIn`]).
    pub fn grant(&self) -> Option<&AccessGrant> {
        match &self.principal {
            Principal::User(g) => Some(g),
            Principal::Token(_) => None,
        }
    }

    /// The request's audit context, sealed once.
    pub fn context(&self) -> &RequestContext {
        self.audit.context()
    }
}

impl<R: Requirement> FromRequestParts<AppState> for Require<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(audit) = RequestAudit::from_request_parts(parts, state).await;
        let principal = Principal::authenticate(state, &parts.headers, &audit).await?;
        principal.require::<R>()?;
        Ok(Self {
            principal,
            audit,
            requirement: PhantomData,
        })
    }
}
