//! Keyset pagination shared by every list query: newest first by id (ids are
//! UUIDv7, so that is creation order), one extra row fetched to know whether
//! a next page exists. Filters are added as SQL text with each value a bound
//! parameter, numbered as it is added.
//!
//! Why not `sqlx::QueryBuilder<Any>`: its placeholders are `?`, which
//! PostgreSQL rejects through the `Any` driver; our single body of SQL uses
//! `$n`, which both backends accept. So the builder here numbers them.

use std::marker::PhantomData;

use sqlx::{any::AnyArguments, AnyPool, Arguments, Encode, Type};

use super::TableRow;
use crate::{error::StoreError, page::Page};

/// Where a fixed condition uses "now": each `{now}` becomes a bound parameter.
const NOW: &str = "{now}";

/// A `SELECT … FROM <R's table> t [WHERE …]` under construction.
pub(crate) struct Listing<R> {
    sql: String,
    args: AnyArguments<'static>,
    now_ms: i64,
    has_where: bool,
    row: PhantomData<R>,
}

impl<R: TableRow> Listing<R> {
    /// All rows of `R`'s table, until filtered. `now_ms` is what `{now}` in
    /// a condition stands for.
    pub fn new(now_ms: i64) -> Self {
        Self {
            sql: format!("SELECT {} FROM {} t", R::COLUMNS, R::TABLE),
            args: AnyArguments::default(),
            now_ms,
            has_where: false,
            row: PhantomData,
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

    /// Adds `column = <value>` with a bound parameter, when there is a value.
    pub fn text_eq(&mut self, column: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.and();
            self.sql.push_str(column);
            self.sql.push_str(" = ");
            self.bind(value.to_string());
        }
        self
    }

    /// The filters of a record with a lifecycle (tokens, invites): its state,
    /// given as the state's SQL condition, and soft deletion.
    pub fn lifecycle(&mut self, state: Option<&str>, include_deleted: bool) -> &mut Self {
        if let Some(state) = state {
            self.condition(state);
        }
        if !include_deleted {
            self.condition("t.deleted_at IS NULL");
        }
        self
    }

    /// Runs the query: rows of type `R`, each converted into its domain type.
    pub async fn fetch(
        mut self,
        pool: &AnyPool,
        cursor: Option<&str>,
        limit: u32,
        id_of: impl Fn(&R::Domain) -> &str,
    ) -> Result<Page<R::Domain>, StoreError> {
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
            .map(R::Domain::try_from)
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
