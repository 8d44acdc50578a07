//! Keyset pagination shared by every list query: newest first by id (ids are
//! UUIDv7, so that is creation order), or by a time column and then id
//! ([`Listing::by_time`]), one extra row fetched to know whether a next page
//! exists. The cursor is always the last row's id. Filters are added as SQL text with each value a bound
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
    /// The time column rows are ordered by before their id, if any.
    time_column: Option<&'static str>,
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
            time_column: None,
            row: PhantomData,
        }
    }

    /// Orders by `column` (a timestamp of `R`'s table, unqualified), newest
    /// first, then by id: for rows whose time is not their id's (a row
    /// written with the time its transaction started). The cursor stays the
    /// last row's id; the next page starts after that row's `(time, id)`.
    pub fn by_time(&mut self, column: &'static str) -> &mut Self {
        self.time_column = Some(column);
        self
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
        let placeholder = self.placeholder(value);
        self.sql.push_str(&placeholder);
    }

    /// Binds `value` and returns its placeholder, for SQL that uses it twice.
    fn placeholder<T>(&mut self, value: T) -> String
    where
        T: 'static + Encode<'static, sqlx::Any> + Type<sqlx::Any>,
    {
        self.args
            .add(value)
            .expect("text and integers always encode");
        format!("${}", self.args.len())
    }

    /// Adds `column <op> <value>` (op is ours, e.g. `>=`) with a bound
    /// integer, when there is a value.
    pub fn int_cmp(&mut self, column: &str, op: &str, value: Option<i64>) -> &mut Self {
        if let Some(value) = value {
            self.and();
            self.sql.push_str(&format!("{column} {op} "));
            self.bind(value);
        }
        self
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
            let c = self.placeholder(c.to_string());
            let keyset = match self.time_column {
                // The cursor row's time, read in the same statement; an id
                // no row has makes the condition NULL, so an empty page.
                Some(col) => {
                    let at = format!("(SELECT c.{col} FROM {} c WHERE c.id = {c})", R::TABLE);
                    format!("(t.{col} < {at} OR (t.{col} = {at} AND t.id < {c}))")
                }
                None => format!("t.id < {c}"),
            };
            self.sql.push_str(&keyset);
        }
        let limit = limit.clamp(1, 1000);
        let order = match self.time_column {
            Some(col) => format!("t.{col} DESC, t.id DESC"),
            None => "t.id DESC".into(),
        };
        self.sql
            .push_str(&format!(" ORDER BY {order} LIMIT {}", limit + 1));
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
