//! The relations a dump locks before reading anything else.

use tokio_postgres::Client;

use super::filter::{extension_config, user_table};
use super::rows::{get, query};
use crate::PgError;

/// Relations the dump must lock `ACCESS SHARE` before reading the rest, as `(schema, name)`: every
/// user table, partitioned parents included, outside system and temporary schemas and not created
/// by an extension — the same tables `read_schema` returns — and the extensions' configuration
/// tables, whose rows it reads too. Ordered by schema and name.
pub async fn relations_to_lock(client: &Client) -> Result<Vec<(String, String)>, PgError> {
    let sql = format!(
        "SELECT n.nspname::text AS schema, c.relname::text AS name \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE ({}) OR ({}) ORDER BY n.nspname, c.relname",
        user_table(),
        extension_config('r')
    );
    let what = "the tables to lock";
    query(client, what, &sql, &[])
        .await?
        .iter()
        .map(|row| Ok((get(row, "schema", what)?, get(row, "name", what)?)))
        .collect()
}
