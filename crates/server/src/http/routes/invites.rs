//! `/v1/invites`: management (admin) and the public validate/redeem pair.

use axum::{extract::State, http::StatusCode, Json};
use chrono::Utc;
use tessera_core::invite::InviteView;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::invite_dto::{
    CreateInviteRequest, CreatedInvite, InvitePage, ListInvitesQuery, RedeemInviteRequest,
    RedeemedInvite, ValidateInviteRequest, ValidateInviteResponse,
};
use crate::{
    http::{
        client::RequestAudit,
        error::{ApiError, Problem},
        extract::{ApiJson, ApiPath, ApiQuery},
        principal::{AdminScope, Require},
        problems::{
            Conflict, Gone, JsonBody, NotFound, Path, Query, RateLimited, Scoped, Unavailable,
        },
        state::AppState,
    },
    service::{invites::Attempt, users::CreateUser},
};

type ApiResult<T> = Result<T, ApiError>;

fn attempt<'a>(
    audit: &RequestAudit,
    context: &'a (dyn Fn() -> tessera_core::audit::RequestContext + Send + Sync),
) -> Attempt<'a> {
    Attempt {
        client_ip: audit.client.ip,
        context,
    }
}

/// Create an invite. The code is in this response only.
#[utoipa::path(post, path = "/v1/invites", tag = "invites", security(("bearer" = [])),
    request_body = CreateInviteRequest,
    responses(
        (status = 201, body = CreatedInvite), Scoped, JsonBody, RateLimited, Unavailable,
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`forbidden`: the token lacks the admin scope; `invite_not_allowed`: the issuer's role may not grant this role"),
        (status = 429, body = Problem, content_type = "application/problem+json",
            description = "`invite_quota_exceeded`: the issuer's daily quota is spent; wait `Retry-After` seconds",
            headers(("Retry-After" = u64, description = "Seconds until the oldest invite in the window ages out"),
                ("RateLimit-Policy" = String, description = "`\"invite_quota\";q=<daily quota>;w=86400`"),
                ("RateLimit" = String, description = "`\"invite_quota\";r=0;t=<seconds>`")))
    ))]
pub async fn create_invite(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiJson(body): ApiJson<CreateInviteRequest>,
) -> ApiResult<(StatusCode, Json<CreatedInvite>)> {
    let (invite, code) = state
        .invites()
        .create(body.try_into()?, &caller.actor(), caller.context())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvite {
            invite: invite.view(Utc::now()),
            code,
        }),
    ))
}

/// List invites, newest first.
#[utoipa::path(get, path = "/v1/invites", tag = "invites", security(("bearer" = [])),
    params(ListInvitesQuery),
    responses((status = 200, body = InvitePage), Scoped, Query, Unavailable))]
pub async fn list_invites(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiQuery(query): ApiQuery<ListInvitesQuery>,
) -> ApiResult<Json<InvitePage>> {
    let page = state.invites().list(query.try_into()?).await?;
    let now = Utc::now();
    Ok(Json(InvitePage {
        items: page.items.iter().map(|i| i.view(now)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One invite.
#[utoipa::path(get, path = "/v1/invites/{id}", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invite id")),
    responses((status = 200, body = InviteView), Scoped, Path, NotFound, Unavailable))]
pub async fn get_invite(
    State(state): State<AppState>,
    _caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<InviteView>> {
    Ok(Json(state.invites().get(&id).await?.view(Utc::now())))
}

/// Revoke an invite (idempotent).
#[utoipa::path(post, path = "/v1/invites/{id}/revoke", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invite id")),
    responses((status = 200, body = InviteView), Scoped, Path, NotFound, Conflict, Unavailable))]
pub async fn revoke_invite(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<InviteView>> {
    let invite = state
        .invites()
        .revoke(&id, &caller.actor(), caller.context())
        .await?;
    Ok(Json(invite.view(Utc::now())))
}

/// Soft-delete an invite: it stops working and leaves default listings.
#[utoipa::path(delete, path = "/v1/invites/{id}", tag = "invites", security(("bearer" = [])),
    params(("id" = String, Path, description = "Invite id")),
    responses((status = 200, body = InviteView), Scoped, Path, NotFound, Conflict, Unavailable))]
pub async fn delete_invite(
    State(state): State<AppState>,
    caller: Require<AdminScope>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<InviteView>> {
    let invite = state
        .invites()
        .delete(&id, &caller.actor(), caller.context())
        .await?;
    Ok(Json(invite.view(Utc::now())))
}

/// Check a code without consuming it. Rate limited per client on failures.
#[utoipa::path(post, path = "/v1/invites/validate", tag = "invites",
    request_body = ValidateInviteRequest,
    responses(
        (status = 200, body = ValidateInviteResponse), JsonBody, RateLimited, Unavailable
    ))]
pub async fn validate_invite(
    State(state): State<AppState>,
    audit: RequestAudit,
    ApiJson(body): ApiJson<ValidateInviteRequest>,
) -> ApiResult<Json<ValidateInviteResponse>> {
    let context = || audit.context().clone();
    let result = state
        .invites()
        .validate(
            &body.code,
            body.email.as_deref(),
            &attempt(&audit, &context),
        )
        .await?;
    Ok(Json(result.into()))
}

/// Use one of the invite's uses for `subject`, atomically; or, with
/// `create_user`, create the account the invite is for in the same
/// transaction (its id becomes the subject, the invite's role its role).
#[utoipa::path(post, path = "/v1/invites/redeem", tag = "invites",
    request_body = RedeemInviteRequest,
    responses(
        (status = 200, body = RedeemedInvite), JsonBody, NotFound, Conflict, Gone, RateLimited, Unavailable,
        (status = 403, body = Problem, content_type = "application/problem+json",
            description = "`invite_email_mismatch`: the invite is bound to another e-mail address; \
                `invite_email_required`: it is bound to one and none was given")
    ))]
pub async fn redeem_invite(
    State(state): State<AppState>,
    audit: RequestAudit,
    ApiJson(body): ApiJson<RedeemInviteRequest>,
) -> ApiResult<Json<RedeemedInvite>> {
    let context = || audit.context().clone();
    let attempt = attempt(&audit, &context);
    let (invite, subject, user) = match body {
        RedeemInviteRequest::ForSubject(body) => {
            let invite = state
                .invites()
                .redeem(&body.code, &body.subject, body.email.as_deref(), &attempt)
                .await?;
            (invite, body.subject.trim().to_string(), None)
        }
        RedeemInviteRequest::NewUser(body) => {
            let new = body.create_user;
            let prepared = state
                .users()
                .prepare(CreateUser {
                    email: new.email,
                    password: Some(new.password),
                    display_name: new.display_name,
                    ..CreateUser::default()
                })
                .await?;
            let (invite, user) = state
                .invites()
                .redeem_for_new_user(&body.code, prepared, &attempt)
                .await?;
            (invite, user.id.clone(), Some(user.view()))
        }
    };
    Ok(Json(RedeemedInvite {
        uses_left: invite.uses_left(),
        invite_id: invite.id,
        subject,
        grants: invite.grants,
        redeemed_at: invite.updated_at,
        user,
    }))
}

/// The invite routes, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_invite, list_invites))
        .routes(routes!(get_invite, delete_invite))
        .routes(routes!(revoke_invite))
        .routes(routes!(validate_invite))
        .routes(routes!(redeem_invite))
}
