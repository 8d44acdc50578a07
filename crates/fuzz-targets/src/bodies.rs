//! The JSON bodies of the endpoints anyone may call without credentials:
//! `POST /v1/tokens/verify`, `POST /v1/invites/validate` and
//! `POST /v1/invites/redeem`. Each body goes through the server's own
//! `parse_json` (as the extractor does), then through the checks the handler
//! and service make before touching the database.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use serde_json::Map;
use tessera_core::{
    ids::validate_subject,
    invite::{normalize_code, Grants, Invite, InviteFailure, Issuer},
    token_format::{TokenFormat, TokenHash},
};
use tessera_server::http::{
    error::ApiError,
    extract::parse_json,
    routes::{
        invite_dto::{RedeemInviteRequest, ValidateInviteRequest},
        token_dto::{VerifyRequest, MAX_PRESENTED_TOKEN},
    },
};

/// Input: a request body, tried as each of the three open endpoints'.
pub fn open_json_bodies(data: &[u8]) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(body) = parsed::<VerifyRequest>(&headers, data) {
        verify(&body);
    }
    if let Some(body) = parsed::<ValidateInviteRequest>(&headers, data) {
        invite_code_and_email(&body.code, body.email.as_deref());
    }
    match parsed::<RedeemInviteRequest>(&headers, data) {
        Some(RedeemInviteRequest::ForSubject(body)) => {
            if let Ok(subject) = validate_subject(&body.subject) {
                assert_eq!(validate_subject(&subject).ok().as_ref(), Some(&subject));
            }
            invite_code_and_email(&body.code, body.email.as_deref());
        }
        Some(RedeemInviteRequest::NewUser(body)) => {
            invite_code_and_email(&body.code, Some(&body.create_user.email));
        }
        None => {}
    }
}

/// The body, or `None` after checking the rejection is a client error with
/// a stable code and a bounded detail.
fn parsed<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Option<T> {
    match parse_json::<T>(headers, body) {
        Ok(value) => Some(value),
        Err(e) => {
            check_rejection(&e);
            None
        }
    }
}

fn check_rejection(e: &ApiError) {
    match e.code {
        "malformed_json" => assert_eq!(e.status, StatusCode::BAD_REQUEST),
        "invalid_request_body" => assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY),
        other => panic!("unexpected rejection {other}"),
    }
    // The stripper keeps 300 characters, plus a short fixed lead-in.
    assert!(e.detail.chars().count() <= 340, "{:?}", e.detail);
    // No Rust type name (`expected struct VerifyRequest`, once served for
    // `[]` or `"tsr_…"`: fuzz/regressions/open_json_bodies/).
    for forbidden in ["Request", "struct "] {
        assert!(
            !e.detail.contains(forbidden),
            "a Rust type name in {:?}",
            e.detail
        );
    }
}

/// The handler's length cap, then the token format.
fn verify(body: &VerifyRequest) {
    if body.token.len() > MAX_PRESENTED_TOKEN {
        return;
    }
    if let Ok(hash) = TokenFormat::default().parse(&body.token) {
        assert_eq!(hash, TokenHash::of(&body.token));
    }
}

/// The code's canonical form, then the e-mail check against invites bound
/// to an address and not.
fn invite_code_and_email(code: &str, email: Option<&str>) {
    if let Some(canonical) = normalize_code(code) {
        assert_eq!(normalize_code(&canonical).as_ref(), Some(&canonical));
    }
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut invite = Invite {
        id: "0190d4c6-0000-7000-8000-000000000000".into(),
        issuer: Issuer {
            subject: "admin".into(),
            role: "admin".into(),
        },
        grants: Grants {
            role: "member".into(),
            scopes: Vec::new(),
        },
        email: None,
        max_uses: 1,
        uses: 0,
        expires_at: now + Duration::days(1),
        revoked_at: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        metadata: Map::new(),
    };
    assert_eq!(invite.check_usable(email, now), Ok(()));
    invite.email = Some("alice@example.com".into());
    let verdict = invite.check_usable(email, now);
    let matches = email.is_some_and(|e| e.trim().eq_ignore_ascii_case("alice@example.com"));
    assert_eq!(verdict.is_ok(), matches);
    match (matches, email) {
        (true, _) => {}
        // No address given for a bound invite: required, not mismatched.
        (false, None) => assert_eq!(verdict, Err(InviteFailure::EmailRequired)),
        (false, Some(_)) => assert_eq!(verdict, Err(InviteFailure::EmailMismatch)),
    }
}
