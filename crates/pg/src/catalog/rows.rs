//! Running catalog queries and decoding their rows into `PgError`s rather than panics.

use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, Row};

use crate::PgError;

/// Runs a catalog query; `what` names what is being read, for the error message.
pub(crate) async fn query(
    client: &Client,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, PgError> {
    client
        .query(sql, params)
        .await
        .map_err(|e| PgError::query(format!("reading {what} from the catalog"), e))
}

/// One column of a catalog row; a type mismatch or unexpected NULL becomes an error naming `what`.
pub(crate) fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    column: &str,
    what: &str,
) -> Result<T, PgError> {
    row.try_get(column)
        .map_err(|e| PgError::query(format!("decoding {what} (column {column})"), e))
}

/// A `bigint` the catalog guarantees to be non-negative (sizes), clamped at zero.
pub(crate) fn get_u64(row: &Row, column: &str, what: &str) -> Result<u64, PgError> {
    let value: i64 = get(row, column, what)?;
    Ok(u64::try_from(value).unwrap_or(0))
}
