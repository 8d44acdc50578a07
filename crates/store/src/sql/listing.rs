//! Keyset pagination shared by every list query: newest first by id (ids are
//! UUIDv7, so that is creation order), one extra row fetched to know whether
//! a next page exists.

use sqlx::{any::AnyRow, AnyPool};

use crate::{error::StoreError, page::Page};

/// A `SELECT … WHERE` under construction. `$1` is always "now" (milliseconds)
/// so that static state conditions can refer to it.
pub(crate) struct Listing {
    sql: String,
    texts: Vec<String>,
}

impl Listing {
    /// `select_from` is e.g. `SELECT … FROM invites t`; the table alias must be `t`.
    pub fn new(select_from: &str) -> Self {
        Self {
            sql: format!("{select_from} WHERE $1 = $1"),
            texts: Vec::new(),
        }
    }

    /// Adds a fixed condition (which may use `$1`, "now").
    pub fn condition(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(" AND ");
        self.sql.push_str(sql);
        self
    }

    /// Adds `column = <value>` with a bound parameter.
    pub fn text_eq(&mut self, column: &str, value: &str) -> &mut Self {
        self.texts.push(value.to_string());
        self.sql
            .push_str(&format!(" AND {column} = ${}", self.texts.len() + 1));
        self
    }

    pub async fn fetch<T>(
        mut self,
        pool: &AnyPool,
        now_ms: i64,
        cursor: Option<&str>,
        limit: u32,
        decode: impl Fn(&AnyRow) -> Result<T, StoreError>,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<Page<T>, StoreError> {
        if let Some(c) = cursor {
            self.texts.push(c.to_string());
            self.sql
                .push_str(&format!(" AND t.id < ${}", self.texts.len() + 1));
        }
        let limit = limit.clamp(1, 1000);
        self.sql
            .push_str(&format!(" ORDER BY t.id DESC LIMIT {}", limit + 1));
        let mut query = sqlx::query(&self.sql).bind(now_ms);
        for t in &self.texts {
            query = query.bind(t.as_str());
        }
        let rows = query.fetch_all(pool).await?;
        let mut items = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|t| id_of(t).to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
