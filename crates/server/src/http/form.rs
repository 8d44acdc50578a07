//! A body that is JSON or a plain HTML form (`application/x-www-form-
//! urlencoded`): the link routes take both, because the pages that post
//! them are often plain forms. A form that does not fit is refused with the
//! same codes as JSON, and the message never quotes what was sent.

use axum::{
    extract::{FromRequest, Request},
    http::{header, HeaderMap, StatusCode},
};
use serde::de::DeserializeOwned;

use super::{
    error::ApiError,
    extract::{parse_json, read_body},
};

/// A JSON or form-encoded body.
pub struct JsonOrForm<T>(pub T);

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (headers, body) = read_body(req, state).await?;
        if !is_form(&headers) {
            return parse_json(&headers, &body).map(Self);
        }
        serde_urlencoded::from_bytes(&body).map(Self).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_body",
                "the form does not have the fields this operation takes",
            )
        })
    }
}
