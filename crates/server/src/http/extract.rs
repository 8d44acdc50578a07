//! Request extractors whose rejections are problem+json with stable codes,
//! instead of axum's plain-text defaults. They are also the first line of
//! defence against hostile input: bodies must be JSON objects, query and path
//! parameters must hold no control character, and no rejection quotes what
//! the client sent or names a Rust type (see
//! [`problem_detail_from_json_error`]).

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, StatusCode},
};
use serde::de::DeserializeOwned;

use tessera_core::{
    text::{self, TextRule},
    DomainError,
};

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

pub(crate) async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<(HeaderMap, Bytes), ApiError> {
    let headers = req.headers().clone();
    let body = Bytes::from_request(req, state)
        .await
        .map_err(|_| payload_too_large())?;
    Ok((headers, body))
}

/// The answer to a body over the limit (`MAX_BODY_BYTES`).
pub(crate) fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the body is larger than the 64 KiB limit",
    )
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
    require_object(body)?;
    serde_json::from_slice(body).map_err(|e| json_error::<T>(body, &e))
}

/// Every request body is a JSON object. serde would otherwise read a struct
/// from an array (`[null, null]` as `{"purge": null, "reason": null}`), or a
/// unit-like default from `null`.
fn require_object(body: &[u8]) -> Result<(), ApiError> {
    // 0x7b is the opening curly bracket of a JSON object.
    if body.trim_ascii_start().first() == Some(&0x7b) {
        return Ok(());
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => Err(malformed_json(&e)),
        Ok(_) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_body",
            "the body must be a JSON object",
        )),
    }
}

/// Not JSON at all: only where it stops being JSON is worth saying.
fn malformed_json(e: &serde_json::Error) -> ApiError {
    let why = match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        _ => "a syntax error",
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!(
            "the body is not valid JSON: {why} at line {}, column {}",
            e.line(),
            e.column()
        ),
    )
}

/// The problem for a body that is JSON but does not fit `T`: which field (by
/// its path, e.g. `grants.role`) and what kind of mistake, never the value.
fn json_error<T: DeserializeOwned>(body: &[u8], e: &serde_json::Error) -> ApiError {
    if e.classify() != serde_json::error::Category::Data {
        return malformed_json(e);
    }
    let raw = e.to_string();
    // Parsed a second time, on failure only, to learn the field's path: the
    // tracking costs nothing on the (hot) success path this way.
    let mut de = serde_json::Deserializer::from_slice(body);
    let path = serde_path_to_error::deserialize::<_, T>(&mut de)
        .err()
        .and_then(|e| field_path(e.path(), raw.starts_with("unknown field")));
    let detail = problem_detail_from_json_error(&raw);
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request_body",
        match path {
            Some(path) => format!("{path}: {detail}"),
            None => format!("the body: {detail}"),
        },
    )
}

/// `grants.role`, `scopes[2]`: the path of a failing value, built only from
/// field names of our own types and indices. An unknown field's own name is
/// what the client sent, so its path stops at the object holding it; any
/// other key that is not a plain lower-case name gives no path at all.
fn field_path(path: &serde_path_to_error::Path, unknown_field: bool) -> Option<String> {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let keep = segments.len() - usize::from(unknown_field && !segments.is_empty());
    let mut out = String::new();
    for segment in &segments[..keep] {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } if is_field_name(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// How our request types name their fields (snake_case ASCII).
fn is_field_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The problem-detail stripper: a safe `detail` from the text of a serde
/// error (`raw`, e.g. serde_json's `Display`), for a JSON body or a query
/// string that did not fit.
///
/// serde's messages quote the offending input (`invalid type: string
/// "tsr_…"`, which may be a secret pasted into the wrong field) and name Rust
/// types (`expected struct RevokeRequest`). This keeps only the kind of
/// mistake, what was expected and what was sent in JSON terms, and the line
/// and column. Whatever `raw` is, the result is made of fixed phrases,
/// numbers and at most one snake_case field name (of a missing field): it
/// never holds a quote or backtick, a Rust type name, or a fragment of `raw`
/// beyond those, and it is at most a few dozen words long.
pub fn problem_detail_from_json_error(raw: &str) -> String {
    let (message, position) = split_position(raw);
    let mut detail = describe(message);
    if let Some((line, column)) = position {
        detail.push_str(&format!(" (line {line}, column {column})"));
    }
    detail
}

/// serde_json ends its messages with ` at line L column C`.
fn split_position(raw: &str) -> (&str, Option<(u64, u64)>) {
    let Some(i) = raw.rfind(" at line ") else {
        return (raw, None);
    };
    let position = raw[i + " at line ".len()..]
        .split_once(" column ")
        .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)));
    match position {
        Some(p) => (&raw[..i], Some(p)),
        None => (raw, None),
    }
}

/// What kind of mistake `message` reports, in our own words.
fn describe(message: &str) -> String {
    // What serde expected is said after the last ", expected " (the input,
    // quoted before it, may itself contain those words; at worst that picks
    // another fixed word below).
    let expected = message
        .rfind(", expected ")
        .and_then(|i| json_kind(&message[i + ", expected ".len()..]));
    let (what, sent) = if let Some(rest) = message.strip_prefix("invalid type: ") {
        ("has the wrong type", json_kind_sent(rest))
    } else if message.starts_with("invalid value") {
        ("has a value that is not allowed", None)
    } else if message.starts_with("invalid length") {
        ("has the wrong number of elements", None)
    } else if message.starts_with("unknown variant") {
        return "is not one of the allowed values (see /openapi.json)".into();
    } else if message.starts_with("unknown field") {
        return "has a field that is not allowed (see /openapi.json)".into();
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().filter(|n| is_field_name(n));
        return match name {
            Some(name) => format!("lacks the required field {name}"),
            None => "lacks a required field".into(),
        };
    } else if message.starts_with("duplicate field") {
        return "has a field given twice".into();
    } else if message.starts_with("EOF while parsing") {
        return "it ends too early".into();
    } else if message.starts_with("control character") {
        return "a string holds a raw control character (escape it)".into();
    } else {
        return "is not valid".into();
    };
    let mut out = what.to_string();
    if let Some(expected) = expected {
        out.push_str(&format!(": expected {expected}"));
    }
    if let Some(sent) = sent {
        out.push_str(&format!(", got {sent}"));
    }
    out
}

/// The JSON kind of serde's "expected …" text.
fn json_kind(expected: &str) -> Option<&'static str> {
    let e = expected.trim_start_matches("a ").trim_start_matches("an ");
    let integer = e.starts_with(['u', 'i'])
        && e.len() > 1
        && e[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b's' || b == b'i' || b == b'z' || b == b'e');
    Some(
        if e.starts_with("struct") || e.starts_with("map") || e.contains("object") {
            "an object"
        } else if e.starts_with("sequence") || e.starts_with("tuple") || e.contains("array") {
            "an array"
        } else if e.starts_with("bool") {
            "true or false"
        } else if integer || e.contains("integer") {
            "an integer"
        } else if e.starts_with("f32") || e.starts_with("f64") || e.contains("number") {
            "a number"
        } else if e.contains("string") || e.starts_with("str") || e.starts_with("char") {
            "a string"
        } else if e.starts_with("one of") || e.starts_with("variant") {
            "one of the allowed values"
        } else if e.starts_with("unit") || e.starts_with("null") {
            "null"
        } else {
            return None;
        },
    )
}

/// The JSON kind of serde's description of what was sent (`string "…"`,
/// `integer `5``, `sequence`…); the value itself is never kept.
fn json_kind_sent(unexpected: &str) -> Option<&'static str> {
    let word = unexpected.split([' ', ',']).next().unwrap_or_default();
    Some(match word {
        "string" | "character" => "a string",
        "integer" => "an integer",
        "floating" => "a number",
        "boolean" => "true or false",
        "sequence" => "an array",
        "map" => "an object",
        "null" | "unit" => "null",
        _ => return None,
    })
}

/// A query string, with rejections as problem+json. No query parameter takes
/// a control character: one anywhere is refused (422 `invalid_characters`)
/// before the handler runs, so none reaches a database filter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        reject_controls_in_query::<T>(query)?;
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let raw = e.inner().to_string();
            let detail = problem_detail_from_json_error(&raw);
            let detail = match field_path(e.path(), raw.starts_with("unknown field")) {
                Some(path) => format!("invalid query string: {path}: {detail}"),
                None => format!("invalid query string: {detail}"),
            };
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", detail)
        })
    }
}

fn reject_controls_in_query<'de, T: serde::Deserialize<'de>>(query: &str) -> Result<(), ApiError> {
    let bad = form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| text::has_control(k) || text::has_control(v));
    let Some((key, _)) = bad else {
        return Ok(());
    };
    // Named only when it is one of `T`'s fields: the key is client input.
    let field = field_names::<T>().iter().find(|f| **f == key).copied();
    Err(invalid_characters(field, "a query parameter"))
}

/// 422 `invalid_characters` for a query or path parameter, naming it when
/// its name is ours.
fn invalid_characters(field: Option<&'static str>, what: &str) -> ApiError {
    match field {
        Some(field) => DomainError::InvalidCharacters {
            field,
            refused: TextRule::Line.explanation(),
        }
        .into(),
        None => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_characters",
            format!("{what} must not contain control characters"),
        ),
    }
}

/// The field names serde's derive gives a struct `T`, read without any
/// input: a deserializer that only records what `deserialize_struct` is told.
fn field_names<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
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

/// An optional whole number that may be written as a JSON float with no
/// fractional part (`15557.0`): JSON Schema's `integer`, which the API
/// document promises, includes those, and serde's `i64` alone does not.
/// Anything else (a fraction, a number out of range, a string) is the usual
/// type error.
pub fn integral<'de, D>(de: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    de.deserialize_option(Integral)
}

/// The visitor behind [`integral`]: it expects "an integer", so a wrong type
/// reads like serde's own message for `i64`.
struct Integral;

impl<'de> serde::de::Visitor<'de> for Integral {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an integer")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(n))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        i64::try_from(n)
            .map(Some)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(n), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Self::Value, E> {
        // `i64::MAX as f64` rounds up to exactly 2^63; every f64 below it in
        // magnitude with no fraction converts without loss.
        if f.fract() == 0.0 && f.abs() < i64::MAX as f64 {
            Ok(Some(f as i64))
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(f), &self))
        }
    }
}

/// Path parameters, with rejections (e.g. invalid UTF-8) as problem+json.
/// No path parameter takes a control character: one is refused (422
/// `invalid_characters`) before the handler runs.
pub struct ApiPath<T>(pub T);

/// The path parameter names our routes use, so a refusal can name the field
/// (`ApiError::field` is a static name). A parameter missing here is still
/// refused, with the name in the detail only.
const PATH_PARAMS: [&str; 4] = ["id", "subject", "device_id", "api"];

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid_path = || {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                "a path segment is not valid (it must be UTF-8 text)",
            )
        };
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid_path())?;
        // Keys are our routes' parameter names, never client input.
        if let Some((key, _)) = raw.iter().find(|(_, v)| text::has_control(v)) {
            let field = PATH_PARAMS.iter().find(|p| **p == key).copied();
            return Err(invalid_characters(field, &format!("path parameter {key}")));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|_| invalid_path())
    }
}

#[cfg(test)]
mod tests {
    use super::problem_detail_from_json_error as detail;

    fn assert_clean(d: &str, input: &str) {
        assert!(!d.contains(input), "{d}");
        assert!(!d.contains('"') && !d.contains('`'), "{d}");
        assert!(!d.contains("struct") && !d.contains("enum "), "{d}");
    }

    #[test]
    fn quoted_input_and_type_names_are_removed() {
        let d = detail("invalid type: string \"tsr_secret\", expected u64 at line 1 column 9");
        assert_eq!(
            d,
            "has the wrong type: expected an integer, got a string (line 1, column 9)"
        );
        assert_clean(&d, "tsr_secret");
        let d = detail("invalid type: integer `123456`, expected a string at line 1 column 3");
        assert_eq!(
            d,
            "has the wrong type: expected a string, got an integer (line 1, column 3)"
        );
        let d = detail("invalid type: sequence, expected struct RevokeRequest at line 1 column 1");
        assert_eq!(
            d,
            "has the wrong type: expected an object, got an array (line 1, column 1)"
        );
        assert_clean(&d, "RevokeRequest");
        let d = detail(
            "unknown variant `gif`, expected one of `svg`, `png`, `none` at line 1 column 9",
        );
        assert_clean(&d, "gif");
        let d =
            detail("unknown field `tsr_abc`, expected one of `name`, `owner` at line 1 column 9");
        assert_clean(&d, "tsr_abc");
        assert_eq!(
            detail("missing field `name` at line 1 column 2"),
            "lacks the required field name (line 1, column 2)"
        );
        let d = detail("invalid value: integer `99999999999`, expected u32");
        assert_clean(&d, "99999999999");
        assert_clean(
            &detail("subject: must be 1-200 printable characters at line 1 column 5"),
            "printable",
        );
    }

    #[test]
    fn crafted_messages_cannot_smuggle_input() {
        for raw in [
            "unknown variant `x, expected struct Evil`, expected one of `a`",
            "invalid type: string \"a, expected struct Evil\", expected u8",
            "missing field `Secret\"` at line 1 column 1",
            "at line 99999999999999999999999 column 1",
            "\u{202e}` at line 1 column 1",
        ] {
            let d = detail(raw);
            assert_clean(&d, "Evil");
            assert!(!d.contains("Secret") && !d.contains('\u{202e}'), "{d}");
        }
    }

    #[test]
    fn integral_numbers_may_be_written_as_floats_without_a_fraction() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "super::integral")]
            n: Option<i64>,
        }
        let n = |json: &str| serde_json::from_str::<Body>(json).map(|b| b.n);
        assert_eq!(n(r#"{"n": 15557}"#).unwrap(), Some(15557));
        assert_eq!(n(r#"{"n": 15557.0}"#).unwrap(), Some(15557));
        assert_eq!(n(r#"{"n": -2e3}"#).unwrap(), Some(-2000));
        assert_eq!(n(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(n("{}").unwrap(), None);
        for bad in [
            r#"{"n": 1.5}"#,
            r#"{"n": 1e300}"#,
            r#"{"n": "5"}"#,
            r#"{"n": true}"#,
        ] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }
}
