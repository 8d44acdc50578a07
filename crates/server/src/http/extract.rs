//! Request extractors whose rejections are problem+json with stable codes,
//! instead of axum's plain-text defaults.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, StatusCode},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Target types use `deny_unknown_fields`, so a misspelt field is
/// an error rather than a silent no-op.
pub struct ApiJson<T>(pub T);

/// A JSON body that may be left out entirely (then `T::default()`).
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (headers, body) = read_body(req, state).await?;
        parse_json(&headers, &body).map(Self)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (headers, body) = read_body(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&headers, &body).map(Self)
    }
}

async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<(HeaderMap, Bytes), ApiError> {
    let headers = req.headers().clone();
    let body = Bytes::from_request(req, state).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than the 64 KiB limit",
        )
    })?;
    Ok((headers, body))
}

/// The body as `T`, or the problem the extractors answer with. Public so the
/// fuzz targets run the exact path a request body takes.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let detail = redact_quoted(&e.to_string());
        match e.classify() {
            serde_json::error::Category::Data => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_body",
                detail,
            ),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {detail}"),
            ),
        }
    })
}

/// The problem-detail stripper, for the fuzz targets (crates/fuzz-targets):
/// a thin public name over `redact_quoted`, so that function can change freely.
pub fn strip_problem_detail(msg: &str) -> String {
    redact_quoted(msg)
}

/// Serde's messages quote the offending input (`invalid type: string "…"`).
/// That input could be a secret pasted into the wrong field, so the quoted
/// parts are dropped and the explanation kept. Field names use backticks.
fn redact_quoted(msg: &str) -> String {
    // serde names the offending input before ", expected …" (in `"…"` for
    // strings, in backticks for numbers and variants) and lists what it
    // wanted after it; the input may be a secret, the expectation is help.
    let (input, help) = match msg.find(", expected") {
        Some(i) => msg.split_at(i),
        None => (msg, ""),
    };
    let mut out = String::with_capacity(msg.len());
    let mut quote = None;
    for (part, quotes) in [(input, &['"', '`'][..]), (help, &['"'][..])] {
        for c in part.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if quotes.contains(&c) => {
                    out.push_str(&format!("{c}…{c}"));
                    quote = Some(c);
                }
                None => out.push(c),
            }
        }
    }
    out.chars().take(300).collect()
}

/// A query string, with rejections as problem+json.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Self).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("invalid query string: {}", redact_quoted(&e.to_string())),
            )
        })
    }
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit
/// `null` (`Some(None)`), which clears the value.
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

/// Path parameters, with rejections (e.g. invalid UTF-8) as problem+json.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    "a path segment is not valid (it must be UTF-8 text)",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_quoted;

    #[test]
    fn quoted_input_is_removed() {
        let m = redact_quoted("invalid type: string \"tsr_secret\", expected u64 at line 1");
        assert!(!m.contains("tsr_secret"));
        assert!(m.contains("expected u64"));
        let m = redact_quoted("invalid type: integer `123456`, expected a string at line 1");
        assert!(!m.contains("123456"), "{m}");
        let m = redact_quoted("unknown variant `gif`, expected one of `svg`, `png`");
        assert!(!m.contains("gif") && m.contains("`png`"), "{m}");
    }
}
