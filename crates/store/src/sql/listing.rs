//! Keyset pagination shared by every list query: newest first by id (ids are
//! UUIDv7, so that is creation order), one extra row fetched to know whether
//! a next page exists. Filters are added as SQL text with each value a bound
//! parameter, numbered as it is added.
//!
//! Why not `sqlx::QueryBuilder<Any>`: its placeholders are `?`, which
//! PostgreSQL rejects through the `Any` driver; our single body of SQL uses
//! `$n`, which both backends accept. So the builder here numbers them.

use sqlx::{
    any::{AnyArguments, AnyRow},
    AnyPool, Arguments, Encode, FromRow, Type,
};

use crate::{error::StoreError, page::Page};

/// Where a fixed condition uses "now": each `{now}` becomes a bound parameter.
const NOW: &str = "{now}";

/// A `SELECT … [WHERE …]` under construction.
pub(crate) struct Listing {
    sql: String,
    args: AnyArguments<'static>,
    now_ms: i64,
    has_where: bool,
}

impl Listing {
    /// `select_from` is e.g. `SELECT … FROM invites t`; the table alias must
    /// be `t`. `now_ms` is what `{now}` in a condition stands for.
    pub fn new(select_from: &str, now_ms: i64) -> Self {
        Self {
            sql: select_from.to_string(),
            args: AnyArguments::default(),
            now_ms,
            has_where: false,
        }
    }

    fn and(&mut self) {
        self.sql
            .push_str(if self.has_where { " AND " } else { " WHERE " });
        self.has_where = true;
    }

    /// Binds `value` and appends its placeholder.
    fn bind<T>(&mut self, value: T)
    where
        T: 'static + Encode<'static, sqlx::Any> + Type<sqlx::Any>,
    {
        self.args
            .add(value)
            .expect("text and integers always encode");
        self.sql.push_str(&format!("${}", self.args.len()));
    }

    /// Adds a fixed condition, which may refer to "now" as `{now}`.
    pub fn condition(&mut self, sql: &str) -> &mut Self {
        self.and();
        let mut parts = sql.split(NOW);
        self.sql.push_str(parts.next().unwrap_or_default());
        for part in parts {
            self.bind(self.now_ms);
            self.sql.push_str(part);
        }
        self
    }

    /// Adds `column = <value>` with a bound parameter.
    pub fn text_eq(&mut self, column: &str, value: &str) -> &mut Self {
        self.and();
        self.sql.push_str(column);
        self.sql.push_str(" = ");
        self.bind(value.to_string());
        self
    }

    /// Runs the query: rows of type `R`, each converted into a `T`.
    pub async fn fetch<R, T>(
        mut self,
        pool: &AnyPool,
        cursor: Option<&str>,
        limit: u32,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<Page<T>, StoreError>
    where
        R: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
        T: TryFrom<R, Error = StoreError>,
    {
        if let Some(c) = cursor {
            self.and();
            self.sql.push_str("t.id < ");
            self.bind(c.to_string());
        }
        let limit = limit.clamp(1, 1000);
        self.sql
            .push_str(&format!(" ORDER BY t.id DESC LIMIT {}", limit + 1));
        let rows: Vec<R> = sqlx::query_as_with(&self.sql, self.args)
            .fetch_all(pool)
            .await?;
        let mut items = rows
            .into_iter()
            .map(T::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|t| id_of(t).to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
