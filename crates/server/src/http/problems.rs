//! The error responses of the OpenAPI document, declared once per family.
//!
//! Every error is an RFC 9457 problem document ([`Problem`]) served as
//! `application/problem+json`. Which statuses an operation can answer follows
//! from what it does: it authenticates (401, 403), reads a JSON body (400,
//! 413, 415, 422), a query (400, 422) or path segments (400), looks a
//! resource up (404), is limited (429) or needs the database (503). Each
//! `#[utoipa::path]` names the families that apply (`responses(…, Scoped,
//! JsonBody, Unavailable)`), so a status and its description are written here
//! once rather than on every operation, and `tests/it/openapi.rs` checks that
//! every error response in the document is a problem.
//!
//! [`Problem`]: super::error::Problem

use std::collections::BTreeMap;

use utoipa::{
    openapi::{
        header::HeaderBuilder, ContentBuilder, ObjectBuilder, Ref, RefOr, Response,
        ResponseBuilder, Type,
    },
    IntoResponses,
};

use super::error::PROBLEM_JSON;

/// A header an error response may carry.
#[derive(Clone, Copy)]
enum Extra {
    None,
    /// `WWW-Authenticate: Bearer` on every 401.
    WwwAuthenticate,
    /// `Retry-After: <seconds>`.
    RetryAfter,
    /// A limit's refusal: `Retry-After`, `RateLimit-Policy` and `RateLimit`.
    RateLimit,
}

// One description per status, whichever family declares it, so that an
// operation naming two families with the same status reads the same.
const BAD_REQUEST: &str = "`malformed_json`, `invalid_query` or `invalid_path`: the body, \
    query string or a path segment cannot be parsed; `invalid_query` with `field`: an audit \
    log filter cannot be used (a cursor this API did not return, a limit out of range, \
    `since` after `until`)";
const UNPROCESSABLE: &str = "`validation_failed` (with `field`): a value breaks a rule; \
    `invalid_request_body`: the body has a wrong type or an unknown field";

/// The IETF fields (draft-ietf-httpapi-ratelimit-headers) every 429 carries.
const RATELIMIT_POLICY: &str = "The limit that refused: `\"<limiter>\";q=<quota>;w=<window \
    seconds>`, e.g. `\"login_ip\";q=60;w=60`";
const RATELIMIT: &str = "Its state: `\"<limiter>\";r=<remaining>;t=<seconds until the quota \
    is whole again>`, e.g. `\"login_ip\";r=0;t=17`";

/// The CSRF guard's refusal (`http::csrf`), also appended to a 403 an
/// operation already documents.
pub const CSRF_FAILED: &str = "`csrf_failed`: a browser request (one with an `Origin`, a \
    cross-site `Sec-Fetch-Site` or a cookie) from an origin not in `TESSERA_ALLOWED_ORIGINS`, \
    or without a valid `X-CSRF-Token` header (or `csrf_token` form field) from `GET /csrf`";

fn problem(status: u16, description: &str, extra: Extra) -> (String, RefOr<Response>) {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content);
    let integer = |min: f64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
    };
    let retry_after = || {
        HeaderBuilder::new()
            .schema(integer(1.0))
            .description(Some("Seconds to wait before trying again"))
            .build()
    };
    let text = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    response = match extra {
        Extra::None => response,
        Extra::WwwAuthenticate => response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("`Bearer`"))
                .build(),
        ),
        Extra::RetryAfter => response.header("Retry-After", retry_after()),
        Extra::RateLimit => response
            .header("Retry-After", retry_after())
            .header("RateLimit-Policy", text(RATELIMIT_POLICY))
            .header("RateLimit", text(RATELIMIT)),
    };
    (status.to_string(), RefOr::T(response.build()))
}

macro_rules! families {
    ($( $(#[$doc:meta])* $name:ident => [$( ($status:literal, $desc:expr, $extra:ident) ),+ $(,)?] )*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    [$(problem($status, $desc, Extra::$extra)),+].into_iter().collect()
                }
            }
        )*
    };
}

families! {
    /// Any valid bearer token will do (endpoints about the caller itself).
    AnyToken => [
        (401, "`unauthorized`: no bearer token, or one that is not valid", WwwAuthenticate),
    ]
    /// A bearer token with a scope the operation needs.
    Scoped => [
        (401, "`unauthorized`: no bearer token, or one that is not valid", WwwAuthenticate),
        (403, "`forbidden`: the token lacks the scope this operation needs", None),
    ]
    /// The operation reads a JSON body.
    JsonBody => [
        (400, BAD_REQUEST, None),
        (413, "`payload_too_large`: the body is over 64 KiB", None),
        (415, "`unsupported_media_type`: the body is not `application/json`", None),
        (422, UNPROCESSABLE, None),
    ]
    /// The operation reads a JSON or a form-encoded body (plain HTML forms).
    JsonOrFormBody => [
        (400, BAD_REQUEST, None),
        (413, "`payload_too_large`: the body is over 64 KiB", None),
        (415, "`unsupported_media_type`: the body is neither `application/json` nor \
            `application/x-www-form-urlencoded`", None),
        (422, UNPROCESSABLE, None),
    ]
    /// `JsonOrFormBody` for the operations that take a mailed link's token.
    LinkTokenBody => [
        (400, "`invalid_token`: the link is unknown, used, replaced by a newer one, mistyped, \
            or its secret is wrong; or the body is malformed (`malformed_json`)", None),
        (413, "`payload_too_large`: the body is over 64 KiB", None),
        (415, "`unsupported_media_type`: the body is neither `application/json` nor \
            `application/x-www-form-urlencoded`", None),
        (422, "`weak_password` (with `field`): the new password breaks the password policy; \
            `validation_failed` (with `field`): a value breaks a rule; `invalid_request_body`: \
            the body has a wrong type or an unknown field", None),
    ]
    /// The operation reads query parameters.
    Query => [
        (400, BAD_REQUEST, None),
        (422, UNPROCESSABLE, None),
    ]
    /// The operation checks a value that no other family reads (a subject
    /// in the path, say).
    Invalid => [
        (422, UNPROCESSABLE, None),
    ]
    /// The operation reads path segments (one with a control character is
    /// refused with 422 `invalid_characters`).
    Path => [
        (400, BAD_REQUEST, None),
        (422, UNPROCESSABLE, None),
    ]
    /// The operation names a resource that may not exist.
    NotFound => [
        (404, "Not found; `code` names what (`token_not_found`, `invite_not_found`, …)", None),
    ]
    /// A lifecycle rule may refuse the change.
    Conflict => [
        (409, "A lifecycle rule refuses the change; `code` says which", None),
    ]
    /// The resource may no longer work.
    Gone => [
        (410, "`invite_expired` or `invite_revoked`", None),
    ]
    /// The operation is rate limited or under a quota.
    RateLimited => [
        (429, "`rate_limited`, `login_throttled` or `invite_quota_exceeded`; wait \
            `Retry-After` seconds. `RateLimit-Policy` and `RateLimit` name the limit \
            (`login_ip`, `recovery_ip`, `invite_quota`, …) and its state", RateLimit),
    ]
    /// Browser requests need an allowed origin and a CSRF token.
    CsrfFailed => [
        (403, CSRF_FAILED, None),
    ]
    /// The operation needs the database (or another dependency) and answers
    /// 503 while it is unreachable.
    Unavailable => [
        (503, "`service_unavailable` (with `Retry-After`): a dependency is unreachable", RetryAfter),
    ]
    /// `Unavailable`, for operations that also need `TOTP_ENC_KEY`.
    TotpUnavailable => [
        (503, "`totp_not_configured`: `TOTP_ENC_KEY` is not set; `service_unavailable` \
            (with `Retry-After`): the database is unreachable", RetryAfter),
    ]
    /// `Unavailable`, for operations that hand a message to a provider.
    DeliveryUnavailable => [
        (503, "`delivery_failed`: the e-mail or SMS provider refused or is down; \
            `service_unavailable` (with `Retry-After`): the database is unreachable", RetryAfter),
    ]
}
