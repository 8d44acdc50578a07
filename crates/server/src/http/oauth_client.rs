//! The HTTP side of OAuth2 client authentication: reading what a caller
//! presented (the TLS listener's verified certificate, `Authorization:
//! Basic`, the form's `client_id` / `client_secret`) and the one answer
//! every failure gets, `401 {"error": "invalid_client"}` with
//! `WWW-Authenticate: Basic realm="tessera"`, whatever the reason.

use std::net::IpAddr;

use axum::{
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use base64::Engine;
use serde::Serialize;
use tessera_core::{
    client::{ClientAuthFailure, PeerCertificate},
    SecretString,
};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::service::clients::ClientCredentials;

/// An OAuth2 error body (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_client`, `invalid_request`, `unsupported_token_type`, …
    pub error: &'static str,
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, as OAuth2 answers
/// about tokens must carry.
pub fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// An OAuth2 error with `no-store`.
pub fn oauth_error(status: StatusCode, error: &'static str) -> Response {
    no_store((status, Json(OAuthErrorBody { error })).into_response())
}

/// The answer to every failed client authentication: nothing in it tells
/// an unknown client from a wrong secret or a refused certificate.
pub fn invalid_client() -> Response {
    let mut res = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="tessera""#),
    );
    res
}

/// The answer to a failed client authentication: `invalid_client` for
/// every reason but a registry that cannot be read, which is a `503`
/// problem like any other dependency that is down.
pub fn client_auth_refused(reason: ClientAuthFailure) -> Response {
    match reason {
        ClientAuthFailure::Unavailable => no_store(ApiError::unavailable().into_response()),
        _ => invalid_client(),
    }
}

/// What the caller presented. `form_id` and `form_secret` come from the
/// already-parsed form body; `client_ip` is the caller's address as
/// `RequestAudit` resolved it (`audit.client.ip`), the key of the per-IP
/// limit on failed client authentications.
pub fn client_credentials(
    parts_headers: &HeaderMap,
    certificate: Option<&PeerCertificate>,
    form_id: Option<String>,
    form_secret: Option<SecretString>,
    client_ip: Option<IpAddr>,
) -> ClientCredentials {
    let basic = basic_credentials(parts_headers);
    let as_sent = match &basic {
        Some(Ok(pair)) => Some(pair.secret_as_sent.clone()),
        _ => None,
    };
    ClientCredentials::new(
        certificate.cloned(),
        basic.map(|b| b.map(|pair| (pair.id, pair.secret))),
        form_id.filter(|s| !s.is_empty()),
        form_secret.filter(|s| !s.expose().is_empty()),
    )
    .with_basic_secret_as_sent(as_sent)
    .with_client_ip(client_ip)
}

/// The verified client certificate the TLS listener attached, if any.
pub fn peer_certificate(parts: &Parts) -> Option<&PeerCertificate> {
    parts.extensions.get::<PeerCertificate>()
}

/// Basic credentials, decoded, with the secret also as sent.
struct BasicPair {
    id: String,
    secret: SecretString,
    secret_as_sent: SecretString,
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`
/// (RFC 6749 §2.3.1). `None` without a Basic header; `Err` when it does
/// not decode.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<BasicPair, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(decode_basic(encoded.trim()))
}

fn decode_basic(encoded: &str) -> Result<BasicPair, ()> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| ())?;
    let text = String::from_utf8(bytes).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    Ok(BasicPair {
        id: form_decode(id),
        secret: SecretString::new(form_decode(secret)),
        secret_as_sent: SecretString::new(secret.to_string()),
    })
}

/// One form-encoded value (`+` is a space, `%XX` a byte); `&` and `=` are
/// kept as they are, since the value is not part of a larger form.
fn form_decode(s: &str) -> String {
    let quoted = s.replace('&', "%26").replace('=', "%3D");
    form_urlencoded::parse(format!("x={quoted}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn basic_is_decoded_and_unescaped() {
        let enc = base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Acret+x&y=z");
        let pair = basic_credentials(&basic(&format!("Basic {enc}")))
            .unwrap()
            .unwrap();
        assert_eq!(pair.id, "my client");
        assert_eq!(pair.secret.expose(), "s:cret x&y=z");
        assert_eq!(pair.secret_as_sent.expose(), "s%3Acret+x&y=z");
        assert!(basic_credentials(&basic("Basic !!!")).unwrap().is_err());
        assert!(basic_credentials(&basic("Bearer abc")).is_none());
    }

    #[test]
    fn a_secret_sent_without_form_encoding_is_checked_as_sent_too() {
        let enc = base64::engine::general_purpose::STANDARD.encode("api:a+b%zz");
        let mut headers = basic(&format!("Basic {enc}"));
        headers.insert("x-other", HeaderValue::from_static("1"));
        let creds = client_credentials(&headers, None, Some("api".into()), None, None);
        match creds.secret {
            crate::service::clients::PresentedSecret::Valid(s) => {
                assert_eq!(s.secret.expose(), "a b%zz");
                assert_eq!(s.as_sent.unwrap().expose(), "a+b%zz");
            }
            other => panic!("{other:?}"),
        }
    }
}
