//! A body that is JSON or a plain HTML form (`application/x-www-form-
//! urlencoded`): the link routes take both, because the pages that post
//! them are often plain forms. JSON is strict (an unknown field is `422`);
//! a form's fields that the operation does not name are dropped, as web
//! frameworks do, because browsers send things a page author did not mean
//! as input (a named submit button, fields added by extensions). A form
//! that does not fit is refused with the same codes as JSON, and the
//! message never quotes what was sent.

use axum::{
    extract::{FromRequest, Request},
    http::{header, HeaderMap, StatusCode},
};
use serde::{
    de::{self, DeserializeOwned, Visitor},
    forward_to_deserialize_any, Deserializer,
};

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
        let refused = || {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_body",
                "the form does not have the fields this operation takes",
            )
        };
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&body).map_err(|_| refused())?;
        let pairs: Vec<(String, String)> = match field_names::<T>() {
            Some(fields) => pairs
                .into_iter()
                .filter(|(name, _)| fields.contains(&name.as_str()))
                .collect(),
            None => pairs,
        };
        let kept = serde_urlencoded::to_string(&pairs).map_err(|_| refused())?;
        serde_urlencoded::from_str(&kept)
            .map(Self)
            .map_err(|_| refused())
    }
}

/// The field names of a struct `T` as serde sees them; `None` for any
/// other shape (its form is then taken whole).
fn field_names<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut found = None;
    // The deserializer only records the names and stops: the error is the
    // expected end of the probe.
    let _ = T::deserialize(FieldNames(&mut found));
    found
}

/// A deserializer that answers nothing, and remembers the fields a struct
/// asks it for.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields recorded"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Reset {
        email: String,
        csrf_token: Option<String>,
    }

    #[test]
    fn a_struct_tells_its_field_names() {
        assert_eq!(field_names::<Reset>(), Some(&["email", "csrf_token"][..]));
        assert_eq!(field_names::<Vec<String>>(), None);
        assert_eq!(field_names::<String>(), None);
    }
}
