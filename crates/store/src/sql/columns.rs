//! Decoders for the portable column encodings, so that a row type the store
//! owns derives `FromRow` itself (`#[sqlx(try_from = "Millis")]`) instead of
//! going through a row struct and a field-by-field conversion.
//!
//! A value these decoders refuse is [`StoreError::Corrupt`] with the same
//! text as [`super::from_millis`] and [`super::from_json`] give: sqlx wraps
//! it in `ColumnDecode`, and `From<sqlx::Error> for StoreError` unwraps it.

use chrono::{DateTime, Utc};
use sqlx::{
    any::{AnyTypeInfo, AnyValueRef},
    error::BoxDynError,
    Any, Decode, Type,
};

use super::from_millis;
use crate::error::StoreError;

/// A column as the database stores it, read as `T` and turned into the
/// field's type by the `TryFrom` impls below.
pub(crate) struct Column<T>(T);

/// A timestamp column: BIGINT milliseconds since the epoch.
pub(crate) type Millis = Column<i64>;
/// A nullable timestamp column.
pub(crate) type OptMillis = Column<Option<i64>>;
/// A JSON column, stored as TEXT.
pub(crate) type JsonText = Column<String>;

impl<T: Type<Any>> Type<Any> for Column<T> {
    fn type_info() -> AnyTypeInfo {
        T::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        T::compatible(ty)
    }
}

impl<'r, T: Decode<'r, Any>> Decode<'r, Any> for Column<T> {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        T::decode(value).map(Column)
    }
}

impl TryFrom<Millis> for DateTime<Utc> {
    type Error = StoreError;

    fn try_from(ms: Millis) -> Result<Self, StoreError> {
        from_millis(ms.0)
    }
}

impl TryFrom<OptMillis> for Option<DateTime<Utc>> {
    type Error = StoreError;

    fn try_from(ms: OptMillis) -> Result<Self, StoreError> {
        ms.0.map(from_millis).transpose()
    }
}

/// The column's name is added where the error is unwrapped, as `from_json`
/// would have it.
impl TryFrom<JsonText> for serde_json::Value {
    type Error = serde_json::Error;

    fn try_from(text: JsonText) -> Result<Self, serde_json::Error> {
        serde_json::from_str(&text.0)
    }
}
